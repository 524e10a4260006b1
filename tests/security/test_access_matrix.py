"""Who may open what: every URL of the portal x every role x own branch / other branch.

The URL list is read from the URL configuration, so a new page without an entry in EXPECTED fails
test_every_portal_url_has_an_expectation and cannot be forgotten.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from institutions.models import Branch, Institution, Role, User
from records import services
from records.models import KycRecord
from tests.conftest import make_user, new_record, otp_login
from uploads.models import UploadBatch

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "maker", "checker", "admin", "auditor")
# Third-party or framework pages with their own protection, outside the portal's matrix.
NOT_PORTAL = ("admin", "login", "logout", "password_", "healthz")

OK, REDIRECT, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = 200, 302, 403, 404, 405
ANON = REDIRECT  # to the login page
# An institution change: admins only; one of another institution is not found.
CHANGE_DECIDED = (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN)
CHANGE_NOT_FOUND = (ANON, FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN)

# (url name, method, scope) -> expected status per role, in ROLES order. Scope: which branch's object the
# URL names ("own" = the maker's and checker's branch A, "other" = branch B) or "-" for none.
EXPECTED: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("reports:dashboard", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("records:list", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("records:create", "GET", "-"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:review_queue", "GET", "-"): (ANON, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    ("records:review_bulk", "POST", "-"): (ANON, FORBIDDEN, REDIRECT, FORBIDDEN, FORBIDDEN),
    ("records:detail", "GET", "own"): (ANON, OK, OK, OK, OK),
    ("records:detail", "GET", "other"): (ANON, NOT_FOUND, NOT_FOUND, OK, OK),
    # The world's records are submitted, so the maker is sent to the record (it is not editable).
    ("records:edit", "GET", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:edit", "GET", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:submit", "POST", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:submit", "POST", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:withdraw", "POST", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("records:withdraw", "POST", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    # Makers reach the approve/return views so the service can tell them why not (maker-checker).
    ("records:approve", "POST", "own"): (ANON, REDIRECT, REDIRECT, FORBIDDEN, FORBIDDEN),
    ("records:approve", "POST", "other"): (ANON, NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN),
    ("records:return", "POST", "own"): (ANON, REDIRECT, REDIRECT, FORBIDDEN, FORBIDDEN),
    ("records:return", "POST", "other"): (ANON, NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN),
    ("records:reveal", "POST", "own"): (ANON, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    ("records:reveal", "POST", "other"): (ANON, NOT_FOUND, NOT_FOUND, REDIRECT, REDIRECT),
    ("uploads:list", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("uploads:progress", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("uploads:detail", "GET", "own"): (ANON, OK, OK, OK, OK),
    ("uploads:detail", "GET", "other"): (ANON, NOT_FOUND, NOT_FOUND, OK, OK),
    ("uploads:send_now", "POST", "-"): (ANON, FORBIDDEN, REDIRECT, REDIRECT, FORBIDDEN),
    ("uploads:retry_now", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:retry_now", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:cancel", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:cancel", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:resolve", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:resolve", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("uploads:institution_settings", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, OK),  # auditors read
    # A pending change of the KwikID connection or CERSAI codes, decided by another admin (withdrawn by its
    # proposer, here someone else: refused with a message). "own" = a change of the portal's institution,
    # "other" = a change of another institution: not found.
    ("uploads:institution_change_approve", "POST", "own"): CHANGE_DECIDED,
    ("uploads:institution_change_approve", "POST", "other"): CHANGE_NOT_FOUND,
    ("uploads:institution_change_reject", "POST", "own"): CHANGE_DECIDED,
    ("uploads:institution_change_reject", "POST", "other"): CHANGE_NOT_FOUND,
    ("uploads:institution_change_withdraw", "POST", "own"): CHANGE_DECIDED,
    ("uploads:institution_change_withdraw", "POST", "other"): CHANGE_NOT_FOUND,
    ("uploads:institution_single_admin", "POST", "-"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    # Branch and user administration: admins only ("own"/"other" = branch A/B, or a user of branch A/B).
    ("institutions:branch_list", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, OK),  # auditors read
    ("institutions:branch_create", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("institutions:branch_edit", "GET", "own"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("institutions:branch_set_active", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("institutions:user_list", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, OK),  # auditors read
    ("institutions:user_create", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("institutions:user_edit", "GET", "own"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("institutions:user_set_active", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("institutions:user_password", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("institutions:user_two_factor", "POST", "other"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    # Reports: the audit log is for admins and auditors; everyone has their own notifications.
    ("reports:audit_log", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, OK),
    ("reports:audit_export", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, OK),
    ("reports:notifications", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("reports:notifications_read_all", "POST", "-"): (ANON, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    ("reports:notification_read", "POST", "own"): (ANON, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    # Every role here has a device: enrolling another one starts with the password and a current code.
    ("accounts:otp_enrol", "GET", "-"): (ANON, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    ("accounts:otp_replace", "GET", "-"): (ANON, OK, OK, OK, OK),
    # Already verified (every role logs in with its second factor here): sent on to the page asked for.
    ("accounts:otp_verify", "GET", "-"): (ANON, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    # Imports are makers' (a job is its uploader's alone); exports are for everyone, scoped and masked.
    ("bulkdata:import_start", "GET", "-"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:template_csv", "GET", "-"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:template_xlsx", "GET", "-"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_detail", "GET", "own"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_detail", "GET", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_progress", "GET", "own"): (ANON, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_progress", "GET", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_errors", "GET", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_errors", "GET", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_confirm", "POST", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_confirm", "POST", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_retry", "POST", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_retry", "POST", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_discard", "POST", "own"): (ANON, REDIRECT, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:import_discard", "POST", "other"): (ANON, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("bulkdata:export_records_csv", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("bulkdata:export_records_xlsx", "GET", "-"): (ANON, OK, OK, OK, OK),
    # Personal data in clear: the roles that may reveal it, by POST, after the second factor.
    ("bulkdata:export_records_unmasked_csv", "POST", "-"): (ANON, OK, OK, FORBIDDEN, FORBIDDEN),
    ("bulkdata:export_records_unmasked_xlsx", "POST", "-"): (ANON, OK, OK, FORBIDDEN, FORBIDDEN),
    ("bulkdata:export_batches_csv", "GET", "-"): (ANON, OK, OK, OK, OK),
    ("bulkdata:export_batches_xlsx", "GET", "-"): (ANON, OK, OK, OK, OK),
    # The code reference is read-only and holds no customer data: every signed-in user.
    ("codelists:reference", "GET", "-"): (ANON, OK, OK, OK, OK),
    # Registration at CKYCR: checkers, admins and auditors follow it; a checker of the record's branch or an
    # admin has one record searched now, an admin a whole waiting figure.
    ("registry:reconciliation", "GET", "-"): (ANON, FORBIDDEN, OK, OK, OK),
    ("registry:export_csv", "GET", "-"): (ANON, FORBIDDEN, OK, OK, OK),
    ("registry:export_xlsx", "GET", "-"): (ANON, FORBIDDEN, OK, OK, OK),
    ("registry:check_record", "POST", "own"): (ANON, FORBIDDEN, REDIRECT, REDIRECT, FORBIDDEN),
    ("registry:check_record", "POST", "other"): (ANON, FORBIDDEN, NOT_FOUND, REDIRECT, FORBIDDEN),
    ("registry:check_bucket", "POST", "-"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    # API clients: admins only; a new token or secret is shown in the POST's own answer ("own" = a client).
    ("api_clients:list", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("api_clients:create", "GET", "-"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("api_clients:detail", "GET", "own"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("api_clients:rotate", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("api_clients:revoke", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
    ("api_clients:webhook_secret", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    ("api_clients:redeliver", "POST", "own"): (ANON, FORBIDDEN, FORBIDDEN, REDIRECT, FORBIDDEN),
}


def portal_url_names() -> set[str]:
    """Every named URL of the portal's own apps, walked from the root URL configuration."""
    names: set[str] = set()

    def walk(patterns: list[Any], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                # The API answers bearer tokens, never sessions: its refusals are tested in tests/api.
                if pattern.namespace in ("admin", "api"):
                    continue
                walk(pattern.url_patterns, f"{pattern.namespace}:" if pattern.namespace else namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if not namespace and pattern.name.startswith(NOT_PORTAL):
                    continue
                names.add(namespace + pattern.name)

    walk(get_resolver().url_patterns, "")
    return names


def test_every_portal_url_has_an_expectation() -> None:
    covered = {name for name, _, _ in EXPECTED}
    assert portal_url_names() - covered == set(), "add the new URL to EXPECTED"
    assert covered - portal_url_names() == set(), "EXPECTED names a URL that no longer exists"


@pytest.fixture(autouse=True)
def registry_checks_stubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check now's and redelivery's services do nothing here: this module tests who reaches them."""
    monkeypatch.setattr("registry.services.record_check_now", lambda **kwargs: None)
    monkeypatch.setattr("registry.services.records_check_now", lambda **kwargs: 0)
    monkeypatch.setattr("api.webhooks.delivery_redeliver", lambda **kwargs: None)


@pytest.fixture
def world(
    institution: Institution,
    branch_a: Branch,
    branch_b: Branch,
    alice: User,
    bob: User,
    mallory: User,
    dave: User,
) -> dict[str, Any]:
    """Objects in both branches and one user per role (maker and checker work at branch A only)."""
    own = services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    other = services.record_submit(actor=mallory, record=new_record(mallory, branch_b, 1))
    own_batch = UploadBatch.objects.create(institution=institution, branch=branch_a)
    other_batch = UploadBatch.objects.create(institution=institution, branch=branch_b)
    return {
        "users": {
            "maker": alice,
            "checker": bob,
            "admin": make_user("adam", Role.ADMIN),
            "auditor": make_user("audrey", Role.AUDITOR),
        },
        "records": {"own": own, "other": other},
        "batches": {"own": own_batch, "other": other_batch},
    }


def url_for(name: str, scope: str, world: dict[str, Any]) -> str:
    from django.urls import reverse

    if name == "registry:check_bucket":
        return reverse(name, kwargs={"key": "waiting"})
    if scope == "-":
        return reverse(name)
    if name.startswith("api_clients:"):
        return api_client_url(name)
    if name.startswith("uploads:institution_change_"):
        return institution_change_url(name, scope)
    objects = world["batches"] if name.startswith("uploads:") else world["records"]
    if name.startswith("bulkdata:import_"):
        from tests.bulkdata.helpers import job_for

        objects = {scope: job_for(record) for scope, record in world["records"].items()}
    if name.startswith("institutions:branch_"):
        objects = {scope: record.branch for scope, record in world["records"].items()}
    elif name.startswith("institutions:user_"):
        objects = {scope: record.created_by for scope, record in world["records"].items()}
    return reverse(name, kwargs={"pk": objects[scope].pk})


def api_client_url(name: str) -> str:
    from django.urls import reverse

    from api.clients import api_client_create
    from api.models import WebhookDelivery

    client, _ = api_client_create(
        actor=None, name="cbs", branch_codes=["BRA"], webhook_url="https://cbs.example/hook"
    )
    if name == "api_clients:redeliver":
        delivery = WebhookDelivery.objects.create(client=client, kyc_ref_no="REF-1", record_status="approved")
        return reverse(name, kwargs={"pk": client.pk, "delivery_id": delivery.pk})
    return reverse(name, kwargs={"pk": client.pk})


def institution_change_url(name: str, scope: str) -> str:
    from django.urls import reverse

    from institutions.models import InstitutionChange

    institution = Institution.objects.order_by("pk").first()
    if scope == "other":
        institution = Institution.objects.create(
            name="Other Bank",
            fi_code="OTHER01",
            region_code="KA",
            cersai_username="OTHER",
            api_base_url="https://other.example.com",
        )
    proposer = User.objects.filter(username="petra").first() or make_user("petra", Role.ADMIN)
    change = InstitutionChange.objects.create(
        institution=institution,
        proposed_by=proposer,
        changes={"region_code": [institution.region_code, "GJ"]},
        reason="A new region",
    )
    return reverse(name, kwargs={"pk": change.pk})


def client_for(role: str, world: dict[str, Any]) -> Client:
    client = Client()
    if role != "anonymous":
        otp_login(client, world["users"][role])  # every role with its second factor passed
    return client


CASES = [
    (name, method, scope, role, status)
    for (name, method, scope), row in EXPECTED.items()
    for role, status in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(
    ("name", "method", "scope", "role", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES],
)
def test_access(name: str, method: str, scope: str, role: str, expected: int, world: dict[str, Any]) -> None:
    client = client_for(role, world)
    url = url_for(name, scope, world)
    data = {"reason": "Please check the address."} if name == "records:return" else {}
    response = client.post(url, data) if method == "POST" else client.get(url)
    assert response.status_code == expected
    if role == "anonymous":
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("name", "scope"), sorted({(n, s) for (n, m, s) in EXPECTED if m == "POST"}))
def test_state_changing_urls_refuse_get(name: str, scope: str, world: dict[str, Any]) -> None:
    assert client_for("checker", world).get(url_for(name, scope, world)).status_code == NOT_ALLOWED


@pytest.mark.parametrize(("name", "scope"), sorted({(n, s) for (n, m, s) in EXPECTED if m == "POST"}))
def test_state_changing_urls_enforce_csrf(name: str, scope: str, world: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    otp_login(client, world["users"]["checker"])
    assert client.post(url_for(name, scope, world), {"reason": "x"}).status_code == FORBIDDEN


def test_form_with_another_branchs_id_gets_not_found_or_refusal(
    world: dict[str, Any], branch_b: Branch
) -> None:
    client = client_for("maker", world)
    from tests.records.factories import valid_record

    data = {
        k: (v.isoformat() if hasattr(v, "isoformat") else ("" if v is None else v))
        for k, v in valid_record().items()
        if v is not False
    }
    data.update(branch=str(branch_b.pk), kyc_ref_no="SNEAKY-1", action="save")
    response = client.post("/records/new/", data)
    assert response.status_code == OK  # re-rendered with the branch choice refused
    assert "branch" in response.context["form"].errors
    assert not KycRecord.objects.filter(kyc_ref_no="SNEAKY-1").exists()
