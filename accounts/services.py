"""Writes for two-factor authentication: start an enrolment, confirm it, verify a log-in's code, and allow
the replacement of a device.

Codes are checked by django-otp's TOTPDevice, which refuses a code already used (``last_t``) and throttles
wrong guesses with an exponential delay per device; the device row is locked while it is checked so two
concurrent guesses cannot both pass or both escape the throttle.
"""

from __future__ import annotations

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from ckycportal.errors import ActionRefused
from institutions.models import AuditEvent, User

DEVICE_NAME = "Authenticator app"


class ReplacementRefused(ActionRefused):
    """The password or the current code given to replace a device is not right; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def totp_device_start(*, user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) device, created with a fresh secret if there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_device_replace_start(*, user: User, device: TOTPDevice, password: str, code: str) -> TOTPDevice:
    """Check the user's password and a current code of their confirmed ``device``, then start a new
    pending device with a fresh secret (an older pending one is dropped: its key may have been shown).

    The code is checked first, throttled by django-otp; the password only with a right code, so the form
    cannot be used to guess passwords without the phone. Raises ReplacementRefused naming the field.
    """
    if not totp_device_verify(device=device, code=code):
        raise ReplacementRefused("code", "That code is not right. Type the code your current app shows now.")
    if not user.check_password(password):
        raise ReplacementRefused("password", "That is not your password.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_device_confirm(*, device: TOTPDevice, code: str, replace_allowed: bool = False) -> bool:
    """Confirm a pending device with a code from it and audit it; the user's other devices are removed (one
    phone each). Replacing a confirmed device needs ``replace_allowed`` (the caller has checked the
    password and the current code, totp_device_replace_start): without it nothing is confirmed.
    """
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, confirmed=False).first()
        if locked is None:
            return False  # confirmed or replaced meanwhile, in another tab
        others = TOTPDevice.objects.filter(user_id=locked.user_id).exclude(pk=locked.pk)
        replacing = others.filter(confirmed=True).exists()
        if replacing and not replace_allowed:
            return False
        verified = bool(locked.verify_token(code))
        if verified:
            locked.confirmed = True
            locked.save(update_fields=["confirmed"])
            others.delete()
            AuditEvent.objects.create(
                actor_id=locked.user_id,
                action="two_factor_replaced" if replacing else "two_factor_enrolled",
                object_type="User",
                object_id=str(locked.user_id),
                detail={"device": locked.persistent_id},  # which row, never its key
            )
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
