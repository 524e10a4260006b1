"""Reads about a user's two-factor devices."""

from __future__ import annotations

import base64

import segno
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import Role

# Roles that must pass a second factor on every log-in; other roles may choose to.
TWO_FACTOR_REQUIRED_ROLES = frozenset({Role.ADMIN, Role.CHECKER})


def totp_device_confirmed_get(*, user: AbstractBaseUser | AnonymousUser) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if any (the newest when there are several)."""
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("-pk").first()


def two_factor_required(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user's role obliges them to enrol a device."""
    return getattr(user, "role", None) in TWO_FACTOR_REQUIRED_ROLES


def totp_secret_b32(*, device: TOTPDevice) -> str:
    """The device's secret as an authenticator app takes it when typed in (base32, in groups of four)."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_data_uri(*, device: TOTPDevice) -> str:
    """The device's otpauth:// URI as a QR code, an SVG data: URI for an <img> (no script, no CDN)."""
    return str(segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2))
