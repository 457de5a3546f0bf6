"""Process managers: react to events, keep state in a stream of their own, send commands through the outbox.

A process manager names, for each event it subscribes to, the instance it belongs to (an
order, a lead, a run) and decides, from the instance's state and the event, the new state and
the commands to send. The runner appends the new state (`ProcessAdvanced`, carrying the
position of the event it handled) to the instance's stream `process-<name>-<key>` and the
commands to that stream's outbox, in one transaction, with the expected version.

That makes its dispatch tracker replay-safe by construction: an instance's stream says which
position it handled last, so reading an event again (after a crash before the runner's own
checkpoint moved, or after a rebuild) decides nothing again; and the commands' dispatch ids
derive from (instance stream, version, index), so even a decision taken twice could not store
a second command. Run it under a lease (`agentjournal worker`) so that one node runs it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentjournal.journal import ConcurrencyError, Journal, NewEvent, RecordedEvent
from agentjournal.messaging.checkpoints import LeasedRunner, OutboxError
from agentjournal.messaging.leases import Lease, LeaseRegistry
from agentjournal.messaging.outbox import Message, append_with_outbox

logger = logging.getLogger("agentjournal.process_managers")

ADVANCED = "ProcessAdvanced"
"""An instance's new state, the position it handled and the commands it sent."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What a process manager decided for one event: the instance's new state and the commands to send."""

    state: dict[str, Any]
    commands: Sequence[Message] = ()
    done: bool = False
    """The process is over: its stream is closed, later events for it are ignored."""


@dataclass(slots=True)
class Instance:
    """One instance's state as its stream says."""

    stream_id: str
    version: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    handled_position: int = 0
    done: bool = False


class ProcessManager(ABC):
    """Subscribe with `event_types`; `key` names an event's instance (None: not ours); `decide` is pure."""

    name: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]]

    @abstractmethod
    def key(self, event: RecordedEvent) -> str | None: ...

    @abstractmethod
    def decide(self, state: dict[str, Any], event: RecordedEvent) -> Decision | None:
        """The decision for `event` given the instance's `state` ({} for a new one); None: nothing to do."""

    @property
    def lease_name(self) -> str:
        return f"process:{self.name}"

    def stream_of(self, key: str) -> str:
        return f"process-{self.name}-{key}"

    def runner(
        self,
        journal: Journal,
        *,
        batch_size: int = 100,
        leases: LeaseRegistry | None = None,
        lease: Lease | None = None,
    ) -> ProcessManagerRunner:
        return ProcessManagerRunner(journal, self, batch_size=batch_size, leases=leases, lease=lease)


def load_instance(journal: Journal, stream_id: str) -> Instance:
    """Fold an instance's stream: its last ProcessAdvanced holds everything."""
    instance = Instance(stream_id)
    for event in journal.read_stream(stream_id):
        instance.version = event.version
        if event.type == ADVANCED:
            instance.state = event.data["state"]
            instance.handled_position = event.data["handled_position"]
            instance.done = event.data["done"]
    return instance


class ProcessManagerRunner(LeasedRunner):
    """Runs one process manager: `step` handles at most one batch of its events."""

    def __init__(
        self,
        journal: Journal,
        manager: ProcessManager,
        *,
        batch_size: int = 100,
        leases: LeaseRegistry | None = None,
        lease: Lease | None = None,
    ) -> None:
        what = f"process manager {manager.name!r}"
        if not manager.event_types:  # refused before its checkpoint row is written
            raise OutboxError(f"{what} subscribes to no event types")
        super().__init__(journal, manager.lease_name, what, batch_size=batch_size, leases=leases, lease=lease)
        self.manager = manager
        self.name = manager.lease_name
        self._instances: dict[str, Instance] = {}

    def step(self) -> int:
        """Handle the next batch; returns the events handled (0: caught up)."""
        self.keeper.ensure()
        checkpoint = self.position()
        page = self.journal.read_all(checkpoint, self.batch_size, types=self.manager.event_types)
        if not page:
            return 0
        sent = 0
        for event in page:
            sent += self._handle(event)
        with self.journal.transaction() as cursor:
            self.checkpoint.advance(cursor, checkpoint, page[-1].position, sent)
            self.keeper.fence(cursor)
        return len(page)

    def catch_up(self) -> int:
        total = 0
        while handled := self.step():
            total += handled
        return total

    def _handle(self, event: RecordedEvent) -> int:
        """Decide and record one event for its instance; returns the commands sent."""
        key = self.manager.key(event)
        if key is None:
            return 0
        stream_id = self.manager.stream_of(key)
        while True:
            instance = self._instances.get(stream_id) or load_instance(self.journal, stream_id)
            if instance.done or instance.handled_position >= event.position:
                return 0  # handled before (a replay, a crash before the checkpoint moved): decide nothing again
            decision = self.manager.decide(dict(instance.state), event)
            if decision is None:
                return 0
            record = NewEvent(
                ADVANCED,
                {"state": decision.state, "handled_position": event.position, "done": decision.done},
                causation_id=event.event_id,
                correlation_id=event.correlation_id,
                tenant_id=event.tenant_id,
                closes_stream=decision.done,
            )
            self.keeper.ensure()  # a node woken past its lease records no decision
            try:
                append_with_outbox(
                    self.journal, stream_id, [record], expected_version=instance.version, messages=decision.commands
                )
            except ConcurrencyError:
                self._instances.pop(stream_id, None)  # someone else advanced it: read it again, decide again
                continue
            self._instances[stream_id] = Instance(
                stream_id, instance.version + 1, decision.state, event.position, decision.done
            )
            return len(decision.commands)
