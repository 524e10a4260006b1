"""Request bodies: nobody signed out gets an upload parsed (or written to a temporary file), and no body
above the portal's cap is read at all."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client
from django.urls import reverse

from bulkdata.parsers import MAX_UPLOAD_BYTES
from institutions.models import Branch, User
from tests.conftest import PASSWORD, otp_login

pytestmark = pytest.mark.django_db


class RecordingUploadHandler(FileUploadHandler):
    """Counts the bytes of uploaded files that reach Django's upload handlers (temporary files included)."""

    received: ClassVar[list[int]] = []

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received.append(len(raw_data))
        return None

    def file_complete(self, file_size: int) -> None:
        return None


@pytest.fixture
def recording(settings: Any) -> list[int]:
    RecordingUploadHandler.received.clear()
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.RecordingUploadHandler"]
    return RecordingUploadHandler.received


def anonymous_client_with_csrf_token() -> tuple[Client, str]:
    """A signed-out browser that loaded the log-in page: it holds a valid CSRF cookie and token."""
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))
    return client, client.cookies["csrftoken"].value


def test_anonymous_upload_is_refused_before_its_body_is_read(recording: list[int], branch_a: Branch) -> None:
    client, token = anonymous_client_with_csrf_token()

    response = client.post(
        reverse("bulkdata:import_start"),
        {"file": SimpleUploadedFile("records.csv", b"x" * 200_000), "branch": branch_a.pk},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert recording == []


def test_anonymous_upload_to_a_page_without_log_in_is_held_to_the_form_cap(
    recording: list[int], settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client, token = anonymous_client_with_csrf_token()

    response = client.post(
        reverse("login"),
        {"file": SimpleUploadedFile("x.bin", b"x" * 20_000), "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 413
    assert recording == []


def test_anonymous_log_in_form_is_still_read(alice: User) -> None:
    client, token = anonymous_client_with_csrf_token()

    response = client.post(
        reverse("login"),
        {"username": alice.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    assert response["Location"] != reverse("login")


def test_signed_in_maker_still_uploads(recording: list[int], alice: User, branch_a: Branch) -> None:
    client = Client()
    otp_login(client, alice)

    client.post(
        reverse("bulkdata:import_start"),
        {"file": SimpleUploadedFile("records.csv", b"x" * 1000), "branch": branch_a.pk},
    )

    assert sum(recording) == 1000


def test_body_above_the_cap_is_refused_unread(
    recording: list[int], settings: Any, alice: User, branch_a: Branch
) -> None:
    settings.PORTAL_MAX_REQUEST_BYTES = 10_000
    client = Client()
    otp_login(client, alice)

    response = client.post(
        reverse("bulkdata:import_start"),
        {"file": SimpleUploadedFile("records.csv", b"x" * 20_000), "branch": branch_a.pk},
    )

    assert response.status_code == 413
    assert recording == []


def test_cap_leaves_room_for_the_largest_import() -> None:
    from django.conf import settings

    assert settings.PORTAL_MAX_REQUEST_BYTES >= MAX_UPLOAD_BYTES + 64 * 1024


def test_one_file_per_request() -> None:
    from django.conf import settings

    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 1
