"""Dashboard, audit log and notifications: thin views over reports.dashboard, reports.audit,
reports.selectors (notifications) and reports.services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from bulkdata.exports import csv_response
from institutions.models import Branch, Role
from institutions.permissions import AuthedRequest, role_required
from records import selectors as record_selectors
from records.models import Status
from uploads import selectors as upload_selectors

from . import audit, charts, selectors, services
from .dashboard import dashboard_cached, sending_batches
from .forms import AuditFilterForm


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def dashboard(request: AuthedRequest) -> HttpResponse:
    user = request.user
    data = dashboard_cached(user, branch_id=_int(request.GET.get("branch")))
    labels = dict(Status.choices)
    context: dict[str, Any] = {
        "data": data,
        "statuses": [(value, labels[value], data.counts[value]) for value in Status.values],
        "status_chart": charts.status_chart([labels[v] for v in Status.values], list(data.counts.values())),
        "daily_chart": charts.daily_chart(
            [f"{row['day']:%d %b}" for row in data.daily],
            [row["accepted"] for row in data.daily],
            [row["rejected"] for row in data.daily],
        ),
        "queue_count": record_selectors.review_queue(user).count() if user.is_checker else None,
        "progress": upload_selectors.upload_progress(user),
        "sending": list(sending_batches(user, data.branch)[:10]),
    }
    return render(request, "reports/dashboard.html", context)


def _audit_filters(request: AuthedRequest) -> tuple[AuditFilterForm, audit.AuditFilters]:
    branches = record_selectors.branch_list(request.user).order_by("code")
    form = AuditFilterForm(request.GET or None, branches=branches)
    if request.GET and form.is_valid():
        data = form.cleaned_data
        branch: Branch | None = data["branch"]
        return form, audit.AuditFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            actor=data["actor"].strip(),
            action=data["action"],
            branch=branch,
            ref=data["ref"].strip(),
        )
    return form, audit.AuditFilters()


@role_required(Role.ADMIN, Role.AUDITOR)
def audit_log(request: AuthedRequest) -> HttpResponse:
    form, filters = _audit_filters(request)
    if form.is_bound and not form.is_valid():
        return render(request, "reports/audit_log.html", {"form": form, "rows": [], "query": {}}, status=400)
    after = audit.parse_cursor(request.GET.get("after", ""))
    rows, last = audit.audit_page(request.user, filters, after=after)
    context = {
        "form": form,
        "rows": rows,
        "next_cursor": last.cursor if last else "",
        "query": filters.as_query(),
        "paged": after is not None,
    }
    return render(request, "reports/audit_log.html", context)


@role_required(Role.ADMIN, Role.AUDITOR)
def audit_export(request: AuthedRequest) -> HttpResponse:
    form, filters = _audit_filters(request)
    if form.is_bound and not form.is_valid():
        return render(request, "reports/audit_log.html", {"form": form, "rows": [], "query": {}}, status=400)
    header = ("time", "source", "action", "user", "branch", "object", "from", "to", "changes", "reason")
    rows = (
        (
            timezone.localtime(row.created_at).isoformat(),
            "record" if row.source == audit.RECORD else "configuration",
            row.action_label,
            row.actor,
            row.branch,
            row.object_label,
            row.from_status,
            row.to_status,
            "; ".join(row.changes),
            row.reason,
        )
        for row in audit.audit_rows(request.user, filters)
    )
    # A StreamingHttpResponse is no HttpResponse to the type checker, but Django serves both alike.
    return csv_response(f"audit-log-{timezone.localdate():%Y%m%d}.csv", header, rows)  # type: ignore[return-value]


def notification_list(request: AuthedRequest) -> HttpResponse:
    page = Paginator(selectors.notification_list(request.user), 30).get_page(request.GET.get("page"))
    return render(request, "reports/notification_list.html", {"page": page})


@require_POST
def notification_read(request: AuthedRequest, pk: int) -> HttpResponse:
    services.notification_mark_read(user=request.user, notification_id=pk)
    return redirect("reports:notifications")


@require_POST
def notifications_read_all(request: AuthedRequest) -> HttpResponse:
    count = services.notification_mark_read(user=request.user)
    messages.success(request, f"{count} notification(s) marked as read.")
    return redirect("reports:notifications")
