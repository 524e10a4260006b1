"""Property-based run of the served OpenAPI document (schemathesis): no request it makes gets a 500, and
every answer (status, content type, headers, body) matches the document.

Requests go through Django's WSGI application inside the test's own database transaction. Each operation
gets valid requests (as the document describes them) and invalid ones (what it forbids), a bounded number
of each so the run takes well under a minute. The client's rate limit is lifted: this tests the endpoints,
not the limiter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from institutions.models import Branch
from tests.api.factories import make_client, record_object

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("POST", "/api/v1/records/"),
    ("GET", "/api/v1/records/"),
    ("GET", "/api/v1/records/{kyc_ref_no}"),
]


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    """The served document, bound to the WSGI application. As Django's test client does, a request must
    not close the test's database connection (and with it the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_answers_as_its_document_says(
    api_schema: Any, branch_a: Branch, method: str, path: str, mode: GenerationMode
) -> None:
    _, token = make_client("schemathesis", branch_a, rate_limit_per_minute=100_000)
    headers = {"Authorization": f"Bearer {token}"}
    # A real record, read back and listed: what random references and cursors rarely reach.
    records = api_schema["/api/v1/records/"]
    body = {"branch_code": "BRA", "records": [record_object(1)]}
    records["POST"].Case(body=body, media_type="application/json").call_and_validate(
        headers=headers, checks=CHECKS
    )
    records["GET"].Case(query={"limit": 10}).call_and_validate(headers=headers, checks=CHECKS)
    record = api_schema["/api/v1/records/{kyc_ref_no}"]["GET"]
    record.Case(path_parameters={"kyc_ref_no": "CBS-000001"}).call_and_validate(
        headers=headers, checks=CHECKS
    )
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
