"""Reads of the code lists: the cached code book that forms, validation and imports use."""

from __future__ import annotations

import threading
import unicodedata
import uuid
from dataclasses import dataclass

from codelists.codes import (
    CODED_LISTS,
    COUNTRIES_LIST,
    DOCUMENT_SUBMITTED_TYPES_LIST,
    GENDERS_LIST,
    IMPAIRMENT_TYPES_LIST,
    KYC_TYPES_LIST,
    NAME_TITLES_LIST,
    POA_DOCUMENTS_LIST,
    RELATION_FLAGS_LIST,
    STATES_LIST,
    STATIC_LISTS,
    YES_NO_LIST,
    Choices,
    CodeBook,
    PinEntry,
)
from kwikid.fields import FIELD_LABELS

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


# --- the code reference (the Codes page and the import template's code sheets) --------------------------

# Each list staff write codes from, with the title the Codes page and the template's sheets give it.
CODE_LISTS: tuple[tuple[str, str], ...] = (
    (NAME_TITLES_LIST, "Titles"),
    (RELATION_FLAGS_LIST, "Relation"),
    (GENDERS_LIST, "Gender"),
    (POA_DOCUMENTS_LIST, "Proof of address"),
    (DOCUMENT_SUBMITTED_TYPES_LIST, "Document submitted"),
    (KYC_TYPES_LIST, "KYC type"),
    (IMPAIRMENT_TYPES_LIST, "Impairment"),
    (STATES_LIST, "States"),
    (COUNTRIES_LIST, "Countries"),
)
# The long lists, which the page's search box narrows.
SEARCHABLE_LISTS = frozenset({STATES_LIST, COUNTRIES_LIST})


@dataclass(frozen=True)
class CodeListSection:
    """One list as the reference shows it: which record fields (import columns) take it, and its entries."""

    list_name: str
    title: str
    fields: tuple[tuple[str, str], ...]  # (import column = API field name, the form's label)
    entries: Choices  # active entries, in the form's order (filtered when searched)
    total: int  # active entries before any search
    searchable: bool

    @property
    def anchor(self) -> str:
        return "codes-" + self.list_name.replace("_", "-")


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().split())


def code_list_sections(*, search: str = "", book: CodeBook | None = None) -> list[CodeListSection]:
    """Every list's active codes with labels; ``search`` narrows states and countries by code or label."""
    book = book or code_book()
    needle = _folded(search)
    sections = []
    for list_name, title in CODE_LISTS:
        entries = book.choices(list_name)
        searchable = list_name in SEARCHABLE_LISTS
        shown = entries
        if needle and searchable:
            shown = tuple(
                (code, label)
                for code, label in entries
                if needle == code.casefold() or needle in _folded(label)
            )
        fields = tuple(
            (field, FIELD_LABELS[field]) for field, name in CODED_LISTS.items() if name == list_name
        )
        sections.append(
            CodeListSection(
                list_name=list_name,
                title=title,
                fields=fields,
                entries=shown,
                total=len(entries),
                searchable=searchable,
            )
        )
    return sections
