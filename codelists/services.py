"""Writes to the code lists and the PIN master: each one transaction, audited, and changing the code book's
stamp so every process rebuilds its copy."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from institutions.models import AuditEvent, User

from .models import CodeBookStamp, CodeEntry, PinCode, State
from .pin_sources import PinRow

_AUDITED_FIELDS = ("code", "label", "is_active", "sort_order", "note", "pin_master_name")


def code_book_touch() -> None:
    """Give the code book a new stamp. Call inside the transaction that changed a list or the PIN master."""
    updated = CodeBookStamp.objects.update(token=uuid.uuid4())
    if not updated:
        CodeBookStamp.objects.create()


def _snapshot(entry: CodeEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _AUDITED_FIELDS if hasattr(entry, name)}


@transaction.atomic
def code_entry_save(*, actor: User | None, entry: CodeEntry) -> CodeEntry:
    """Create or change one entry of a code list; the audit event says what changed, old -> new.

    Raises ValidationError (naming the field) for a bad entry; nothing is saved then. ValidationError on
    purpose: the administration site's form shows it on that field.
    """
    model = type(entry)
    before: dict[str, Any] = {}
    if entry.pk is not None:
        stored = model._default_manager.select_for_update().get(pk=entry.pk)
        before = _snapshot(stored)
        if stored.code != entry.code:
            # Records hold codes: renaming one would silently change or orphan them. Add a new entry instead.
            raise ValidationError(
                {"code": "A code cannot be changed; add a new entry and deactivate this one."}
            )
    entry.full_clean()
    entry.save()
    after = _snapshot(entry)
    changes = {name: [before.get(name), value] for name, value in after.items() if before.get(name) != value}
    if before and not changes:
        return entry
    AuditEvent.objects.create(
        actor=actor,
        action="code_entry_changed" if before else "code_entry_created",
        object_type=model.__name__,
        object_id=str(entry.pk),
        detail={"list": model.list_name, "code": entry.code, "changes": changes},
    )
    code_book_touch()
    return entry


@dataclass(frozen=True)
class PinMasterCounts:
    pins: int
    rows: int
    added: int
    changed: int
    removed: int
    unchanged: int
    without_state: int
    unlinked_states: tuple[str, ...]  # state names no State entry's pin_master_name matches

    def summary(self) -> str:
        text = (
            f"{self.pins:,} PINs ({self.rows:,} rows): {self.added:,} added, {self.changed:,} changed, "
            f"{self.removed:,} removed, {self.unchanged:,} unchanged; "
            f"{self.without_state:,} PINs have no state"
        )
        if self.unlinked_states:
            text += f"; state names linked to no state code: {', '.join(self.unlinked_states)}"
        return text


@transaction.atomic
def pin_master_replace(*, rows: Iterable[PinRow], source: str, actor: User | None = None) -> PinMasterCounts:
    """Make the PIN master exactly ``rows`` (one transaction: all or nothing). Safe to run twice: a second run
    with the same rows changes nothing and reports everything unchanged. Audited with the counts."""
    wanted: dict[tuple[str, str], str] = {}
    for row in rows:
        wanted[(row.pin, row.state_name)] = row.district
    stored = {
        (pin, state): (pk, district)
        for pk, pin, state, district in PinCode.objects.values_list(
            "pk", "pin", "state_name", "district"
        ).iterator(chunk_size=5000)
    }
    removed = [pk for key, (pk, _) in stored.items() if key not in wanted]
    added = [
        PinCode(pin=pin, state_name=state, district=district)
        for (pin, state), district in wanted.items()
        if (pin, state) not in stored
    ]
    changed = [
        PinCode(pk=stored[key][0], pin=key[0], state_name=key[1], district=district)
        for key, district in wanted.items()
        if key in stored and stored[key][1] != district
    ]
    for start in range(0, len(removed), 5000):
        PinCode.objects.filter(pk__in=removed[start : start + 5000]).delete()
    PinCode.objects.bulk_create(added, batch_size=5000)
    PinCode.objects.bulk_update(changed, ["district"], batch_size=5000)

    linked = {
        name.upper()
        for name in State.objects.exclude(pin_master_name="").values_list("pin_master_name", flat=True)
    }
    states_by_pin: dict[str, set[str]] = {}
    for pin, state in wanted:
        states_by_pin.setdefault(pin, set()).add(state)
    counts = PinMasterCounts(
        pins=len(states_by_pin),
        rows=len(wanted),
        added=len(added),
        changed=len(changed),
        removed=len(removed),
        unchanged=len(wanted) - len(added) - len(changed),
        without_state=sum(1 for states in states_by_pin.values() if states == {""}),
        unlinked_states=tuple(sorted({state for _, state in wanted if state and state not in linked})),
    )
    AuditEvent.objects.create(
        actor=actor,
        action="pin_master_refreshed",
        object_type="PinCode",
        detail={"source": source, **{k: v for k, v in counts.__dict__.items() if k != "unlinked_states"}},
    )
    if added or changed or removed:
        code_book_touch()
    return counts
