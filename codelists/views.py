"""The Codes page: every code list staff write codes from, read-only, for every signed-in user."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from institutions.permissions import AuthedRequest

from . import selectors

MAX_SEARCH_CHARS = 60


def code_reference(request: AuthedRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:MAX_SEARCH_CHARS]
    sections = selectors.code_list_sections(search=search)
    return render(
        request,
        "codelists/code_reference.html",
        {
            "sections": sections,
            "search": search,
            "matches": sum(len(s.entries) for s in sections if s.searchable),
        },
    )
