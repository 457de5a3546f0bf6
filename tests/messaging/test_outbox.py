"""The outbox, the in-process relay and the idempotent receiver, on SQLite, PostgreSQL and MariaDB.

Effects are counted outside the journal (a Counter the handlers bump), so "exactly once" is
checked against what happened, not against what the journal says happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from agentjournal.journal import ANY, ConcurrencyError, InvalidEventError, Journal, NewEvent, RecordedEvent
from agentjournal.messaging import (
    Backoff,
    Dispatch,
    DispatchBeyondRingError,
    HandlerTransport,
    LeaseLostError,
    LeaseRegistry,
    Message,
    Received,
    Receiver,
    Receiving,
    Relay,
    append_with_outbox,
    dispatch_id,
    failures,
    outbox_status,
    retry_dead_letters,
)
from agentjournal.messaging.outbox import OUTBOX_MESSAGE, outbox_stream
from agentjournal.model import Repository

FAST = Backoff(max_attempts=3, base=0.0)
"""No waiting between attempts, so the tests do not sleep."""


@pytest.fixture
def journal(sql_journal_url: str) -> Iterator[Journal]:
    with Journal.open(sql_journal_url) as opened:
        yield opened


class Doorbell(Receiving):
    """A receiver whose effect is a ring of the bell, counted outside the journal."""

    dedupe_size = 4
    rings: int = 0

    def when(self, event: RecordedEvent) -> None:
        if event.type == "BellRang":
            self.rings += 1


def order(journal: Journal, order_id: str, *, bells: int = 1) -> None:
    """An order placed, and in the same transaction the doorbell rings it asks for."""
    append_with_outbox(
        journal,
        f"order-{order_id}",
        [NewEvent("OrderPlaced", {"order": order_id})],
        expected_version=0,
        messages=[Message("doorbell", "RingBell", {"stream": "door-1", "order": order_id}) for _ in range(bells)],
    )


def doorbell(journal: Journal, rung: Counter[str]) -> Receiver[Doorbell]:
    def ring(door: Doorbell, dispatch: Dispatch) -> None:
        rung[dispatch.dispatch_id] += 1
        door.record(NewEvent("BellRang", {"order": dispatch.payload["order"]}))

    return Receiver(Repository(journal, Doorbell, snapshots=False), ring)


def test_messages_commit_with_their_cause_and_carry_dispatch_ids_from_it(journal: Journal) -> None:
    order(journal, "A", bells=2)
    [placed] = journal.read_stream("order-A")
    messages = journal.read_stream(outbox_stream("order-A"))
    assert [m.event_id for m in messages] == [dispatch_id("order-A", 1, 0), dispatch_id("order-A", 1, 1)]
    assert {m.causation_id for m in messages} == {placed.event_id}
    assert {m.correlation_id for m in messages} == {placed.correlation_id}
    assert messages[0].position == placed.position + 1  # one write, consecutive positions
    # a second decision for the same cause (a retried producer) stores no second message
    again = [NewEvent(OUTBOX_MESSAGE, dict(messages[0].data), event_id=messages[0].event_id)]
    journal.append(outbox_stream("order-A"), again, expected_version=ANY)
    assert len(journal.read_stream(outbox_stream("order-A"))) == 2


def test_a_conflicting_cause_stores_no_message(journal: Journal) -> None:
    order(journal, "A")
    with pytest.raises(ConcurrencyError, match="order-A"):
        order(journal, "A")  # expected version 0, the stream is at 1
    assert len(journal.read_stream(outbox_stream("order-A"))) == 1


def test_bad_input_to_the_outbox_is_refused_before_anything_is_written(journal: Journal) -> None:
    with pytest.raises(InvalidEventError, match="exact expected version"):
        append_with_outbox(journal, "order-X", [NewEvent("OrderPlaced")], expected_version=ANY, messages=[])  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="destination must be a non-empty string"):
        Message("", "RingBell")
    with pytest.raises(InvalidEventError, match="message 0 is not a Message"):
        append_with_outbox(
            journal,
            "order-X",
            [NewEvent("OrderPlaced")],
            expected_version=0,
            messages=[{"to": "x"}],  # type: ignore[list-item]
        )
    assert journal.stream_version("order-X") == 0


def test_the_relay_delivers_each_message_and_the_receiver_acts_once(journal: Journal) -> None:
    rung: Counter[str] = Counter()
    for name in "ABC":
        order(journal, name)
    runner = Relay("bells", HandlerTransport({"doorbell": doorbell(journal, rung)})).runner(journal)
    assert runner.catch_up() == 3
    assert sorted(rung.values()) == [1, 1, 1]
    # a relay that crashed before its checkpoint moved delivers everything again: nothing rings twice
    with journal.transaction() as cursor:
        cursor.execute(journal.sql_dialect.sql("UPDATE aj_messaging_checkpoints SET position = 0"))
    assert runner.catch_up() == 3
    assert sorted(rung.values()) == [1, 1, 1]
    door = Repository(journal, Doorbell, snapshots=False).load("door-1")
    assert door.rings == 3
    status = {row.relay: row for row in outbox_status(journal)}["bells"]
    assert (status.pending, status.retrying, status.dead, status.delivered) == (0, 0, 0, 6)


def test_a_failing_delivery_is_retried_then_dead_lettered_and_retried_on_request(journal: Journal) -> None:
    order(journal, "A")
    order(journal, "B")
    rung: Counter[str] = Counter()
    broken = {"on": True}
    receiver = doorbell(journal, rung)

    def flaky(dispatch: Dispatch) -> Any:
        if broken["on"] and dispatch.payload["order"] == "A":
            raise RuntimeError("the doorbell is unplugged")
        return receiver(dispatch)

    runner = Relay("bells", HandlerTransport({"doorbell": flaky}), backoff=FAST).runner(journal)
    assert runner.step() == 1  # one attempt, which failed: A waits, and B waits behind it
    assert sum(rung.values()) == 0
    [retrying] = failures(journal, relay="bells")
    assert (retrying.status, retrying.attempts) == ("retrying", 1)
    assert "RuntimeError: the doorbell is unplugged" in retrying.error
    runner.catch_up()
    [dead] = failures(journal, relay="bells")
    assert (dead.status, dead.attempts, dead.dispatch.payload["order"]) == ("dead", 3, "A")
    assert [rung[dispatch_id("order-B", 1, 0)]] == [1]  # B went on once A was a dead letter
    status = {row.relay: row for row in outbox_status(journal)}["bells"]
    assert (status.pending, status.dead, status.delivered) == (0, 1, 1)
    broken["on"] = False
    assert retry_dead_letters(journal, relay="bells") == 1
    assert runner.step() == 1
    assert failures(journal) == [] and sum(rung.values()) == 2


def test_no_handler_for_a_destination_is_a_dead_letter_at_once(journal: Journal) -> None:
    order(journal, "A")
    runner = Relay("bells", HandlerTransport({"elsewhere": print}), backoff=FAST).runner(journal)
    runner.catch_up()
    [dead] = failures(journal)
    assert dead.attempts == 1 and "no handler for destination 'doorbell'" in dead.error


def test_the_ring_survives_a_snapshot_reload_and_refuses_what_it_forgot(journal: Journal) -> None:
    class SnapshottedDoorbell(Doorbell):
        snapshot_every = 2

    rung: Counter[str] = Counter()
    repository = Repository(journal, SnapshottedDoorbell)

    def ring(door: SnapshottedDoorbell, dispatch: Dispatch) -> None:
        rung[dispatch.dispatch_id] += 1
        door.record(NewEvent("BellRang", {"order": dispatch.payload["order"]}))

    receiver = Receiver(repository, ring)
    for name in "ABCDEF":
        order(journal, name)
    dispatches = [Dispatch.of(event) for event in journal.read_all(types=[OUTBOX_MESSAGE])]
    for dispatch in dispatches:
        assert receiver(dispatch) is Received.HANDLED
    reloaded = repository.load("door-1")  # from the snapshot at version 6
    assert reloaded.handled.ids == [d.dispatch_id for d in dispatches[2:]]  # the ring keeps the last 4
    restarted = Receiver(repository, ring)  # a new process: it loads the door from its snapshot
    assert restarted(dispatches[-1]) is Received.DUPLICATE
    with pytest.raises(DispatchBeyondRingError, match=r"older than its dedupe ring remembers \(the last 4"):
        restarted(dispatches[0])
    assert sum(rung.values()) == 6 and reloaded.rings == 6


def test_a_relay_fenced_out_delivers_nothing(journal: Journal) -> None:
    order(journal, "A")
    leases = LeaseRegistry(journal, ttl=0.3)
    lease = leases.acquire("relay:bells", "node-a")
    rung: Counter[str] = Counter()
    runner = Relay("bells", HandlerTransport({"doorbell": doorbell(journal, rung)})).runner(
        journal, leases=leases, lease=lease
    )
    import time

    time.sleep(0.45)
    assert leases.acquire("relay:bells", "node-b", ttl=30) is not None
    with pytest.raises(LeaseLostError, match="node-a lost token 1"):
        runner.step()
    assert rung == Counter()


def test_relays_need_a_sql_journal() -> None:
    with Journal.open("memory://") as journal, pytest.raises(Exception, match="the memory backend has none"):
        Relay("bells", HandlerTransport({"doorbell": print})).runner(journal)
