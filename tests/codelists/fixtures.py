"""Fixtures for tests that need the seeded code lists and the PIN master.

The data migrations seed them when the test database is created, but a transactional test elsewhere in
the session flushes every table afterwards. ``code_lists_seeded`` puts them back (committed, once per
module that asks) from the same seed function and PIN source the migrations use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import transaction

from codelists import services
from codelists.models import NameTitle, PinCode
from codelists.pin_sources import PinRow, rows_from_package

FIXTURE_CSV = Path(__file__).with_name("pins.csv")


def seed_code_lists() -> None:
    migration = importlib.import_module("codelists.migrations.0002_seed_code_lists")
    migration.seed(apps, None)


def ensure_code_lists_seeded(django_db_blocker: Any) -> None:
    """Re-seed (committed) whatever a flush emptied; use from a module-scoped fixture."""
    with django_db_blocker.unblock(), transaction.atomic():
        if not NameTitle.objects.exists():
            seed_code_lists()
        if not PinCode.objects.exists():
            services.pin_master_replace(rows=rows_from_package(), source="test re-seed")
        services.code_book_touch()


def small_pin_master() -> list[PinRow]:
    """A few real PINs, as the fixture CSV has them (state names as the package spells them)."""
    return [
        PinRow("400001", "MAHARASHTRA", "MUMBAI"),
        PinRow("411005", "MAHARASHTRA", "PUNE"),
        PinRow("110001", "DELHI", "NEW DELHI"),
        PinRow("110025", "DELHI", "SOUTH"),
        PinRow("110025", "UTTAR PRADESH", "BUDAUN"),
    ]
