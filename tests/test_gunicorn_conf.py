"""ckycportal.gunicorn_conf: gunicorn believes X-Forwarded-* headers only from the configured proxy."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import ckycportal.gunicorn_conf


def load(monkeypatch: pytest.MonkeyPatch, value: str | None) -> ModuleType:
    if value is None:
        monkeypatch.delenv("PORTAL_FORWARDED_ALLOW_IPS", raising=False)
    else:
        monkeypatch.setenv("PORTAL_FORWARDED_ALLOW_IPS", value)
    return importlib.reload(ckycportal.gunicorn_conf)


def test_forwarded_headers_are_trusted_from_localhost_only_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = load(monkeypatch, None)

    assert conf.forwarded_allow_ips == "127.0.0.1,::1"


def test_forwarded_headers_are_trusted_from_the_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, " 10.0.0.5 , 10.0.0.6 ")

    assert conf.forwarded_allow_ips == "10.0.0.5,10.0.0.6"


def test_trusting_every_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="PORTAL_FORWARDED_ALLOW_IPS"):
        load(monkeypatch, "*")
    monkeypatch.delenv("PORTAL_FORWARDED_ALLOW_IPS")
    importlib.reload(ckycportal.gunicorn_conf)
