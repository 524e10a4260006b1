"""Upload pages: batches with their requests, responses and attempts; "send approved now"."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ckycportal.errors import PortalError
from ckycportal.views import show_refusal
from institutions.forms import InstitutionForm
from institutions.models import Institution, Role
from institutions.permissions import AuthedRequest, role_required

from . import selectors, services
from .institution import institution_configure
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


@role_required(Role.ADMIN, Role.AUDITOR)
def institution_settings(request: AuthedRequest) -> HttpResponse:
    institution = Institution.objects.order_by("pk").first()
    if request.user.is_auditor:  # auditors read the configuration; no form, nothing to post
        if request.method != "GET":
            raise PermissionDenied("Auditors read the settings; they cannot change them.")
        return render(
            request, "institutions/institution_detail.html", {"institution": institution, "read_only": True}
        )
    form = InstitutionForm(request.POST or None, instance=institution)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in InstitutionForm.Meta.fields}
        institution = institution_configure(
            actor=request.user, institution=institution, data=data, token=form.cleaned_data["new_token"]
        )
        messages.success(request, "Institution settings were saved.")
        return redirect("uploads:institution_settings")
    return render(request, "institutions/institution_form.html", {"form": form, "institution": institution})
