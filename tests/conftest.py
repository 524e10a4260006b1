"""Shared fixtures: named users (alice the maker, bob and carol the checkers, ...), the institution and its
branches, the KwikID stand-in over real HTTP, and a real Celery worker process."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django_otp
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from bench import harness
from institutions.models import Branch, Institution, Role, User
from kwikid_standin.server import StandIn
from records import services
from records.models import KycRecord
from tests.records.factories import valid_record

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"
TOKEN = "test-token-0123456789"


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """The project's KwikID stand-in on a free port, for the whole session (reset before each use)."""
    with StandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def kwikid(standin: StandIn) -> StandIn:
    standin.reset()
    standin.set_faults(token=TOKEN)
    return standin


@pytest.fixture
def institution(db: None, kwikid: StandIn) -> Institution:
    return Institution.objects.create(
        name="Test Bank",
        fi_code="TEST01",
        region_code="MH",
        cersai_username="TESTUSER",
        api_base_url=kwikid.url,
        api_token=TOKEN,
        max_records_per_request=3,
    )


@pytest.fixture
def branch_a(institution: Institution) -> Branch:
    return Branch.objects.create(institution=institution, code="BRA", name="Branch A")


@pytest.fixture
def branch_b(institution: Institution) -> Branch:
    return Branch.objects.create(institution=institution, code="BRB", name="Branch B")


def make_user(username: str, role: Role, *branches: Branch) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, role=role)
    user.branches.set(branches)
    return user


@pytest.fixture
def alice(branch_a: Branch) -> User:
    """A maker at branch A."""
    return make_user("alice", Role.MAKER, branch_a)


@pytest.fixture
def bob(branch_a: Branch) -> User:
    """A checker at branch A."""
    return make_user("bob", Role.CHECKER, branch_a)


@pytest.fixture
def carol(branch_a: Branch) -> User:
    """A second checker at branch A."""
    return make_user("carol", Role.CHECKER, branch_a)


@pytest.fixture
def dave(branch_b: Branch) -> User:
    """A checker at branch B only."""
    return make_user("dave", Role.CHECKER, branch_b)


@pytest.fixture
def mallory(branch_b: Branch) -> User:
    """A maker at branch B only."""
    return make_user("mallory", Role.MAKER, branch_b)


@pytest.fixture
def erin(institution: Institution) -> User:
    """An admin."""
    return make_user("erin", Role.ADMIN)


def totp_device(user: User) -> TOTPDevice:
    """The user's confirmed TOTP device, created if they have none (an authenticator app set up)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)


def totp_code(device: TOTPDevice) -> str:
    """The code the device's app shows now, or the next one if now's was already used (a device accepts
    each time step once, and one step ahead)."""
    device.refresh_from_db()
    current = (int(time.time()) - device.t0) // device.step + device.drift
    return f"{hotp(device.bin_key, max(current, device.last_t + 1), digits=device.digits):0{device.digits}d}"


def otp_login(client: Client, user: User) -> TOTPDevice:
    """force_login, plus the second factor passed with a confirmed device, as after the code page."""
    device = totp_device(user)
    client.force_login(user)
    session = client.session
    session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def new_record(maker: User, branch: Branch, n: int = 1, **overrides: Any) -> KycRecord:
    data = valid_record()
    data.update(kyc_ref_no=f"REF-{branch.code}-{n:06d}", **overrides)
    return services.record_create(actor=maker, branch=branch, data=data)


def copy_record(record: KycRecord, copies: int) -> None:
    """``copies`` more records like ``record`` (kyc_ref_no suffixed), made in SQL: a large schedule fast."""
    meta = KycRecord._meta
    columns = [f.column for f in meta.concrete_fields if not f.primary_key]
    names = ", ".join(f'"{c}"' for c in columns)
    copied = ", ".join("kyc_ref_no || '-' || g" if c == "kyc_ref_no" else f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} ({names}) "
            f"SELECT {copied} FROM {meta.db_table}, generate_series(1, %s) AS g WHERE id = %s",
            [copies, record.pk],
        )


def approved_record(maker: User, checker: User, branch: Branch, n: int = 1, **overrides: Any) -> KycRecord:
    record = new_record(maker, branch, n, **overrides)
    record = services.record_submit(actor=maker, record=record)
    return services.record_approve(actor=checker, record=record)


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process on Redis, using this test's PostgreSQL database."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("Worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL: run them with `make test`.")
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # a clean queue: tests share nothing
    env = harness.worker_environment(
        harness.database_url(settings.DATABASES["default"]),
        DJANGO_SECRET_KEY="test-worker",
        KWIKID_READ_TIMEOUT=settings.KWIKID_READ_TIMEOUT,
    )
    # The worker's log goes beside the other test artefacts, for reading after a failure.
    (ROOT / ".local" / "test").mkdir(parents=True, exist_ok=True)
    worker = harness.start_worker(env, ROOT / ".local" / "test" / "worker.log")
    try:
        yield worker
    finally:
        harness.stop_process(worker, timeout=15)


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with a clear message at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Condition not met within {timeout} s")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Argon2 with production parameters is slow by design, and tests create hundreds of users.

    tests/test_settings.py asserts that the configured hasher is Argon2.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
