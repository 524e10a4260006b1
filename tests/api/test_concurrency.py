"""Two requests at once: the database, not the order of arrival, decides, and neither gets a 500."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from api.models import IdempotentRequest
from institutions.models import Branch
from records.models import KycRecord
from tests.api.factories import make_client, record_object

URL = "/api/v1/records/"


def post_together(token: str, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[Any]:
    """POST each body from its own thread (and database connection), released at the same moment."""
    start = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            start.wait()
            answers[index] = Client().post(
                URL,
                json.dumps(bodies[index]),
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}", **headers},
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_the_same_keyed_request_twice_at_once_saves_once_and_answers_both_alike(branch_a: Branch) -> None:
    _, token = make_client("cbs", branch_a)
    body = {"branch_code": "BRA", "records": [record_object(n) for n in range(1, 21)]}

    first, second = post_together(token, [body, body], {"Idempotency-Key": "once"})

    assert (first.status_code, second.status_code) == (201, 201), (first.content, second.content)
    assert first.json() == second.json()
    assert KycRecord.objects.count() == 20
    assert IdempotentRequest.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_new_records_twice_at_once_without_a_key_is_one_save_and_one_409(branch_a: Branch) -> None:
    _, token = make_client("cbs", branch_a)
    body = {"branch_code": "BRA", "records": [record_object(n) for n in range(1, 21)]}

    answers = post_together(token, [body, body], {})

    assert sorted(a.status_code for a in answers) in ([201, 201], [201, 409])
    assert KycRecord.objects.count() == 20
