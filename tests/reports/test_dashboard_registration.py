"""The dashboard's registration card: registered, waiting and registered-before-upload figures, linked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, User
from reports import dashboard
from tests.conftest import new_record, otp_login
from tests.records.registration import accepted, registered

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()  # the dashboard keeps its figures a few seconds; each test starts without them


@pytest.fixture
def states(alice: User, branch_a: Branch) -> None:
    verified = timezone.localdate() - timedelta(days=30)  # due 20 days ago
    registered(new_record(alice, branch_a, 1, kyc_verification_date=verified), "60012345678901")
    registered(new_record(alice, branch_a, 2), "60012345678902")
    registered(new_record(alice, branch_a, 3), "60012345678903", preexisting=True)
    accepted(new_record(alice, branch_a, 4, kyc_verification_date=verified), days_ago=12)
    new_record(alice, branch_a, 5, kyc_verification_date=verified)


def home(user: User) -> str:
    client = Client()
    otp_login(client, user)
    return client.get(reverse("reports:dashboard")).content.decode()


def test_figures_count_registration_and_overdue_counts_only_unregistered(bob: User, states: None) -> None:
    data = dashboard.dashboard_get(bob)

    assert (data.registered, data.waiting_registration, data.registered_before_upload) == (2, 1, 1)
    assert data.overdue == 2  # the waiting record and the draft; the registered one's clock stopped


def test_a_checker_follows_the_figures_to_the_reconciliation_page(bob: User, states: None) -> None:
    html = home(bob)
    card = html[
        html.index('id="registration-title"') : html.index(
            "</section>", html.index('id="registration-title"')
        )
    ]
    recon = reverse("registry:reconciliation")

    assert f'href="{recon}"' in card
    assert f'href="{recon}#bucket-registered">2</a>' in card
    assert f'href="{recon}#bucket-waiting">1</a>' in card
    assert f'href="{recon}#bucket-preexisting">1</a>' in card
    assert "not registered at CKYCR by the due date" in html


def test_a_maker_follows_the_figures_to_the_records_list(alice: User, states: None) -> None:
    html = home(alice)
    card = html[
        html.index('id="registration-title"') : html.index(
            "</section>", html.index('id="registration-title"')
        )
    ]
    records = reverse("records:list")

    assert reverse("registry:reconciliation") not in card
    assert f'href="{records}?status=registered">2</a>' in card
    assert f'href="{records}?status=uploaded">1</a>' in card
    assert f'href="{records}?status=preexisting">1</a>' in card
