"""API client services: administrators only, names and branches checked per field, the token returned once
and kept only as its hash, rotation and revocation at once, every change audited without a secret."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from api import clients
from api.models import ApiClient
from api.tokens import token_hash
from ckycportal.errors import ActionRefused
from institutions.models import AuditEvent, Branch, Institution, Role, User

pytestmark = pytest.mark.django_db


def create(actor: User | None, name: str = "core-banking", **kwargs: object) -> tuple[ApiClient, str]:
    kwargs.setdefault("branch_codes", ["BRA"])
    return clients.api_client_create(actor=actor, name=name, **kwargs)  # type: ignore[arg-type]


def field_errors(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return exc.value.message_dict


def audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("action", "object_id", "detail")), default=str)


def test_create_makes_a_maker_without_password_on_the_clients_branches(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin, submit_on_arrival=True)

    user = client.user
    assert user.username == "api-core-banking"
    assert user.role == Role.MAKER and not user.has_usable_password()
    assert list(user.branches.all()) == [branch_a] == list(client.branches.all())
    assert client.submit_on_arrival and client.created_by == erin


def test_create_returns_the_token_once_and_keeps_only_its_hash(erin: User, branch_a: Branch) -> None:
    client, token = create(erin)

    client.refresh_from_db()
    assert client.token_hash == token_hash(token)
    assert token.startswith(client.token_prefix) and len(client.token_prefix) < len(token)
    stored = ApiClient.objects.filter(pk=client.pk).values().get()
    assert token not in json.dumps(stored, default=str)


@pytest.mark.parametrize("role", [Role.MAKER, Role.CHECKER, Role.AUDITOR])
def test_only_administrators_create_clients(role: Role, branch_a: Branch) -> None:
    actor = User.objects.create_user(username="someone", role=role)
    with pytest.raises(ActionRefused, match="Only administrators"):
        create(actor)
    assert not ApiClient.objects.exists()


@pytest.mark.parametrize("name", ["core banking", "cbs_1", "-cbs", "cbs--1", "", "ç"])
def test_bad_names_are_refused_on_the_name_field(erin: User, branch_a: Branch, name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        create(erin, name=name)
    assert list(field_errors(exc)) == ["name"]
    assert not User.objects.filter(username__startswith="api-").exists()


def test_a_taken_name_is_refused_whatever_its_case(erin: User, branch_a: Branch) -> None:
    create(erin, name="cbs")
    with pytest.raises(ValidationError) as exc:
        create(erin, name="CBS")
    assert "already exists" in field_errors(exc)["name"][0]


def test_branches_must_exist_in_the_institution_and_be_active(
    erin: User, branch_a: Branch, branch_b: Branch
) -> None:
    other = Institution.objects.create(
        name="Other", fi_code="OTH01", region_code="MH", cersai_username="O", api_base_url="https://o.example"
    )
    Branch.objects.create(institution=other, code="OTH", name="Elsewhere")
    Branch.objects.filter(pk=branch_b.pk).update(is_active=False)

    with pytest.raises(ValidationError) as exc:
        create(erin, branch_codes=["BRA", "OTH", "BRB", "NOPE"])

    assert field_errors(exc)["branch_codes"] == [
        "No such branch in Test Bank: NOPE, OTH.",
        "Branch BRB is deactivated.",
    ]


def test_at_least_one_branch_is_needed(erin: User, institution: Institution) -> None:
    with pytest.raises(ValidationError) as exc:
        create(erin, branch_codes=[])
    assert "at least one branch" in field_errors(exc)["branch_codes"][0]


def test_every_problem_is_reported_at_once(erin: User, branch_a: Branch) -> None:
    past = timezone.now() - dt.timedelta(days=1)
    with pytest.raises(ValidationError) as exc:
        create(erin, name="a b", branch_codes=["X"], expires_at=past, webhook_url="http://example.com/hook")
    assert set(field_errors(exc)) == {"name", "branch_codes", "expires_at", "webhook_url"}


def test_a_callback_url_gets_a_signing_secret(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin, webhook_url="https://cbs.example/ckyc-hook")
    assert client.webhook_secret.startswith("whsec_")
    plain, _ = create(erin, name="plain")
    assert plain.webhook_secret == ""


def test_rotation_stops_the_old_token_at_once(erin: User, branch_a: Branch) -> None:
    client, old = create(erin)

    new = clients.api_client_rotate(actor=erin, client_id=client.pk)

    client.refresh_from_db()
    assert new != old
    assert client.token_hash == token_hash(new)
    assert not ApiClient.objects.filter(token_hash=token_hash(old)).exists()
    assert client.token_rotated_at is not None


def test_rotation_sets_the_new_tokens_expiry(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin, expires_at=clients.expiry_end_of(dt.date.today() + dt.timedelta(days=5)))
    later = clients.expiry_end_of(dt.date.today() + dt.timedelta(days=90))

    clients.api_client_rotate(actor=erin, client_id=client.pk, expires_at=later)

    client.refresh_from_db()
    assert client.token_expires_at == later


def test_revoke_deactivates_the_clients_user_and_refuses_later_changes(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin)

    clients.api_client_revoke(actor=erin, client_id=client.pk)

    client.refresh_from_db()
    assert client.revoked_at is not None
    assert not User.objects.get(pk=client.user_id).is_active
    with pytest.raises(ActionRefused, match="revoked"):
        clients.api_client_rotate(actor=erin, client_id=client.pk)


def test_update_changes_branches_of_client_and_user_and_audits_old_and_new(
    erin: User, branch_a: Branch, branch_b: Branch
) -> None:
    client, _ = create(erin)

    client, secret = clients.api_client_update(
        actor=erin,
        client_id=client.pk,
        branch_codes=["BRB"],
        submit_on_arrival=True,
        expires_at=None,
        webhook_url="https://cbs.example/hook",
        rate_limit_per_minute=30,
    )

    assert list(client.branches.all()) == [branch_b] == list(client.user.branches.all())
    assert secret.startswith("whsec_") and client.webhook_secret == secret
    event = AuditEvent.objects.get(action="api_client_updated")
    assert event.detail["changes"] == {
        "branches": [["BRA"], ["BRB"]],
        "submit_on_arrival": [False, True],
        "webhook_url": ["", "https://cbs.example/hook"],
        "rate_limit_per_minute": [120, 30],
    }
    assert secret not in audit_text()


def test_update_refuses_a_bad_rate_limit_on_its_field(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin)
    with pytest.raises(ValidationError) as exc:
        clients.api_client_update(
            actor=erin,
            client_id=client.pk,
            branch_codes=["BRA"],
            submit_on_arrival=False,
            expires_at=None,
            webhook_url="",
            rate_limit_per_minute=0,
        )
    assert list(field_errors(exc)) == ["rate_limit_per_minute"]


def test_webhook_secret_rotation_needs_a_callback_url(erin: User, branch_a: Branch) -> None:
    client, _ = create(erin)
    with pytest.raises(ActionRefused, match="callback URL"):
        clients.api_client_webhook_secret_rotate(actor=erin, client_id=client.pk)

    hooked, _ = create(erin, name="hooked", webhook_url="https://cbs.example/hook")
    old = hooked.webhook_secret
    new = clients.api_client_webhook_secret_rotate(actor=erin, client_id=hooked.pk)
    hooked.refresh_from_db()
    assert new != old and hooked.webhook_secret == new


def test_every_change_is_audited_with_actor_and_client_but_never_a_token_or_secret(
    erin: User, branch_a: Branch
) -> None:
    client, first = create(erin, webhook_url="https://cbs.example/hook")
    second = clients.api_client_rotate(actor=erin, client_id=client.pk)
    secret = clients.api_client_webhook_secret_rotate(actor=erin, client_id=client.pk)
    clients.api_client_revoke(actor=erin, client_id=client.pk)

    events = list(AuditEvent.objects.filter(object_type="ApiClient").order_by("pk"))
    assert [e.action for e in events] == [
        "api_client_created",
        "api_client_token_rotated",
        "api_client_webhook_secret_rotated",
        "api_client_revoked",
    ]
    assert {(e.actor_id, e.object_type, e.object_id) for e in events} == {
        (erin.pk, "ApiClient", str(client.pk))
    }
    text = audit_text()
    for value in (first, second, secret, client.webhook_secret, token_hash(first), token_hash(second)):
        assert value not in text


def test_a_command_acts_without_an_actor_and_is_audited_as_such(branch_a: Branch) -> None:
    client, _ = create(None)
    event = AuditEvent.objects.get(action="api_client_created")
    assert event.actor is None and event.detail["by_command"] is True
    assert client.institution == branch_a.institution
