from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    def write(data: bytes, name: str = "records.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write
