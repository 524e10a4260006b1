"""The institution's settings page: its CERSAI codes, the KwikID connection and the deadline clock.

It lives with the uploads because its changes reach past the institution's row: new deadline days re-date
the open records, and a new token resumes the sending that a refused token paused.

Four eyes: what can send the bearer token and the customers' records elsewhere, or stop uploads (the KwikID
base URL, API version and token, and the CERSAI codes: ``GUARDED_FIELDS``) changes only when a second
administrator approves an ``InstitutionChange``. The rest of the page saves at once. An institution with
one active administrator may opt out; the opt-out is not honoured once there are two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import capfirst

from ckycportal.errors import ActionRefused
from institutions.models import (
    GUARDED_FIELDS,
    AuditEvent,
    Institution,
    InstitutionChange,
    Role,
    User,
    token_hint,
)
from records.services import records_recompute_due_dates

from .services import batches_resume, request_assembly

ENDPOINT_NEEDS_TOKEN = "Enter the token again: a new endpoint needs its token."


class InstitutionChangeRefused(ActionRefused):
    """A change of the guarded settings that cannot be proposed, approved, rejected or withdrawn as asked."""


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


def _audit(*, actor: User | None, action: str, institution: Institution, detail: dict[str, Any]) -> None:
    AuditEvent.objects.create(
        actor=actor, action=action, object_type="Institution", object_id=str(institution.pk), detail=detail
    )


def _check_endpoint_token(stored: Institution, new_url: Any, token: str) -> None:
    """A new base URL with the stored token would carry that token (and the records) to the new host."""
    if stored.pk and stored.api_token and new_url not in (None, stored.api_base_url) and not token:
        raise ValidationError({"api_token": ENDPOINT_NEEDS_TOKEN})


@transaction.atomic
def institution_configure(
    *,
    actor: User | None,
    institution: Institution | None,
    data: dict[str, Any],
    token: str = "",
    audit_detail: dict[str, Any] | None = None,
) -> Institution:
    """Create or update the institution's CERSAI codes and KwikID connection at once; a non-blank token
    replaces it. A new base URL needs a new token (ValidationError on "api_token").

    Applies without a second administrator: for first set-up and ``configure_institution`` (run by whoever
    holds the server), for an approved ``InstitutionChange``, and where four eyes is waived. The settings
    page goes through ``institution_settings_save``. Replacing the token lifts a pause caused by a refused
    token, so sending resumes by itself.
    """
    institution = institution or Institution()
    token = token.strip()
    # What is stored, not the instance: a ModelForm has already written the new values onto it.
    stored = (
        Institution.objects.select_for_update().get(pk=institution.pk) if institution.pk else Institution()
    )
    _check_endpoint_token(stored, data.get("api_base_url"), token)
    old_days = (stored.upload_due_days, stored.update_due_days) if institution.pk else None
    before = {name: getattr(stored, name, None) for name in data if name != "api_token"}
    for name, value in data.items():
        setattr(institution, name, value)
    if token:
        institution.api_token = token
        institution.token_updated_at = timezone.now()
        institution.token_updated_by = actor
        institution.sending_paused_at = None
        institution.sending_paused_reason = ""
    institution.full_clean()
    institution.save()
    # Only what really changed, old -> new (settings hold no customer data); never the token itself.
    changes = {
        name: [_plain(old), _plain(getattr(institution, name))]
        for name, old in before.items()
        if old != getattr(institution, name)
    }
    if changes or token:
        detail = {"fields": sorted(changes), "changes": changes, "token_replaced": bool(token)}
        _audit(
            actor=actor,
            action="institution_configured",
            institution=institution,
            detail=detail | (audit_detail or {}),
        )
    if old_days is not None and old_days != (institution.upload_due_days, institution.update_due_days):
        records_recompute_due_dates(institution=institution)
    if token:
        batches_resume(institution_id=institution.pk)
        request_assembly()
    return institution


# --- Four eyes ------------------------------------------------------------------------------------------


def active_admin_count() -> int:
    """Active administrators (they hold no branch and see the whole institution: one per deployment)."""
    return User.objects.filter(role=Role.ADMIN, is_active=True).count()


def four_eyes_waived(institution: Institution) -> bool:
    """True when the institution opted out and has exactly one active administrator to approve with."""
    return institution.single_admin_opt_out and active_admin_count() == 1


def institution_change_pending(institution: Institution) -> InstitutionChange | None:
    """The change waiting for a second administrator, if any (at most one)."""
    return (
        InstitutionChange.objects.select_related("proposed_by")
        .filter(institution=institution, status=InstitutionChange.Status.PENDING)
        .first()
    )


def field_label(name: str) -> str:
    """A guarded setting in the settings page's words."""
    return capfirst(str(getattr(Institution._meta.get_field(name), "verbose_name", name)))


@dataclass(frozen=True)
class ChangeLine:
    label: str
    current: str
    proposed: str


def institution_change_lines(change: InstitutionChange, *, token_hints: bool = True) -> list[ChangeLine]:
    """What the change does, one line a setting, current -> proposed; the tokens by their last 4 only, or
    not at all without ``token_hints`` (auditors never see a token's characters)."""
    lines = [
        ChangeLine(field_label(name), str(old), str(new))
        for name in GUARDED_FIELDS
        if name in change.changes
        for old, new in [change.changes[name]]
    ]
    if change.replaces_token:
        current = "set" if change.institution.api_token else "not set"
        proposed = "replaced"
        if token_hints:
            current = change.institution.token_hint or current
            proposed = f"replaced, ending {change.new_token_hint}"
        lines.append(ChangeLine("KwikID bearer token", current, proposed))
    return lines


def _notify_other_admins(change_id: int) -> None:
    """Mail the other active administrators that a change waits for them (no value of it, no token)."""
    change = InstitutionChange.objects.select_related("institution", "proposed_by").get(pk=change_id)
    recipients = list(
        User.objects.filter(role=Role.ADMIN, is_active=True)
        .exclude(pk=change.proposed_by_id)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if recipients:
        what = [field_label(name) for name in change.changes] + (
            ["KwikID bearer token"] if change.replaces_token else []
        )
        send_mail(
            subject=f"CKYC Portal: a change of {change.institution.name}'s settings waits for you",
            message=f"{change.proposed_by.username} proposed a change of: {', '.join(what)}.\n\n"
            "It applies only when another administrator approves it on the institution settings page.",
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )


@transaction.atomic
def institution_change_propose(
    *, actor: User, institution: Institution, changes: dict[str, Any], token: str = "", reason: str = ""
) -> InstitutionChange:
    """Propose new values of the guarded settings (and/or a new token) for a second administrator.

    Nothing changes yet. Refused while another change is pending; a new base URL needs a new token; every
    value is validated now as it would be when applied (ValidationError keyed by field)."""
    unknown = set(changes) - set(GUARDED_FIELDS)
    if unknown:
        raise ValueError(f"Not settings that wait for approval: {sorted(unknown)}")
    stored = Institution.objects.select_for_update().get(pk=institution.pk)
    token = token.strip()
    proposed = {name: value for name, value in changes.items() if value != getattr(stored, name)}
    if not proposed and not token:
        raise InstitutionChangeRefused("Nothing to approve: the values are those already in use.")
    if institution_change_pending(stored):
        raise InstitutionChangeRefused(
            "A change of the KwikID connection or CERSAI codes already waits for a second administrator: "
            "it must be approved, rejected or withdrawn first."
        )
    _check_endpoint_token(stored, proposed.get("api_base_url"), token)
    candidate = Institution.objects.get(pk=stored.pk)
    for name, value in proposed.items():
        setattr(candidate, name, value)
    errors: dict[str, list[str]] = {}
    try:
        candidate.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not reason.strip():
        errors["reason"] = [
            "Give a reason: the approving administrator reads it, and the audit log keeps it."
        ]
    if errors:
        raise ValidationError(errors)
    change = InstitutionChange.objects.create(
        institution=stored,
        proposed_by=actor,
        changes={name: [_plain(getattr(stored, name)), _plain(value)] for name, value in proposed.items()},
        new_token=token,
        new_token_hint=token_hint(token),
        reason=reason.strip(),
    )
    _audit(
        actor=actor,
        action="institution_change_proposed",
        institution=stored,
        detail={
            "change": change.pk,
            "fields": sorted(change.changes),
            "changes": change.changes,
            "token_replaced": change.replaces_token,
            "reason": change.reason,
        },
    )
    transaction.on_commit(lambda: _notify_other_admins(change.pk))
    return change


def _locked_pending(change_id: int) -> tuple[InstitutionChange, Institution]:
    """The change and its institution, locked in the order every writer takes (institution first)."""
    institution_id = InstitutionChange.objects.values_list("institution_id", flat=True).get(pk=change_id)
    stored = Institution.objects.select_for_update().get(pk=institution_id)
    change = InstitutionChange.objects.select_for_update().select_related("proposed_by").get(pk=change_id)
    if change.status != InstitutionChange.Status.PENDING:
        raise InstitutionChangeRefused(f"This change is no longer pending: {change.get_status_display()}.")
    return change, stored


def _decide(change: InstitutionChange, *, actor: User, status: str, note: str) -> None:
    updated = InstitutionChange.objects.filter(pk=change.pk, status=InstitutionChange.Status.PENDING).update(
        status=status, decided_by=actor, decided_at=timezone.now(), decision_note=note, new_token=""
    )
    if updated != 1:  # the rows are locked: a lost race here is a bug, not a refusal
        raise RuntimeError(f"InstitutionChange {change.pk} was decided by another transaction")
    change.refresh_from_db()


def _check_second_admin(change: InstitutionChange, actor: User, verb: str) -> None:
    if actor.role != Role.ADMIN or not actor.is_active:
        raise InstitutionChangeRefused(f"Only an active administrator may {verb} a change of the settings.")
    if actor.pk == change.proposed_by_id:
        raise InstitutionChangeRefused(
            f"You proposed this change: another administrator must {verb} it (you may withdraw it)."
        )


@transaction.atomic
def institution_change_approve(*, actor: User, change_id: int, note: str = "") -> InstitutionChange:
    """A second administrator approves a pending change, which is applied now (a new token resumes
    sending). Refused to its proposer, and when the settings it changes are no longer what it was
    proposed against."""
    change, stored = _locked_pending(change_id)
    _check_second_admin(change, actor, "approve")
    stale = [
        field_label(name)
        for name, (old, _new) in change.changes.items()
        if _plain(getattr(stored, name)) != old
    ]
    if change.replaces_token and stored.token_updated_at and stored.token_updated_at > change.proposed_at:
        stale.append("KwikID bearer token")
    if stale:
        raise InstitutionChangeRefused(
            f"The settings changed since this was proposed ({', '.join(stale)}): reject it, and propose "
            "again from what is in use now."
        )
    data = {name: new for name, (_old, new) in change.changes.items()}
    detail = {"change": change.pk, "proposed_by": change.proposed_by.username}
    try:
        institution_configure(
            actor=actor, institution=stored, data=data, token=change.new_token, audit_detail=detail
        )
    except ValidationError as exc:  # e.g. the FI code was taken by another institution meanwhile
        problems = "; ".join(
            f"{field_label(f) if f in GUARDED_FIELDS else f}: {' '.join(m)}"
            for f, m in exc.message_dict.items()
        )
        raise InstitutionChangeRefused(f"This change cannot be applied: {problems}. Reject it.") from exc
    _decide(change, actor=actor, status=InstitutionChange.Status.APPROVED, note=note.strip())
    _audit(
        actor=actor,
        action="institution_change_approved",
        institution=stored,
        detail=detail
        | {
            "fields": sorted(change.changes),
            "changes": change.changes,
            "token_replaced": change.replaces_token,
            "reason": change.decision_note,
        },
    )
    return change


@transaction.atomic
def institution_change_reject(*, actor: User, change_id: int, note: str = "") -> InstitutionChange:
    """A second administrator rejects a pending change: nothing is applied, its token is dropped."""
    change, stored = _locked_pending(change_id)
    _check_second_admin(change, actor, "reject")
    _decide(change, actor=actor, status=InstitutionChange.Status.REJECTED, note=note.strip())
    _audit(
        actor=actor,
        action="institution_change_rejected",
        institution=stored,
        detail={
            "change": change.pk,
            "proposed_by": change.proposed_by.username,
            "fields": sorted(change.changes),
            "token_replaced": change.replaces_token,
            "reason": change.decision_note,
        },
    )
    return change


@transaction.atomic
def institution_change_withdraw(*, actor: User, change_id: int) -> InstitutionChange:
    """Its proposer withdraws a pending change: nothing is applied, its token is dropped."""
    change, stored = _locked_pending(change_id)
    if actor.pk != change.proposed_by_id:
        raise InstitutionChangeRefused(
            "Only the administrator who proposed it may withdraw it; you may reject it."
        )
    _decide(change, actor=actor, status=InstitutionChange.Status.WITHDRAWN, note="")
    _audit(
        actor=actor,
        action="institution_change_withdrawn",
        institution=stored,
        detail={
            "change": change.pk,
            "fields": sorted(change.changes),
            "token_replaced": change.replaces_token,
        },
    )
    return change


@transaction.atomic
def institution_settings_save(
    *, actor: User, institution: Institution, data: dict[str, Any], token: str = "", reason: str = ""
) -> InstitutionChange | None:
    """The settings page's save. Settings that cannot leak or stop uploads apply at once; new values of
    the guarded ones (and a new token) become one pending change for a second administrator, returned.

    Where four eyes is waived (opted out, one active administrator) everything applies at once, audited
    as such. All or nothing: a refused proposal saves nothing of the rest either."""
    stored = Institution.objects.select_for_update().get(pk=institution.pk)
    token = token.strip()
    guarded = {n: data[n] for n in GUARDED_FIELDS if n in data and data[n] != getattr(stored, n)}
    others = {n: v for n, v in data.items() if n not in GUARDED_FIELDS}
    if not guarded and not token:
        institution_configure(actor=actor, institution=stored, data=others)
        return None
    if four_eyes_waived(stored):
        if institution_change_pending(stored):
            raise InstitutionChangeRefused(
                "A change of the KwikID connection or CERSAI codes is pending: withdraw it first."
            )
        institution_configure(
            actor=actor,
            institution=stored,
            data=data,
            token=token,
            audit_detail={"without_second_admin": True, "reason": reason.strip()},
        )
        return None
    change = institution_change_propose(
        actor=actor, institution=stored, changes=guarded, token=token, reason=reason
    )
    institution_configure(actor=actor, institution=stored, data=others)
    return change


@transaction.atomic
def institution_single_admin_set(
    *, actor: User, institution: Institution, opt_out: bool, reason: str = ""
) -> Institution:
    """Opt out of four eyes (allowed only while the institution has exactly one active administrator, with
    a reason) or back in (always allowed). Audited; setting what is already set writes nothing."""
    stored = Institution.objects.select_for_update().get(pk=institution.pk)
    admins = active_admin_count()
    if opt_out:
        if admins != 1:
            raise InstitutionChangeRefused(
                f"The institution has {admins} active administrators: a second administrator approves "
                "changes of the KwikID connection and CERSAI codes. Opting out is for a single administrator."
            )
        if not reason.strip():
            raise InstitutionChangeRefused("Give a reason for opting out: it is kept in the audit log.")
    if stored.single_admin_opt_out == opt_out:
        return stored
    stored.single_admin_opt_out = opt_out
    stored.save(update_fields=["single_admin_opt_out", "updated_at"])
    _audit(
        actor=actor,
        action="institution_single_admin_opt_out" if opt_out else "institution_single_admin_opt_in",
        institution=stored,
        detail={
            "changes": {"single_admin_opt_out": [not opt_out, opt_out]},
            "active_admins": admins,
            "reason": reason.strip(),
        },
    )
    return stored
