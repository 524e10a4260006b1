"""The code book: seeded lists, the PIN master, caching and its invalidation by every write."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from codelists import codes, services
from codelists.models import CODE_LIST_MODELS, Gender, NameTitle, PinCode, State
from codelists.selectors import code_book, pin_get

from .fixtures import small_pin_master

pytestmark = pytest.mark.django_db


def test_every_list_is_seeded_from_the_static_seeds_in_order() -> None:
    book = code_book()
    for model in CODE_LIST_MODELS:
        assert book.choices(model.list_name) == codes.STATIC_LISTS[model.list_name], model.list_name
    assert book.choices("yes_no") == codes.YES_NO


def test_kyc_types_not_for_new_uploads_are_seeded_inactive() -> None:
    book = code_book()
    assert "02" not in book.codes("kyc_types")
    assert book.inactive_label("kyc_types", "02") == "Small account"


def test_state_seed_notes_say_where_public_lists_disagree() -> None:
    notes = dict(State.objects.values_list("code", "note"))
    assert "CT" in notes["CG"] and "UT" in notes["UK"] and "OR" in notes["OD"] and "TG" in notes["TS"]
    assert all("ISO 3166-2:IN" in note for note in notes.values())


def test_the_pin_master_is_loaded_and_every_state_name_links_to_a_state_code() -> None:
    assert PinCode.objects.values("pin").distinct().count() > 19_000
    linked = {name for name in State.objects.values_list("pin_master_name", flat=True)}
    assert set(PinCode.objects.exclude(state_name="").values_list("state_name", flat=True)) <= linked
    entry = pin_get("400001")
    assert entry is not None and entry.states == {"MH"} and entry.district == "MUMBAI"
    assert pin_get("999999") is None


def test_the_book_is_reused_with_one_query_while_nothing_changes(django_assert_num_queries: Any) -> None:
    first = code_book()
    with django_assert_num_queries(1):
        assert code_book() is first


def test_a_saved_entry_is_in_the_next_book_and_a_deactivated_one_is_not(erin: Any) -> None:
    before = code_book()
    services.code_entry_save(actor=erin, entry=NameTitle(code="MX", label="Mx", sort_order=55))
    after = code_book()
    assert after is not before
    assert "MX" in after.codes("name_titles")
    assert after.choices("name_titles")[-1] == ("MX", "Mx")  # sort order 55: after DR (50)

    entry = NameTitle.objects.get(code="MX")
    entry.is_active = False
    services.code_entry_save(actor=erin, entry=entry)
    book = code_book()
    assert "MX" not in book.codes("name_titles")
    assert book.inactive_label("name_titles", "MX") == "Mx"


def test_a_rolled_back_change_leaves_no_trace_in_the_book(erin: Any) -> None:
    code_book()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.code_entry_save(actor=erin, entry=Gender(code="X", label="Unspecified"))
        assert "X" in code_book().codes("genders")
        raise RuntimeError("roll back")
    assert "X" not in code_book().codes("genders")


def test_a_list_table_emptied_wholesale_falls_back_to_its_seed() -> None:
    Gender.objects.all().delete()
    services.code_book_touch()
    assert code_book().choices("genders") == codes.GENDERS


def test_an_empty_pin_master_gives_an_empty_lookup_not_none() -> None:
    PinCode.objects.all().delete()
    services.code_book_touch()
    assert code_book().pins == {}


def test_pin_master_replace_is_idempotent_and_audited() -> None:
    from institutions.models import AuditEvent

    counts = services.pin_master_replace(rows=small_pin_master(), source="test")
    assert (counts.pins, counts.rows, counts.added + counts.changed + counts.unchanged) == (4, 5, 5)
    assert counts.removed > 19_000  # the rest of the full master went: the table is exactly the rows given
    assert sorted(PinCode.objects.values_list("pin", "state_name", "district")) == sorted(small_pin_master())
    again = services.pin_master_replace(rows=small_pin_master(), source="test")
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 5)
    assert AuditEvent.objects.filter(action="pin_master_refreshed").count() >= 2
    book = code_book()
    assert book.pins is not None and set(book.pins) == {"400001", "411005", "110001", "110025"}
    assert book.pins["110025"].states == {"DL", "UP"}


def test_a_state_code_replaced_by_a_new_entry_carries_its_pins(erin: Any) -> None:
    """CERSAI says Maharashtra is MA (say): add MA with the PIN master's name, deactivate MH."""
    services.code_entry_save(
        actor=erin, entry=State(code="MA", label="Maharashtra", pin_master_name="MAHARASHTRA", sort_order=1)
    )
    old = State.objects.get(code="MH")
    old.is_active = False
    services.code_entry_save(actor=erin, entry=old)
    entry = pin_get("400001")
    assert entry is not None and "MA" in entry.states
