"""What the SQL backends share: the queries, row decoding, and the migration runner.

The dialect classes override only what really differs: connections, placeholders, how a
batch takes its positions, how a time is passed, and how a migration file is executed.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from importlib import resources
from typing import Any

from agentjournal.journal.base import EventIdTaken, Journal, ReadFilter, StreamWrite
from agentjournal.journal.dialect import Dialect
from agentjournal.journal.envelope import ANY, GENESIS_HASH, RecordedEvent, StreamInfo
from agentjournal.journal.errors import ConcurrencyError, JournalError, MigrationError
from agentjournal.journal.location import FIRST_MIGRATION, Location

COLUMNS = (
    "position, event_id, stream_id, version, type, schema_version, recorded_at, actor, tenant_id, "
    "correlation_id, causation_id, traceparent, data, metadata, prev_hash, hash"
)


def event_row(event: RecordedEvent, recorded_at: Any) -> tuple[Any, ...]:
    """An event as the insert parameters, in COLUMNS order (JSON as text)."""
    return (
        event.position,
        event.event_id,
        event.stream_id,
        event.version,
        event.type,
        event.schema_version,
        recorded_at,
        event.actor,
        event.tenant_id,
        event.correlation_id,
        event.causation_id,
        event.traceparent,
        text(event.data_json),
        text(event.metadata_json),
        event.prev_hash,
        event.hash,
    )


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


CLOSED_STREAM_MESSAGE = "agentjournal: the stream is closed"
"""How the closed-stream trigger's error begins on every dialect (0002_closed_streams.sql)."""


def closing_version(batch: list[RecordedEvent]) -> int | None:
    """What the stream head's closed_at_version becomes: only a batch's last event can close it."""
    last = batch[-1]
    return last.version if last.closes_stream else None


class StreamHeads:
    """The (version, last hash) this process last wrote per stream, for the most recent streams."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_id: str) -> tuple[int, str] | None:
        with self._lock:
            return self._heads.get(stream_id)

    def remember(self, stream_id: str, version: int, last_hash: str) -> None:
        with self._lock:
            self._heads[stream_id] = (version, last_hash)
            self._heads.move_to_end(stream_id)
            if len(self._heads) > self._size:
                self._heads.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        with self._lock:
            self._heads.pop(stream_id, None)


class SQLJournal(Journal):
    """Shared queries; a dialect subclass supplies connections and its differences."""

    dialect: str
    sql_dialect: Dialect
    """What this database needs said its own way, for every layer that keeps tables here."""
    param = "%s"
    _type_column = "type"
    """How `read_all(types=...)` names the type column (SQLite overrides it to steer its planner)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._heads = StreamHeads()

    # ----- dialect hooks ---------------------------------------------------------------

    @abstractmethod
    def _connection(self) -> AbstractContextManager[Any]:
        """A pooled DB-API connection in autocommit mode."""

    def _decode(self, row: Sequence[Any]) -> RecordedEvent:
        """A row in COLUMNS order as a RecordedEvent (data stays text until it is used)."""
        return RecordedEvent.from_row(row, self._time_value(row[6]))

    def _time_param(self, moment: datetime) -> Any:
        return moment

    @abstractmethod
    def _applied_migrations(self) -> set[str]: ...

    @abstractmethod
    def _apply_migration(self, name: str, script: str) -> None: ...

    # ----- writing: optimistic, for the servers (SQLite overrides it with its write lock) ----

    def _write_many(self, writes: Sequence[StreamWrite]) -> list[list[RecordedEvent]]:
        """Build each batch on its stream head as last seen, without a lock, and let the unique
        (stream_id, version) refuse the insert if another writer got there first.

        A head is the one this process last wrote when that is what the caller expects (saving
        a round trip), else it is read. A stale head is harmless: events are immutable, so the
        only thing it can cause is that refusal, after which the heads are read again. The
        batches of one write are inserted in one transaction (`_insert_many`), so a refusal of
        any of them stores none.

        Closed streams: the database refuses them, not this code (a head read here that says
        closed only refuses sooner). The closing event and its stream head's closed_at_version
        commit in one transaction, and the trigger refuses a row whose version is past it. A
        writer that builds version N+1 has read version N, so if N closed the stream, the
        trigger (reading after that commit: the head read came first, and on the servers the
        trigger runs behind the position-counter lock) sees it and refuses. A writer racing the
        closer for the same version N is refused by the unique (stream_id, version) key, reads
        the head again, and finds the stream closed. No lock beyond the insert's own is needed.
        """
        known = {write.stream_id: self._heads.get(write.stream_id) for write in writes}
        while True:
            batches = []
            for write in writes:
                head = known.get(write.stream_id)
                if write.expected == 0:
                    current, last_hash = 0, GENESIS_HASH
                elif head is not None and write.expected in (ANY, head[0]):
                    current, last_hash = head
                else:
                    current, last_hash, closed_at = self._stream_head(write.stream_id)
                    if closed_at is not None:
                        raise self._stream_closed(write.stream_id, closed_at)
                self._check_expected(write.stream_id, write.expected, current)
                batches.append(write.build(current, last_hash))
            known = {}
            try:
                self._insert_many(batches)
            except Exception as error:
                clash = self._clash(error)
                if clash is None:
                    raise
                for write in writes:
                    self._heads.forget(write.stream_id)
                if clash == "event_id":
                    raise EventIdTaken from None
                self._refused(writes, closed=clash == "closed")
                continue  # only writes that expect ANY were overtaken: build on top of the new heads
            for batch in batches:
                self._heads.remember(batch[0].stream_id, batch[-1].version, batch[-1].hash)
            return batches

    def _refused(self, writes: Sequence[StreamWrite], *, closed: bool) -> None:
        """After a version or closed-stream refusal: raise for the stream that cannot take its batch now
        (closed meanwhile, or past the version it expects); return when retrying can succeed."""
        for write in writes:
            version, _, closed_at = self._stream_head(write.stream_id)
            if closed_at is not None:  # closed meanwhile: say so, since retrying cannot help
                raise self._stream_closed(write.stream_id, closed_at) from None
            if write.expected not in (ANY, version):
                raise ConcurrencyError(write.stream_id, write.expected, version) from None
        if closed:  # the trigger refused a stream its head does not show closed: report the first one
            raise self._stream_closed(writes[0].stream_id) from None

    def _insert_many(self, batches: list[list[RecordedEvent]]) -> None:
        """Store the batches in one transaction behind the position counter; set each position."""
        raise NotImplementedError(f"{type(self).__name__} writes with its own _write_many")

    def _clash(self, error: Exception) -> str | None:
        """ "event_id" or "version" when `error` is that unique key refusing an insert, "closed" when
        it is the closed-stream trigger refusing it, else None."""
        return None

    # ----- queries ----------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
            finally:
                cursor.close()

    def _fetch_stream(
        self, stream_id: str, from_version: int, to_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]:
        p = self.param
        sql = f"SELECT {COLUMNS} FROM aj_events WHERE stream_id = {p} AND version >= {p}"
        params: list[Any] = [stream_id, from_version]
        if to_version is not None:
            sql += f" AND version <= {p}"
            params.append(to_version)
        sql += " ORDER BY version DESC" if backwards else " ORDER BY version"
        if limit is not None:
            sql += f" LIMIT {p}"
            params.append(limit)
        return [self._decode(row) for row in self._rows(sql, params)]

    def _fetch_all(self, after: int, limit: int, filters: ReadFilter, backwards: bool) -> list[RecordedEvent]:
        p = self.param
        conditions: list[str] = []
        params: list[Any] = []
        if backwards:
            if after:
                conditions.append(f"position < {p}")
                params.append(after)
        else:
            conditions.append(f"position > {p}")
            params.append(after)
        if filters.types:
            conditions.append(f"{self._type_column} IN ({', '.join([p] * len(filters.types))})")
            params.extend(filters.types)
        for column in ("tenant_id", "correlation_id", "causation_id"):
            value = getattr(filters, column)
            if value is not None:
                conditions.append(f"{column} = {p}")
                params.append(value)
        if filters.since is not None:
            conditions.append(f"recorded_at >= {p}")
            params.append(self._time_param(filters.since))
        if filters.until is not None:
            conditions.append(f"recorded_at < {p}")
            params.append(self._time_param(filters.until))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "DESC" if backwards else "ASC"
        sql = f"SELECT {COLUMNS} FROM aj_events {where} ORDER BY position {order} LIMIT {p}"
        params.append(limit)
        return [self._decode(row) for row in self._rows(sql, params)]

    def _fetch_by_ids(self, event_ids: list[str]) -> list[RecordedEvent]:
        if not event_ids:
            return []
        marks = ", ".join([self.param] * len(event_ids))
        sql = f"SELECT {COLUMNS} FROM aj_events WHERE event_id IN ({marks}) ORDER BY position"
        return [self._decode(row) for row in self._rows(sql, event_ids)]

    def _fetch_streams(self, prefix: str, after: str, limit: int) -> list[StreamInfo]:
        p = self.param
        sql = f"SELECT stream_id, version, created_at, updated_at FROM aj_streams WHERE stream_id > {p}"
        params: list[Any] = [after]
        if prefix:
            sql += f" AND substr(stream_id, 1, {len(prefix)}) = {p}"
            params.append(prefix)
        sql += f" ORDER BY stream_id LIMIT {p}"
        params.append(limit)
        return [
            StreamInfo(name, version, self._time_value(created), self._time_value(updated))
            for name, version, created, updated in self._rows(sql, params)
        ]

    def _stream_heads(self, stream_ids: list[str]) -> dict[str, tuple[int, str, int | None]]:
        heads: dict[str, tuple[int, str, int | None]] = dict.fromkeys(stream_ids, (0, GENESIS_HASH, None))
        for start in range(0, len(stream_ids), 500):
            chunk = stream_ids[start : start + 500]
            marks = ", ".join([self.param] * len(chunk))
            sql = (
                f"SELECT stream_id, version, last_hash, closed_at_version FROM aj_streams WHERE stream_id IN ({marks})"
            )
            for name, version, last_hash, closed_at in self._rows(sql, chunk):
                heads[name] = (version, last_hash, closed_at)
        return heads

    def _stream_head(self, stream_id: str) -> tuple[int, str, int | None]:
        rows = self._rows(
            f"SELECT version, last_hash, closed_at_version FROM aj_streams WHERE stream_id = {self.param}", [stream_id]
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else (0, GENESIS_HASH, None)

    def _head_position(self) -> int:
        return int(self._rows("SELECT coalesce(max(position), 0) FROM aj_events")[0][0])

    @abstractmethod
    def _time_value(self, value: Any) -> datetime:
        """A stored time as an aware UTC datetime."""

    # ----- for higher layers: their tables live in the journal's database ---------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read statement (placeholders in this dialect's `param` style)."""
        return self._rows(sql, params)

    @staticmethod
    def event_columns(alias: str) -> str:
        """The events table's columns, in the order `decode_events` reads them, qualified by `alias`."""
        return ", ".join(f"{alias}.{column.strip()}" for column in COLUMNS.split(","))

    def decode_events(self, rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
        """Rows of `event_columns` as events, upcast as `read_stream` returns them (for a query that joins them)."""
        return self._upcast([self._decode(row) for row in rows])

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A DB-API cursor inside one transaction: committed on exit, rolled back on error."""

    # ----- migrations -------------------------------------------------------------------
    # Each component (the journal itself, snapshots, projections, ...) ships versioned SQL
    # files per dialect in `<package>/migrations/<dialect>/NNNN_name.sql`; they are recorded
    # in aj_schema_migrations as "<component>/NNNN_name".

    def _migration_files(self, component: str, package: str) -> list[tuple[str, str]]:
        folder = resources.files(package) / "migrations" / self.dialect
        files = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
        return [(f"{component}/{name.removesuffix('.sql')}", (folder / name).read_text()) for name in files]

    def pending_migrations(
        self, component: str = "journal", package: str = "agentjournal.journal.backends"
    ) -> list[str]:
        self._check_open()
        applied = self._applied_migrations()
        return [name for name, _ in self._migration_files(component, package) if name not in applied]

    def migrate(self, component: str = "journal", package: str = "agentjournal.journal.backends") -> list[str]:
        """Apply the component's pending migrations, each in its own transaction; idempotent.

        Where no journal is yet, the place is checked first: another application's tables there
        are refused (see `Journal.open`), and nothing is created.
        """
        if FIRST_MIGRATION not in self._applied_migrations():
            self._prepare_location(self._location())
        applied_now = []
        for name, script in self._migration_files(component, package):
            if name in self._applied_migrations():
                continue
            try:
                self._apply_migration(name, script)
            except JournalError:
                raise
            except Exception as exc:
                raise MigrationError(f"{self.dialect} migration {name} failed: {exc}") from exc
            applied_now.append(name)
        return applied_now

    def _location_of(self, tables: Sequence[str], where: str, advice: str, **more: Any) -> Location:
        """The Location of a place holding `tables` (names of its tables and views)."""
        has_journal = "aj_schema_migrations" in tables and FIRST_MIGRATION in self._applied_migrations()
        others = tuple(sorted(name for name in tables if not name.lower().startswith("aj_")))
        return Location(has_journal, others, where=where, advice=advice, **more)


def split_statements(script: str) -> Iterator[str]:
    """Statements of a migration file: they end with a semicolon at the end of a line."""
    statement: list[str] = []
    for line in script.splitlines():
        if not statement and (not line.strip() or line.strip().startswith("--")):
            continue
        statement.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(statement).rstrip().removesuffix(";")
            statement = []
    if statement and "\n".join(statement).strip():
        yield "\n".join(statement)
