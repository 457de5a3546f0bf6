"""Lineage: the causation chain of an event, backwards to its root and forwards to every effect.

Each event's `causation_id` names the event (or command) that caused it, on any stream;
the journal indexes it, so walking either way is one indexed read per step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from agentjournal.journal import EventNotFoundError, InvalidEventError, Journal, RecordedEvent

MAX_EFFECTS = 10_000
"""`effects` stops after this many events, so one runaway cascade cannot exhaust memory."""


@dataclass(frozen=True)
class Chain:
    """From an event back to its root: `events[0]` is the event asked about, `events[-1]` the root."""

    events: list[RecordedEvent]
    external_cause: str | None = None
    """The root's causation id when it names no stored event (e.g. a command id from outside)."""

    @property
    def root(self) -> RecordedEvent:
        return self.events[-1]


@dataclass
class EffectNode:
    """An event and what it caused, as a tree."""

    event: RecordedEvent
    children: list[EffectNode] = field(default_factory=list)

    def walk(self) -> Iterator[tuple[int, RecordedEvent]]:
        """(depth, event) for every node, depth first."""
        stack = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node.event
            stack.extend((depth + 1, child) for child in reversed(node.children))

    def count(self) -> int:
        return sum(1 for _ in self.walk())


def causes(journal: Journal, event_id: str) -> Chain:
    """The causation chain from `event_id` back to the root event, across streams."""
    event = journal.get_event(event_id)
    chain = [event]
    seen = {event.event_id}
    while event.causation_id is not None:
        if event.causation_id in seen:
            raise InvalidEventError(f"causation cycle: event {event.event_id} is caused by {event.causation_id} again")
        try:
            event = journal.get_event(event.causation_id)
        except (EventNotFoundError, InvalidEventError):
            return Chain(chain, external_cause=chain[-1].causation_id)
        seen.add(event.event_id)
        chain.append(event)
    return Chain(chain)


def effects(journal: Journal, event_id: str, *, max_events: int = MAX_EFFECTS) -> EffectNode:
    """The tree of every event caused (directly or not) by `event_id`, across streams, in order."""
    root = EffectNode(journal.get_event(event_id))
    queue = deque([root])
    count = 1
    seen = {root.event.event_id}
    while queue and count < max_events:
        node = queue.popleft()
        for child in journal.iter_all(causation_id=node.event.event_id, batch_size=1000):
            if child.event_id in seen:
                continue
            seen.add(child.event_id)
            child_node = EffectNode(child)
            node.children.append(child_node)
            queue.append(child_node)
            count += 1
            if count >= max_events:
                break
    return root


def correlated(
    journal: Journal, correlation_id: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[RecordedEvent]:
    """Every event of one logical request (one correlation id), in journal order."""
    return list(journal.iter_all(correlation_id=correlation_id, since=since, until=until, batch_size=5000))
