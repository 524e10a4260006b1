"""Reads of the code lists: the cached code book that forms, validation and imports use."""

from __future__ import annotations

import threading
import uuid

from records.codes import STATIC_LISTS, YES_NO_LIST, CodeBook, PinEntry

from .models import CODE_LIST_MODELS, CodeBookStamp, PinCode, State

_lock = threading.Lock()
_cached: tuple[uuid.UUID | None, CodeBook] | None = None


def code_book() -> CodeBook:
    """The active code lists and the PIN master as one immutable object.

    Costs one small query while nothing changed; rebuilt (about 20,000 PIN rows) after any write to a list
    or the PIN master, in every process, because every such write changes ``CodeBookStamp``. Fetch it once
    per request or per import file, never per row.
    """
    global _cached
    token = CodeBookStamp.objects.values_list("token", flat=True).first()
    cached = _cached
    if cached is not None and cached[0] == token:
        return cached[1]
    with _lock:
        book = _build()
        _cached = (token, book)
    return book


def code_book_forget() -> None:
    """Drop this process's copy (tests; the stamp makes it unnecessary in the portal)."""
    global _cached
    _cached = None


def _build() -> CodeBook:
    lists: dict[str, list[tuple[str, str]]] = {}
    inactive: dict[str, list[tuple[str, str]]] = {}
    for model in CODE_LIST_MODELS:
        rows = list(
            model._default_manager.order_by("sort_order", "label", "code").values_list(
                "code", "label", "is_active"
            )
        )
        if not rows:
            # A table with no rows at all was never seeded (or was emptied wholesale): an empty list would
            # refuse every record, so the seed stands in. Deactivating entries is how a list is narrowed.
            lists[model.list_name] = list(STATIC_LISTS[model.list_name])
            continue
        lists[model.list_name] = [(code, label) for code, label, active in rows if active]
        inactive[model.list_name] = [(code, label) for code, label, active in rows if not active]
    lists[YES_NO_LIST] = list(STATIC_LISTS[YES_NO_LIST])
    return CodeBook(lists, inactive=inactive, pins=_pins())


def _pins() -> dict[str, PinEntry]:
    codes_by_name: dict[str, set[str]] = {}
    for code, name in State.objects.exclude(pin_master_name="").values_list("code", "pin_master_name"):
        codes_by_name.setdefault(name.upper(), set()).add(code)
    states: dict[str, set[str]] = {}
    districts: dict[str, list[str]] = {}
    rows = PinCode.objects.order_by("pin", "state_name").values_list("pin", "state_name", "district")
    for pin, state_name, district in rows.iterator(chunk_size=5000):
        states.setdefault(pin, set()).update(codes_by_name.get(state_name.upper(), ()))
        if district and district not in districts.setdefault(pin, []):
            districts[pin].append(district)
    # Most PINs share one of ~40 state sets: one frozenset each keeps the book small.
    shared: dict[frozenset[str], frozenset[str]] = {}
    return {
        pin: PinEntry(
            states=shared.setdefault(frozenset(codes), frozenset(codes)),
            district=" / ".join(districts.get(pin, [])),
        )
        for pin, codes in states.items()
    }


def pin_get(pin: str) -> PinEntry | None:
    """What the PIN master says about one PIN (None when it is not there)."""
    pins = code_book().pins
    return pins.get(pin) if pins is not None else None
