"""Every write to a KYC record. Each service owns its transaction and writes the audit event inside it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import DateField, ExpressionWrapper, F, Subquery
from django.utils import timezone

from ckycportal.crypto import keyed_hash
from ckycportal.errors import ActionRefused, PortalError
from codelists.codes import CodeBook
from codelists.models import CodeBookStamp
from codelists.selectors import code_book
from institutions.models import Branch, Institution, Role, User
from kwikid.payload import encode_records, record_to_payload
from kwikid.schema import record_problem

from .masking import PII_FIELDS, mask_value
from .models import (
    ALLOWED_TRANSITIONS,
    EDITABLE_STATUSES,
    MAKER_ACTIONS,
    REGISTERED_STATUSES,
    KycRecord,
    RecordEvent,
    RecordNameToken,
    Status,
)
from .validation import (
    FIELDS,
    RULES_VERSION,
    Problem,
    blocking_problems,
    clean_record,
    contains_aadhaar,
    validate_record,
)

# The model fields a maker enters: the API's own names, in the API's order (one list, validation's).
RECORD_FIELDS: tuple[str, ...] = FIELDS


class RecordInvalid(PortalError):
    """The record's data breaks CKYC rules; ``problems`` names each field (views show them on the form)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        fields = ", ".join(sorted({p.field for p in problems}))
        super().__init__(f"The record has problems in: {fields}")


class TransitionNotAllowed(ActionRefused):
    """The move is not in ALLOWED_TRANSITIONS (or not allowed to this user)."""


# A purged record is a tombstone (uploads.retention): its personal data is gone and it moves no more.
PURGED_MESSAGE = "This record was purged at the end of its retention period: it cannot be changed."


class RecordConflict(PortalError):
    """Someone else changed the record meanwhile; nothing was written."""


def record_data(record: KycRecord) -> dict[str, Any]:
    """The record's entered fields as a flat mapping (what validation and the payload read)."""
    return {name: getattr(record, name) for name in RECORD_FIELDS}


def record_blocking_problems(
    record: KycRecord, *, today: date | None = None, codes: CodeBook | None = None
) -> tuple[list[Problem], list[Problem]]:
    """Every problem of the record under the full rules, with the admin-edited code lists and the PIN master
    (or ``codes``), and those that stop it being submitted, approved or batched: the errors, and the
    warnings too where the institution makes them block."""
    problems = validate_record(
        record_data(record), complete=True, today=today or timezone.localdate(), codes=codes or code_book()
    )
    return problems, blocking_problems(problems, warnings_block=record.branch.institution.warnings_block)


def check_stamp(today: date) -> str:
    """The code book's current stamp, the rules' version and ``today``: what a frozen payload's checks are
    valid for (``<token>/r<version>/<date>``).

    Read it *before* fetching the code book that checks a record: a stamp is then never newer than the lists
    it vouches for, and a list edited in between only makes the worker check the record again. A new
    ``RULES_VERSION`` (a rule or a severity changed) does the same for every record checked under the old one.
    """
    return stamp_for(CodeBookStamp.objects.values_list("token", flat=True).first(), today)


def stamp_for(token: Any, today: date) -> str:
    """``check_stamp`` from a code book token already read (the upload worker reads it with its claim)."""
    return f"{token}/r{RULES_VERSION}/{today.isoformat()}" if token else ""


def code_book_token() -> Any:
    """The code book's token as a subquery: ``check_stamp``'s read, made part of a caller's own query."""
    return Subquery(CodeBookStamp.objects.order_by("pk").values("token")[:1])


def record_freeze_values(
    data: Mapping[str, Any],
    *,
    stamp: str,
    today: date,
    codes: CodeBook | None,
    problems: list[Problem] | None = None,
) -> dict[str, str]:
    """What approval stores on a record: its API payload as it will be sent, and ``stamp`` when it passed.

    No database: the bench's seed calls it too. ``frozen_checked`` is ``stamp`` only when the record meets
    every CKYC rule with no problem at all (so the institution's warnings setting cannot matter) and
    KwikID's schema; otherwise it is empty and the worker checks the record before sending. ``problems``:
    the record's problems under the same rules, already found by the caller (approval validates once).
    """
    payload = record_to_payload(data)
    if problems is None:
        problems = validate_record(data, complete=True, today=today, codes=codes)
    passed = not problems and not record_problem(payload)
    return {
        "frozen_payload": encode_records([payload])[0].decode(),
        "frozen_checked": stamp if passed else "",
    }


# A record that leaves approval for editing (KwikID rejected it, or it is submitted again) sends nothing
# frozen: its next approval freezes it anew.
_UNFROZEN: dict[str, Any] = {"frozen_payload": "", "frozen_checked": ""}


def _require_branch(actor: User, branch: Branch) -> None:
    if not actor.branches.filter(pk=branch.pk).exists():
        raise PermissionDenied("You do not work at this branch.")


def _clean(data: Mapping[str, Any], *, complete: bool, warnings_block: bool = False) -> dict[str, Any]:
    # The admin-edited code lists and the PIN master; warnings block only a complete record, and only when
    # the institution says so (Institution.warnings_block).
    cleaned, _ = clean_record(data)
    problems = validate_record(cleaned, complete=complete, today=timezone.localdate(), codes=code_book())
    errors = blocking_problems(problems, warnings_block=warnings_block and complete)
    if errors:
        raise RecordInvalid(errors)
    values = {name: cleaned.get(name, "") for name in RECORD_FIELDS if name in cleaned}
    if "pan" in values:
        values["pan_hash"] = keyed_hash(values["pan"]) if values["pan"] else ""
    return values


def _portal_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fields the portal keeps for itself and never sends (the customer's existing KIN), checked here."""
    if "existing_ckyc_no" not in data:
        return {}
    kin = "".join(str(data["existing_ckyc_no"] or "").split())
    if kin and not (len(kin) == 14 and kin.isdigit()):
        raise RecordInvalid(
            [Problem("existing_ckyc_no", "The existing CKYC number (KIN) has exactly 14 digits.")]
        )
    return {"existing_ckyc_no": kin}


def due_on(*, institution: Institution, verified_on: date | None, updates_existing: bool) -> date | None:
    """The upload deadline: KYC verification date + the institution's days (its update_due_days for an
    update of an existing CKYC record, i.e. one with a KIN). None until the verification date is known."""
    if verified_on is None:
        return None
    days = institution.update_due_days if updates_existing else institution.upload_due_days
    return verified_on + timedelta(days=days)


@transaction.atomic
def records_recompute_due_dates(*, institution: Institution) -> int:
    """Re-date the deadlines of the institution's records the registry does not hold yet, after its
    upload_due_days or update_due_days changed (the setting's change is the audited event); returns how
    many records were looked at. Call from the service that saves those settings."""
    open_records = KycRecord.objects.filter(
        branch__institution=institution, kyc_verification_date__isnull=False
    ).exclude(status__in=REGISTERED_STATUSES)
    looked_at = 0
    # An empty KIN is stored as "" (never encrypted), so the two groups split without decrypting.
    for group, days in (
        (open_records.filter(existing_ckyc_no=""), institution.upload_due_days),
        (open_records.exclude(existing_ckyc_no=""), institution.update_due_days),
    ):
        looked_at += group.update(
            upload_due_on=ExpressionWrapper(
                F("kyc_verification_date") + timedelta(days=days), output_field=DateField()
            )
        )
    return looked_at


# The applicant's name, searchable by whole words through keyed hashes (RecordNameToken).
NAME_FIELDS = frozenset({"applicant_first_name", "applicant_middle_name"})
_NOT_NAME_CHARS = re.compile(r"[^0-9A-Z]")


def name_tokens(text: str) -> set[str]:
    """Keyed hashes of each whole word of a name, normalised (case and punctuation ignored: D'Souza = DSOUZA).

    The "name:" prefix keeps these hashes apart from PAN hashes made with the same key.
    """
    words = {_NOT_NAME_CHARS.sub("", word.upper()) for word in text.split()}
    return {keyed_hash(f"name:{word}") for word in words if word}


def _set_name_tokens(record: KycRecord) -> None:
    tokens = name_tokens(f"{record.applicant_first_name} {record.applicant_middle_name}")
    RecordNameToken.objects.filter(record=record).delete()
    RecordNameToken.objects.bulk_create(RecordNameToken(record=record, token_hash=t) for t in sorted(tokens))


def not_editable_message(record: KycRecord) -> str:
    """Why a record cannot be edited now, and what to do about it.

    A submitted record is refused rather than silently sent back to draft: the checker may be reading it
    at this moment, so the maker withdraws it first, on purpose and in the history.
    """
    message = f"A record that is {record.get_status_display().lower()} cannot be edited."
    if record.status == Status.SUBMITTED:
        message += " Withdraw it to draft first."
    return message


@transaction.atomic
def record_create(*, actor: User, branch: Branch, data: Mapping[str, Any]) -> KycRecord:
    """Save a new record as a draft. Filled fields must be well-formed; blanks may wait until submission."""
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) enter KYC records.")
    _require_branch(actor, branch)
    values = _clean(data, complete=False) | _portal_values(data)
    values["upload_due_on"] = due_on(
        institution=branch.institution,
        verified_on=values.get("kyc_verification_date"),
        updates_existing=bool(values.get("existing_ckyc_no")),
    )
    record = KycRecord.objects.create(branch=branch, created_by=actor, status=Status.DRAFT, **values)
    _set_name_tokens(record)
    RecordEvent.objects.create(
        record=record, actor=actor, action=RecordEvent.Action.CREATED, to_status=Status.DRAFT
    )
    return record


@transaction.atomic
def record_update(*, actor: User, record: KycRecord, data: Mapping[str, Any]) -> KycRecord:
    """Save a maker's edits to a draft, returned or rejected record; the status stays as it is."""
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) edit KYC records.")
    _require_branch(actor, record.branch)
    values = _clean(data, complete=False) | _portal_values(data)
    locked = KycRecord.objects.select_for_update().select_related("branch__institution").get(pk=record.pk)
    if locked.purged_at is not None:
        raise TransitionNotAllowed(PURGED_MESSAGE)
    if locked.status not in EDITABLE_STATUSES:
        raise TransitionNotAllowed(not_editable_message(locked))
    values["upload_due_on"] = due_on(
        institution=locked.branch.institution,
        verified_on=values.get("kyc_verification_date", locked.kyc_verification_date),
        updates_existing=bool(values.get("existing_ckyc_no", locked.existing_ckyc_no)),
    )
    changed = [name for name, value in values.items() if getattr(locked, name) != value]
    diff = [change_entry(name, getattr(locked, name), values[name]) for name in changed if name != "pan_hash"]
    clear = {
        name: [_json_value(getattr(locked, name)), _json_value(values[name])]
        for name in changed
        if name in PII_FIELDS
    }
    for name in changed:
        setattr(locked, name, values[name])
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
        if NAME_FIELDS & set(changed):
            _set_name_tokens(locked)
        RecordEvent.objects.create(
            record=locked,
            actor=actor,
            action=RecordEvent.Action.EDITED,
            from_status=locked.status,
            to_status=locked.status,
            changed_fields=diff,
            changed_values=json.dumps(clear, ensure_ascii=False) if clear else "",
        )
    return locked


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else value


def _event_value(name: str, value: Any) -> Any:
    """A value as the history keeps it in the clear: JSON-ready, and masked when it is PII."""
    return _json_value(mask_value(name, value))


def event_clear_values(event: RecordEvent) -> dict[str, list[Any]]:
    """An edit event's personal data in clear ({field: [old, new]}): only for a user who revealed it."""
    if not event.changed_values:
        return {}
    try:
        values = json.loads(event.changed_values)
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def change_entry(name: str, old: Any, new: Any) -> dict[str, Any]:
    """One line of an edit event's diff: the field, its old and new value, PII masked."""
    return {"field": name, "old": _event_value(name, old), "new": _event_value(name, new)}


def _transition(
    record: KycRecord,
    to: str,
    *,
    actor: User | None,
    action: str,
    reason: str = "",
    **updates: Any,
) -> KycRecord:
    """The one place a record's status changes: a conditional update plus its audit event.

    Raises RecordConflict when another request moved the record first (the update matched no row).
    Call inside a transaction.
    """
    current = record.status
    if record.purged_at is not None:
        raise TransitionNotAllowed(PURGED_MESSAGE)
    if to not in ALLOWED_TRANSITIONS[current]:
        raise TransitionNotAllowed(
            f"A record that is {Status(current).label.lower()} cannot become {Status(to).label.lower()}."
        )
    now = timezone.now()
    updated = KycRecord.objects.filter(pk=record.pk, status=current).update(
        status=to, updated_at=now, **updates
    )
    if updated != 1:
        # Another request moved it first (PostgreSQL re-checks the condition once the winner commits).
        record.refresh_from_db()
        raise _conflict(record)
    RecordEvent.objects.create(
        record=record, actor=actor, action=action, from_status=current, to_status=to, reason=reason
    )
    record.refresh_from_db()
    return record


@transaction.atomic
def record_submit(*, actor: User, record: KycRecord) -> KycRecord:
    """Send a complete, valid record to the branch's checkers. Raises RecordInvalid naming each field."""
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) submit KYC records.")
    _require_branch(actor, record.branch)
    record.refresh_from_db()
    _, errors = record_blocking_problems(record)
    if errors:
        raise RecordInvalid(errors)
    return _transition(
        record,
        Status.SUBMITTED,
        actor=actor,
        action=RecordEvent.Action.SUBMITTED,
        submitted_by=actor,
        submitted_at=timezone.now(),
        return_reason="",
        # A resubmitted record waits for a new decision: the last one stays in the history, not the header.
        reviewed_by=None,
        reviewed_at=None,
        **_UNFROZEN,
    )


@transaction.atomic
def record_withdraw(*, actor: User, record: KycRecord) -> KycRecord:
    """Take a submitted record back to draft so it can be edited (before a checker decides)."""
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) withdraw KYC records.")
    _require_branch(actor, record.branch)
    record.refresh_from_db()
    return _transition(record, Status.DRAFT, actor=actor, action=RecordEvent.Action.WITHDRAWN)


def record_makers(record: KycRecord) -> set[int]:
    """Everyone who entered, edited or submitted the record: none of them may review it."""
    ids = set(record.events.filter(action__in=MAKER_ACTIONS).values_list("actor_id", flat=True))
    return {pk for pk in (*ids, record.created_by_id, record.submitted_by_id) if pk is not None}


def _check_reviewer(actor: User, record: KycRecord) -> None:
    # Maker-checker first: it is the rule a maker trying to approve their own record needs to hear.
    if actor.pk in record_makers(record):
        raise PermissionDenied("You cannot review a record you entered, edited or submitted (maker-checker).")
    if actor.role != Role.CHECKER:
        raise PermissionDenied("Only branch managers (checkers) approve or return records.")
    _require_branch(actor, record.branch)


def _require_waiting(record: KycRecord) -> None:
    """A decision on a record someone else already decided says who did what, and when."""
    if record.status == Status.SUBMITTED:
        return
    if record.status == Status.DRAFT:
        raise TransitionNotAllowed("A draft cannot be decided on: its maker must submit it first.")
    raise _conflict(record)


def _conflict(record: KycRecord) -> RecordConflict:
    """The "changed meanwhile" error for a record someone else moved, naming who did it and when."""
    last = record.events.select_related("actor").order_by("-created_at", "-pk").first()
    who = f" by {last.actor.username}" if last and last.actor else ""
    when = f" at {timezone.localtime(last.created_at):%H:%M}" if last else ""
    return RecordConflict(
        f"This record changed meanwhile: it is now {record.get_status_display().lower()}{who}{when}. "
        "Nothing was changed by you."
    )


@transaction.atomic
def record_approve(*, actor: User, record: KycRecord) -> KycRecord:
    """Approve a submitted record for upload. Never by its maker; exactly one of two racing checkers wins."""
    _require_waiting(record)
    _check_reviewer(actor, record)
    # The row as it is now, locked until commit: what is checked and frozen is exactly what is approved.
    current = (
        KycRecord.objects.select_for_update(of=("self",))
        .select_related("branch__institution")
        .get(pk=record.pk)
    )
    today = timezone.localdate()
    stamp = check_stamp(today)  # before the code book: see check_stamp
    book = code_book()
    problems, errors = record_blocking_problems(current, today=today, codes=book)
    if errors:
        raise RecordInvalid(errors)
    return _transition(
        record,
        Status.APPROVED,
        actor=actor,
        action=RecordEvent.Action.APPROVED,
        reviewed_by=actor,
        reviewed_at=timezone.now(),
        **record_freeze_values(record_data(current), stamp=stamp, today=today, codes=book, problems=problems),
    )


@transaction.atomic
def record_return(*, actor: User, record: KycRecord, reason: str) -> KycRecord:
    """Send a submitted record back to its maker with the reason."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why the record is returned, so the maker can fix it.")
    if contains_aadhaar(reason):
        # Reasons stay in the record's history for years: never a full Aadhaar number in one.
        raise ActionRefused("The reason contains a full Aadhaar number: write at most its last 4 digits.")
    _require_waiting(record)
    _check_reviewer(actor, record)
    return _transition(
        record,
        Status.RETURNED,
        actor=actor,
        action=RecordEvent.Action.RETURNED,
        reason=reason,
        reviewed_by=actor,
        reviewed_at=timezone.now(),
        return_reason=reason,
    )


@dataclass(frozen=True)
class ReviewResult:
    """What a bulk decision did to one record (outcome: approved, returned, own, changed, invalid, ...)."""

    record_id: int
    kyc_ref_no: str
    outcome: str
    message: str


REVIEW_OUTCOMES = {
    "approved": "Approved",
    "returned": "Returned",
    "own": "Skipped: your own record",
    "changed": "Skipped: changed meanwhile",
    "invalid": "Skipped: needs fixing first",
    "refused": "Skipped: not allowed",
    "missing": "Skipped: not found",
}


def records_review(
    *, actor: User, record_ids: Iterable[int], decision: str, reason: str = ""
) -> list[ReviewResult]:
    """Approve or return many submitted records, each on its own (one record's refusal never undoes
    another's decision); a result per record, in the order given. Never the actor's own records."""
    if decision not in ("approve", "return"):
        raise ActionRefused("Choose approve or return.")
    reason = reason.strip()
    if decision == "return" and not reason:
        raise ActionRefused("Say why the records are returned, so their makers can fix them.")
    ids = list(dict.fromkeys(int(pk) for pk in record_ids))
    visible = KycRecord.objects.filter(pk__in=ids)
    if not actor.sees_all_branches:
        visible = visible.filter(branch__in=actor.branches.all())
    records = {r.pk: r for r in visible.select_related("branch")}
    results: list[ReviewResult] = []
    for pk in ids:
        record = records.get(pk)
        if record is None:  # another branch's record is as absent as a deleted one
            results.append(ReviewResult(pk, "", "missing", "No such record in your branches."))
            continue
        results.append(_review_one(actor, record, decision, reason))
    return results


def _review_one(actor: User, record: KycRecord, decision: str, reason: str) -> ReviewResult:
    def result(outcome: str, message: str) -> ReviewResult:
        return ReviewResult(record.pk, record.kyc_ref_no, outcome, message)

    if actor.pk in record_makers(record):
        return result("own", "You entered, edited or submitted it: another checker reviews it.")
    try:
        if decision == "approve":
            record_approve(actor=actor, record=record)
            return result("approved", "Approved for upload.")
        record_return(actor=actor, record=record, reason=reason)
        return result("returned", "Returned to its maker.")
    except RecordConflict as exc:
        return result("changed", str(exc))
    except RecordInvalid as exc:
        return result("invalid", f"{len(exc.problems)} field(s) need attention: open it to see which.")
    except (TransitionNotAllowed, PermissionDenied) as exc:
        return result("refused", str(exc))


REVEAL_SECONDS = 300


def record_reveal(*, actor: User, record: KycRecord, reason: str = "") -> None:
    """Write the audit event for showing a record's PII unmasked; refuse users whose role may not see it."""
    if not actor.can_reveal_pii:
        raise PermissionDenied("Your role sees personal data masked.")
    if not actor.sees_all_branches:
        _require_branch(actor, record.branch)
    RecordEvent.objects.create(
        record=record,
        actor=actor,
        action=RecordEvent.Action.REVEALED,
        from_status=record.status,
        to_status=record.status,
        reason=reason or f"Shown unmasked for {REVEAL_SECONDS // 60} minutes",
    )
