"""make run's demo: its institution, branches and users (one a role), and their authenticator: one
published key, so the demo admin and checker can pass two-factor authentication with any authenticator
app, or with ``make totp WHO=<user>``."""

from __future__ import annotations

import base64
import time

from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import User

# The demo institution (its FI code) and branches, as setup_demo creates them and seed_demo fills them.
DEMO_FI_CODE = "DEMO01"
DEMO_BRANCHES: tuple[tuple[str, str], ...] = (
    ("MUM001", "Mumbai Fort"),
    ("DEL001", "New Delhi Connaught Place"),
)
# (username, role, branch codes): one user a role.
DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("admin", "admin", []),
    ("maker", "maker", ["MUM001", "DEL001"]),
    ("checker", "checker", ["MUM001", "DEL001"]),
    ("auditor", "auditor", []),
)
# The demo users whose role requires two-factor authentication (accounts.selectors.TWO_FACTOR_REQUIRED_ROLES).
DEMO_TOTP_USERS = ("admin", "checker")

# Public on purpose (printed by make run): never give it to a real user.
DEMO_TOTP_SECRET = "CKYCPORTALDEMOONLYNOTFORREALUSE2"
DEMO_TOTP_KEY = base64.b32decode(DEMO_TOTP_SECRET).hex()
DEMO_DEVICE_NAME = "Demo authenticator (make run)"


def demo_totp_device_ensure(*, user: User) -> TOTPDevice | None:
    """Give ``user`` the demo device unless they already have a confirmed one (e.g. their own phone)."""
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return None
    return TOTPDevice.objects.create(user=user, name=DEMO_DEVICE_NAME, key=DEMO_TOTP_KEY, confirmed=True)


def demo_totp_code(*, device: TOTPDevice) -> str:
    """The code an app holding DEMO_TOTP_SECRET shows now, or the next one if now's was just used."""
    current = (int(time.time()) - device.t0) // device.step + device.drift
    counter = max(current, device.last_t + 1)
    return f"{hotp(device.bin_key, counter, digits=device.digits):0{device.digits}d}"
