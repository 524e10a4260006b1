from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_otp import devices_for_user

from ckycportal.errors import PortalError
from ckycportal.views import refusal_message, show_refusal

from . import selectors, services
from .forms import BranchForm, PasswordResetForm, ReasonForm, UserCreateForm, UserEditForm
from .models import AuditEvent, Role, User
from .permissions import AuthedRequest, role_required

# --- Branches and users: only admins; every change goes through a service and is audited. -------------


@role_required(Role.ADMIN, Role.AUDITOR)
def branch_list(request: AuthedRequest) -> HttpResponse:
    branches = selectors.branch_admin_list(request.user)
    context = {"branches": branches, "read_only": request.user.is_auditor}
    return render(request, "institutions/branch_list.html", context)


@role_required(Role.ADMIN)
def branch_create(request: AuthedRequest) -> HttpResponse:
    form = BranchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            branch = services.branch_create(
                actor=request.user,
                institution=selectors.institution_for(request.user),
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Branch {branch.code} was created.")
            return redirect("institutions:branch_list")
    return render(request, "institutions/branch_form.html", {"form": form, "branch": None})


@role_required(Role.ADMIN)
def branch_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    branch = selectors.branch_admin_get(request.user, pk)
    initial = {"code": branch.code, "name": branch.name}
    form = BranchForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.branch_update(actor=request.user, branch=branch, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Branch {branch.code} was saved.")
            return redirect("institutions:branch_list")
    context = {"form": form, "branch": branch, "reason_form": ReasonForm()}
    return render(request, "institutions/branch_form.html", context)


@require_POST
@role_required(Role.ADMIN)
def branch_set_active(request: AuthedRequest, pk: int) -> HttpResponse:
    branch = selectors.branch_admin_get(request.user, pk)
    active = request.POST.get("active") == "1"
    try:
        services.branch_set_active(
            actor=request.user, branch=branch, active=active, reason=request.POST.get("reason", "")[:300]
        )
    except (PortalError, ValidationError) as exc:
        show_refusal(request, exc, prefix="Not done: ")
        return redirect("institutions:branch_edit", pk=branch.pk)
    verb = "reactivated" if active else "deactivated"
    messages.success(request, f"Branch {branch.code} was {verb}.")
    return redirect("institutions:branch_list")


@role_required(Role.ADMIN, Role.AUDITOR)
def user_list(request: AuthedRequest) -> HttpResponse:
    role = request.GET.get("role", "")
    role = role if role in Role.values else ""
    query = request.GET.get("q", "").strip()[:150]
    page = Paginator(selectors.user_admin_list(request.user, role=role, query=query), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "role": role,
        "q": query,
        "roles": Role.choices,
        "read_only": request.user.is_auditor,
    }
    return render(request, "institutions/user_list.html", context)


@role_required(Role.ADMIN)
def user_create(request: AuthedRequest) -> HttpResponse:
    institution = selectors.institution_for(request.user)
    form = UserCreateForm(request.POST or None, institution=institution)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                actor=request.user,
                username=data["username"],
                role=data["role"],
                branches=list(data["branches"]),
                password=data["password1"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                reason=data["reason"],
            )
        except ValidationError as exc:
            _add_errors(form, exc, password_field="password1")
        else:
            messages.success(request, f"User {user.username} was created.")
            return redirect("institutions:user_list")
    return render(request, "institutions/user_form.html", {"form": form, "subject": None})


def _add_errors(form: forms.Form, exc: ValidationError, *, password_field: str = "") -> None:
    """Put a service's refusal on the form fields it names (password validators name none)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            if field == "password" and password_field:
                field = password_field
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(password_field or None, exc)


@role_required(Role.ADMIN)
def user_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    subject = selectors.user_admin_get(request.user, pk)
    institution = selectors.institution_for(request.user)
    initial = {
        "first_name": subject.first_name,
        "last_name": subject.last_name,
        "email": subject.email,
        "role": subject.role,
        "branches": list(subject.branches.all()),
    }
    form = UserEditForm(request.POST or None, initial=initial, institution=institution)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.user_update(
                actor=request.user,
                user=subject,
                role=data["role"],
                branches=list(data["branches"]),
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                reason=data["reason"],
            )
        except services.AdminActionRefused as exc:  # its one refusal here: changing one's own role
            form.add_error("role", refusal_message(exc))
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"User {subject.username} was saved.")
            return redirect("institutions:user_list")
    context = {
        "form": form,
        "subject": subject,
        "reason_form": ReasonForm(),
        "password_form": PasswordResetForm(),
        "has_device": any(devices_for_user(subject, confirmed=None)),
        "recent": AuditEvent.objects.filter(object_type="User", object_id=str(subject.pk))
        .select_related("actor")
        .order_by("-created_at", "-pk")[:10],
    }
    return render(request, "institutions/user_form.html", context)


def _user_action(request: AuthedRequest, pk: int, action: Callable[[User], str]) -> HttpResponse:
    subject = selectors.user_admin_get(request.user, pk)
    try:
        message = action(subject)
    except (PortalError, ValidationError) as exc:
        show_refusal(request, exc, prefix="Not done: ")
    else:
        messages.success(request, message)
    return redirect("institutions:user_edit", pk=subject.pk)


@require_POST
@role_required(Role.ADMIN)
def user_set_active(request: AuthedRequest, pk: int) -> HttpResponse:
    active = request.POST.get("active") == "1"

    def act(subject: User) -> str:
        services.user_set_active(
            actor=request.user, user=subject, active=active, reason=request.POST.get("reason", "")[:300]
        )
        return f"User {subject.username} was {'reactivated' if active else 'deactivated'}."

    return _user_action(request, pk, act)


@require_POST
@role_required(Role.ADMIN)
def user_password(request: AuthedRequest, pk: int) -> HttpResponse:
    form = PasswordResetForm(request.POST)

    def act(subject: User) -> str:
        if not form.is_valid():
            problems = [str(e) for errors in form.errors.values() for e in errors]
            raise services.AdminActionRefused(" ".join(problems))
        services.user_reset_password(
            actor=request.user,
            user=subject,
            password=form.cleaned_data["password1"],
            reason=form.cleaned_data["reason"],
        )
        return f"A new password was set for {subject.username}; their other sessions have ended."

    return _user_action(request, pk, act)


@require_POST
@role_required(Role.ADMIN)
def user_two_factor(request: AuthedRequest, pk: int) -> HttpResponse:
    def act(subject: User) -> str:
        removed = services.user_reset_two_factor(
            actor=request.user, user=subject, reason=request.POST.get("reason", "")[:300]
        )
        return (
            f"Two-factor reset for {subject.username}: {removed} device(s) removed; "
            "they set up a new authenticator at their next log-in."
        )

    return _user_action(request, pk, act)
