"""SQLite: the embedded default. One file in WAL mode; writers serialize on BEGIN IMMEDIATE.

Positions: a writer holds SQLite's single write lock from BEGIN IMMEDIATE to COMMIT and
takes max(position) + 1 inside it, so positions are handed out in commit order and a
reader can never see a higher position before a lower one commits.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentjournal.journal.backends.sql import CLOSED_STREAM_MESSAGE, COLUMNS, SQLJournal, closing_version, event_row
from agentjournal.journal.base import EventIdTaken, StreamWrite
from agentjournal.journal.dialect import SQLiteDialect
from agentjournal.journal.envelope import GENESIS_HASH, RecordedEvent, format_time
from agentjournal.journal.errors import (
    DamagedDatabaseError,
    JournalConnectionError,
    MigrationError,
    ReadOnlyJournalError,
    UnsupportedURLError,
)
from agentjournal.journal.location import Location

_INSERT = f"INSERT INTO aj_events ({COLUMNS}) VALUES ({', '.join(['?'] * 16)})"
_SAVE_HEAD = (
    "INSERT INTO aj_streams (stream_id, version, last_hash, created_at, updated_at, closed_at_version) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash, "
    "updated_at = excluded.updated_at, "
    "closed_at_version = coalesce(aj_streams.closed_at_version, excluded.closed_at_version)"
)


class SQLiteJournal(SQLJournal):
    backend_name = "sqlite"
    dialect = "sqlite"
    sql_dialect = SQLiteDialect()
    param = "?"
    # `+type` keeps SQLite from filtering through the (type, recorded_at) index and then sorting every
    # match by position for each page; it walks positions instead, which LIMIT bounds.
    _type_column = "+type"

    def __init__(
        self, path: str, *, create: bool = False, synchronous: str = "NORMAL", mode: str | None = None, **options: Any
    ) -> None:
        """Opening writes nothing: a missing file is created (empty) only with `create`, and the
        file is switched to WAL only when its journal is created (see `_create_location`)."""
        super().__init__(**options)
        self.url = f"sqlite:///{path}"
        self.path = path
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise UnsupportedURLError(f"sqlite synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        if mode not in (None, "ro"):
            raise UnsupportedURLError(f"sqlite mode must be ro (read-only), got {mode!r}")
        self.read_only = mode == "ro"
        first = target = ""
        if path == ":memory:":
            # One shared in-memory database for every thread; the anchor keeps it alive.
            self.ephemeral = True
            first = target = f"file:agentjournal-{id(self)}?mode=memory&cache=shared"
        else:
            file = Path(path).expanduser()
            parent = file.resolve().parent
            if not parent.is_dir():
                raise JournalConnectionError(f"cannot open SQLite journal {path!r}: folder {parent} does not exist")
            if file.is_dir():
                raise JournalConnectionError(f"cannot open SQLite journal {path!r}: it is a folder, not a file")
            target = f"file:{quote(str(file))}?mode={'ro' if self.read_only else 'rw'}"
            first = target
            if not file.exists():
                if not create or self.read_only:
                    raise self._not_found(Location(False, detail="no such file"))
                first = f"file:{quote(str(file))}?mode=rwc"  # only the first connection may create it
        # A shared-cache in-memory database locks whole tables and fails at once with "database
        # table is locked" (the busy timeout does not apply), so its connections take turns.
        self._turns = threading.RLock() if path == ":memory:" else None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._target = first
        self._anchor = self._new_connection()
        self._target = target
        try:  # reads the file's header and schema: is it a database, and an intact one?
            self._anchor.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            self._release()
            if _code(exc) == sqlite3.SQLITE_CORRUPT:
                raise DamagedDatabaseError(f"the SQLite file {path!r} is damaged: {exc}") from None
            raise JournalConnectionError(f"cannot open SQLite journal {path!r}: {exc}") from None

    def _new_connection(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._target, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            raise JournalConnectionError(f"cannot open SQLite journal {self.path!r}: {exc}") from None
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _location(self) -> Location:
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite^_%' ESCAPE '^'"
        tables = [name for (name,) in self._rows(sql)]
        return self._location_of(tables, "the file", "give the journal a file of its own")

    def _check_storage(self) -> str | None:
        """Pages no event read touches (indexes, free pages) can be damaged too: SQLite checks them all."""
        found = [line for row in self._rows("PRAGMA quick_check(5)") for line in str(row[0]).splitlines()]
        if found == ["ok"]:
            return None
        problems = "; ".join(line for line in found if not line.startswith("*** in database"))
        return f"the SQLite file {self.path!r} is damaged (PRAGMA quick_check: {problems})"

    def _create_location(self) -> None:
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection uses it

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self._check_open()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_connection()
        try:
            if self._turns is None:
                yield conn
            else:
                with self._turns:
                    yield conn
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: sqlite3.DatabaseError) -> Exception:
        """SQLite's own word for a damaged or read-only file, as the journal's errors."""
        code = _code(exc)
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return DamagedDatabaseError(f"the SQLite file {self.path!r} is damaged: {exc}")
        if code == sqlite3.SQLITE_READONLY:
            if self.read_only:
                return ReadOnlyJournalError(f"{self.url} is opened read-only (mode=ro): nothing can be written")
            return ReadOnlyJournalError(
                f"cannot write to the SQLite journal {self.path!r}: {exc} (the file or its folder is not writable "
                "by this process)"
            )
        return exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.cursor()
            try:
                yield cursor
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            finally:
                cursor.close()

    def _write_many(self, writes: Sequence[StreamWrite]) -> list[list[RecordedEvent]]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            stream_id = writes[0].stream_id  # the one a trigger's refusal is about, as far as we know
            try:
                batches = []
                position = conn.execute("SELECT coalesce(max(position), 0) FROM aj_events").fetchone()[0]
                for write in writes:
                    stream_id = write.stream_id
                    row = conn.execute(
                        "SELECT version, last_hash, closed_at_version FROM aj_streams WHERE stream_id = ?", (stream_id,)
                    ).fetchone()
                    current, last_hash, closed_at = row or (0, GENESIS_HASH, None)
                    if closed_at is not None:  # read under the write lock: the trigger would refuse it anyway
                        raise self._stream_closed(stream_id, closed_at)
                    self._check_expected(stream_id, write.expected, current)
                    batch = write.build(current, last_hash)
                    rows = []
                    for event in batch:
                        position += 1
                        event.position = position
                        rows.append(event_row(event, format_time(event.recorded_at)))
                    conn.executemany(_INSERT, rows)
                    now = format_time(batch[-1].recorded_at)
                    conn.execute(
                        _SAVE_HEAD, (stream_id, batch[-1].version, batch[-1].hash, now, now, closing_version(batch))
                    )
                    batches.append(batch)
                if self._before_commit:
                    self._before_commit()
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                _rollback(conn)
                if str(exc).startswith(CLOSED_STREAM_MESSAGE):
                    raise self._stream_closed(stream_id) from None
                if "event_id" in str(exc):
                    raise EventIdTaken from None
                raise
            except BaseException:
                _rollback(conn)
                raise
        return batches

    def _time_param(self, moment: datetime) -> str:
        return format_time(moment)

    def _time_value(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)  # stored with a Z, so already aware and UTC

    def _applied_migrations(self) -> set[str]:
        with self._connection() as conn:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'aj_schema_migrations'").fetchone()
            if not exists:
                return set()
            return {name for (name,) in conn.execute("SELECT name FROM aj_schema_migrations")}

    def _apply_migration(self, name: str, script: str) -> None:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS aj_schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
                if conn.execute("SELECT 1 FROM aj_schema_migrations WHERE name = ?", (name,)).fetchone():
                    conn.execute("ROLLBACK")  # another process applied it while we waited for the lock
                    return
                for statement in _sqlite_statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO aj_schema_migrations (name, applied_at) VALUES (?, ?)",
                    (name, format_time(datetime.now(UTC))),
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def _release(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _code(exc: sqlite3.Error) -> int:
    """The primary result code (SQLITE_CORRUPT, ...) of a sqlite3 error; -1 when it has none."""
    code = getattr(exc, "sqlite_errorcode", None)
    return int(code) & 0xFF if code is not None else -1


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK, if SQLite has not rolled back already (it does on some errors, e.g. a full disk)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _sqlite_statements(script: str) -> Iterator[str]:
    """Complete statements of a script, so a migration runs inside one transaction."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") for part in buffer.splitlines() if part.strip()):
        raise MigrationError(f"incomplete statement at the end of a migration: {buffer[:80]!r}")
