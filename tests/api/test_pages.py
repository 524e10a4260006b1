"""The API client pages: administrators only; the token shown once, in the POST's own answer, never cached,
never in a URL, never on the list; rotation, revocation, the webhook secret and the delivery log."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from api import clients
from api.models import ApiClient, WebhookDelivery
from api.tokens import token_hash
from institutions.models import Branch, Role, User
from tests.conftest import make_user, otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(erin: User) -> Client:
    client = Client()
    otp_login(client, erin)
    return client


@pytest.fixture
def api_client(erin: User, branch_a: Branch) -> ApiClient:
    client, _ = clients.api_client_create(
        actor=erin, name="core-banking", branch_codes=["BRA"], webhook_url="https://cbs.example/hook"
    )
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def token_in(html: str) -> str:
    start = html.index('id="token" value="') + len('id="token" value="')
    return html[start : html.index('"', start)]


@pytest.mark.parametrize("role", [Role.MAKER, Role.CHECKER, Role.AUDITOR])
def test_other_roles_get_403_on_every_page(role: Role, branch_a: Branch, api_client: ApiClient) -> None:
    user = make_user("someone", role, *([branch_a] if role in (Role.MAKER, Role.CHECKER) else []))
    browser = Client()
    otp_login(browser, user)
    pk = api_client.pk
    for method, name, args in [
        ("get", "list", []),
        ("get", "create", []),
        ("post", "create", []),
        ("get", "detail", [pk]),
        ("post", "rotate", [pk]),
        ("post", "revoke", [pk]),
        ("post", "webhook_secret", [pk]),
    ]:
        response = getattr(browser, method)(reverse(f"api_clients:{name}", args=args))
        assert response.status_code == 403, (method, name)
    api_client.refresh_from_db()
    assert api_client.revoked_at is None


def test_create_shows_the_token_once_in_the_answer_not_cached(admin_client: Client, branch_a: Branch) -> None:
    response = admin_client.post(
        reverse("api_clients:create"), {"name": "cbs", "branches": [branch_a.pk], "submit_on_arrival": "on"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    token = token_in(html)
    client = ApiClient.objects.get(name="cbs")
    assert client.token_hash == token_hash(token) and client.submit_on_arrival
    assert "will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert token not in admin_client.get(reverse("api_clients:detail", args=[client.pk])).content.decode()
    assert token not in admin_client.get(reverse("api_clients:list")).content.decode()


def test_create_puts_problems_on_their_fields(admin_client: Client, branch_a: Branch) -> None:
    clients.api_client_create(actor=None, name="cbs", branch_codes=["BRA"])

    response = admin_client.post(
        reverse("api_clients:create"),
        {"name": "CBS", "branches": [branch_a.pk], "webhook_url": "http://x.example"},
    )

    form = response.context["form"]
    assert "already exists" in form.errors["name"][0]
    assert "https://" in form.errors["webhook_url"][0]
    assert ApiClient.objects.count() == 1


def test_list_shows_prefix_and_settings_in_constant_queries(
    admin_client: Client, erin: User, branch_a: Branch, branch_b: Branch, api_client: ApiClient
) -> None:
    url = reverse("api_clients:list")
    with CaptureQueriesContext(connection) as one:
        admin_client.get(url)
    for n in range(3):
        clients.api_client_create(actor=erin, name=f"cbs-{n}", branch_codes=["BRA", "BRB"])
    with CaptureQueriesContext(connection) as four:
        response = admin_client.get(url)

    html = response.content.decode()
    assert len(four) == len(one)
    assert api_client.token_prefix in html and "BRA</span>, <span" in html and "As drafts" in html


def test_rotate_shows_the_new_token_once_and_the_old_stops(
    admin_client: Client, api_client: ApiClient
) -> None:
    old_hash = api_client.token_hash

    response = admin_client.post(reverse("api_clients:rotate", args=[api_client.pk]))

    api_client.refresh_from_db()
    assert api_client.token_hash == token_hash(token_in(response.content.decode())) != old_hash
    assert "no-store" in response["Cache-Control"]


def test_rotate_refuses_an_expiry_in_the_past(admin_client: Client, api_client: ApiClient) -> None:
    old_hash = api_client.token_hash
    response = admin_client.post(
        reverse("api_clients:rotate", args=[api_client.pk]), {"expires_on": "2020-01-01"}
    )
    assert response.status_code == 302
    assert "future" in messages_of(response)[0]
    api_client.refresh_from_db()
    assert api_client.token_hash == old_hash


def test_revoke_needs_the_name_typed(admin_client: Client, api_client: ApiClient) -> None:
    url = reverse("api_clients:revoke", args=[api_client.pk])

    admin_client.post(url, {"confirm": "yes"})
    api_client.refresh_from_db()
    assert api_client.revoked_at is None

    admin_client.post(url, {"confirm": "core-banking"})
    api_client.refresh_from_db()
    assert api_client.revoked_at is not None and not api_client.user.is_active
    page = admin_client.get(reverse("api_clients:detail", args=[api_client.pk])).content.decode()
    assert "Rotate token" not in page and "Revoked" in page


def test_edit_saves_settings(admin_client: Client, api_client: ApiClient, branch_b: Branch) -> None:
    response = admin_client.post(
        reverse("api_clients:detail", args=[api_client.pk]),
        {
            "branches": [branch_b.pk],
            "submit_on_arrival": "on",
            "webhook_url": "https://cbs.example/hook",
            "rate_limit_per_minute": "60",
        },
    )
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert [b.code for b in api_client.branches.all()] == ["BRB"]
    assert api_client.submit_on_arrival and api_client.rate_limit_per_minute == 60


def test_adding_a_callback_url_shows_its_new_secret_once(
    admin_client: Client, erin: User, branch_a: Branch
) -> None:
    client, _ = clients.api_client_create(actor=erin, name="plain", branch_codes=["BRA"])
    response = admin_client.post(
        reverse("api_clients:detail", args=[client.pk]),
        {"branches": [branch_a.pk], "webhook_url": "https://cbs.example/h", "rate_limit_per_minute": "120"},
    )
    client.refresh_from_db()
    assert client.webhook_secret and client.webhook_secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_webhook_secret_rotation_shows_the_new_secret_once(
    admin_client: Client, api_client: ApiClient
) -> None:
    old = api_client.webhook_secret
    response = admin_client.post(reverse("api_clients:webhook_secret", args=[api_client.pk]))
    api_client.refresh_from_db()
    assert api_client.webhook_secret != old and api_client.webhook_secret in response.content.decode()
    detail = admin_client.get(reverse("api_clients:detail", args=[api_client.pk])).content.decode()
    assert api_client.webhook_secret not in detail


def test_delivery_log_lists_deliveries_and_redeliver_calls_the_webhooks_service(
    admin_client: Client, erin: User, api_client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = WebhookDelivery.objects.create(
        client=api_client,
        kyc_ref_no="REF-HOOK-1",
        record_status="approved",
        status=WebhookDelivery.Status.FAILED,
        attempts=8,
        last_status_code=503,
        last_error="Service Unavailable",
    )
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("api.webhooks.delivery_redeliver", lambda **kwargs: calls.append(kwargs))

    page = admin_client.get(reverse("api_clients:detail", args=[api_client.pk])).content.decode()
    response = admin_client.post(reverse("api_clients:redeliver", args=[api_client.pk, delivery.pk]))

    for text in ("REF-HOOK-1", "approved", "Failed after retries", "HTTP 503", "Service Unavailable"):
        assert text in page
    assert calls == [{"actor": erin, "delivery_id": delivery.pk}]
    assert "will be sent again" in messages_of(response)[0]


def test_redeliver_of_another_clients_delivery_is_404(
    admin_client: Client, erin: User, api_client: ApiClient
) -> None:
    other, _ = clients.api_client_create(actor=erin, name="other", branch_codes=["BRA"])
    delivery = WebhookDelivery.objects.create(client=other, kyc_ref_no="REF-X", record_status="approved")
    response = admin_client.post(reverse("api_clients:redeliver", args=[api_client.pk, delivery.pk]))
    assert response.status_code == 404


def test_admin_navigation_links_the_page(admin_client: Client, api_client: ApiClient) -> None:
    html = admin_client.get(reverse("institutions:user_list")).content.decode()
    assert html.count(f'href="{reverse("api_clients:list")}"') == 2
