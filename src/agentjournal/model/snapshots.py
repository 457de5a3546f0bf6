"""Snapshot stores: in the journal's own database (table aj_snapshots), or in memory for memory://.

A snapshot is only a cache: it is tagged with the aggregate's state version and the hash of
the event it was taken at, and the repository ignores any snapshot that does not match both.
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agentjournal.journal import Journal, RecordedEvent
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.schema import Component


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream_id: str
    aggregate_type: str
    version: int
    state_version: int
    event_hash: str
    state_json: bytes

    @property
    def state(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.state_json)
        return value


class SnapshotStore(ABC):
    """Where snapshots of one journal live."""

    @abstractmethod
    def latest(self, stream_id: str, aggregate_type: str, state_version: int, at_most: int) -> Snapshot | None:
        """The newest snapshot at a version <= `at_most` taken at `state_version`."""

    @abstractmethod
    def save(self, snapshots: Sequence[Snapshot]) -> None:
        """Store snapshots, replacing any at the same (stream, aggregate type, version)."""

    @abstractmethod
    def count(self, stream_id: str, aggregate_type: str) -> int: ...

    def start(
        self, journal: Journal, stream_id: str, aggregate_type: str, *, state_version: int, upto: int, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        """The newest snapshot at or below `upto`, and up to `limit` events of the stream from its version
        (inclusive, so its hash can be checked) or from 1 without one, up to `upto`."""
        snapshot = self.latest(stream_id, aggregate_type, state_version, upto)
        first = snapshot.version if snapshot is not None else 1
        return snapshot, journal.read_stream(stream_id, first, upto, limit=limit)


class MemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict, for the memory backend."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, str], dict[int, Snapshot]] = {}

    def latest(self, stream_id: str, aggregate_type: str, state_version: int, at_most: int) -> Snapshot | None:
        with self._lock:
            taken = self._snapshots.get((stream_id, aggregate_type), {})
            candidates = [v for v, s in taken.items() if v <= at_most and s.state_version == state_version]
            return taken[max(candidates)] if candidates else None

    def save(self, snapshots: Sequence[Snapshot]) -> None:
        with self._lock:
            for snapshot in snapshots:
                taken = self._snapshots.setdefault((snapshot.stream_id, snapshot.aggregate_type), {})
                taken[snapshot.version] = snapshot

    def count(self, stream_id: str, aggregate_type: str) -> int:
        with self._lock:
            return len(self._snapshots.get((stream_id, aggregate_type), {}))


_COLUMNS = ("stream_id", "aggregate_type", "version", "state_version", "event_hash", "state", "taken_at")


MIGRATIONS = Component("snapshots", "agentjournal.model")
"""aj_snapshots."""


class SQLSnapshotStore(SnapshotStore):
    """Snapshots in the aj_snapshots table of a SQL journal (migrated on first use)."""

    def __init__(self, journal: SQLJournal) -> None:
        self.journal = journal
        MIGRATIONS.migrate(journal)

    def latest(self, stream_id: str, aggregate_type: str, state_version: int, at_most: int) -> Snapshot | None:
        p = self.journal.param
        rows = self.journal.query(
            f"SELECT version, event_hash, state FROM aj_snapshots WHERE stream_id = {p} AND aggregate_type = {p} "
            f"AND version <= {p} AND state_version = {p} ORDER BY version DESC LIMIT 1",
            (stream_id, aggregate_type, at_most, state_version),
        )
        if not rows:
            return None
        version, event_hash, state = rows[0]
        state_json = state.encode() if isinstance(state, str) else bytes(state)
        return Snapshot(stream_id, aggregate_type, int(version), state_version, event_hash, state_json)

    def save(self, snapshots: Sequence[Snapshot]) -> None:
        if not snapshots:
            return
        dialect = self.journal.sql_dialect
        taken_at = dialect.time(datetime.now(UTC))
        sql = dialect.sql(dialect.upsert("aj_snapshots", _COLUMNS, ("stream_id", "aggregate_type", "version")))
        rows = [
            (s.stream_id, s.aggregate_type, s.version, s.state_version, s.event_hash, s.state_json.decode(), taken_at)
            for s in snapshots
        ]
        with self.journal.transaction() as cursor:
            cursor.executemany(sql, rows)

    def start(
        self, journal: Journal, stream_id: str, aggregate_type: str, *, state_version: int, upto: int, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        """One round trip: the snapshot and the events after it come back in one query."""
        p = self.journal.param
        rows = self.journal.query(
            "WITH s AS (SELECT version, event_hash, state FROM aj_snapshots "
            f"WHERE stream_id = {p} AND aggregate_type = {p} AND state_version = {p} AND version <= {p} "
            "ORDER BY version DESC LIMIT 1) "
            f"SELECT s.version, s.event_hash, CASE WHEN e.version = s.version THEN s.state END, "
            f"{self.journal.event_columns('e')} FROM aj_events e LEFT JOIN s ON 1 = 1 "
            f"WHERE e.stream_id = {p} AND e.version >= coalesce((SELECT version FROM s), 1) AND e.version <= {p} "
            f"ORDER BY e.version LIMIT {p}",
            (stream_id, aggregate_type, state_version, upto, stream_id, upto, limit),
        )
        if not rows:
            return None, []
        snapshot = None
        version, event_hash, state = rows[0][:3]
        if version is not None and state is not None:
            state_json = state.encode() if isinstance(state, str) else bytes(state)
            snapshot = Snapshot(stream_id, aggregate_type, int(version), state_version, event_hash, state_json)
        return snapshot, self.journal.decode_events([row[3:] for row in rows])

    def count(self, stream_id: str, aggregate_type: str) -> int:
        p = self.journal.param
        rows = self.journal.query(
            f"SELECT count(*) FROM aj_snapshots WHERE stream_id = {p} AND aggregate_type = {p}",
            (stream_id, aggregate_type),
        )
        return int(rows[0][0])


_stores: weakref.WeakKeyDictionary[Journal, SnapshotStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def snapshot_store(journal: Journal) -> SnapshotStore:
    """The snapshot store of `journal`, one per journal object, shared by its repositories."""
    with _stores_lock:
        store = _stores.get(journal)
        if store is None:
            store = SQLSnapshotStore(journal) if isinstance(journal, SQLJournal) else MemorySnapshotStore()
            _stores[journal] = store
        return store
