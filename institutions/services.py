"""Writes to the institution's configuration.

Refusals are ``AdminActionRefused`` (a ``ckycportal.errors.ActionRefused``). Where a page has a form, a
service raises Django's ``ValidationError`` on purpose instead, keyed by field, so the view puts each problem
on its field (``branch_create``, ``user_create``, ``user_update``, ``check_role_branches``, model
``full_clean`` and ``validate_password``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp import devices_for_user

from ckycportal.errors import ActionRefused

from .models import AuditEvent, Branch, Institution, Role, User


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


# --- Branches and users -------------------------------------------------------------------------------
# Every change below is one transaction with one AuditEvent saying what changed, old -> new. Passwords and
# two-factor secrets are never written to an event: only that they were reset.


class AdminActionRefused(ActionRefused):
    """A change an administrator may not make (their own role, the last active admin, ...)."""


def _audit(*, actor: User | None, action: str, obj: Branch | User, detail: dict[str, Any]) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(obj.pk),
        detail=detail,
    )


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for each field whose value differs."""
    return {name: [before[name], after[name]] for name in after if before.get(name) != after[name]}


@transaction.atomic
def branch_create(*, actor: User, institution: Institution, code: str, name: str, reason: str) -> Branch:
    """Create a branch of the institution, with the reason; its CERSAI code is unique in the institution.

    Raises ValidationError keyed by field (on purpose: the branch form shows each problem on its field)."""
    branch = Branch(institution=institution, code=code.strip().upper(), name=name.strip())
    errors: dict[str, list[str]] = {}
    if not reason.strip():
        errors["reason"] = ["Give a reason: it is kept in the audit log."]
    if branch.code and Branch.objects.filter(institution=institution, code__iexact=branch.code).exists():
        errors["code"] = [f"Branch code {branch.code} is already used."]
    try:
        branch.full_clean(validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    branch.save()
    _audit(
        actor=actor,
        action="branch_created",
        obj=branch,
        detail={"code": branch.code, "changes": {"name": ["", branch.name]}, "reason": reason.strip()},
    )
    return branch


@transaction.atomic
def branch_update(*, actor: User, branch: Branch, name: str) -> Branch:
    """Rename a branch. Its CERSAI code stays: batches already sent carry it."""
    branch = Branch.objects.select_for_update().get(pk=branch.pk)
    before = {"name": branch.name}
    branch.name = name.strip()
    branch.full_clean()
    changes = _changes(before, {"name": branch.name})
    if changes:
        branch.save(update_fields=["name"])
        _audit(
            actor=actor, action="branch_updated", obj=branch, detail={"code": branch.code, "changes": changes}
        )
    return branch


@transaction.atomic
def branch_set_active(*, actor: User, branch: Branch, active: bool, reason: str) -> Branch:
    """Deactivate (or reactivate) a branch, with the reason. Its records and history stay."""
    if not reason.strip():
        raise AdminActionRefused("Give a reason: it is kept in the audit log.")
    updated = Branch.objects.filter(pk=branch.pk, is_active=not active).update(is_active=active)
    branch.refresh_from_db()
    if updated:
        _audit(
            actor=actor,
            action="branch_reactivated" if active else "branch_deactivated",
            obj=branch,
            detail={
                "code": branch.code,
                "changes": {"is_active": [not active, active]},
                "reason": reason.strip(),
            },
        )
    return branch


def _user_state(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "branches": sorted(user.branches.values_list("code", flat=True)),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def check_role_branches(role: str, branches: list[Branch]) -> None:
    """Makers and checkers hold at least one active branch; administrators and auditors none.

    Raises ValidationError on the "branches" field (on purpose: the user forms show it there)."""
    if role in (Role.MAKER, Role.CHECKER) and not branches:
        raise ValidationError({"branches": "Makers and checkers need at least one branch."})
    if role in (Role.ADMIN, Role.AUDITOR) and branches:
        raise ValidationError({"branches": "Administrators and auditors see every branch: choose none."})
    inactive = [b.code for b in branches if not b.is_active]
    if inactive:
        raise ValidationError({"branches": f"Branch {', '.join(inactive)} is deactivated."})


def _admin_site_access(user: User) -> None:
    # Administrators edit the code lists in the administration site (two-factor verified); everything
    # else there is read-only. Nobody else may enter it. Same rule as `manage.py create_portal_user`.
    user.is_staff = user.is_superuser = user.role == Role.ADMIN


@transaction.atomic
def user_create(
    *,
    actor: User,
    username: str,
    role: str,
    branches: list[Branch],
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    reason: str,
) -> User:
    """Create a portal user with a role, branches, a first password (never audited, only its setting) and
    the reason. Every problem is reported at once, in one ValidationError for the form (field -> messages;
    the password's under "password")."""
    user = User(
        username=username.strip(),
        role=role,
        email=email.strip(),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
    )
    _admin_site_access(user)
    errors: dict[str, list[str]] = {}
    if not reason.strip():
        errors["reason"] = ["Give a reason: it is kept in the audit log."]
    for check, key in (
        (lambda: check_role_branches(role, branches), ""),
        (lambda: validate_password(password, user), "password"),
        (lambda: user.full_clean(exclude=["password"]), ""),
    ):
        try:
            check()
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, messages in exc.message_dict.items():
                    errors.setdefault(field, []).extend(messages)
            else:
                errors.setdefault(key or "__all__", []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    user.branches.set(branches)
    after = _user_state(user)
    _audit(
        actor=actor,
        action="user_created",
        obj=user,
        detail={
            "username": user.username,
            "changes": {name: ["", value] for name, value in after.items() if value},
            "password_set": True,
            "reason": reason.strip(),
        },
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    role: str,
    branches: list[Branch],
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    reason: str = "",
) -> User:
    """Change a user's role, branches and contact details; a change of role or branches needs a reason.

    Raises AdminActionRefused for a change of one's own role, and ValidationError keyed by field (on purpose:
    the user form shows it there) for a bad role, branch, contact detail or a missing reason."""
    user = User.objects.select_for_update().get(pk=user.pk)
    check_role_branches(role, branches)
    before = _user_state(user)
    if user.pk == actor.pk and role != user.role:
        raise AdminActionRefused("You cannot change your own role: ask another administrator.")
    user.role = role
    _admin_site_access(user)
    user.email, user.first_name, user.last_name = email.strip(), first_name.strip(), last_name.strip()
    user.full_clean()
    after = {**_user_state(user), "branches": sorted(b.code for b in branches)}
    changes = _changes(before, after)
    if not changes:
        return user
    if ({"role", "branches"} & changes.keys()) and not reason.strip():
        raise ValidationError({"reason": "Say why the role or branches change: it is kept in the audit log."})
    user.save()
    user.branches.set(branches)
    _audit(
        actor=actor,
        action="user_updated",
        obj=user,
        detail={"username": user.username, "changes": changes, "reason": reason.strip()},
    )
    return user


@transaction.atomic
def user_set_active(*, actor: User, user: User, active: bool, reason: str) -> User:
    """Deactivate (or reactivate) a user: a deactivated user cannot log in; their history stays."""
    if not reason.strip():
        raise AdminActionRefused("Give a reason: it is kept in the audit log.")
    if not active and user.pk == actor.pk:
        raise AdminActionRefused("You cannot deactivate yourself.")
    updated = User.objects.filter(pk=user.pk, is_active=not active).update(is_active=active)
    user.refresh_from_db()
    if updated:
        _audit(
            actor=actor,
            action="user_reactivated" if active else "user_deactivated",
            obj=user,
            detail={
                "username": user.username,
                "changes": {"is_active": [not active, active]},
                "reason": reason.strip(),
            },
        )
    return user


@transaction.atomic
def user_reset_password(*, actor: User, user: User, password: str, reason: str) -> User:
    """Set a new password chosen by the admin; the user's other sessions end (the value is never logged)."""
    if not reason.strip():
        raise AdminActionRefused("Give a reason: it is kept in the audit log.")
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    _audit(
        actor=actor,
        action="user_password_reset",
        obj=user,
        detail={"username": user.username, "reason": reason.strip()},
    )
    return user


@transaction.atomic
def user_reset_two_factor(*, actor: User, user: User, reason: str) -> int:
    """Delete the user's authenticator devices (a lost phone): they set up a new one at their next log-in.

    Returns how many devices were removed. The devices' secrets are never read or logged.
    """
    if not reason.strip():
        raise AdminActionRefused("Give a reason: it is kept in the audit log.")
    removed = 0
    for device in devices_for_user(user, confirmed=None):
        device.delete()
        removed += 1
    _audit(
        actor=actor,
        action="user_two_factor_reset",
        obj=user,
        detail={"username": user.username, "devices_removed": removed, "reason": reason.strip()},
    )
    return removed
