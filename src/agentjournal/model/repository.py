"""The repository: load an aggregate now, at a version or at a moment, and save what it decided.

Loading starts from the newest valid snapshot at or below the target version and folds at
most `snapshot_every` events after it; folding past a multiple of `snapshot_every` stores a
snapshot there, so every later load of that stream is bounded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Generic, TypeVar

from agentjournal.journal import AppendResult, InvalidEventError, Journal, RecordedEvent, StreamNotFoundError
from agentjournal.journal.envelope import canonical_json
from agentjournal.model.aggregate import Aggregate
from agentjournal.model.errors import VersionOutOfRangeError
from agentjournal.model.snapshots import Snapshot, SnapshotStore, snapshot_store

A = TypeVar("A", bound=Aggregate)

PAGE = 5000
"""Events read per query while folding a long stream."""
LAST = 2**31 - 1
"""An upper bound no version reaches: "to the end of the stream"."""


class Repository(Generic[A]):
    """Loads and saves aggregates of one type from a journal."""

    def __init__(self, journal: Journal, aggregate_type: type[A], *, snapshots: bool = True) -> None:
        if not (isinstance(aggregate_type, type) and issubclass(aggregate_type, Aggregate)):
            raise TypeError(f"aggregate_type must be an Aggregate subclass, got {aggregate_type!r}")
        self.journal = journal
        self.aggregate_type = aggregate_type
        every = aggregate_type.snapshot_every
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"{aggregate_type.__name__}.snapshot_every must be a positive int or None, got {every!r}")
        self.snapshot_every = every if snapshots else None
        self._store: SnapshotStore | None = snapshot_store(journal) if self.snapshot_every else None

    # ----- loading -------------------------------------------------------------------------

    def create(self, stream_id: str) -> A:
        """A new, empty aggregate for a stream that does not exist yet (saved with expected version 0)."""
        return self.aggregate_type(stream_id)

    def load(self, stream_id: str) -> A:
        """The aggregate at the stream's current version."""
        aggregate = self._fold_to(stream_id, None)
        if aggregate.version == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r} in {self.journal.url}")
        return aggregate

    def load_at_version(self, stream_id: str, version: int) -> A:
        """The aggregate as it was right after event `version` (1-based)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            check_version(stream_id, version, self.current_version(stream_id))
        aggregate = self._fold_to(stream_id, version)
        if aggregate.version != version:  # the stream is shorter (or absent): say how long it is
            check_version(stream_id, version, self.current_version(stream_id))
        return aggregate

    def load_at_time(self, stream_id: str, moment: datetime) -> A:
        """The aggregate as it was at `moment`: after the last event recorded at or before it."""
        return self.load_at_version(stream_id, version_at_time(self.journal, stream_id, moment))

    def current_version(self, stream_id: str) -> int:
        """The stream's version; StreamNotFoundError when it has no events."""
        return require_stream(self.journal, stream_id)

    def load_snapshot(self, stream_id: str, at_most: int) -> A:
        """The aggregate restored from the newest usable snapshot at or below `at_most`, without
        folding further (a fresh aggregate at version 0 when there is none)."""
        aggregate = self.aggregate_type(stream_id)
        snapshot = self._usable_snapshot(stream_id, at_most)
        if snapshot is not None:
            aggregate.restore_state(snapshot.state)
            aggregate.version = snapshot.version
        return aggregate

    def _fold_to(self, stream_id: str, version: int | None) -> A:
        """The aggregate up to `version` (None: the end), from the newest usable snapshot; with a snapshot
        store, the snapshot and the events after it come in one read."""
        upto = LAST if version is None else version
        aggregate = self.aggregate_type(stream_id)
        if self._store is None:
            events: Iterator[RecordedEvent] = read_versions(self.journal, stream_id, 1, upto)
        else:
            kind = self.aggregate_type
            snapshot, first = self._store.start(
                self.journal, stream_id, kind.type_name(), state_version=kind.state_version, upto=upto, limit=PAGE
            )
            if (
                snapshot is not None
                and first
                and first[0].version == snapshot.version
                and first[0].hash == snapshot.event_hash
            ):
                aggregate.restore_state(snapshot.state)
                aggregate.version = snapshot.version
                first = first[1:]
            elif snapshot is not None:  # taken against other events (e.g. a different database): never trusted
                first = self.journal.read_stream(stream_id, 1, upto, limit=PAGE)
            events = _then(first, lambda after: read_versions(self.journal, stream_id, after, upto))
        taken = self._fold(aggregate, events)
        if self._store is not None:
            self._store.save(taken)
        return aggregate

    def _usable_snapshot(self, stream_id: str, version: int) -> Snapshot | None:
        """The newest snapshot at or below `version` that still matches its stream."""
        if self._store is None:
            return None
        kind = self.aggregate_type
        snapshot = self._store.latest(stream_id, kind.type_name(), kind.state_version, version)
        if snapshot is None:
            return None
        at = self.journal.read_stream(stream_id, snapshot.version, snapshot.version)
        if not at or at[0].hash != snapshot.event_hash:
            return None  # taken against other events (e.g. a different database): never trusted
        return snapshot

    def _fold(self, aggregate: A, events: Iterator[RecordedEvent]) -> list[Snapshot]:
        """Apply events; return the snapshots due at each multiple of `snapshot_every` passed."""
        every = self.snapshot_every
        taken = []
        for event in events:
            aggregate.apply(event)
            if every and event.version % every == 0:
                taken.append(self._snapshot(aggregate, event))
        return taken

    def _snapshot(self, aggregate: A, event: RecordedEvent) -> Snapshot:
        kind = self.aggregate_type
        state = canonical_json(aggregate.snapshot_state())
        return Snapshot(aggregate.stream_id, kind.type_name(), event.version, kind.state_version, event.hash, state)

    # ----- saving --------------------------------------------------------------------------

    def save(self, aggregate: A) -> AppendResult:
        """Append the staged events, expecting the stream to be at the aggregate's version.

        Raises ConcurrencyError when another writer got there first (nothing is stored); on
        success the stored events are applied, so the aggregate is current.
        """
        if not isinstance(aggregate, self.aggregate_type):
            raise TypeError(f"this repository saves {self.aggregate_type.__name__}, not {type(aggregate).__name__}")
        if not aggregate.pending:
            raise InvalidEventError(f"{type(aggregate).__name__} {aggregate.stream_id!r}: no recorded events to save")
        result = self.journal.append(aggregate.stream_id, aggregate.pending, expected_version=aggregate.version)
        aggregate.pending = []
        fresh = (event for event in result.events if event.version > aggregate.version)
        taken = self._fold(aggregate, fresh)
        if self._store is not None:
            self._store.save(taken)
        return result


def require_stream(journal: Journal, stream_id: str) -> int:
    """The stream's current version; StreamNotFoundError when it has no events."""
    current = journal.stream_version(stream_id)
    if current == 0:
        raise StreamNotFoundError(f"no stream {stream_id!r} in {journal.url}")
    return current


def check_version(stream_id: str, version: object, current: int) -> int:
    """`version` if the stream (at version `current`) has it, else VersionOutOfRangeError."""
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
        raise VersionOutOfRangeError(stream_id, version, current)
    return version


def _then(page: list[RecordedEvent], rest: Callable[[int], Iterator[RecordedEvent]]) -> Iterator[RecordedEvent]:
    """The events of a first page, then (when it was full) those after it."""
    yield from page
    if len(page) == PAGE:
        yield from rest(page[-1].version + 1)


def read_versions(journal: Journal, stream_id: str, start: int, end: int) -> Iterator[RecordedEvent]:
    """Events start..end of a stream, read in pages."""
    while start <= end:
        page = journal.read_stream(stream_id, start, min(end, start + PAGE - 1))
        if not page:
            return
        yield from page
        start = page[-1].version + 1


def version_at_time(journal: Journal, stream_id: str, moment: datetime) -> int:
    """The version of the stream's last event recorded at or before `moment` (binary search)."""
    if moment.tzinfo is None:
        raise InvalidEventError(f"time {moment.isoformat()} has no time zone; give an aware datetime (UTC)")
    current = require_stream(journal, stream_id)
    low, high = 0, current  # invariant: event `low` (or the start) is at or before moment; `high + 1` is after
    while low < high:
        middle = (low + high + 1) // 2
        if journal.read_stream(stream_id, middle, middle)[0].recorded_at <= moment:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        first = journal.read_stream(stream_id, 1, 1)[0].recorded_at
        at = f"at {moment.isoformat()} (its first event is at {first.isoformat()})"
        raise VersionOutOfRangeError(stream_id, at, current)
    return low
