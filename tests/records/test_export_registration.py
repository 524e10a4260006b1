"""The records export's registration columns: the KIN (masked unless unmasked), accepted_on, registered_on."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.test import Client
from django.utils import timezone

from institutions.models import Branch, Role, User
from tests.conftest import make_user, new_record, otp_login
from tests.records.registration import accepted, registered

pytestmark = pytest.mark.django_db

KIN = "60012345678901"


def csv_rows(client: Client, url: str, method: str = "GET") -> list[dict[str, str]]:
    response = client.post(url) if method == "POST" else client.get(url)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def client_for(user: User) -> Client:
    client = Client()
    otp_login(client, user)
    return client


def test_csv_has_the_kin_masked_and_the_acceptance_and_registration_days(
    alice: User, branch_a: Branch
) -> None:
    registered(new_record(alice, branch_a, 1), KIN, days_ago=4)
    accepted(new_record(alice, branch_a, 2), days_ago=1)
    new_record(alice, branch_a, 3)
    today = timezone.localdate()

    rows = {row["kyc_ref_no"]: row for row in csv_rows(client_for(alice), "/data/exports/records.csv")}

    assert rows["REF-BRA-000001"]["ckyc_number"] == "XXXXXXXXXX8901"
    assert rows["REF-BRA-000001"]["accepted_on"] == (today - timedelta(days=4)).isoformat()
    assert rows["REF-BRA-000001"]["registered_on"] == today.isoformat()
    assert rows["REF-BRA-000002"]["ckyc_number"] == ""
    assert rows["REF-BRA-000002"]["accepted_on"] == (today - timedelta(days=1)).isoformat()
    assert rows["REF-BRA-000002"]["registered_on"] == ""
    assert (rows["REF-BRA-000003"]["accepted_on"], rows["REF-BRA-000003"]["registered_on"]) == ("", "")


def test_unmasked_csv_has_the_kin_in_clear(alice: User, branch_a: Branch) -> None:
    registered(new_record(alice, branch_a, 1), KIN)

    rows = csv_rows(client_for(alice), "/data/exports/records-unmasked.csv", method="POST")

    assert rows[0]["ckyc_number"] == KIN


def test_xlsx_has_the_same_columns_and_masks_the_kin_for_an_auditor(alice: User, branch_a: Branch) -> None:
    registered(new_record(alice, branch_a, 1), KIN, days_ago=2)
    auditor = client_for(make_user("ivan", Role.AUDITOR))

    response = auditor.get("/data/exports/records.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    header, row = [list(r) for r in sheet.iter_rows(values_only=True)][:2]
    values = dict(zip(header, row, strict=True))

    assert values["ckyc_number"] == "XXXXXXXXXX8901"
    assert values["accepted_on"] is not None
    assert values["accepted_on"].date() == timezone.localdate() - timedelta(days=2)
    assert values["registered_on"].date() == timezone.localdate()
