"""Records list and search benchmark (`make bench-list`): the real views over 1,000,000 records.

Seeds its own database, ``ckycportal_bench_list`` (created and migrated here; set LIST_BENCH_DATABASE_URL
for another whose name contains "bench"), once: the records are kept between runs unless ``--reseed`` or
another ``--records`` is asked for. Then it requests the records list, the checker's queue and every
filter and search through Django's test client (the real URL, middleware, view, selectors and template),
each ``--repeat`` times after a warm-up, and prints per case the median and 95th percentile server time
and the queries per page. ``--explain`` prints PostgreSQL's plan of each case's page query.

Seeding (COPY, two processes, as bench/seed.py does for the upload bench): 10 branches, a maker each, the
statuses of a live portal (60 % uploaded, 15 % draft, 10 % waiting for review, ...), a year of entry dates,
deadlines, uploaded records in batches of their branch. The columns a list row shows (PAN, first and middle
name, from bench/seed.py's name lists) are Fernet-encrypted per row with their keyed hashes and name tokens.
The other columns hold bench/seed.py's record 0, each encrypted column as one shared ciphertext, so rows are
as wide as real ones without a million more encryptions; records past approval (approved, batched,
uploaded) also hold its payload as approval freezes it (``records.services.record_freeze_values``), one
shared ciphertext too. The columns come from the model: one added later gets its model default. Audit
events are not written: no list query reads them.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/list_bench.py`

from bench.harness import bench_database_url, create_database

DB_NAME = "ckycportal_bench_list"
CHUNK = 20_000
BRANCHES = 10
BATCH_BLOCK = 5_000  # uploaded records of one branch among this many consecutive ones share a batch

RARE_NAME = "ZEPHYRINE"  # one record in 100,000: a selective name search
# Status by i % 100: the mix of a portal that has been running for a year.
_STATUS_BUCKETS = (
    (60, "uploaded"),
    (65, "approved"),
    (67, "batched"),
    (77, "submitted"),
    (92, "draft"),
    (96, "returned"),
    (100, "rejected"),
)
# What approval freezes stays on a record until it goes back for editing (returned, rejected).
_FROZEN_STATUSES = frozenset({"approved", "batched", "uploaded"})


def _setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckycportal.settings")
    create_database(db_url, if_missing=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    # The pages link their CSS and scripts through the manifest storage, which needs collectstatic's manifest.
    call_command("collectstatic", verbosity=0, interactive=False)


# --- seeding ------------------------------------------------------------------------------------------------


def _status(i: int) -> str:
    bucket = i % 100
    return next(status for limit, status in _STATUS_BUCKETS if bucket < limit)


class World:
    """The institution, branches and users the records belong to (ids only: forked helpers share it)."""

    def __init__(self) -> None:
        from institutions.models import Branch, Institution, Role, User

        institution, _ = Institution.objects.get_or_create(
            fi_code="BENCH1",
            defaults={
                "name": "Bench Bank",
                "region_code": "MH",
                "cersai_username": "BENCH",
                "api_base_url": "http://127.0.0.1:9",
            },
        )
        self.institution_id = institution.pk
        self.branch_ids: list[int] = []
        self.branch_codes: list[str] = []
        self.maker_ids: list[int] = []
        self.checker_ids: list[int] = []
        for b in range(BRANCHES):
            branch, _ = Branch.objects.get_or_create(
                institution=institution, code=f"BR{b:02d}", defaults={"name": f"Branch {b:02d}"}
            )
            self.branch_ids.append(branch.pk)
            self.branch_codes.append(branch.code)
            for role, ids in ((Role.MAKER, self.maker_ids), (Role.CHECKER, self.checker_ids)):
                user, _ = User.objects.get_or_create(username=f"{role}{b:02d}", defaults={"role": role})
                user.branches.add(branch)
                ids.append(user.pk)
        auditor, _ = User.objects.get_or_create(username="auditor", defaults={"role": Role.AUDITOR})
        self.auditor_id = auditor.pk


def _shared_values() -> tuple[dict[str, Any], dict[str, Any]]:
    """What every row holds but for the columns it fills itself: the model's defaults, then bench/seed.py's
    record 0 (each encrypted column once); and the same with that record's payload as approval freezes it,
    for the records past approval."""
    from django.utils import timezone

    from bench import seed as records_seed
    from codelists.selectors import code_book
    from records import services

    sample = records_seed.plain_record(0, "BENCH")
    today = timezone.localdate()
    frozen = services.record_freeze_values(
        sample, stamp=services.check_stamp(today), today=today, codes=code_book()
    )
    unfrozen = records_seed.record_defaults()
    frozen_too: dict[str, Any] = {}
    for name, _column, encrypted in records_seed.record_columns(with_id=True):
        if name in sample:
            unfrozen[name] = records_seed.column_value(sample[name], encrypted)
        if name in frozen:
            frozen_too[name] = records_seed.column_value(frozen[name], encrypted)
    return unfrozen, unfrozen | frozen_too


def _record_rows(start: int, stop: int, count: int, world: World) -> Iterator[dict]:
    from bench.seed import FIRST_NAMES, MIDDLE_NAMES, pan
    from ckycportal import crypto

    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    span = timedelta(days=365)
    hashes: dict[str, str] = {}
    for i in range(start, stop):
        b = i % BRANCHES
        status = _status(i)
        created = now - span + span * (i / count)
        updated = created + timedelta(minutes=(i * 7919) % (72 * 60))
        verified = created.date() - timedelta(days=i % 5)
        kin = f"{10_000_000_000_000 + i:014d}" if i % 20 == 0 else ""
        first = RARE_NAME if i % 100_000 == 7 else FIRST_NAMES[i % len(FIRST_NAMES)]
        middle = MIDDLE_NAMES[(i // 10) % len(MIDDLE_NAMES)]
        pan_i = pan(i)
        reviewed = status in ("approved", "batched", "uploaded", "rejected", "returned")
        for word in (first, middle):
            if word and word not in hashes:
                hashes[word] = crypto.keyed_hash(f"name:{word}")
        yield {
            "id": i + 1,
            "branch": world.branch_ids[b],
            "status": status,
            "kyc_ref_no": f"{world.branch_codes[b]}/{created:%Y}/{i:07d}",
            "pan": crypto.encrypt(pan_i),
            "pan_hash": crypto.keyed_hash(pan_i),
            "applicant_first_name": crypto.encrypt(first),
            "applicant_middle_name": crypto.encrypt(middle) if middle else "",
            "existing_ckyc_no": crypto.encrypt(kin) if kin else "",
            "kyc_verification_date": verified,
            "kyc_declaration_date": verified,
            "upload_due_on": verified + timedelta(days=7 if kin else 10),
            "created_by": world.maker_ids[b],
            "submitted_by": world.maker_ids[b] if status != "draft" else None,
            "submitted_at": created + timedelta(hours=1) if status != "draft" else None,
            "reviewed_by": world.checker_ids[b] if reviewed else None,
            "reviewed_at": created + timedelta(hours=5) if reviewed else None,
            "return_reason": "Blurred photo" if status == "returned" else "",
            "upload_message": "records queued" if status == "uploaded" else "",
            "uploaded_at": created + timedelta(hours=9) if status == "uploaded" else None,
            "created_at": created,
            "updated_at": updated,
            "_tokens": [hashes[w] for w in dict.fromkeys((first, middle)) if w],
            "_batch": (i // BATCH_BLOCK) * BRANCHES + b + 1 if status == "uploaded" else None,
        }


def _copy_chunk(args: tuple[int, int, int, World, tuple[dict[str, Any], dict[str, Any]]]) -> int:
    import psycopg

    from bench.seed import conninfo, record_columns

    start, stop, count, world, (unfrozen, frozen) = args
    names = [name for name, _column, _encrypted in record_columns(with_id=True)]
    columns = ", ".join(column for _name, column, _encrypted in record_columns(with_id=True))
    tokens: list[tuple[int, str]] = []
    items: list[tuple[int, int, int, str, str]] = []
    with psycopg.connect(**conninfo()) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY records_kycrecord ({columns}) FROM STDIN") as copy:
            for row in _record_rows(start, stop, count, world):
                values = (frozen if row["status"] in _FROZEN_STATUSES else unfrozen) | row
                copy.write_row([values[name] for name in names])
                tokens += [(row["id"], t) for t in row["_tokens"]]
                if row["_batch"] is not None:
                    items.append((row["_batch"], row["id"], row["id"], "accepted", "records queued"))
        with cur.copy("COPY records_recordnametoken (record_id, token_hash) FROM STDIN") as copy:
            for token in tokens:
                copy.write_row(token)
        with cur.copy(
            "COPY uploads_batchitem (batch_id, record_id, position, outcome, message) FROM STDIN"
        ) as copy:
            for item in items:
                copy.write_row(item)
    return stop - start


def seed(count: int, world: World) -> float:
    """Empty the record tables and COPY ``count`` records in; returns the seconds it took."""
    from django.db import connection, connections

    from uploads.models import UploadBatch

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE records_recordnametoken, records_recordevent, uploads_batchitem, uploads_uploadattempt,"
            " uploads_uploadbatch, records_kycrecord CASCADE"
        )
    blocks = (count + BATCH_BLOCK - 1) // BATCH_BLOCK
    UploadBatch.objects.bulk_create(
        UploadBatch(
            id=block * BRANCHES + b + 1,
            institution_id=world.institution_id,
            branch_id=world.branch_ids[b],
            status="accepted",
            record_count=BATCH_BLOCK // BRANCHES,
        )
        for block in range(blocks)
        for b in range(BRANCHES)
    )
    shared = _shared_values()
    chunks = [(s, min(s + CHUNK, count), count, world, shared) for s in range(0, count, CHUNK)]
    connections.close_all()  # forked helpers must not share the parent's socket
    with multiprocessing.get_context("fork").Pool(2) as pool:
        done = 0
        for n in pool.imap_unordered(_copy_chunk, chunks):
            done += n
            print(f"\r  seeded {done:,} / {count:,}", end="", flush=True)
    print()
    with connection.cursor() as cursor:
        for table in ("records_kycrecord", "uploads_uploadbatch", "uploads_batchitem"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
        for table in ("records_kycrecord", "records_recordnametoken", "uploads_batchitem"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")  # autovacuum may be off on test machines
    return time.perf_counter() - started


# --- measuring ----------------------------------------------------------------------------------------------


def _client_for(username: str) -> Any:
    import django_otp
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from institutions.models import User

    user = User.objects.get(username=username)
    client = Client()
    client.force_login(user)
    if user.is_checker:  # the second factor, as after the code page
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        device = device or TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        session = client.session
        session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def _deep_cursor(username: str, params: dict[str, str], depth: int, queue: bool = False) -> str:
    """The cursor of the row ``depth`` rows into the list (found with OFFSET once, outside the timing)."""
    from institutions.models import User
    from records import listing, selectors

    user = User.objects.get(username=username)
    sorts = listing.QUEUE_SORTS if queue else listing.SORTS
    form = listing.RecordListForm(params, branches=selectors.branch_choices(user), makers=[], sorts=sorts)
    query = form.list_query()
    if queue:
        query.status, query.sort = "submitted", "submitted"
    sort = listing.ALL_SORTS[query.sort]
    records = listing.ordered(selectors.record_search(user, query), sort)
    depth = min(depth, records.count() // 2)  # a --records smaller than the default
    row = records[depth : depth + 1].get()
    return listing.encode_cursor(row, sort)


def measure(client: Any, url: str, params: dict[str, str], repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment, teardown_test_environment

    times: list[float] = []
    queries = 0
    page: Any = None
    for n in range(repeat + 2):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, params)
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{url} {params} answered {response.status_code}")
        if n >= 2:  # two warm-ups: the first request of a client loads its session and caches
            times.append(elapsed * 1000)
        queries = len(captured.captured_queries)
    # One more, untimed, with the test environment's template instrumentation, to read the page shown.
    setup_test_environment()
    try:
        page = client.get(url, params).context["page"]
    finally:
        teardown_test_environment()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {
        "median": statistics.median(times),
        "p95": p95,
        "queries": queries,
        "rows": len(page.rows),
        "count": page.count_label,
    }


def explain(username: str, params: dict[str, str], queue: bool = False) -> str:
    from django.db import connection

    from institutions.models import User
    from records import listing, selectors

    user = User.objects.get(username=username)
    sorts = listing.QUEUE_SORTS if queue else listing.SORTS
    form = listing.RecordListForm(params, branches=selectors.branch_choices(user), makers=[], sorts=sorts)
    query = form.list_query()
    for name in ("after", "before"):
        if params.get(name):
            setattr(query, name, listing.decode_cursor(params[name], listing.ALL_SORTS[query.sort]))
    if queue:
        query.status, query.sort = "submitted", "submitted"
    sort = listing.ALL_SORTS[query.sort]
    records = selectors.record_search(user, query)
    if query.after:
        records = listing.seek(records, sort, query.after)
    sql, sql_params = listing.ordered(records, sort)[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, sql_params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per case (after 2 warm-ups)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the records are there")
    parser.add_argument("--explain", action="store_true", help="print each case's PostgreSQL plan")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()

    _setup_django(bench_database_url("LIST_BENCH_DATABASE_URL", DB_NAME, "bench-list"))
    logging.getLogger("axes").setLevel(logging.WARNING)  # a log line per log-in of the bench's clients
    from django.urls import reverse

    from bench.seed import pan
    from records.models import KycRecord

    world = World()
    have = KycRecord.objects.count()
    if args.reseed or have != args.records:
        print(f"Seeding {args.records:,} records (had {have:,}) ...")
        print(f"  done in {seed(args.records, world):.0f} s")
    else:
        print(f"Using the {have:,} records already seeded (--reseed to seed again).")

    today = date.today()
    lst, queue = reverse("records:list"), reverse("records:review_queue")
    maker, auditor, checker = "maker00", "auditor", "checker00"
    some_pan_i = args.records // 2
    some_pan = pan(some_pan_i)
    some_ref = KycRecord.objects.only("kyc_ref_no").get(pk=some_pan_i + 1).kyc_ref_no  # 100 share its prefix
    batch_id = str((args.records // BATCH_BLOCK // 2) * BRANCHES + 1)
    from institutions.models import Branch, User

    cases: list[tuple[str, str, str, dict[str, str], bool]] = [
        ("page 1 (1 branch)", maker, lst, {}, False),
        ("deep page (1 branch, row 50,000)", maker, lst, {"_deep": "50000"}, False),
        ("page 1 (all branches)", auditor, lst, {}, False),
        ("deep page (all, row 500,000)", auditor, lst, {"_deep": "500000"}, False),
        ("filter status=submitted", auditor, lst, {"status": "submitted"}, False),
        ("filter branch", auditor, lst, {"branch": str(Branch.objects.get(code="BR03").pk)}, False),
        ("filter maker", auditor, lst, {"maker": str(User.objects.get(username="maker05").pk)}, False),
        ("filter batch", auditor, lst, {"batch": batch_id}, False),
        (
            "filter entered last 30 days",
            auditor,
            lst,
            {"date_on": "created", "date_from": (today - timedelta(days=30)).isoformat()},
            False,
        ),
        ("filter overdue", auditor, lst, {"due": "overdue"}, False),
        ("filter due soon", auditor, lst, {"due": "soon"}, False),
        ("sort due date", auditor, lst, {"sort": "due"}, False),
        ("sort ref", auditor, lst, {"sort": "ref"}, False),
        ("search ref prefix", auditor, lst, {"q": some_ref[:-2]}, False),
        ("search PAN exact", auditor, lst, {"q": some_pan}, False),
        ("search name, common", auditor, lst, {"q": "RAVI"}, False),
        ("search name, two words", auditor, lst, {"q": "PRIYA DEVI"}, False),
        ("search name, rare", auditor, lst, {"q": RARE_NAME}, False),
        ("search name, 1 branch", maker, lst, {"q": "RAVI"}, False),
        ("queue page 1 (checker)", checker, queue, {}, True),
        ("queue deep page (row 5,000)", checker, queue, {"_deep": "5000"}, True),
    ]
    clients: dict[str, Any] = {}
    results: list[tuple[str, str, dict[str, Any]]] = []
    for name, username, url, params, is_queue in cases:
        if args.only and args.only not in name:
            continue
        params = dict(params)
        if "_deep" in params:
            params = {"after": _deep_cursor(username, {}, int(params.pop("_deep")), queue=is_queue)}
        client = clients.setdefault(username, _client_for(username))
        result = measure(client, url, params, args.repeat)
        results.append((name, username, result))
        print(
            f"  {name:<36} {result['median']:7.1f} ms  p95 {result['p95']:7.1f} ms  "
            f"{result['queries']:>2} queries",
            flush=True,
        )
        if args.explain:
            print(explain(username, params, queue=is_queue))

    print()
    print(f"Records list and search over {KycRecord.objects.count():,} records (server time per request,")
    print(f"Django test client through the real URL, middleware, view and template; {args.repeat} runs each)")
    print()
    print(f"| {'case':<36} | {'user':<9} | median ms | p95 ms | queries | rows | count |")
    print(f"|{'-' * 38}|{'-' * 11}|-----------|--------|---------|------|-------|")
    for name, username, r in results:
        print(
            f"| {name:<36} | {username:<9} | {r['median']:9.1f} | {r['p95']:6.1f} | {r['queries']:7d} |"
            f" {r['rows']:4d} | {r['count']:>5} |"
        )


if __name__ == "__main__":
    main()
