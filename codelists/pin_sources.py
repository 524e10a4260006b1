"""Where the PIN master comes from: rows of (PIN, state name, district), read without touching the database.

Default source: the ``indian-pincode`` package (India Post's directory from data.gov.in, embedded, no
network). An institution that receives CERSAI's own Pincode master loads it as a CSV file instead.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from ckycportal.errors import PortalError

PIN = re.compile(r"[1-9]\d{5}")
CSV_COLUMNS = ("pin", "district", "state")


class PinRow(NamedTuple):
    pin: str
    state_name: str  # as the source spells it, upper-cased; "" when the source has none
    district: str


class PinSourceError(PortalError):
    """The source cannot be read as a PIN master; the message says why (and where, for a file)."""


def package_description() -> str:
    """The package and its data snapshot, for reports and the audit log."""
    import indian_pincode

    return f"indian-pincode {metadata.version('indian-pincode')} (India Post {indian_pincode.DATA_VERSION})"


def rows_from_package() -> Iterator[PinRow]:
    """Every PIN of the package, one row per state it lies in (~52 PINs straddle a state boundary)."""
    import indian_pincode

    for pin in indian_pincode.get_pincodes():
        details = indian_pincode.get_details(pin)
        if details is None:
            continue
        district = " / ".join(details["districts"])[:200]
        for state in details["states"] or [""]:
            yield PinRow(pin, state.upper(), district)


def rows_from_csv(path: Path, *, state_names: Mapping[str, str]) -> Iterator[PinRow]:
    """Rows of a CSV file with the columns ``pin,district,state`` (UTF-8, header first).

    ``state`` is a state's name or its code; a code is turned into the name through ``state_names``
    (code -> PIN-master name), so the file and the State table agree.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = tuple(name.strip().lower() for name in reader.fieldnames or ())
            if not set(CSV_COLUMNS) <= set(header):
                raise PinSourceError(
                    f"{path.name}: the header must name the columns {', '.join(CSV_COLUMNS)}"
                )
            reader.fieldnames = list(header)
            for number, row in enumerate(reader, start=2):
                pin = (row.get("pin") or "").strip()
                if not PIN.fullmatch(pin):
                    raise PinSourceError(
                        f"{path.name} line {number}: pin must be 6 digits, not starting with 0"
                    )
                state = (row.get("state") or "").strip().upper()
                yield PinRow(
                    pin, state_names.get(state, state), (row.get("district") or "").strip().upper()[:200]
                )
    except UnicodeDecodeError as exc:
        raise PinSourceError(f"{path.name}: not UTF-8 text") from exc
    except OSError as exc:
        raise PinSourceError(f"{path.name}: {exc.strerror}") from exc
