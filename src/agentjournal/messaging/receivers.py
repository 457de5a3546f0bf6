"""Idempotent receivers: an aggregate that handles each dispatch at most once.

Relays deliver at least once, so the receiving aggregate remembers the dispatch ids it has
handled in a bounded ring that is part of its state: it is folded from the events the
dispatches caused (each carries its dispatch id in its metadata), so it survives a snapshot
reload and a restart, and a repeat delivered after a crash is dropped.

The bound: the ring keeps the last `dedupe_size` dispatch ids; the oldest are forgotten first.
A dispatch at or below the highest outbox position the ring has forgotten, and not in the ring,
cannot be told apart from a repeat. It is refused with DispatchBeyondRingError (a relay makes
it a dead letter that names the reason, visible in `agentjournal outbox status`), unless the
aggregate sets `beyond_ring = "accept"`, which handles it and marks its events
`beyond_ring: true`. Relays deliver in outbox position order, so this happens only to a repeat
or a retried dead letter older than the last `dedupe_size` dispatches.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from agentjournal.journal import ConcurrencyError, NewEvent, RecordedEvent, StreamNotFoundError
from agentjournal.messaging.outbox import Dispatch
from agentjournal.messaging.relays import UndeliverableError
from agentjournal.model import Aggregate, Repository

logger = logging.getLogger("agentjournal.receivers")

DISPATCH_KEY = "dispatch"
"""The metadata key of an event caused by a dispatch: {"id": dispatch id, "position": outbox position}."""
HANDLED = "DispatchHandled"
"""Recorded when handling a dispatch decided nothing, so that the ring still remembers it."""


class DispatchBeyondRingError(UndeliverableError):
    """A dispatch older than everything the dedupe ring remembers: it may or may not be a repeat."""


class DedupeRing(BaseModel):
    """The last `size` dispatch ids handled, oldest first, and the highest position forgotten."""

    size: int = Field(default=1000, ge=1)
    ids: list[str] = Field(default_factory=list)
    positions: list[int] = Field(default_factory=list)
    forgotten_position: int = 0

    def __contains__(self, dispatch_id: object) -> bool:
        return dispatch_id in self.ids

    def remember(self, dispatch_id: str, position: int) -> None:
        self.ids.append(dispatch_id)
        self.positions.append(position)
        while len(self.ids) > self.size:
            self.ids.pop(0)
            self.forgotten_position = max(self.forgotten_position, self.positions.pop(0))

    def beyond(self, dispatch: Dispatch) -> bool:
        """Too old to tell: at or below a forgotten position, and not remembered."""
        return dispatch.position <= self.forgotten_position and dispatch.dispatch_id not in self


class Receiving(Aggregate):
    """An aggregate that receives dispatches: its `handled` ring is folded from its own events."""

    dedupe_size: ClassVar[int] = 1000
    beyond_ring: ClassVar[Literal["refuse", "accept"]] = "refuse"
    handled: DedupeRing

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.handled = DedupeRing(size=self.dedupe_size)

    def apply(self, event: RecordedEvent) -> None:
        super().apply(event)
        caused_by = event.metadata.get(DISPATCH_KEY)
        if caused_by and caused_by["id"] not in self.handled:
            self.handled.remember(caused_by["id"], caused_by["position"])


class Received(Enum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"


R = TypeVar("R", bound=Receiving)


class Receiver(Generic[R]):
    """Hands each dispatch to `handle(aggregate, dispatch)` at most once per aggregate, and saves what it decided.

    `stream_of(dispatch)` names the receiving aggregate's stream (by default the dispatch's
    `stream` payload field). Use it as a relay's handler in-process, or as a NATS consumer's
    `receive`: it returns only after the journal committed.
    """

    def __init__(
        self,
        repository: Repository[R],
        handle: Callable[[R, Dispatch], None],
        *,
        stream_of: Callable[[Dispatch], str] | None = None,
        attempts: int = 5,
        cache_size: int = 1000,
    ) -> None:
        self.repository = repository
        self.handle = handle
        self.stream_of = stream_of or _payload_stream
        self.attempts = attempts
        self.cache_size = cache_size
        self._cache: OrderedDict[str, R] = OrderedDict()
        """The aggregates this receiver saved last, current as of their save: a stale one (another
        writer appended since) fails its save with a ConcurrencyError and is loaded again."""

    def __call__(self, dispatch: Dispatch) -> Received:
        stream_id = self.stream_of(dispatch)
        for attempt in range(1, self.attempts + 1):
            aggregate = self._load(stream_id)
            if dispatch.dispatch_id in aggregate.handled:
                logger.info("%s: dropped a repeat of dispatch %s (%s)", stream_id, dispatch.dispatch_id, dispatch.type)
                return Received.DUPLICATE
            beyond = aggregate.handled.beyond(dispatch)
            if beyond and aggregate.beyond_ring == "refuse":
                ring = aggregate.handled
                raise DispatchBeyondRingError(
                    f"{stream_id}: dispatch {dispatch.dispatch_id} (position {dispatch.position}) is older than its "
                    f"dedupe ring remembers (the last {ring.size} dispatches; forgotten up to position "
                    f"{ring.forgotten_position}): it may be a repeat, so it was not handled"
                )
            try:
                self._decide(aggregate, dispatch, beyond=beyond)
                self.repository.save(aggregate)
            except ConcurrencyError:
                self._cache.pop(stream_id, None)
                if attempt == self.attempts:
                    raise
                continue  # another writer (or a repeat of this dispatch) got there first: decide again
            except Exception:
                self._cache.pop(stream_id, None)  # it may hold staged events that were not stored
                raise
            self._remember(aggregate)
            return Received.HANDLED
        raise AssertionError("unreachable")  # pragma: no cover

    def _decide(self, aggregate: R, dispatch: Dispatch, *, beyond: bool) -> None:
        """Let `handle` record its events, each then marked with the dispatch (its ring's entry)."""
        self.handle(aggregate, dispatch)
        if not aggregate.pending:
            aggregate.record(NewEvent(HANDLED, {"dispatch_type": dispatch.type}))
        mark = {"id": dispatch.dispatch_id, "position": dispatch.position}
        aggregate.pending = [
            replace(
                event,
                metadata={**event.metadata, DISPATCH_KEY: mark, **({"beyond_ring": True} if beyond else {})},
                causation_id=event.causation_id or dispatch.dispatch_id,
                correlation_id=event.correlation_id or dispatch.correlation_id,
            )
            for event in aggregate.pending
        ]

    def _load(self, stream_id: str) -> R:
        cached = self._cache.get(stream_id)
        if cached is not None:
            self._cache.move_to_end(stream_id)
            return cached
        try:
            return self.repository.load(stream_id)
        except StreamNotFoundError:
            return self.repository.create(stream_id)

    def _remember(self, aggregate: R) -> None:
        self._cache[aggregate.stream_id] = aggregate
        self._cache.move_to_end(aggregate.stream_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _payload_stream(dispatch: Dispatch) -> str:
    stream = dispatch.payload.get("stream")
    if not isinstance(stream, str) or not stream:
        raise UndeliverableError(
            f"dispatch {dispatch.dispatch_id} ({dispatch.type}) names no receiving stream: its payload has no "
            "'stream' (or give the Receiver a stream_of function)"
        )
    return stream
