"""Record intake: a batch of KwikID-shaped records from a client, checked by the portal's rules and saved
all or nothing through the records services (create, edit, submit), idempotent by ``kyc_ref_no``.

The rules and their messages are the portal's own (``records.validation``); this module only maps KwikID's
nested record object to the flat record the services take, and each problem back to its path in the body
(``records[3].basic_details.dob``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Upper
from django.utils import timezone

from bulkdata.copy import RecordWriter
from bulkdata.engine import require_maker
from bulkdata.rows import PreparedRow
from ckycportal.crypto import keyed_hash
from codelists.selectors import code_book
from institutions.models import Branch
from kwikid.fields import BY_NAME, DATE, DISABILITY_FIELDS, FLAG, NUMBER, RECORD, SECTIONS
from records import services as record_services
from records.models import ALLOWED_TRANSITIONS, EDITABLE_STATUSES, KycRecord, Status
from records.validation import (
    AADHAAR_MESSAGE,
    FIELDS,
    blocking_problems,
    clean_record,
    contains_aadhaar,
    validate_record,
)

from .audit import request_audit
from .errors import BadRequest, Conflict, IdempotencyKeyReused, NotFound
from .models import ApiClient, IdempotentRequest

# KwikID's header members: optional here and ignored, since the portal sends its own.
HEADER_MEMBERS = frozenset({"fi_code", "version", "region_code", "username", "organisation_name"})
# Members of KwikID's record object the portal neither keeps nor sends: accepted, and ignored.
IGNORED_RECORD_MEMBERS = frozenset(
    {"number_of_identity", "additional_documents", "remarks", "related_person_info"}
)
PORTAL_MEMBERS = ("existing_ckyc_no",)
_DISABILITY = "disability_info"
_BRANCH_CODE_MAX_LENGTH = Branch._meta.get_field("code").max_length or 0

# Where each flat field sits in KwikID's record object, as a path below the record.
FIELD_PATHS: dict[str, str] = {}
for _section, _names in SECTIONS:
    for _name in _names:
        if _section == RECORD:
            FIELD_PATHS[_name] = _name
        elif _name in DISABILITY_FIELDS or _name == "differently_abled_flag":
            FIELD_PATHS[_name] = f"{_section}.{_DISABILITY}.{_name}"
        else:
            FIELD_PATHS[_name] = f"{_section}.{_name}"
FIELD_PATHS["existing_ckyc_no"] = "existing_ckyc_no"

_SECTION_MEMBERS: dict[str, frozenset[str]] = {
    section: frozenset(names) - set(DISABILITY_FIELDS) - {"differently_abled_flag"}
    for section, names in SECTIONS
    if section != RECORD
}
_SECTION_MEMBERS["basic_details"] |= {_DISABILITY}
_RECORD_MEMBERS = (
    frozenset(dict(SECTIONS)[RECORD]) | set(_SECTION_MEMBERS) | IGNORED_RECORD_MEMBERS | set(PORTAL_MEMBERS)
)
_DISABILITY_MEMBERS = frozenset({"differently_abled_flag", *DISABILITY_FIELDS})

UNKNOWN_FIELD = "Unknown field: the record object has no such member"
AADHAAR_ANYWHERE = (
    "Holds what looks like a full Aadhaar number, which must never be sent: keep at most its last 4 digits"
)


@dataclass(frozen=True)
class Outcome:
    """One record's fate in a request: created, updated or unchanged (or what would happen, dry run)."""

    kyc_ref_no: str
    id: int | None
    status: str
    outcome: str


def _blank(name: str) -> Any:
    kind = BY_NAME[name].kind
    return None if kind in (DATE, NUMBER) else False if kind == FLAG else ""


def _aadhaar_paths(value: Any, path: str, found: dict[str, str]) -> None:
    if isinstance(value, str):
        if len(value) >= 12 and contains_aadhaar(value):
            found[path] = AADHAAR_ANYWHERE
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _aadhaar_paths(item, f"{path}.{key}", found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _aadhaar_paths(item, f"{path}[{index}]", found)


def _flatten(obj: Mapping[str, Any], prefix: str, problems: dict[str, str]) -> dict[str, Any]:
    """KwikID's record object as the flat record of the services; unknown members and wrong shapes are
    added to ``problems`` by path. Dates that are not ISO dates are left as text for validation to name."""
    flat: dict[str, Any] = {name: _blank(name) for name in FIELDS}
    flat["existing_ckyc_no"] = ""

    def take(name: str, value: Any) -> None:
        if value is None:
            return
        if BY_NAME.get(name) is not None and BY_NAME[name].kind == DATE and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(value) if len(value) == 10 else value
        flat[name] = value

    def members(part: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if part is None:
            return {}
        if not isinstance(part, Mapping):
            problems[path] = "Must be a JSON object"
            return {}
        for key in part:
            if key not in allowed:
                problems[f"{path}.{key}"] = UNKNOWN_FIELD
        return part

    for key, value in members(obj, prefix, _RECORD_MEMBERS).items():
        if key in _SECTION_MEMBERS:
            for name, item in members(value, f"{prefix}.{key}", _SECTION_MEMBERS[key]).items():
                if name == _DISABILITY:
                    for inner, inner_value in members(
                        item, f"{prefix}.{key}.{name}", _DISABILITY_MEMBERS
                    ).items():
                        take(inner, inner_value)
                elif name in BY_NAME:
                    take(name, item)
        elif key in BY_NAME or key in PORTAL_MEMBERS:
            take(key, value)
    return flat


def _record_values(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """What the services would store of a cleaned record, to compare with a stored one."""
    values = {name: cleaned.get(name, _blank(name)) for name in FIELDS}
    values["existing_ckyc_no"] = "".join(str(cleaned.get("existing_ckyc_no") or "").split())
    return values


def _same_content(record: KycRecord, values: Mapping[str, Any]) -> bool:
    return all(getattr(record, name) == value for name, value in values.items())


def _path(index: int, field: str) -> str:
    return f"records[{index}].{FIELD_PATHS.get(field, field)}"


def _refuse(problems: dict[str, str]) -> BadRequest:
    count = len({key.split(".", 1)[0] for key in problems})
    return BadRequest(
        f"Nothing was saved: {len(problems)} problem(s) in {count} place(s) of the request.", problems
    )


def request_fingerprint(body: bytes, *, dry_run: bool) -> str:
    """What a retried request must repeat exactly to be answered from its Idempotency-Key."""
    return hashlib.sha256(b"dry_run=%d\n" % dry_run + body).hexdigest()


def idempotent_answer(*, client: ApiClient, key: str, fingerprint: str) -> IdempotentRequest | None:
    """The stored answer to an earlier request with this key; raises when that request's body differed."""
    earlier = IdempotentRequest.objects.filter(client=client, key=key).first()
    if earlier is not None and earlier.request_hash != fingerprint:
        raise IdempotencyKeyReused(detail={"Idempotency-Key": "Already used for a different request body"})
    return earlier


def records_receive(
    *,
    client: ApiClient,
    body: Any,
    dry_run: bool = False,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> list[Outcome]:
    """Check a request's records by the portal's rules and save them all, or none (raises BadRequest with
    every problem by path, NotFound for a branch not the client's, Conflict for references that cannot
    change). Same content again changes nothing; changed content edits an editable record. Audited."""
    count = len(body["records"]) if isinstance(body, Mapping) and isinstance(body.get("records"), list) else 0
    try:
        outcomes = _receive(
            client=client, body=body, dry_run=dry_run, key=idempotency_key, fingerprint=fingerprint
        )
    except (BadRequest, NotFound, Conflict) as refusal:
        request_audit(client=client, records=count, outcome=f"refused {refusal.status}", dry_run=dry_run)
        raise
    summary: dict[str, int] = {}
    for outcome in outcomes:
        summary[outcome.outcome] = summary.get(outcome.outcome, 0) + 1
    request_audit(
        client=client, records=count, outcome="checked" if dry_run else "saved", dry_run=dry_run, **summary
    )
    return outcomes


def _check_body(body: Any) -> tuple[str, list[Any], dict[str, str]]:
    """The branch code, the records, and problems of the body's other members (reported with the
    records' own); raises at once when there is no branch code or no usable list of records."""
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.", {"body": "Must be a JSON object"})
    problems: dict[str, str] = {}
    for key in body:
        if key not in HEADER_MEMBERS and key not in ("branch_code", "records"):
            problems[key] = "Unknown field: the request has no such member"
    _aadhaar_paths({k: v for k, v in body.items() if k != "records"}, "", problems)
    problems = {key.lstrip("."): message for key, message in problems.items()}
    fatal: dict[str, str] = {}
    branch_code = body.get("branch_code")
    if not isinstance(branch_code, str) or not branch_code.strip():
        fatal["branch_code"] = "The branch code is required (one of this client's branches)"
    records = body.get("records")
    limit = settings.API_MAX_RECORDS
    if not isinstance(records, list) or not records:
        fatal["records"] = f"The records are required: a list of 1 to {limit} record objects"
    elif len(records) > limit:
        fatal["records"] = f"At most {limit} records a request: this one has {len(records)}"
    if fatal or not isinstance(branch_code, str) or not isinstance(records, list):
        raise _refuse(problems | fatal)
    return branch_code.strip(), records, problems


def _receive(*, client: ApiClient, body: Any, dry_run: bool, key: str, fingerprint: str) -> list[Outcome]:
    branch_code, records, problems = _check_body(body)
    # Text PostgreSQL cannot hold (a NUL) or longer than any code is no branch of the client's.
    branch = (
        client.branches.select_related("institution").filter(code=branch_code).first()
        if branch_code.isprintable() and len(branch_code) <= _BRANCH_CODE_MAX_LENGTH
        else None
    )
    if branch is None:
        raise NotFound(
            "This client has no branch with that code.", {"branch_code": "Not one of this client's branches"}
        )

    today = timezone.localdate()
    codes = code_book()
    values_by_index: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, obj in enumerate(records):
        prefix = f"records[{index}]"
        if not isinstance(obj, Mapping):
            problems[prefix] = "A record must be a JSON object"
            continue
        shape: dict[str, str] = {}
        flat = _flatten(obj, prefix, shape)
        cleaned, _ = clean_record(flat)
        found = validate_record(cleaned, complete=True, today=today, codes=codes)
        for problem in blocking_problems(found, warnings_block=branch.institution.warnings_block):
            problems.setdefault(_path(index, problem.field), problem.message)
        problems.update(shape)
        aadhaar: dict[str, str] = {}
        _aadhaar_paths(obj, prefix, aadhaar)
        for path, message in aadhaar.items():
            problems.setdefault(path, AADHAAR_MESSAGE if path.endswith("poa_document_number") else message)
        ref = cleaned.get("kyc_ref_no")
        if isinstance(ref, str) and ref:
            if ref.upper() in seen:
                problems.setdefault(
                    _path(index, "kyc_ref_no"),
                    f"The same KYC reference number as records[{seen[ref.upper()]}]",
                )
            seen.setdefault(ref.upper(), index)
        values_by_index.append(_record_values(cleaned))
    if problems:
        raise _refuse(problems)

    refs = [values["kyc_ref_no"].upper() for values in values_by_index]
    existing = {
        record.kyc_ref_no.upper(): record
        for record in KycRecord.objects.annotate(ref=Upper("kyc_ref_no")).filter(ref__in=refs)
    }
    conflicts: dict[str, str] = {}
    plan: list[tuple[dict[str, Any], KycRecord | None, str]] = []
    for index, values in enumerate(values_by_index):
        record = existing.get(values["kyc_ref_no"].upper())
        if record is not None:
            values["kyc_ref_no"] = record.kyc_ref_no  # the reference is matched whatever its case
        if record is None:
            plan.append((values, None, "created"))
        elif record.branch_id != branch.pk:
            conflicts[_path(index, "kyc_ref_no")] = (
                "This KYC reference number belongs to another branch's record"
            )
        elif _same_content(record, values):
            plan.append((values, record, "unchanged"))
        elif record.status in EDITABLE_STATUSES:
            plan.append((values, record, "updated"))
        else:
            conflicts[_path(index, "kyc_ref_no")] = (
                f"{values['kyc_ref_no']} is {record.get_status_display().lower()}: it can no longer change"
            )
    if conflicts:
        raise Conflict(f"Nothing was saved: {len(conflicts)} record(s) can no longer be changed.", conflicts)
    if dry_run:
        return [
            Outcome(
                values["kyc_ref_no"],
                record.pk if record else None,
                record.status if record else Status.DRAFT,
                outcome,
            )
            for values, record, outcome in plan
        ]
    try:
        with transaction.atomic():
            outcomes = _save(client=client, branch=branch, plan=plan)
            if key:
                IdempotentRequest.objects.create(
                    client=client,
                    key=key,
                    request_hash=fingerprint,
                    status_code=201,
                    response=outcomes_json(outcomes, dry_run=False),
                )
    except record_services.RecordInvalid as exc:
        index = getattr(exc, "index", 0)
        raise _refuse({_path(index, p.field): p.message for p in exc.problems}) from exc
    except IntegrityError as exc:
        # A request with the same key committed first, or another request created one of these references
        # meanwhile: either way this one saved nothing.
        if key and idempotent_answer(client=client, key=key, fingerprint=fingerprint) is not None:
            raise IdempotentReplay() from exc
        raise Conflict(
            "Nothing was saved: another request saved some of these references meanwhile; send it again.",
            "Concurrent request",
        ) from exc
    return outcomes


class IdempotentReplay(Exception):
    """The same request with the same Idempotency-Key was saved by a concurrent one: replay its answer."""


def _save(
    *, client: ApiClient, branch: Branch, plan: list[tuple[dict[str, Any], KycRecord | None, str]]
) -> list[Outcome]:
    """Write the plan: new records through the import's writer (as record_create, and record_submit for a
    client that submits, would write them, in a few statements for the whole request), edits and new
    records carrying a KIN through the records services one by one. Call inside a transaction."""
    actor = client.user
    fresh = [values for values, record, _ in plan if record is None and not values["existing_ckyc_no"]]
    written: dict[str, KycRecord] = {}
    if fresh:
        require_maker(actor, branch)
        _write_new(client=client, branch=branch, records=fresh)
        refs = [values["kyc_ref_no"].upper() for values in fresh]
        written = {
            r.kyc_ref_no.upper(): r
            for r in KycRecord.objects.annotate(ref=Upper("kyc_ref_no"))
            .filter(ref__in=refs)
            .only("id", "kyc_ref_no", "status")
        }
    outcomes: list[Outcome] = []
    for index, (values, record, outcome) in enumerate(plan):
        try:
            if record is None and values["kyc_ref_no"].upper() in written:
                record = written[values["kyc_ref_no"].upper()]
                outcomes.append(Outcome(record.kyc_ref_no, record.pk, record.status, outcome))
                continue
            if record is None:
                record = record_services.record_create(actor=actor, branch=branch, data=values)
            elif outcome == "updated":
                record = record_services.record_update(actor=actor, record=record, data=values)
            if outcome != "unchanged" and client.submit_on_arrival and Status.SUBMITTED in _moves(record):
                record = record_services.record_submit(actor=actor, record=record)
        except record_services.RecordInvalid as exc:
            exc.index = index  # type: ignore[attr-defined]
            raise
        outcomes.append(Outcome(record.kyc_ref_no, record.pk, record.status, outcome))
    return outcomes


def _write_new(*, client: ApiClient, branch: Branch, records: list[dict[str, Any]]) -> None:
    writer = RecordWriter(
        actor=client.user, default_branch=branch, branches={}, submit=client.submit_on_arrival
    )
    rows = []
    for number, values in enumerate(records, start=1):
        row = PreparedRow(
            number=number,
            problems=[],
            values={name: values[name] for name in FIELDS},
            branch_code="",
            ref_key=values["kyc_ref_no"].upper(),
        )
        row.pan_hash = keyed_hash(values["pan"]) if values["pan"] else ""
        if writer.lines is not None:
            row.line, row.tokens = writer.lines.format(row)
        else:
            row.values["pan_hash"] = row.pan_hash
        rows.append(row)
    writer.write(rows)


def _moves(record: KycRecord) -> frozenset[str]:
    return ALLOWED_TRANSITIONS[record.status]


def outcomes_json(outcomes: list[Outcome], *, dry_run: bool) -> dict[str, Any]:
    """The 201 (or dry run's 200) body: references, ids and statuses only, never personal data."""
    return {
        "dry_run": dry_run,
        "records": [
            {"kyc_ref_no": o.kyc_ref_no, "id": o.id, "status": str(o.status), "outcome": o.outcome}
            for o in outcomes
        ],
    }
