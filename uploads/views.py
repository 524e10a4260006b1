"""Upload pages: batches with their requests, responses and attempts; "send approved now"."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ckycportal.errors import PortalError
from ckycportal.views import show_refusal
from institutions.forms import InstitutionForm
from institutions.models import Institution, InstitutionChange, Role
from institutions.permissions import AuthedRequest, role_required

from . import selectors, services
from .institution import (
    InstitutionChangeRefused,
    active_admin_count,
    four_eyes_waived,
    institution_change_approve,
    institution_change_lines,
    institution_change_pending,
    institution_change_reject,
    institution_change_withdraw,
    institution_configure,
    institution_settings_save,
    institution_single_admin_set,
)
from .models import CANCELLABLE, BatchStatus, UploadBatch


def batch_list(request: AuthedRequest) -> HttpResponse:
    page = Paginator(selectors.batch_list(request.user), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "uploads/uploadbatch_list.html",
        {"page": page, "progress": selectors.upload_progress(request.user)},
    )


def progress(request: AuthedRequest) -> JsonResponse:
    """Today's upload progress, polled by the progress bar (static/js/progress.js)."""
    return JsonResponse(selectors.upload_progress(request.user))


def batch_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get(request.user, pk)
    detail = None
    if batch.response_detail is not None:
        detail = json.dumps(batch.response_detail, indent=2, ensure_ascii=False)
    return render(
        request,
        "uploads/uploadbatch_detail.html",
        {
            "batch": batch,
            "items": selectors.batch_items(batch),
            "attempts": batch.attempts.all(),
            "outcomes": selectors.batch_outcome_counts(batch),
            "detail_json": detail,
            "can_retry": batch.status in (BatchStatus.FAILED, BatchStatus.RETRY_WAIT),
            "can_cancel": batch.status in CANCELLABLE,
            "is_unknown": batch.status == BatchStatus.UNKNOWN,
            "history": selectors.batch_audit(batch),
        },
    )


@require_POST
@role_required(Role.CHECKER, Role.ADMIN)
def send_now(request: AuthedRequest) -> HttpResponse:
    services.request_assembly()
    messages.success(request, "Approved records are being assembled into batches and sent to KwikID now.")
    return redirect("uploads:list")


def _batch_action(request: AuthedRequest, pk: int, action: Callable[[UploadBatch], str]) -> HttpResponse:
    batch = selectors.batch_get(request.user, pk)
    try:
        messages.success(request, action(batch))
    except PortalError as exc:
        show_refusal(request, exc)
    return redirect("uploads:detail", pk=batch.pk)


@require_POST
@role_required(Role.ADMIN)
def batch_retry_now(request: AuthedRequest, pk: int) -> HttpResponse:
    def retry(batch: UploadBatch) -> str:
        services.batch_retry_now(actor=request.user, batch_id=batch.pk)
        return f"Batch {batch.pk} is being sent now."

    return _batch_action(request, pk, retry)


@require_POST
@role_required(Role.ADMIN)
def batch_cancel(request: AuthedRequest, pk: int) -> HttpResponse:
    def cancel(batch: UploadBatch) -> str:
        services.batch_cancel(actor=request.user, batch_id=batch.pk, reason=request.POST.get("reason", ""))
        return f"Batch {batch.pk} was cancelled; its records are back in the upload queue."

    return _batch_action(request, pk, cancel)


@require_POST
@role_required(Role.ADMIN)
def batch_resolve(request: AuthedRequest, pk: int) -> HttpResponse:
    def resolve(batch: UploadBatch) -> str:
        outcome = request.POST.get("outcome", "")
        services.batch_resolve_unknown(
            actor=request.user, batch_id=batch.pk, outcome=outcome, reason=request.POST.get("reason", "")
        )
        if outcome == "accepted":
            return f"Batch {batch.pk} was recorded as accepted by KwikID."
        return f"Batch {batch.pk} is being sent again."

    return _batch_action(request, pk, resolve)


def _settings_context(institution: Institution | None, *, read_only: bool = False) -> dict[str, Any]:
    """What the settings pages show beside the settings: the pending change and the four-eyes state."""
    change = institution_change_pending(institution) if institution else None
    admins = active_admin_count()
    return {
        "institution": institution,
        "read_only": read_only,
        "change": change,
        "change_lines": institution_change_lines(change, token_hints=not read_only) if change else [],
        "active_admins": admins,
        "four_eyes_waived": bool(institution and four_eyes_waived(institution)),
    }


# The service's error keys that are not the form's own field names.
FORM_FIELD_OF = {"api_token": "new_token"}


@role_required(Role.ADMIN, Role.AUDITOR)
def institution_settings(request: AuthedRequest) -> HttpResponse:
    institution = Institution.objects.order_by("pk").first()
    if request.user.is_auditor:  # auditors read the configuration; no form, nothing to post
        if request.method != "GET":
            raise PermissionDenied("Auditors read the settings; they cannot change them.")
        return render(
            request,
            "institutions/institution_detail.html",
            _settings_context(institution, read_only=True),
        )
    form = InstitutionForm(request.POST or None, instance=institution)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in InstitutionForm.Meta.fields}
        token, reason = form.cleaned_data["new_token"], form.cleaned_data["reason"]
        try:
            if institution is None:  # the first set-up: nothing is in use yet, nothing to leak
                institution_configure(actor=request.user, institution=None, data=data, token=token)
                change = None
            else:
                change = institution_settings_save(
                    actor=request.user, institution=institution, data=data, token=token, reason=reason
                )
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                field = FORM_FIELD_OF.get(field, field)
                form.add_error(field if field in form.fields else None, problems)
        except InstitutionChangeRefused as exc:
            form.add_error(None, exc.message)
        else:
            if change is None:
                messages.success(request, "Institution settings were saved.")
            else:
                messages.success(
                    request,
                    "Saved. The change of the KwikID connection or CERSAI codes applies when another "
                    "administrator approves it.",
                )
            return redirect("uploads:institution_settings")
    # The form wrote what was typed onto the instance: show the stored settings beside it.
    stored = Institution.objects.filter(pk=institution.pk).first() if institution else None
    return render(request, "institutions/institution_form.html", _settings_context(stored) | {"form": form})


def _change_action(request: AuthedRequest, pk: int, action: Callable[[int], str]) -> HttpResponse:
    institution = Institution.objects.order_by("pk").first()
    change = get_object_or_404(InstitutionChange, pk=pk, institution=institution)
    try:
        messages.success(request, action(change.pk))
    except PortalError as exc:
        show_refusal(request, exc, prefix="Not done: ")
    return redirect("uploads:institution_settings")


@require_POST
@role_required(Role.ADMIN)
def settings_change_approve(request: AuthedRequest, pk: int) -> HttpResponse:
    def approve(change_id: int) -> str:
        institution_change_approve(actor=request.user, change_id=change_id, note=request.POST.get("note", ""))
        return "The change was approved and is in use now."

    return _change_action(request, pk, approve)


@require_POST
@role_required(Role.ADMIN)
def settings_change_reject(request: AuthedRequest, pk: int) -> HttpResponse:
    def reject(change_id: int) -> str:
        institution_change_reject(actor=request.user, change_id=change_id, note=request.POST.get("note", ""))
        return "The change was rejected: nothing of it was applied."

    return _change_action(request, pk, reject)


@require_POST
@role_required(Role.ADMIN)
def settings_change_withdraw(request: AuthedRequest, pk: int) -> HttpResponse:
    def withdraw(change_id: int) -> str:
        institution_change_withdraw(actor=request.user, change_id=change_id)
        return "Your change was withdrawn: nothing of it was applied."

    return _change_action(request, pk, withdraw)


@require_POST
@role_required(Role.ADMIN)
def settings_single_admin(request: AuthedRequest) -> HttpResponse:
    current = Institution.objects.order_by("pk").first()
    if current is None:
        raise Http404("No institution is configured yet.")
    opt_out = request.POST.get("opt_out") == "on"
    try:
        institution_single_admin_set(
            actor=request.user, institution=current, opt_out=opt_out, reason=request.POST.get("reason", "")
        )
    except PortalError as exc:
        show_refusal(request, exc, prefix="Not done: ")
    else:
        messages.success(
            request,
            "Changes of the KwikID connection and CERSAI codes now apply without a second administrator."
            if opt_out
            else "Changes of the KwikID connection and CERSAI codes wait for a second administrator again.",
        )
    return redirect("uploads:institution_settings")
