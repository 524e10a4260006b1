"""Record pages: thin views (role, form, one service call, redirect). Reads come from selectors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.views import second_factor_refusal, second_factor_required
from ckycportal.errors import ActionRefused, PortalError
from ckycportal.views import refusal_message, show_refusal
from codelists.selectors import code_book
from institutions.models import Role
from institutions.permissions import AuthedRequest, role_required
from kwikid.fields import FIELD_LABELS

from . import selectors, services
from .forms import KycRecordForm, ReturnForm, add_problems
from .listing import QUEUE_SORTS, RecordListForm
from .models import KycRecord, Status
from .validation import validate_record


def _list_form(request: AuthedRequest, **kwargs: Any) -> RecordListForm:
    user = request.user
    return RecordListForm(
        request.GET,
        branches=selectors.branch_choices(user),
        makers=selectors.maker_choices(user),
        **kwargs,
    )


def _page_links(request: AuthedRequest) -> str:
    """The query string of the current filters, without the page cursor (for next / previous links)."""
    params = request.GET.copy()
    for name in ("after", "before"):
        params.pop(name, None)
    return params.urlencode()


def record_list(request: AuthedRequest) -> HttpResponse:
    form = _list_form(request)
    query = form.list_query()
    page = selectors.record_page(request.user, query)
    context = {"form": form, "page": page, "query": query, "filters": _page_links(request)}
    return render(request, "records/kycrecord_list.html", context)


@role_required(Role.CHECKER)
def review_queue(request: AuthedRequest) -> HttpResponse:
    form = _list_form(request, sorts=QUEUE_SORTS)
    query = form.list_query()
    context = {
        "form": form,
        "page": selectors.review_queue_page(request.user, query),
        "query": query,
        "filters": _page_links(request),
        # The summary of the last bulk decision, shown once (post / redirect / get).
        "results": request.session.pop("review_results", None),
        "outcomes": services.REVIEW_OUTCOMES,
    }
    return render(request, "records/review_queue.html", context)


@require_POST
@role_required(Role.CHECKER)
def review_bulk(request: AuthedRequest) -> HttpResponse:
    ids = [int(v) for v in request.POST.getlist("record") if v.isdigit()]
    decision = request.POST.get("decision", "")
    if not ids:
        messages.error(request, "Tick the records to decide first.")
        return redirect("records:review_queue")
    try:
        results = services.records_review(
            actor=request.user, record_ids=ids, decision=decision, reason=request.POST.get("reason", "")
        )
    except PortalError as exc:
        show_refusal(request, exc)
        return redirect("records:review_queue")
    request.session["review_results"] = [asdict(r) for r in results]
    done = sum(r.outcome in ("approved", "returned") for r in results)
    verb = "approved" if decision == "approve" else "returned"
    messages.success(request, f"{done} of {len(results)} record{pluralize(len(results))} {verb}.")
    return redirect("records:review_queue")


def _save(
    request: AuthedRequest, form: KycRecordForm, record: KycRecord | None = None
) -> HttpResponse | None:
    """Save (and maybe submit) through the services; on any refusal put the reasons on the form.

    Save and submit are one unit: a record that fails submission is not left half-saved as a draft.
    """
    data = {k: v for k, v in form.cleaned_data.items() if k != "branch"}
    try:
        with transaction.atomic():
            if record is None:
                record = services.record_create(
                    actor=request.user, branch=form.cleaned_data["branch"], data=data
                )
            else:
                record = services.record_update(actor=request.user, record=record, data=data)
            if form.submitting:
                services.record_submit(actor=request.user, record=record)
    except services.RecordInvalid as exc:
        add_problems(form, exc.problems)
        return None
    except (PortalError, PermissionDenied) as exc:
        form.add_error(None, refusal_message(exc))
        return None
    if form.submitting:
        messages.success(request, f"Record {record.kyc_ref_no} was submitted for review.")
    else:
        messages.success(request, f"Draft {record.kyc_ref_no} was saved.")
    return redirect("records:detail", pk=record.pk)


@role_required(Role.MAKER)
def record_create(request: AuthedRequest) -> HttpResponse:
    branches = selectors.branch_list(request.user)
    if request.method == "POST":
        form = KycRecordForm(request.POST, branches=branches)
        if form.is_valid() and (response := _save(request, form)):
            return response
    else:
        form = KycRecordForm(branches=branches)
    return render(request, "records/kycrecord_form.html", {"form": form, "record": None})


@role_required(Role.MAKER)
@second_factor_required  # the form shows the record's personal data in clear
def record_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    record = selectors.record_get(request.user, pk)
    if not record.is_editable:
        messages.error(request, services.not_editable_message(record))
        return redirect("records:detail", pk=record.pk)
    branches = selectors.branch_list(request.user)
    if request.method == "POST":
        form = KycRecordForm(request.POST, instance=record, branches=branches)
        if form.is_valid() and (response := _save(request, form, record)):
            return response
    else:
        # The form shows the record's PII in clear: opening it counts as revealing it.
        services.record_reveal(actor=request.user, record=record, reason="Opened for editing")
        form = KycRecordForm(instance=record, branches=branches)
    return render(request, "records/kycrecord_form.html", {"form": form, "record": record})


def _revealed(request: AuthedRequest, record: KycRecord) -> bool:
    """Whether this session revealed the record's PII within the last few minutes (audited at the time)."""
    until = request.session.get("pii_revealed", {}).get(str(record.pk))
    return bool(until) and until > timezone.now().timestamp() and request.user.can_reveal_pii


@require_POST
def record_reveal(request: AuthedRequest, pk: int) -> HttpResponse:
    record = selectors.record_get(request.user, pk)
    if request.user.can_reveal_pii:  # a role that may not is refused by the service below
        back = reverse("records:detail", kwargs={"pk": record.pk})
        if refusal := second_factor_refusal(request, back):
            return refusal
    try:
        services.record_reveal(actor=request.user, record=record)
    except PermissionDenied as exc:
        show_refusal(request, exc)
        return redirect("records:detail", pk=record.pk)
    revealed = request.session.get("pii_revealed", {})
    now = timezone.now().timestamp()
    revealed = {key: until for key, until in revealed.items() if until > now}
    revealed[str(record.pk)] = now + services.REVEAL_SECONDS
    request.session["pii_revealed"] = revealed
    return redirect("records:detail", pk=record.pk)


def record_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    record = selectors.record_get(request.user, pk)
    revealed = _revealed(request, record)
    problems = validate_record(
        services.record_data(record), complete=True, today=timezone.localdate(), codes=code_book()
    )
    user = request.user
    is_own = user.pk in services.record_makers(record)
    can_review = user.is_checker and record.status == Status.SUBMITTED and not is_own
    context = {
        "record": record,
        "sections": selectors.record_sections(record, {p.field for p in problems}, reveal=revealed),
        "revealed": revealed,
        "problems": problems,
        "events": selectors.record_events(record, reveal=revealed),
        "uploads": selectors.record_uploads(record),
        "problem_count": sum(1 for p in problems if p.is_error),
        "return_form": ReturnForm() if can_review else None,
        "can_review": can_review,
        "is_own": is_own,
        "same_pan": selectors.same_pan_records(user, record),
        # The registry's KIN, masked like the other identifiers unless the record is revealed.
        "kin": record.ckyc_number if revealed else record.masked_kin,
        # A checker of the record's branch (record_get scoped it) or an admin may have it searched now.
        "can_check_now": record.status == Status.UPLOADED and (user.is_checker or user.is_portal_admin),
    }
    return render(request, "records/kycrecord_detail.html", context)


def _act(request: AuthedRequest, pk: int, action: Callable[[KycRecord], str]) -> HttpResponse:
    record = selectors.record_get(request.user, pk)
    try:
        message = action(record)
    except services.RecordInvalid as exc:
        labels = ", ".join(dict.fromkeys(FIELD_LABELS.get(p.field, p.field) for p in exc.problems))
        messages.error(request, f"Not done: {len(exc.problems)} field(s) need attention first: {labels}.")
    except (PortalError, PermissionDenied) as exc:
        show_refusal(request, exc)
    else:
        messages.success(request, message)
    return redirect("records:detail", pk=record.pk)


@require_POST
@role_required(Role.MAKER)
def record_submit(request: AuthedRequest, pk: int) -> HttpResponse:
    def submit(record: KycRecord) -> str:
        services.record_submit(actor=request.user, record=record)
        return f"Record {record.kyc_ref_no} was submitted for review."

    return _act(request, pk, submit)


@require_POST
@role_required(Role.MAKER)
def record_withdraw(request: AuthedRequest, pk: int) -> HttpResponse:
    def withdraw(record: KycRecord) -> str:
        services.record_withdraw(actor=request.user, record=record)
        return f"Record {record.kyc_ref_no} is a draft again and can be edited."

    return _act(request, pk, withdraw)


@require_POST
@role_required(Role.CHECKER, Role.MAKER)
def record_approve(request: AuthedRequest, pk: int) -> HttpResponse:
    # Makers reach the service too, which refuses them with a clear message (maker-checker).
    def approve(record: KycRecord) -> str:
        services.record_approve(actor=request.user, record=record)
        return f"Record {record.kyc_ref_no} was approved and will be uploaded."

    return _act(request, pk, approve)


@require_POST
@role_required(Role.CHECKER, Role.MAKER)
def record_return(request: AuthedRequest, pk: int) -> HttpResponse:
    form = ReturnForm(request.POST)

    def send_back(record: KycRecord) -> str:
        if not form.is_valid():
            # The form's own message (an empty reason, or a full Aadhaar number in it).
            raise ActionRefused(" ".join(str(e) for e in form.errors.get("reason", ["Say why."])))
        services.record_return(actor=request.user, record=record, reason=form.cleaned_data["reason"])
        return f"Record {record.kyc_ref_no} was returned to its maker."

    return _act(request, pk, send_back)
