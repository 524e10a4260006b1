"""The living demo: KYC records for make run's demo institution in every state, their history spread over
the last three weeks, made through the services (``seed_demo``).

Three weeks of the demo branches' work are played in time order: the demo maker enters and submits
records, the demo checker approves or returns them, approved records are batched and sent to a KwikID
stand-in, and the registry check finds some of them registered. Every status change is the services'
own, with its audit events; nothing is written to the tables directly.

Back-dating: the services stamp their rows with ``django.utils.timezone.now()`` (their own calls, the
models' ``auto_now`` fields, the moves' events). Rather than give every service a clock parameter for the
demo's sake, or rewrite events afterwards (event tables are append-only), each step runs inside
``_clock_at(moment)``, which makes ``timezone.now`` answer that moment. It swaps a module attribute for the
whole process, so it is for a single-threaded command only: the seed refuses to run without DEBUG, and
never while the portal's worker is running (see ``_standin_for``).

KwikID: a stand-in (``kwikid_standin``) is started in this process on the demo institution's own address
(a port on this machine), so uploads and CKYC searches go over HTTP exactly as the worker's do, and its
fault controls give one rejection naming a field and one batch whose answer is lost.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from accounts.demo import DEMO_BRANCHES, DEMO_FI_CODE, DEMO_USERS
from ckycportal.errors import PortalError
from institutions.models import Branch, Institution, User
from kwikid_standin import StandIn
from records import services as record_services
from records.models import DUE_SOON_DAYS, REGISTERED_STATUSES, KycRecord, RecordEvent, Status
from registry import services as registry_services
from uploads import services as upload_services
from uploads.models import BatchItem, BatchStatus, UploadBatch

DEFAULT_RECORDS = 150
# Fewer and some state would have no record.
MIN_RECORDS = 20
DAYS = 21  # the history spans the last three weeks, today included
REF_PREFIX = "DEMO/"
# Days ago of the send that KwikID answers with a 400 naming one record's field, and of the send whose
# answer is lost (the batch's outcome is unknown until an admin resolves it). The next send with a batch
# takes the fault when no record was approved that day.
REJECTION_DAY = 6
UNKNOWN_DAY = 3
# The registry check runs every other day; each record waiting at least this many days is found
# registered with this chance at each check, so the oldest uploads are mostly registered by now.
CHECK_DAYS = tuple(range(DAYS - 4, 0, -2))
REGISTRATION_LAG_DAYS = 2
REGISTRATION_CHANCE = 0.15
PREEXISTING_KYC_DATE = "2019-04-01"

MAKER = next(username for username, role, _ in DEMO_USERS if role == "maker")
CHECKER = next(username for username, role, _ in DEMO_USERS if role == "checker")

_MALE = ("RAVI", "ARJUN", "VIKRAM", "ROHAN", "SURESH", "AMIT", "KARAN", "SANJAY", "IMRAN", "JOSEPH", "MANOJ")
_FEMALE = ("ANITA", "PRIYA", "MEERA", "LATA", "NEHA", "POOJA", "KAVITA", "FATIMA", "SUNITA", "DIVYA", "REKHA")
_MIDDLE = ("KUMAR", "", "PRASAD", "", "LAL", "", "NATH", "")
_FEMALE_MIDDLE = ("DEVI", "", "RANI", "", "KUMARI", "")
_FATHERS = ("SURESH", "RAMESH", "GOPAL", "MOHAN", "KIRAN", "ASHOK", "ABDUL", "THOMAS", "HARISH", "DINESH")
_STREETS = ("Marine Drive", "FC Road", "MG Road", "Anna Salai", "Linking Road", "Janpath", "Lodhi Road")
# Real PINs of each city, in its state (the PIN master refuses a PIN of another state).
_CITIES = {
    "MUM001": (
        ("Mumbai", "MH", ("400001", "400002", "400003", "400004")),
        ("Pune", "MH", ("411001", "411005")),
    ),
    "DEL001": (("Delhi", "DL", ("110001", "110002", "110003", "110005")), ("Mumbai", "MH", ("400001",))),
}
_VERIFIERS = {
    "MUM001": (("Anita Deshpande", "EMP-0042"), ("Rahul Joshi", "EMP-0107")),
    "DEL001": (("Harpreet Kaur", "EMP-0311"), ("Sameer Khan", "EMP-0356")),
}
_RETURN_REASONS = (
    "The proof of address copy is not legible: scan it again.",
    "The father's name differs from the PAN card: check it with the customer.",
    "The declaration is not signed on the form copy.",
    "The address line does not match the passport: check the flat number.",
)
_KWIKID_FIELD_REASON = "Name on the proof of address does not match the applicant's name."


class DemoRefused(PortalError):
    """The demo cannot be seeded here, or not now; the message says why and what to do."""


@dataclass
class SeedSummary:
    """What a seed made: records by status and by branch, batches by status, the days its history spans."""

    added: int
    by_status: dict[str, int]
    by_branch: dict[str, int]
    batches: dict[str, int]
    overdue: int
    due_soon: int
    first_day: date
    last_day: date
    seconds: float

    def lines(self) -> list[str]:
        labels = dict(Status.choices)
        batch_labels = dict(BatchStatus.choices)
        branches = ", ".join(f"{code} {n}" for code, n in self.by_branch.items())
        return [
            f"Seeded {self.added} demo records ({branches}), dated {self.first_day:%d %b} to "
            f"{self.last_day:%d %b}, in {self.seconds:.1f} s:",
            *(f"  {n:>4}  {labels[status]}" for status, n in self.by_status.items() if n),
            f"  Deadlines: {self.overdue} overdue, {self.due_soon} due within {DUE_SOON_DAYS} days",
            "  Upload batches: "
            + ", ".join(f"{batch_labels[status]} {n}" for status, n in self.batches.items() if n),
        ]


@contextmanager
def _clock_at(moment: datetime) -> Iterator[None]:
    """Run the services as if it were ``moment`` (see the module docstring: single-threaded use only)."""
    real = timezone.now
    timezone.now = lambda: moment  # type: ignore[assignment]
    try:
        yield
    finally:
        timezone.now = real  # type: ignore[assignment]


def _moment(days_ago: int, fraction: float, now: datetime) -> datetime:
    """A time of the working day ``days_ago`` (09:00 to 19:00, local); today's day runs up to a minute ago."""
    day = timezone.localdate(now) - timedelta(days=days_ago)
    start = timezone.make_aware(datetime.combine(day, clock_time(9)))
    end = start + timedelta(hours=10)
    if days_ago == 0 and now - timedelta(minutes=1) < end:
        # Today's work is done by now: squeezed into the hours before now (after midnight, however early).
        midnight = timezone.make_aware(datetime.combine(day, clock_time.min))
        end = max(now - timedelta(minutes=1), midnight + (now - midnight) / 2)
        start = min(start, midnight + (end - midnight) / 10)
    return start + (end - start) * fraction


def _pan(seq: int, rng: random.Random) -> str:
    """An individual's PAN (fourth letter P), different for every demo record number."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (
        f"D{letters[seq // 260_000 % 26]}{letters[seq // 10_000 % 26]}P{rng.choice(letters)}"
        f"{seq % 10_000:04d}{letters[seq % 26]}"
    )


def _record_data(seq: int, branch: str, verified: date, rng: random.Random) -> dict[str, Any]:
    """A complete record that meets every CKYC rule, warnings included, for customer number ``seq``."""
    female = rng.random() < 0.45
    city, state, pins = rng.choice(_CITIES[branch])
    other_city, other_state, other_pins = rng.choice(_CITIES[branch])
    same = rng.random() < 0.7
    declared = verified - timedelta(days=rng.choice((0, 0, 1)))
    verifier, employee = rng.choice(_VERIFIERS[branch])
    passport = rng.random() < 0.6
    data: dict[str, Any] = {
        "kyc_ref_no": f"{REF_PREFIX}{branch}/{seq:05d}",
        "pan": _pan(seq, rng),
        "applicant_name_title": rng.choice(("MS", "MRS")) if female else "MR",
        "applicant_first_name": rng.choice(_FEMALE if female else _MALE),
        "applicant_middle_name": rng.choice(_FEMALE_MIDDLE if female else _MIDDLE),
        "applicant_rel_details_flag": "FATHER",
        "applicant_rel_name_title": "MR",
        "applicant_rel_first_name": rng.choice(_FATHERS),
        "applicant_rel_middle_name": "",
        "gender": "F" if female else "M",
        # Adults on the declaration date: 21 to 70 years old.
        "dob": declared - timedelta(days=rng.randint(21 * 366, 70 * 365)),
        "differently_abled_flag": False,
        "poa_document": "02" if passport else "04",
        "poa_document_number": (
            f"{rng.choice('JKLMNPRSTUVZ')}{rng.randrange(10**7):07d}"
            if passport
            else f"{''.join(rng.choices('ABCDEFGHJKLMNPRSTUVWXYZ', k=3))}{rng.randrange(10**7):07d}"
        ),
        "poa_address_line_1": f"{rng.randint(1, 250)} {rng.choice(_STREETS)}, Flat {rng.randint(1, 12)}B",
        "poa_vtc": city,
        "poa_state": state,
        "poa_country": "IN",
        "poa_pin_code": rng.choice(pins),
        "current_address_same_as_poa_address": "Y" if same else "N",
        "current_address_line_1": "" if same else f"{rng.randint(1, 90)} {rng.choice(_STREETS)}",
        "current_vtc": "" if same else other_city,
        "current_state": "" if same else other_state,
        "current_country": "" if same else "IN",
        "current_pin_code": "" if same else rng.choice(other_pins),
        # An Indian mobile starts with 6 to 9; the ISD code and the number come together.
        "mobile_isd": "91",
        "mobile_number": f"{rng.choice('6789')}{rng.randrange(10**9):09d}",
        "kyc_declaration_date": declared,
        "kyc_declaration_place": city,
        "kyc_verification_date": verified,
        "kyc_type": "01",
        "kyc_verifier_name": verifier,
        "kyc_verifier_designation": "Branch Officer",
        "kyc_verifier_branch": dict(DEMO_BRANCHES)[branch],
        "kyc_verifier_employee_code": employee,
        "kyc_type_of_document_submitted": "01",
    }
    if rng.random() < 0.04:
        # Differently abled: the impairment and its UDID number.
        data.update(
            differently_abled_flag=True,
            impairment_type="01",
            impairment_percentage=rng.choice((40, 45, 60, 75)),
            udid_number=f"{state}{rng.randrange(10**16):016d}",
        )
    return data


@dataclass
class _Step:
    moment: datetime
    order: int
    run: Callable[[], None]


@dataclass
class _Play:
    """The demo's three weeks as steps in time order, and what the steps share."""

    now: datetime
    rng: random.Random
    maker: User
    checker: User
    institution: Institution
    standin: StandIn
    steps: list[_Step] = field(default_factory=list)
    records: dict[int, KycRecord] = field(default_factory=dict)  # by demo number
    created: list[int] = field(default_factory=list)  # record ids
    pending_faults: list[str] = field(default_factory=list)  # "reject", "unknown": for the next sends
    preexisting_done: bool = False

    def at(self, days_ago: int, fraction: float, run: Callable[[], None]) -> None:
        self.steps.append(_Step(_moment(days_ago, fraction, self.now), len(self.steps), run))

    def play(self) -> None:
        for step in sorted(self.steps, key=lambda s: (s.moment, s.order)):
            with _clock_at(step.moment):
                step.run()


def _refuse_unless_allowed(institution: Institution | None) -> Institution:
    if not settings.DEBUG:
        raise DemoRefused(
            "The demo is seeded only with DJANGO_DEBUG=true (make run): never made-up customers in a "
            "real portal."
        )
    if institution is None:
        raise DemoRefused("There is no demo institution yet: make run creates it (manage.py setup_demo).")
    waiting = KycRecord.objects.filter(branch__institution=institution, status=Status.APPROVED).count()
    if waiting:
        # The seed's back-dated batches would take them, and their histories would run backwards.
        raise DemoRefused(
            f"{waiting} approved record(s) of the demo institution wait for upload: start make run and let "
            "its worker send them (within a minute), then seed again; or make clean to start afresh."
        )
    return institution


def _standin_for(institution: Institution) -> StandIn:
    """A stand-in on the demo institution's own address, which must be on this machine and free."""
    url = urlsplit(institution.api_base_url)
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        raise DemoRefused(
            f"The demo institution's KwikID address is {institution.api_base_url}: the demo sends only to "
            "the stand-in on this machine (make run's)."
        )
    standin = StandIn(
        host=url.hostname,
        port=url.port,
        token=institution.api_token,
        # Registration comes from the seed's own checks (their dates), never from the clock.
        register_after_seconds=10**9,
    )
    try:
        return standin.start()
    except OSError:
        raise DemoRefused(
            f"Port {url.port} is in use: is the portal running? Stop make run, seed, then start it again "
            "(its worker would otherwise batch the demo's approved records while they are being made)."
        ) from None


def demo_seed(*, records: int = DEFAULT_RECORDS, seed: int = 2026) -> SeedSummary:
    """Add ``records`` demo records to the demo institution, through the services, dated over three weeks.

    Deterministic for a given ``seed`` and number of demo records already there. Refuses (DemoRefused)
    without DEBUG, without the demo institution and users, while the portal runs, or while approved records
    wait for upload.
    """
    if records < MIN_RECORDS:
        raise DemoRefused(f"Seed at least {MIN_RECORDS} records, so that every state has one.")
    started = time.monotonic()
    institution = _refuse_unless_allowed(Institution.objects.filter(fi_code=DEMO_FI_CODE).first())
    try:
        maker = User.objects.get(username=MAKER, is_active=True)
        checker = User.objects.get(username=CHECKER, is_active=True)
    except User.DoesNotExist:
        raise DemoRefused("The demo maker and checker are missing: make run creates them.") from None
    branches = {b.code: b for b in Branch.objects.filter(institution=institution)}
    if set(branches) != {code for code, _ in DEMO_BRANCHES}:
        raise DemoRefused("The demo institution's branches are not MUM001 and DEL001: run make clean.")
    first = KycRecord.objects.filter(kyc_ref_no__startswith=REF_PREFIX).count() + 1
    rng = random.Random(f"{seed}/{first}")  # noqa: S311 - made-up data, not security
    standin = _standin_for(institution)
    try:
        play = _Play(timezone.now(), rng, maker, checker, institution, standin)
        _plan(play, first, records, branches)
        # All or nothing, and one commit instead of hundreds (each service's transaction is a savepoint
        # here). The stand-in and the search threads never read the database, so nothing waits for it.
        with transaction.atomic():
            play.play()
    finally:
        standin.stop()
    return _summary(play, time.monotonic() - started)


def _plan(play: _Play, first: int, count: int, branches: dict[str, Branch]) -> None:
    """Give each new record a fate and its steps, and add the days' sends and registry checks."""
    rng = play.rng
    fates = (
        ["draft"] * max(2, round(count * 0.08))
        + ["submitted"] * max(4, round(count * 0.14))
        + ["returned"] * max(2, round(count * 0.06))
        + ["approved"] * max(2, round(count * 0.06))
    )
    fates += ["pipeline"] * (count - len(fates))
    rng.shuffle(fates)
    # Every fault day has a record approved for it; the rest of the uploads spread over the three weeks.
    upload_days = [0, 0, *[UNKNOWN_DAY] * 3, *[REJECTION_DAY] * 3]
    waiting = 0
    for offset, fate in enumerate(fates):
        seq = first + offset
        code = "MUM001" if rng.random() < 0.6 else "DEL001"
        branch = branches[code]
        if fate == "draft":
            created = rng.randint(0, 3)
            verified = created + rng.randint(0, 2)
            _enter(play, seq, branch, created, verified, draft=True)
        elif fate == "submitted":
            created = rng.randint(0, 6)
            # The deadline clock: a few overdue, a few due within DUE_SOON_DAYS, the rest with time left.
            verified = (
                rng.randint(11, 15)
                if waiting % 4 == 0
                else rng.randint(10 - DUE_SOON_DAYS, 10)
                if waiting % 4 == 1
                else created + rng.randint(0, 2)
            )
            waiting += 1
            _enter(play, seq, branch, created, verified)
        elif fate == "returned":
            created = rng.randint(1, 8)
            _enter(play, seq, branch, created, created + rng.randint(0, 2))
            play.at(created - 1, rng.uniform(0.55, 0.7), _returner(play, seq))
        elif fate == "approved":
            created = rng.randint(0, 2)
            _enter(play, seq, branch, created, created + rng.randint(0, 2))
            play.at(0, 0.9, _approver(play, seq))  # after today's send: waiting for the next
        else:
            approved = upload_days.pop() if upload_days else rng.randint(0, DAYS - 3)
            fixed = rng.random() < 0.15
            created = min(DAYS - 1, approved + (2 + rng.randint(0, 1) if fixed else rng.randint(0, 2)))
            _enter(play, seq, branch, created, created + rng.randint(0, 3))
            if fixed and created - 1 > approved:
                play.at(created - 1, rng.uniform(0.55, 0.6), _returner(play, seq))
                play.at(created - 1, rng.uniform(0.62, 0.7), _fixer(play, seq))
            play.at(approved, rng.uniform(0.55, 0.7), _approver(play, seq))
    for days_ago in range(DAYS - 3, -1, -1):
        play.at(days_ago, 0.8, _sender(play, days_ago))
    for days_ago in CHECK_DAYS:
        play.at(days_ago, 0.95, _checker_pass(play, days_ago))


def _enter(
    play: _Play, seq: int, branch: Branch, created: int, verified: int, *, draft: bool = False
) -> None:
    """The maker enters record ``seq`` on day ``created`` (verified ``verified`` days ago) and submits it."""
    rng = play.rng
    data = _record_data(seq, branch.code, timezone.localdate(play.now) - timedelta(days=verified), rng)
    if draft and rng.random() < 0.5:
        # Half the drafts wait for the verification details: a draft may be saved incomplete.
        data.update(
            kyc_verifier_name="", kyc_verifier_designation="", kyc_verifier_employee_code="", kyc_type=""
        )

    def create() -> None:
        record = record_services.record_create(actor=play.maker, branch=branch, data=data)
        play.records[seq] = record
        play.created.append(record.pk)

    def submit() -> None:
        play.records[seq] = record_services.record_submit(actor=play.maker, record=play.records[seq])

    play.at(created, rng.uniform(0.05, 0.3), create)
    if not draft:
        play.at(created, rng.uniform(0.32, 0.5), submit)


def _returner(play: _Play, seq: int) -> Callable[[], None]:
    reason = play.rng.choice(_RETURN_REASONS)

    def run() -> None:
        play.records[seq] = record_services.record_return(
            actor=play.checker, record=play.records[seq], reason=reason
        )

    return run


def _fixer(play: _Play, seq: int) -> Callable[[], None]:
    """The maker fixes what the checker returned (one field changes) and submits the record again."""
    rng = play.rng
    number = rng.randint(1, 250)

    def run() -> None:
        record = play.records[seq]
        data = record_services.record_data(record)
        data["poa_address_line_1"] = f"{number} {rng.choice(_STREETS)}, Flat {rng.randint(1, 12)}A"
        record = record_services.record_update(actor=play.maker, record=record, data=data)
        play.records[seq] = record_services.record_submit(actor=play.maker, record=record)

    return run


def _approver(play: _Play, seq: int) -> Callable[[], None]:
    def run() -> None:
        play.records[seq] = record_services.record_approve(actor=play.checker, record=play.records[seq])

    return run


def _sender(play: _Play, days_ago: int) -> Callable[[], None]:
    """The day's upload: every approved record batched and sent; records KwikID's 400 did not name go out
    again in a new batch a minute later, as the worker sends them."""

    def run() -> None:
        if days_ago == REJECTION_DAY:
            play.pending_faults.append("reject")
        if days_ago == UNKNOWN_DAY:
            play.pending_faults.append("unknown")
        moment = timezone.now()
        for retry in range(5):
            with _clock_at(moment + timedelta(minutes=retry)):
                batch_ids = upload_services.batch_assemble(institution_id=play.institution.pk)
                for batch_id in batch_ids:
                    _fault_for_next_send(play, batch_id)
                    upload_services.batch_send(batch_id=batch_id, enqueue=lambda _batch_id, _delay: None)
            if not batch_ids:
                return

    return run


def _fault_for_next_send(play: _Play, batch_id: int) -> None:
    if not play.pending_faults:
        return
    fault = play.pending_faults.pop(0)
    if fault == "unknown":
        play.standin.set_faults(accept_then_drop_next=1)
        return
    # KwikID's 400 names the batch's first record by its field.
    body = {
        "detail": {"records[0].basic_details.applicant_first_name": [_KWIKID_FIELD_REASON]},
        "message": "Validation failed",
    }
    play.standin.set_faults(fail_next=1, status=400, body=json.dumps(body), content_type="application/json")


def _checker_pass(play: _Play, days_ago: int) -> Callable[[], None]:
    """The registry check of the day: the registry holds some records accepted a while ago (the oldest most
    likely), dated today; once, one record it held before the upload."""

    def run() -> None:
        moment = timezone.now()
        today = timezone.localdate(moment)
        waiting = list(
            KycRecord.objects.filter(
                pk__in=play.created,
                status=Status.UPLOADED,
                uploaded_at__lt=moment - timedelta(days=REGISTRATION_LAG_DAYS),
            )
            .order_by("pk")
            .values_list("kyc_ref_no", "pan")
        )
        if waiting and not play.preexisting_done:
            play.preexisting_done = True
            ref, pan = waiting.pop(0)
            play.standin.set_faults(preregistered=[pan], preregistered_kyc_date=PREEXISTING_KYC_DATE)
            registry_services.registrations_check(refs=[ref], now=moment)
        found = [pan for _ref, pan in waiting if play.rng.random() < REGISTRATION_CHANCE]
        play.standin.set_faults(preregistered=found, preregistered_kyc_date=today.isoformat())
        # A whole pass, as the worker's: every due record is searched; those not found wait for the next.
        registry_services.registrations_check(now=moment)
        play.standin.set_faults(preregistered=[])

    return run


def _summary(play: _Play, seconds: float) -> SeedSummary:
    mine = KycRecord.objects.filter(pk__in=play.created)
    by_status = dict.fromkeys(Status.values, 0)
    for status, n in mine.order_by().values_list("status").annotate(n=Count("pk")):
        by_status[status] = n
    by_branch = dict(mine.order_by("branch__code").values_list("branch__code").annotate(n=Count("pk")))
    batch_ids = set(BatchItem.objects.filter(record__in=mine).values_list("batch_id", flat=True))
    batches = dict.fromkeys(BatchStatus.values, 0)
    for status, n in (
        UploadBatch.objects.filter(pk__in=batch_ids).order_by().values_list("status").annotate(n=Count("pk"))
    ):
        batches[status] = n
    today = timezone.localdate()
    open_records = mine.exclude(status__in=REGISTERED_STATUSES)
    first_event = RecordEvent.objects.filter(record__in=mine).aggregate(first=Min("created_at"))["first"]
    return SeedSummary(
        added=len(play.created),
        by_status=by_status,
        by_branch=by_branch,
        batches=batches,
        overdue=open_records.filter(upload_due_on__lt=today).count(),
        due_soon=open_records.filter(
            upload_due_on__gte=today, upload_due_on__lte=today + timedelta(days=DUE_SOON_DAYS)
        ).count(),
        first_day=timezone.localdate(first_event) if first_event else today,
        last_day=today,
        seconds=seconds,
    )
