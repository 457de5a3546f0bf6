"""Process managers on SQLite and PostgreSQL: state in their own streams, commands through the outbox,
and a dispatch tracker that a rebuild or a crash never makes issue a command twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.messaging import Decision, Message, ProcessManager
from agentjournal.messaging.checkpoints import OutboxError
from agentjournal.messaging.outbox import OUTBOX_MESSAGE, dispatch_id
from agentjournal.messaging.process_managers import load_instance


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


class Fulfilment(ProcessManager):
    """Seed 002's order flow: a paid order is shipped, a shipped order closes the process."""

    name: ClassVar[str] = "fulfilment"
    event_types: ClassVar[tuple[str, ...]] = ("OrderPaid", "OrderShipped")

    def key(self, event: RecordedEvent) -> str | None:
        return str(event.data["order"])

    def decide(self, state: dict[str, Any], event: RecordedEvent) -> Decision | None:
        if event.type == "OrderPaid":
            ship = Message("warehouse", "ShipOrder", {"order": event.data["order"]})
            return Decision({"status": "shipping", "paid": event.data["amount"]}, [ship])
        return Decision({**state, "status": "shipped"}, done=True)


def commands(journal: Journal) -> list[RecordedEvent]:
    return journal.read_all(types=[OUTBOX_MESSAGE])


def test_events_become_state_and_commands_in_one_write(journal: Journal) -> None:
    journal.append("order-7", NewEvent("OrderPaid", {"order": "7", "amount": 40}))
    runner = Fulfilment().runner(journal)
    assert runner.catch_up() == 1
    instance = load_instance(journal, "process-fulfilment-7")
    assert (instance.version, instance.state, instance.done) == (1, {"status": "shipping", "paid": 40}, False)
    [command] = commands(journal)
    assert command.event_id == dispatch_id("process-fulfilment-7", 1, 0)
    assert command.position == journal.read_stream("process-fulfilment-7")[0].position + 1  # the same write
    journal.append("order-7", NewEvent("OrderShipped", {"order": "7"}))
    runner.catch_up()
    assert load_instance(journal, "process-fulfilment-7").done
    journal.append("order-7", NewEvent("OrderShipped", {"order": "7"}))  # after the end: ignored, no error
    runner.catch_up()
    assert len(journal.read_stream("process-fulfilment-7")) == 2


def test_rebuilding_from_the_start_issues_no_command_again(journal: Journal) -> None:
    for order in ("1", "2", "3"):
        journal.append(f"order-{order}", NewEvent("OrderPaid", {"order": order, "amount": 10}))
    Fulfilment().runner(journal).catch_up()
    assert len(commands(journal)) == 3
    # the checkpoint lost (a crash before it was written, or a rebuild): everything is read again
    with journal.transaction() as cursor:  # type: ignore[attr-defined]
        cursor.execute("DELETE FROM aj_messaging_checkpoints")
    fresh = Fulfilment().runner(journal)  # no cache: it learns what it handled from its streams
    assert fresh.catch_up() == 3
    assert len(commands(journal)) == 3
    assert [len(journal.read_stream(f"process-fulfilment-{order}")) for order in "123"] == [1, 1, 1]


def test_two_runners_racing_record_each_decision_once(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    journal.append("order-9", NewEvent("OrderPaid", {"order": "9", "amount": 5}))
    first, second = Fulfilment().runner(journal), Fulfilment().runner(journal)
    first.catch_up()
    monkeypatch.setattr(second.checkpoint, "position", lambda: 0)  # it read its checkpoint before first moved it
    with pytest.raises(OutboxError, match="its checkpoint moved away from 0"):
        second.step()  # it decided nothing new (the instance had handled the event), and its checkpoint is stale
    assert len(commands(journal)) == 1


def test_a_process_manager_with_no_event_types_is_refused(journal: Journal) -> None:
    class Deaf(Fulfilment):
        event_types: ClassVar[tuple[str, ...]] = ()

    with pytest.raises(OutboxError, match="subscribes to no event types"):
        Deaf().runner(journal)
