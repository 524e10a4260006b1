"""A record's whole life through the services, illegal moves, and the approval race on two connections."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction

from institutions.models import Branch, User
from records import moves, services
from records.models import ALLOWED_TRANSITIONS, KycRecord, RecordEvent, Status
from tests.conftest import new_record

from .factories import valid_record

pytestmark = pytest.mark.django_db


def edit(maker: User, record: KycRecord, **changes: Any) -> KycRecord:
    data = valid_record() | {"kyc_ref_no": record.kyc_ref_no} | changes
    return services.record_update(actor=maker, record=record, data=data)


def test_a_record_lives_its_whole_cycle_with_one_event_per_step(
    alice: User, bob: User, carol: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    record = services.record_submit(actor=alice, record=record)
    record = services.record_return(actor=bob, record=record, reason="Wrong PIN code")
    record = edit(alice, record, poa_pin_code="400002")
    record = services.record_submit(actor=alice, record=record)
    record = services.record_approve(actor=carol, record=record)
    moves.records_mark_batched(record_ids=[record.pk])
    moves.records_mark_rejected(reasons={record.pk: "records[0].pan: PAN not found"})
    record.refresh_from_db()
    assert (record.status, record.upload_message) == (Status.REJECTED, "records[0].pan: PAN not found")
    record = edit(alice, record, pan="ABCPE1234G")
    record = services.record_submit(actor=alice, record=record)
    record = services.record_approve(actor=bob, record=record)
    moves.records_mark_batched(record_ids=[record.pk])
    moves.records_mark_uploaded(record_ids=[record.pk], message="Records queued")

    record.refresh_from_db()
    assert record.status == Status.UPLOADED
    A = RecordEvent.Action
    assert list(record.events.values_list("action", flat=True)) == [
        A.CREATED, A.SUBMITTED, A.RETURNED, A.EDITED, A.SUBMITTED, A.APPROVED, A.BATCHED, A.REJECTED,
        A.EDITED, A.SUBMITTED, A.APPROVED, A.BATCHED, A.UPLOADED,
    ]  # fmt: skip


def test_every_status_change_is_an_allowed_move() -> None:
    """The one dict names every status; an uploaded record can only become registered, and nothing leaves
    a registered one."""
    assert set(ALLOWED_TRANSITIONS) == set(Status.values)
    assert ALLOWED_TRANSITIONS[Status.UPLOADED] == {Status.REGISTERED, Status.PREEXISTING}
    assert ALLOWED_TRANSITIONS[Status.REGISTERED] == ALLOWED_TRANSITIONS[Status.PREEXISTING] == frozenset()
    assert all(to in Status.values for moves in ALLOWED_TRANSITIONS.values() for to in moves)


FORBIDDEN_MOVES = [
    (old, new) for old in Status.values for new in Status.values if new not in ALLOWED_TRANSITIONS[old]
]


@pytest.mark.parametrize(("old", "new"), FORBIDDEN_MOVES)
def test_an_illegal_move_is_refused_with_a_clear_message(
    alice: User, branch_a: Branch, old: str, new: str
) -> None:
    record = new_record(alice, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(status=old)
    record.refresh_from_db()

    with pytest.raises(services.TransitionNotAllowed) as refused:
        services._transition(record, new, actor=alice, action=RecordEvent.Action.EDITED)

    assert str(refused.value) == (
        f"A record that is {Status(old).label.lower()} cannot become {Status(new).label.lower()}."
    )
    assert KycRecord.objects.get(pk=record.pk).status == old


def test_editing_a_submitted_record_is_refused_and_says_to_withdraw_it(alice: User, branch_a: Branch) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))

    with pytest.raises(services.TransitionNotAllowed, match="Withdraw it to draft first"):
        edit(alice, record, poa_vtc="Thane")
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED


def test_withdrawn_record_can_be_edited_and_resubmitted(alice: User, branch_a: Branch) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    record = services.record_withdraw(actor=alice, record=record)
    record = edit(alice, record, poa_vtc="Thane")

    record = services.record_submit(actor=alice, record=record)

    assert (record.status, record.poa_vtc) == (Status.SUBMITTED, "Thane")


@pytest.mark.parametrize("column", ["created_by_id", "submitted_by_id"])
def test_database_refuses_a_maker_as_reviewer_in_plain_sql(
    alice: User, bob: User, branch_a: Branch, column: str
) -> None:
    """The CHECK constraint holds even for SQL that bypasses the services and the ORM."""
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    KycRecord.objects.filter(pk=record.pk).update(**{column: bob.pk})

    with (
        pytest.raises(IntegrityError, match="record_reviewer_is_not_maker"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE records_kycrecord SET reviewed_by_id = %s, status = 'approved' WHERE id = %s",
            [bob.pk, record.pk],
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["approve", "return"])
def test_two_checkers_deciding_at_once_give_one_winner_and_one_conflict(
    alice: User, bob: User, carol: User, branch_a: Branch, second: str
) -> None:
    """Two threads, each on its own PostgreSQL connection, start deciding the same record together."""
    if connection.vendor != "postgresql":
        pytest.fail("The race needs PostgreSQL's row locks: run it with DATABASE_URL set (make test).")
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(checker: User, how: str) -> None:
        try:
            mine = KycRecord.objects.get(pk=record.pk)  # each thread reads the record while it is waiting
            start.wait(timeout=10)
            if how == "approve":
                services.record_approve(actor=checker, record=mine)
            else:
                services.record_return(actor=checker, record=mine, reason="Blurred photo")
            outcomes[checker.username] = "won"
        except services.RecordConflict as exc:
            outcomes[checker.username] = str(exc)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [
        threading.Thread(target=decide, args=(bob, "approve")),
        threading.Thread(target=decide, args=(carol, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["bob", "carol"]
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    loser = "carol" if winners == ["bob"] else "bob"
    assert "changed meanwhile" in outcomes[loser]
    assert f"by {winners[0]}" in outcomes[loser]
    decisions = RecordEvent.objects.filter(
        record=record, action__in=[RecordEvent.Action.APPROVED, RecordEvent.Action.RETURNED]
    )
    assert list(decisions.values_list("actor__username", flat=True)) == winners
