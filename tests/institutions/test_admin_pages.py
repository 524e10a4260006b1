"""Branch and user administration in the portal: admins only, every change audited old -> new, never a
password or a two-factor secret in the log."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import ERROR, get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django_otp import devices_for_user

from ckycportal.errors import ActionRefused
from institutions import services
from institutions.models import AuditEvent, Branch, Institution, Role, User
from tests.conftest import make_user, otp_login, totp_device

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "quartz-meadow-lantern-2291"


@pytest.fixture
def admin_client(erin: User) -> Client:
    client = Client()
    otp_login(client, erin)
    return client


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_branch_create_and_rename_are_audited_with_old_and_new(erin: User, institution: Institution) -> None:
    branch = services.branch_create(
        actor=erin, institution=institution, code="pun01", name="Pune", reason="New branch opened"
    )
    assert branch.code == "PUN01"
    services.branch_update(actor=erin, branch=branch, name="Pune Camp")
    created, updated = events("branch_created")[0], events("branch_updated")[0]
    assert created.actor == erin and created.object_id == str(branch.pk)
    assert updated.detail["changes"] == {"name": ["Pune", "Pune Camp"]}


def test_branch_rename_without_change_writes_no_event(erin: User, branch_a: Branch) -> None:
    services.branch_update(actor=erin, branch=branch_a, name=branch_a.name)
    assert events("branch_updated") == []


def test_duplicate_branch_code_is_refused_and_nothing_saved(erin: User, branch_a: Branch) -> None:
    with pytest.raises(ValidationError):
        services.branch_create(
            actor=erin, institution=branch_a.institution, code="BRA", name="Again", reason="Opened"
        )
    assert Branch.objects.filter(code="BRA").count() == 1
    assert events("branch_created") == []


def test_branch_deactivation_needs_a_reason_and_is_audited(erin: User, branch_a: Branch) -> None:
    with pytest.raises(services.AdminActionRefused):
        services.branch_set_active(actor=erin, branch=branch_a, active=False, reason=" ")
    services.branch_set_active(actor=erin, branch=branch_a, active=False, reason="Branch closed")
    branch_a.refresh_from_db()
    assert not branch_a.is_active
    (event,) = events("branch_deactivated")
    assert event.detail["reason"] == "Branch closed"
    assert event.detail["changes"] == {"is_active": [True, False]}
    # Twice is once: the second call changes nothing and writes nothing.
    services.branch_set_active(actor=erin, branch=branch_a, active=False, reason="Again")
    assert len(events("branch_deactivated")) == 1


def test_user_create_audits_role_and_branches_but_never_the_password(
    erin: User, branch_a: Branch, branch_b: Branch
) -> None:
    user = services.user_create(
        actor=erin,
        username="newmaker",
        role=Role.MAKER,
        branches=[branch_b, branch_a],
        password=NEW_PASSWORD,
        email="m@example.com",
        reason="Joined compliance",
    )
    assert user.check_password(NEW_PASSWORD)
    (event,) = events("user_created")
    assert event.detail["changes"]["role"] == ["", "maker"]
    assert event.detail["changes"]["branches"] == ["", ["BRA", "BRB"]]
    assert NEW_PASSWORD not in str(event.detail)
    assert user.password[:20] not in str(event.detail)


@pytest.mark.parametrize(
    ("role", "branches", "field"),
    [(Role.MAKER, [], "branches"), (Role.AUDITOR, ["a"], "branches")],
)
def test_role_and_branches_must_fit(
    erin: User, branch_a: Branch, role: Role, branches: list[str], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        services.user_create(
            actor=erin,
            username="x",
            role=role,
            branches=[branch_a] if branches else [],
            password=NEW_PASSWORD,
            reason="Joined",
        )
    assert field in info.value.message_dict
    assert not User.objects.filter(username="x").exists()


def test_weak_password_is_refused(erin: User, branch_a: Branch) -> None:
    with pytest.raises(ValidationError):
        services.user_create(
            actor=erin,
            username="weak",
            role=Role.MAKER,
            branches=[branch_a],
            password="short",
            reason="Joined",
        )
    assert not User.objects.filter(username="weak").exists()


def test_role_change_records_old_and_new_and_needs_a_reason(
    erin: User, alice: User, branch_a: Branch, branch_b: Branch
) -> None:
    with pytest.raises(ValidationError) as info:
        services.user_update(actor=erin, user=alice, role=Role.CHECKER, branches=[branch_a])
    assert "reason" in info.value.message_dict
    alice.refresh_from_db()
    assert alice.role == Role.MAKER  # nothing half-saved
    services.user_update(
        actor=erin, user=alice, role=Role.CHECKER, branches=[branch_a, branch_b], reason="Promoted"
    )
    alice.refresh_from_db()
    assert alice.role == Role.CHECKER
    assert set(alice.branches.values_list("code", flat=True)) == {"BRA", "BRB"}
    (event,) = events("user_updated")
    assert event.detail["changes"] == {"role": ["maker", "checker"], "branches": [["BRA"], ["BRA", "BRB"]]}
    assert event.detail["reason"] == "Promoted"


def test_admin_cannot_change_own_role_or_deactivate_self(erin: User) -> None:
    with pytest.raises(services.AdminActionRefused):
        services.user_update(actor=erin, user=erin, role=Role.AUDITOR, branches=[], reason="oops")
    with pytest.raises(services.AdminActionRefused):
        services.user_set_active(actor=erin, user=erin, active=False, reason="oops")
    erin.refresh_from_db()
    assert erin.role == Role.ADMIN and erin.is_active


def test_an_admin_refusal_is_an_action_refused_with_its_message(erin: User) -> None:
    with pytest.raises(ActionRefused) as refused:
        services.user_set_active(actor=erin, user=erin, active=False, reason="oops")
    assert isinstance(refused.value, services.AdminActionRefused)
    assert refused.value.message == "You cannot deactivate yourself."


def test_the_user_page_shows_an_admin_refusal_as_its_message(erin: User, admin_client: Client) -> None:
    response = admin_client.post(
        reverse("institutions:user_set_active", args=[erin.pk]), {"active": "0", "reason": "oops"}
    )
    assert response.status_code == 302
    errors = [m.message for m in get_messages(response.wsgi_request) if m.level == ERROR]
    assert errors == ["Not done: You cannot deactivate yourself."]
    erin.refresh_from_db()
    assert erin.is_active


def test_the_branch_page_shows_a_missing_reason_as_its_message(
    erin: User, branch_a: Branch, admin_client: Client
) -> None:
    response = admin_client.post(
        reverse("institutions:branch_set_active", args=[branch_a.pk]), {"active": "0", "reason": " "}
    )
    errors = [m.message for m in get_messages(response.wsgi_request) if m.level == ERROR]
    assert errors == ["Not done: Give a reason: it is kept in the audit log."]
    branch_a.refresh_from_db()
    assert branch_a.is_active


def test_deactivated_user_cannot_log_in(erin: User, alice: User) -> None:
    services.user_set_active(actor=erin, user=alice, active=False, reason="Left the bank")
    from tests.conftest import PASSWORD

    response = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200  # the form again, not a redirect into the portal
    assert "_auth_user_id" not in response.client.session
    (event,) = events("user_deactivated")
    assert event.detail["changes"] == {"is_active": [True, False]}


def test_password_reset_is_audited_without_the_value(erin: User, alice: User) -> None:
    services.user_reset_password(actor=erin, user=alice, password=NEW_PASSWORD, reason="Forgot it")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    (event,) = events("user_password_reset")
    assert NEW_PASSWORD not in str(event.detail) and event.detail["reason"] == "Forgot it"


def test_two_factor_reset_removes_devices(erin: User, bob: User) -> None:
    device = totp_device(bob)
    removed = services.user_reset_two_factor(actor=erin, user=bob, reason="Lost phone")
    assert removed == 1
    assert list(devices_for_user(bob, confirmed=None)) == []
    (event,) = events("user_two_factor_reset")
    assert device.key not in str(event.detail)


# --- Pages --------------------------------------------------------------------------------------------


def test_admin_creates_a_user_through_the_page(admin_client: Client, branch_a: Branch) -> None:
    response = admin_client.post(
        reverse("institutions:user_create"),
        {
            "username": "priya",
            "role": "checker",
            "branches": [branch_a.pk],
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "reason": "Joined as branch manager",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(username="priya").role == Role.CHECKER


def test_create_page_names_the_bad_field(admin_client: Client, branch_a: Branch) -> None:
    response = admin_client.post(
        reverse("institutions:user_create"),
        {"username": "priya", "role": "maker", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "branches" in response.context["form"].errors
    assert not User.objects.filter(username="priya").exists()


def test_edit_page_changes_branches(
    admin_client: Client, alice: User, branch_a: Branch, branch_b: Branch
) -> None:
    url = reverse("institutions:user_edit", kwargs={"pk": alice.pk})
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"role": "maker", "branches": [branch_b.pk], "reason": "Moved to B", "email": ""}
    )
    assert response.status_code == 302
    assert list(alice.branches.values_list("code", flat=True)) == ["BRB"]


def test_deactivate_without_reason_is_refused_with_a_message(admin_client: Client, alice: User) -> None:
    url = reverse("institutions:user_set_active", kwargs={"pk": alice.pk})
    response = admin_client.post(url, {"active": "0", "reason": ""}, follow=True)
    assert "Give a reason" in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


def test_branch_pages(admin_client: Client, institution: Institution) -> None:
    response = admin_client.post(
        reverse("institutions:branch_create"), {"code": "HYD01", "name": "Hyderabad", "reason": "Opened"}
    )
    assert response.status_code == 302
    branch = Branch.objects.get(code="HYD01")
    response = admin_client.post(
        reverse("institutions:branch_set_active", kwargs={"pk": branch.pk}),
        {"active": "0", "reason": "Closed"},
    )
    assert response.status_code == 302
    branch.refresh_from_db()
    assert not branch.is_active
    page = admin_client.get(reverse("institutions:branch_list")).content.decode()
    assert "HYD01" in page and "Deactivated" in page


def test_user_list_query_count_does_not_grow(
    admin_client: Client, branch_a: Branch, django_assert_max_num_queries: Any
) -> None:
    for n in range(3):
        make_user(f"u{n}", Role.MAKER, branch_a)
    with django_assert_max_num_queries(20) as few:
        admin_client.get(reverse("institutions:user_list"))
    for n in range(3, 30):
        make_user(f"u{n}", Role.MAKER, branch_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(reverse("institutions:user_list"))


def test_django_admin_shows_users_read_only(admin_client: Client, erin: User, alice: User) -> None:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    response = admin_client.get(f"/admin/institutions/user/{alice.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "user_permissions" not in body and "is_superuser" not in body
    response = admin_client.post(f"/admin/institutions/user/{alice.pk}/change/", {"role": "admin"})
    assert response.status_code == 403


def test_only_administrators_may_enter_the_administration_site(
    erin: User, alice: User, branch_a: Branch
) -> None:
    # Code lists are edited there: an administrator made on these pages must get in, nobody else.
    admin = services.user_create(
        actor=erin,
        username="newadmin",
        role=Role.ADMIN,
        branches=[],
        password="a-long-pass-phrase-2026",
        reason="Second administrator",
    )
    assert admin.is_staff and admin.is_superuser
    services.user_update(actor=erin, user=admin, role=Role.AUDITOR, branches=[], reason="Moved to audit")
    admin.refresh_from_db()
    assert not admin.is_staff and not admin.is_superuser
    services.user_update(actor=erin, user=alice, role=Role.ADMIN, branches=[], reason="Promoted")
    alice.refresh_from_db()
    assert alice.is_staff and alice.is_superuser


# --- Reasons on creation, errors at once, people's words, auditors read --------------------------------


def test_branch_and_user_creation_need_a_reason_and_keep_it(erin: User, institution: Institution) -> None:
    with pytest.raises(ValidationError) as info:
        services.branch_create(actor=erin, institution=institution, code="PUN01", name="Pune", reason=" ")
    assert "reason" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.user_create(
            actor=erin, username="noreason", role=Role.AUDITOR, branches=[], password=NEW_PASSWORD, reason=""
        )
    assert "reason" in info.value.message_dict
    assert not Branch.objects.filter(code="PUN01").exists()
    assert not User.objects.filter(username="noreason").exists()
    services.branch_create(actor=erin, institution=institution, code="PUN01", name="Pune", reason="Opened")
    services.user_create(
        actor=erin,
        username="aud2",
        role=Role.AUDITOR,
        branches=[],
        password=NEW_PASSWORD,
        reason="Audit 2026",
    )
    assert events("branch_created")[0].detail["reason"] == "Opened"
    assert events("user_created")[0].detail["reason"] == "Audit 2026"


def test_branch_create_page_asks_for_a_reason(admin_client: Client, institution: Institution) -> None:
    response = admin_client.post(
        reverse("institutions:branch_create"), {"code": "HYD01", "name": "Hyderabad"}
    )
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not Branch.objects.filter(code="HYD01").exists()


def test_duplicate_branch_code_is_named_in_the_message(admin_client: Client, branch_a: Branch) -> None:
    response = admin_client.post(
        reverse("institutions:branch_create"), {"code": "bra", "name": "Again", "reason": "Opened"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == ["Branch code BRA is already used."]
    assert "already exists" not in response.content.decode()


def test_new_user_form_shows_password_and_branch_problems_in_one_submit(
    admin_client: Client, branch_a: Branch
) -> None:
    response = admin_client.post(
        reverse("institutions:user_create"),
        {"username": "priya", "role": "maker", "password1": "short", "password2": "short"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "branches" in errors and "password1" in errors and "reason" in errors
    assert any("too short" in message for message in errors["password1"])


def test_user_page_says_what_happened_in_words(admin_client: Client, erin: User, branch_a: Branch) -> None:
    user = services.user_create(
        actor=erin,
        username="newmaker",
        role=Role.MAKER,
        branches=[branch_a],
        password=NEW_PASSWORD,
        reason="Joined compliance",
    )
    body = admin_client.get(reverse("institutions:user_edit", kwargs={"pk": user.pk})).content.decode()
    assert "User created by erin: Joined compliance" in body
    assert "user_created" not in body


@pytest.fixture
def auditor_client(institution: Institution) -> Client:
    client = Client()
    otp_login(client, make_user("audrey", Role.AUDITOR))
    return client


def test_auditor_reads_institution_branches_and_users_without_forms(
    auditor_client: Client, institution: Institution, branch_a: Branch, alice: User
) -> None:
    institution.api_token = "secret-token-abcd"
    institution.save()
    page = auditor_client.get(reverse("uploads:institution_settings")).content.decode()
    assert "TEST01" in page and "<form" not in page.split('id="main"')[1]
    assert "abcd" not in page  # not even the token's last characters
    branches = auditor_client.get(reverse("institutions:branch_list")).content.decode()
    assert "BRA" in branches and "New branch" not in branches
    assert reverse("institutions:branch_edit", kwargs={"pk": branch_a.pk}) not in branches
    users = auditor_client.get(reverse("institutions:user_list")).content.decode()
    assert "alice" in users and "New user" not in users and "Manage" not in users


def test_auditor_cannot_post_the_institution_settings(
    auditor_client: Client, institution: Institution
) -> None:
    response = auditor_client.post(reverse("uploads:institution_settings"), {"name": "Renamed"})
    assert response.status_code == 403
    institution.refresh_from_db()
    assert institution.name == "Test Bank"
    assert auditor_client.get(reverse("institutions:branch_create")).status_code == 403


def test_token_banner_says_replace_the_token_once(admin_client: Client, institution: Institution) -> None:
    from django.utils import timezone

    reason = "KwikID refused the bearer token (HTTP 401). Replace the token to resume sending."
    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason=reason
    )
    body = admin_client.get(reverse("institutions:branch_list")).content.decode()
    assert "KwikID refused the bearer token (HTTP 401)." in body
    assert body.count("Replace the token") == 1


def test_token_banner_tells_an_admin_a_second_admin_approves_the_replacement(
    admin_client: Client, institution: Institution
) -> None:
    # A replaced token applies only once another administrator approves it: the banner says so, so that
    # the first admin does not wait for batches that cannot move yet.
    from django.utils import timezone

    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason="KwikID refused the bearer token (HTTP 401)."
    )
    body = admin_client.get(reverse("institutions:branch_list")).content.decode()
    assert "a second administrator approves it, unless four eyes are waived" in body
