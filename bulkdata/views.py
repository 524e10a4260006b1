"""Import pages (makers: upload -> preview of every problem -> confirm) and exports (every role, scoped)."""

from __future__ import annotations

import tempfile
from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.views import second_factor_refusal
from ckycportal.errors import PortalError
from ckycportal.views import refusal_message, show_refusal
from codelists.selectors import code_book
from institutions.models import Role
from institutions.permissions import AuthedRequest, role_required
from records import selectors as record_selectors
from records.listing import RecordListForm

from . import exports, selectors, services, template
from .forms import ConfirmForm, ImportForm
from .models import JOB_TRANSITIONS, JobStatus
from .parsers import (
    CODE_SHEET_PREFIX,
    COLUMNS,
    EXAMPLE_REF,
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    MAX_XLSX_BYTES,
)


def _file(response: HttpResponseBase) -> HttpResponse:
    # A streamed CSV or a workbook: views are typed as returning HttpResponse (role_required).
    return cast(HttpResponse, response)


@role_required(Role.MAKER)
def import_start(request: AuthedRequest) -> HttpResponse:
    branches = record_selectors.branch_list(request.user)
    form = ImportForm(request.POST or None, request.FILES or None, branches=branches)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_job_create(
                actor=request.user,
                branch=form.cleaned_data["branch"],
                upload=form.cleaned_data["file"],
                submit=form.cleaned_data["submit"],
            )
        except PortalError as exc:
            form.add_error("file", refusal_message(exc))
        else:
            services.import_job_start_check(job=job)
            return redirect("bulkdata:import_detail", pk=job.pk)
    return render(
        request,
        "bulkdata/import_start.html",
        {
            "form": form,
            "jobs": selectors.job_list(request.user)[:10],
            "limits": {
                "upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
                "xlsx_mb": MAX_XLSX_BYTES // (1024 * 1024),
                "rows": MAX_ROWS,
            },
            "example_ref": EXAMPLE_REF,
            "code_sheet_prefix": CODE_SHEET_PREFIX,
            "optional_columns": [
                (name, note) for name, note, required in template.column_notes() if not required
            ],
        },
    )


@role_required(Role.MAKER)
def import_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(request.user, pk)
    page = Paginator(selectors.job_problems(job), 100).get_page(request.GET.get("page"))
    return render(
        request,
        "bulkdata/import_detail.html",
        {
            "job": job,
            "page": page,
            "running": job.is_running,
            "stalled": job.is_running
            and job.lease_expires_at is not None
            and job.lease_expires_at < timezone.now(),
            "can_confirm": job.status == JobStatus.CHECKED and job.rows_valid > 0,
            "can_discard": JobStatus.DISCARDED in JOB_TRANSITIONS[job.status],
            "has_error_file": job.rows_invalid > 0 and job.file_deleted_at is None,
        },
    )


@role_required(Role.MAKER)
def import_progress(request: AuthedRequest, pk: int) -> JsonResponse:
    """The job's progress, polled by static/js/import_progress.js."""
    job = selectors.job_get(request.user, pk)
    return JsonResponse(
        {
            "status": job.status,
            "label": job.get_status_display(),
            "running": job.is_running,
            "done": job.rows_done,
            "total": job.rows_total if job.status == JobStatus.IMPORTING else 0,
        }
    )


@require_POST
@role_required(Role.MAKER)
def import_confirm(request: AuthedRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(request.user, pk)
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to import all records or only the valid ones.")
        return redirect("bulkdata:import_detail", pk=job.pk)
    try:
        # A small file is imported by now; a larger one is queued for a worker.
        job = services.import_job_confirm(actor=request.user, job=job, mode=form.cleaned_data["mode"])
    except PortalError as exc:
        show_refusal(request, exc)
        return redirect("bulkdata:import_detail", pk=job.pk)
    if job.status == JobStatus.IMPORTED:
        created = job.records_created
        messages.success(request, f"{created} record{'s' if created != 1 else ''} imported.")
    return redirect("bulkdata:import_detail", pk=job.pk)


@require_POST
@role_required(Role.MAKER)
def import_discard(request: AuthedRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(request.user, pk)
    try:
        services.import_job_discard(actor=request.user, job=job)
    except PortalError as exc:
        show_refusal(request, exc)
        return redirect("bulkdata:import_detail", pk=job.pk)
    messages.success(request, f"The uploaded file {job.filename} was deleted.")
    return redirect("bulkdata:import_start")


@require_POST
@role_required(Role.MAKER)
def import_retry(request: AuthedRequest, pk: int) -> HttpResponse:
    """Ring again for a job whose worker stopped (its lease ran out); the services decide if it runs."""
    job = services.import_job_retry(job=selectors.job_get(request.user, pk))
    messages.info(request, "The import was queued again.")
    return redirect("bulkdata:import_detail", pk=job.pk)


@role_required(Role.MAKER)
def import_errors(request: AuthedRequest, pk: int) -> HttpResponse:
    """The invalid rows as uploaded plus an ``errors`` column: fix them and upload this file again."""
    job = selectors.job_get(request.user, pk)
    if job.file_deleted_at is not None or not job.rows_invalid:
        messages.error(
            request,
            "The uploaded file was deleted (imports keep it for a day)."
            if job.file_deleted_at
            else "This import has no invalid rows.",
        )
        return redirect("bulkdata:import_detail", pk=job.pk)
    stem = job.filename.rsplit(".", 1)[0][:80] or "import"
    rows = selectors.job_error_rows(job)
    if job.file_format == "xlsx":
        return _file(
            exports.xlsx_response(f"{stem}-errors.xlsx", selectors.ERROR_HEADER, rows, title="Errors")
        )
    return _file(exports.csv_response(f"{stem}-errors.csv", selectors.ERROR_HEADER, rows))


@role_required(Role.MAKER)
def template_csv(request: AuthedRequest) -> HttpResponse:
    """The columns and the example row (skipped on import); ``?example=no`` for the header alone."""
    rows = [] if request.GET.get("example") == "no" else [template.example_row()]
    return _file(exports.csv_response("kyc-records-template.csv", COLUMNS, rows))


@role_required(Role.MAKER)
def template_xlsx(request: AuthedRequest) -> HttpResponse:
    """The Records sheet with the example row, and one sheet per code list (the import ignores those)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    template.write_template_xlsx(spool, book=code_book())
    spool.seek(0)
    return _file(
        FileResponse(
            spool,
            as_attachment=True,
            filename="kyc-records-template.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    )


# --- exports --------------------------------------------------------------------------------------------


def _records_export(request: AuthedRequest, file_format: str, *, second_factor: str = "") -> HttpResponse:
    """The records list's rows as a file; with ``second_factor`` (the verified device's persistent id),
    personal data in clear."""
    user = request.user
    unmasked = bool(second_factor)
    # The records list's own filters and search, from the same query string (an invalid one is ignored);
    # the unmasked export's form posts to a URL that carries the list's query string.
    form = RecordListForm(
        request.GET,
        branches=record_selectors.branch_choices(user),
        makers=record_selectors.maker_choices(user),
    )
    query = form.list_query()
    # The list reads a few columns only; an export needs every field.
    records = record_selectors.record_search(user, query).defer(None)
    filters = {name: str(value) for name, value in form.cleaned_data.items() if value not in (None, "")}
    services.records_export_audit(
        actor=user,
        unmasked=unmasked,
        file_format=file_format,
        filters=filters,
        count=records.count(),
        second_factor=second_factor,
    )
    rows = exports.record_rows(records, unmasked=unmasked)
    stamp = f"{timezone.localdate():%Y%m%d}"
    if file_format == "xlsx":
        return _file(
            exports.xlsx_response(f"kyc-records-{stamp}.xlsx", exports.RECORD_HEADER, rows, title="Records")
        )
    return _file(exports.csv_response(f"kyc-records-{stamp}.csv", exports.RECORD_HEADER, rows))


def _list_filters(request: AuthedRequest) -> str:
    """The records list with the query string's filters (without ``unmasked``)."""
    params = request.GET.copy()
    params.pop("unmasked", None)
    url = reverse("records:list")
    return f"{url}?{params.urlencode()}" if params else url


def _masked_export(request: AuthedRequest, file_format: str) -> HttpResponse:
    if "unmasked" in request.GET:
        # A link cannot export personal data in clear: that is a POST, behind the second factor.
        messages.error(request, UNMASKED_IS_A_POST)
        return redirect(_list_filters(request))
    return _records_export(request, file_format)


def _unmasked_export(request: AuthedRequest, file_format: str) -> HttpResponse:
    if not request.user.can_reveal_pii:
        raise PermissionDenied("Your role sees personal data masked.")
    if refusal := second_factor_refusal(request, _list_filters(request)):
        return refusal
    device = request.user.otp_device  # type: ignore[attr-defined]  # set by django_otp's OTPMiddleware
    return _records_export(request, file_format, second_factor=device.persistent_id)


UNMASKED_IS_A_POST = (
    "Files with personal data in clear are made with the Export menu's buttons on this page "
    "(after your two-factor code), not through a link."
)


def export_records_csv(request: AuthedRequest) -> HttpResponse:
    return _masked_export(request, "csv")


def export_records_xlsx(request: AuthedRequest) -> HttpResponse:
    return _masked_export(request, "xlsx")


@require_POST
def export_records_unmasked_csv(request: AuthedRequest) -> HttpResponse:
    return _unmasked_export(request, "csv")


@require_POST
def export_records_unmasked_xlsx(request: AuthedRequest) -> HttpResponse:
    return _unmasked_export(request, "xlsx")


def _batches_export(request: AuthedRequest, file_format: str) -> HttpResponse:
    rows: Any = exports.batch_rows(request.user)
    stamp = f"{timezone.localdate():%Y%m%d}"
    if file_format == "xlsx":
        return _file(
            exports.xlsx_response(f"upload-batches-{stamp}.xlsx", exports.BATCH_HEADER, rows, title="Batches")
        )
    return _file(exports.csv_response(f"upload-batches-{stamp}.csv", exports.BATCH_HEADER, rows))


def export_batches_csv(request: AuthedRequest) -> HttpResponse:
    return _batches_export(request, "csv")


def export_batches_xlsx(request: AuthedRequest) -> HttpResponse:
    return _batches_export(request, "xlsx")
