"""Writes for two-factor authentication: start an enrolment, confirm it, verify a log-in's code.

Codes are checked by django-otp's TOTPDevice, which refuses a code already used (``last_t``) and throttles
wrong guesses with an exponential delay per device; the device row is locked while it is checked so two
concurrent guesses cannot both pass or both escape the throttle.
"""

from __future__ import annotations

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import User

DEVICE_NAME = "Authenticator app"


def totp_device_start(*, user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) device, created with a fresh secret if there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_device_confirm(*, device: TOTPDevice, code: str) -> bool:
    """Confirm a pending device with a code from it; the user's other devices are removed (one phone each)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, confirmed=False).first()
        if locked is None:
            return False  # confirmed or replaced meanwhile, in another tab
        verified = bool(locked.verify_token(code))
        if verified:
            locked.confirmed = True
            locked.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user_id=locked.user_id).exclude(pk=locked.pk).delete()
    device.refresh_from_db()
    return verified


def totp_device_verify(*, device: TOTPDevice, code: str) -> bool:
    """Whether ``code`` is the current code of the confirmed ``device`` (throttled, never accepted twice)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, confirmed=True).first()
        if locked is None:
            return False  # removed meanwhile (an admin reset it)
        verified = bool(locked.verify_token(code))
    device.refresh_from_db()
    return verified
