from __future__ import annotations

from typing import Any

import pytest

from .fixtures import ensure_code_lists_seeded


@pytest.fixture(scope="module", autouse=True)
def code_lists_seeded(django_db_setup: None, django_db_blocker: Any) -> None:
    ensure_code_lists_seeded(django_db_blocker)
