"""Upload pages: batches with their requests, responses and attempts; "send approved now"."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from institutions.models import Role
from institutions.permissions import AuthedRequest, role_required

from . import selectors, services


def batch_list(request: AuthedRequest) -> HttpResponse:
    page = Paginator(selectors.batch_list(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "uploads/uploadbatch_list.html", {"page": page})


def batch_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get(request.user, pk)
    return render(
        request,
        "uploads/uploadbatch_detail.html",
        {"batch": batch, "items": selectors.batch_items(batch), "attempts": batch.attempts.all()},
    )


@require_POST
@role_required(Role.CHECKER, Role.ADMIN)
def send_now(request: AuthedRequest) -> HttpResponse:
    services.request_assembly()
    messages.success(request, "Approved records are being assembled into batches and sent to KwikID now.")
    return redirect("uploads:list")
