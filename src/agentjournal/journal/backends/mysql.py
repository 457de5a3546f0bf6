"""MySQL / MariaDB (PyMySQL). The same design as PostgreSQL, in InnoDB.

Global positions: not AUTO_INCREMENT, which (like a sequence) hands out numbers at insert
time, so a later number can commit first and a polling reader would skip the earlier one.
Every append updates the single row of `aj_head` inside its transaction; InnoDB holds that
row lock until COMMIT, so positions are handed out in commit order and a rolled-back
append leaves no gap. Appends serialize on that row for one round trip and a commit.

An append is one round trip: BEGIN, the head update (remembering the base position in a
session variable), the multi-row insert, the stream-head upsert and COMMIT, sent as one
multi-statement query (split only where a batch outgrows max_allowed_packet). The previous
hash comes without a lock (see SQLJournal._write).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

try:
    import pymysql
    from pymysql.constants import CLIENT
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("MySQL/MariaDB support needs the mysql extra: pip install 'agentjournal[mysql]'") from exc

from agentjournal.journal.backends.sql import (
    CLOSED_STREAM_MESSAGE,
    COLUMNS,
    SQLJournal,
    closing_version,
    event_row,
    split_statements,
)
from agentjournal.journal.dialect import MySQLDialect
from agentjournal.journal.envelope import RecordedEvent
from agentjournal.journal.errors import (
    InvalidEventError,
    JournalConnectionError,
    JournalNotFoundError,
    UnsupportedURLError,
)
from agentjournal.journal.location import Location, redact

_DUPLICATE_KEY = 1062
_SIGNALED = 1644
"""ER_SIGNAL_EXCEPTION: a trigger's SIGNAL SQLSTATE '45000' (the closed-stream trigger's is CLOSED_STREAM_MESSAGE)."""
_CONNECTION_ERRORS = (2002, 2003, 2006, 2013)
_SAVE_HEAD = (
    "INSERT INTO aj_streams (stream_id, version, last_hash, created_at, updated_at, closed_at_version) VALUES ({}) "
    "ON DUPLICATE KEY UPDATE version = VALUES(version), last_hash = VALUES(last_hash), "
    "updated_at = VALUES(updated_at), closed_at_version = coalesce(closed_at_version, VALUES(closed_at_version))"
)


class MySQLJournal(SQLJournal):
    backend_name = "mysql"
    dialect = "mysql"
    sql_dialect = MySQLDialect()
    param = "%s"

    def __init__(self, url: str, *, pool_size: int = 8, **options: Any) -> None:
        super().__init__(**options)
        parts = urlsplit(url)
        self.url = url
        self.database = unquote(parts.path.lstrip("/")) or "agentjournal"
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 3306}"
        self._connect_args: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "database": self.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "client_flag": CLIENT.MULTI_STATEMENTS,
            "init_command": "SET time_zone = '+00:00'",
            **_url_parameters(parse_qsl(parts.query)),
        }
        self.connect_timeout: float = self._connect_args.pop("connect_timeout", 5)
        self.read_timeout: float | None = self._connect_args.pop("read_timeout", 300) or None
        self._connect_args.setdefault("write_timeout", 300)
        self._connect_args["write_timeout"] = self._connect_args["write_timeout"] or None
        self._idle: queue.LifoQueue[pymysql.connections.Connection] = queue.LifoQueue(maxsize=pool_size)
        self._max_packet: int | None = None
        self._give_back(self.connect())  # fail now, with a clear message, if the server is unreachable

    def connect(self) -> pymysql.connections.Connection:
        """A new, unpooled connection with this journal's settings.

        PyMySQL reads the server's greeting with the read timeout, not the connect timeout, so a
        port that accepts and never answers would hold a connect for the whole read timeout (or
        for ever, without one): the greeting is read with the connect timeout instead.
        """
        self._check_open()
        conn = pymysql.connections.Connection(
            **self._connect_args,
            connect_timeout=self.connect_timeout,
            read_timeout=self.connect_timeout,
            defer_connect=True,
        )
        try:
            conn.connect()
        except pymysql.err.OperationalError as exc:
            code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
            if code == 2013 and "timed out" in str(message):
                raise JournalConnectionError(
                    f"cannot reach MySQL/MariaDB at {self._where}: no greeting within {self.connect_timeout:g} s "
                    f"(connect_timeout={self.connect_timeout:g}); is a MySQL/MariaDB server listening there?"
                ) from None
            if code == 1049:  # the server is there, the database is not: no journal, and none is created
                raise JournalNotFoundError(
                    f"no journal at {redact(self.url)}: the server has no database `{self.database}`; "
                    f"create it first (CREATE DATABASE `{self.database}`)",
                    self.url,
                ) from None
            raise JournalConnectionError(f"cannot reach MySQL/MariaDB at {self._where}: ({code}) {message}") from None
        conn._read_timeout = self.read_timeout  # PyMySQL has no public setter; every later read uses it
        return conn

    def _location(self) -> Location:
        tables = [
            name
            for (name,) in self._rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
        ]
        advice = "give the journal a database of its own (CREATE DATABASE agentjournal, then mysql://…/agentjournal)"
        return self._location_of(tables, f"database {self.database}", advice)

    def _give_back(self, conn: pymysql.connections.Connection) -> None:
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[pymysql.connections.Connection]:
        self._check_open()
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self.connect()
        try:
            yield conn
        except pymysql.err.OperationalError as exc:
            conn.close()
            if exc.args and exc.args[0] in _CONNECTION_ERRORS:
                timed_out = "timed out" in str(exc.args[-1]) and self.read_timeout
                hint = f" (no answer within read_timeout={self.read_timeout:g} s)" if timed_out else ""
                raise JournalConnectionError(f"lost MySQL/MariaDB at {self._where}: {exc.args[-1]}{hint}") from exc
            raise
        except BaseException:
            conn.close()  # its state is unknown (a transaction may be open): never reuse it
            raise
        else:
            self._give_back(conn)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._connection() as conn:
            conn.begin()
            cursor = conn.cursor()
            try:
                yield cursor
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                cursor.close()

    def _clash(self, error: Exception) -> str | None:
        if (
            isinstance(error, pymysql.err.OperationalError)
            and error.args[0] == _SIGNALED
            and str(error.args[-1]).startswith(CLOSED_STREAM_MESSAGE)
        ):
            return "closed"
        if not isinstance(error, pymysql.err.IntegrityError) or error.args[0] != _DUPLICATE_KEY:
            return None
        return "event_id" if "aj_events_event_id" in str(error.args[1]) else "version"

    def _insert_many(self, batches: list[list[RecordedEvent]]) -> None:
        """One transaction: the position counter moved once for every event, then the rows and each
        stream's head, sent as few packets of statements as fit."""
        with self._connection() as conn:
            escape = conn.escape
            events = [event for batch in batches for event in batch]
            rows = [
                "(@aj_base + {}, {})".format(
                    offset, ",".join(escape(value) for value in event_row(event, _naive(event.recorded_at))[1:])
                )
                for offset, event in enumerate(events, start=1)
            ]
            heads = [
                ",".join(
                    escape(value)
                    for value in (
                        batch[-1].stream_id,
                        batch[-1].version,
                        batch[-1].hash,
                        _naive(batch[-1].recorded_at),
                        _naive(batch[-1].recorded_at),
                        closing_version(batch),
                    )
                )
                for batch in batches
            ]
            statements = [
                "BEGIN",
                f"UPDATE aj_head SET position = (@aj_base := position) + {len(events)} WHERE id = 1",
                *(f"INSERT INTO aj_events ({COLUMNS}) VALUES {chunk}" for chunk in self._chunks(rows, conn)),
                *(_SAVE_HEAD.format(head) for head in heads),
                "SELECT @aj_base",
            ]
            if self._before_commit is None:
                statements.append("COMMIT")
            cursor = conn.cursor()
            try:
                for query in self._pack(statements, conn):
                    cursor.execute(query)
                    while True:  # each statement's result; an error surfaces here
                        if cursor.description:
                            base = int(cursor.fetchone()[0])
                        if not cursor.nextset():
                            break
                if self._before_commit:
                    self._before_commit()
                    cursor.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            finally:
                cursor.close()
        for offset, event in enumerate(events, start=1):
            event.position = base + offset

    def _packet_limit(self, conn: pymysql.connections.Connection) -> int:
        """The server's max_allowed_packet, less room for the statement around the values."""
        if self._max_packet is None:
            with conn.cursor() as cursor:
                cursor.execute("SELECT @@max_allowed_packet")
                self._max_packet = int(cursor.fetchone()[0]) - 64 * 1024
        return self._max_packet

    def _chunks(self, rows: list[str], conn: pymysql.connections.Connection) -> Iterator[str]:
        """Multi-row VALUES lists that each fit in one packet (a big batch takes several inserts)."""
        limit = self._packet_limit(conn)
        chunk: list[str] = []
        size = 0
        for row in rows:
            if len(row) > limit:
                raise InvalidEventError(
                    f"an event of {len(row):,} bytes does not fit the server's max_allowed_packet "
                    f"({limit + 64 * 1024:,} bytes); raise max_allowed_packet or lower max_payload_bytes"
                )
            if chunk and size + len(row) > limit:
                yield ",".join(chunk)
                chunk, size = [], 0
            chunk.append(row)
            size += len(row) + 1
        yield ",".join(chunk)

    def _pack(self, statements: list[str], conn: pymysql.connections.Connection) -> Iterator[str]:
        """Consecutive statements joined into as few queries (round trips) as fit in a packet."""
        limit = self._packet_limit(conn)
        query: list[str] = []
        size = 0
        for statement in statements:
            if query and size + len(statement) > limit:
                yield ";".join(query)
                query, size = [], 0
            query.append(statement)
            size += len(statement) + 1
        yield ";".join(query)

    def _time_param(self, moment: datetime) -> datetime:
        return _naive(moment)

    def _time_value(self, value: Any) -> datetime:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    def _applied_migrations(self) -> set[str]:
        rows = self._rows(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name = 'aj_schema_migrations'"
        )
        if not rows[0][0]:
            return set()
        return {name for (name,) in self._rows("SELECT name FROM aj_schema_migrations")}

    def _apply_migration(self, name: str, script: str) -> None:
        # MySQL commits DDL implicitly, so a named lock (not a transaction) keeps migrators apart.
        with self._connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(CONCAT(DATABASE(), '/agentjournal-migrations'), 60)")
            try:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS aj_schema_migrations "
                    "(name VARCHAR(255) PRIMARY KEY, applied_at DATETIME(6) NOT NULL)"
                )
                cursor.execute("SELECT 1 FROM aj_schema_migrations WHERE name = %s", [name])
                if cursor.fetchone():
                    return
                for statement in split_statements(script):
                    cursor.execute(statement)
                cursor.execute(
                    "INSERT INTO aj_schema_migrations (name, applied_at) VALUES (%s, UTC_TIMESTAMP(6))", [name]
                )
            finally:
                cursor.execute("SELECT RELEASE_LOCK(CONCAT(DATABASE(), '/agentjournal-migrations'))")

    def _release(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


_NUMBERS = ("connect_timeout", "read_timeout", "write_timeout")
_FLAGS = ("ssl_verify_cert", "ssl_verify_identity")


def _url_parameters(query: list[tuple[str, str]]) -> dict[str, Any]:
    """The URL's parameters (checked against urls.PARAMETERS already) as PyMySQL's arguments."""
    arguments: dict[str, Any] = {}
    for name, value in query:
        if name in _NUMBERS:
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if not (number >= 0 and (number > 0 or name != "connect_timeout")):
                least = "> 0" if name == "connect_timeout" else ">= 0 (0: no limit)"
                raise UnsupportedURLError(
                    f"MySQL URL parameter {name} must be a number of seconds {least}, got {value!r}"
                )
            arguments[name] = number
        elif name in _FLAGS:
            if value.lower() not in ("true", "false", "1", "0"):
                raise UnsupportedURLError(f"MySQL URL parameter {name} must be true or false, got {value!r}")
            arguments[name] = value.lower() in ("true", "1")
        else:
            arguments[name] = value
    return arguments


def _naive(moment: datetime) -> datetime:
    """DATETIME has no zone: the journal stores UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _rollback(conn: pymysql.connections.Connection) -> None:
    with contextlib.suppress(pymysql.err.Error):  # the connection is discarded by _connection anyway
        conn.rollback()
