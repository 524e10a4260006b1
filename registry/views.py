"""The reconciliation page, its exports, and "check now": thin views over registry.selectors and
registry.services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_POST

from ckycportal.errors import PortalError
from ckycportal.tabular import csv_response, xlsx_response
from ckycportal.views import show_refusal
from institutions.models import Role
from institutions.permissions import AuthedRequest, role_required
from records import selectors as record_selectors

from . import selectors, services
from .selectors import Reconciliation

# Who follows registration: the reviewers of each branch, the administrators and the auditors.
RECONCILIATION_ROLES = (Role.CHECKER, Role.ADMIN, Role.AUDITOR)


@role_required(*RECONCILIATION_ROLES)
def reconciliation(request: AuthedRequest) -> HttpResponse:
    data = selectors.reconciliation_get(request.user)
    return render(request, "registry/reconciliation.html", {"data": data})


def _table(data: Reconciliation) -> tuple[list[str], Iterator[list[Any]]]:
    """The page's table as a file: a row per branch and one for their total, a column per figure."""
    header = ["branch_code", "branch_name", *(bucket.key for bucket in data.buckets)]

    def rows() -> Iterator[list[Any]]:
        for row in [*data.branches, data.total]:
            yield [row.code, row.name, *(cell.count for cell in row.cells)]

    return header, rows()


@role_required(*RECONCILIATION_ROLES)
def reconciliation_export_csv(request: AuthedRequest) -> HttpResponse:
    data = selectors.reconciliation_get(request.user)
    header, rows = _table(data)
    # A StreamingHttpResponse is no HttpResponse to the type checker, but Django serves both alike.
    return csv_response(f"registration-{data.today:%Y%m%d}.csv", header, rows)  # type: ignore[return-value]


@role_required(*RECONCILIATION_ROLES)
def reconciliation_export_xlsx(request: AuthedRequest) -> HttpResponse:
    data = selectors.reconciliation_get(request.user)
    header, rows = _table(data)
    return xlsx_response(  # type: ignore[return-value]  # a FileResponse, served like an HttpResponse
        f"registration-{data.today:%Y%m%d}.xlsx", header, rows, title="Registration"
    )


@require_POST
@role_required(Role.CHECKER, Role.ADMIN)
def check_record(request: AuthedRequest, pk: int) -> HttpResponse:
    """Search the registry for one accepted record now (another branch's record is a 404)."""
    record = record_selectors.record_get(request.user, pk)
    try:
        services.record_check_now(actor=request.user, record_id=record.pk)
    except (PortalError, PermissionDenied) as exc:
        show_refusal(request, exc, prefix="Not checked: ")
    else:
        messages.success(
            request, f"Record {record.kyc_ref_no} will be searched at the registry within a minute or two."
        )
    return redirect("records:detail", pk=record.pk)


@require_POST
@role_required(Role.ADMIN)
def check_bucket(request: AuthedRequest, key: str) -> HttpResponse:
    """Make every waiting record of one of the page's figures due now; the next pass searches them."""
    bucket = selectors.bucket_get(key, today=timezone.localdate())
    if bucket is None or not bucket.waiting:
        raise Http404("No such figure of waiting records.")
    ids = list(selectors.bucket_records(request.user, bucket).values_list("pk", flat=True))
    try:
        count = services.records_check_now(actor=request.user, record_ids=ids)
    except (PortalError, PermissionDenied) as exc:
        show_refusal(request, exc, prefix="Not checked: ")
    else:
        messages.success(
            request,
            f"{count} record{pluralize(count)} ({bucket.label.lower()}) will be searched in the next pass, "
            "within the day's cap of searches.",
        )
    return redirect("registry:reconciliation")
