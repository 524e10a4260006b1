"""Fixtures for the API: a client at branch A (drafts), its token, and a JSON-posting helper."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import caches
from django.http import HttpResponse as Response
from django.test import Client

from api.models import ApiClient
from institutions.models import Branch
from tests.api.factories import make_client


@pytest.fixture(autouse=True)
def fresh_api_cache(settings: Any) -> None:
    """Rate-limit windows and refusal counts start empty in each test; moves list at once."""
    caches["api"].clear()
    settings.API_CHANGES_SETTLE_SECONDS = 0


@pytest.fixture
def cbs(branch_a: Branch) -> tuple[ApiClient, str]:
    """Core banking: an API client at branch A whose records arrive as drafts."""
    return make_client("cbs", branch_a)


class Api:
    """Django's test client with a bearer token; no session, no CSRF token, as a real client."""

    def __init__(self, token: str) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def post(self, path: str, body: Any, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        content_type = kwargs.pop("content_type", "application/json")
        return self.client.post(  # type: ignore[return-value]
            path, data, content_type=content_type, headers=self.headers(headers), **kwargs
        )

    def get(self, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
        return self.client.get(path, headers=self.headers(headers), **kwargs)  # type: ignore[return-value]


@pytest.fixture
def api(cbs: tuple[ApiClient, str]) -> Api:
    return Api(cbs[1])
