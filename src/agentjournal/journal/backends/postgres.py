"""PostgreSQL: the production store (psycopg 3, pooled connections).

Global positions, and why not a sequence: a sequence hands out numbers at insert time, so
a transaction that took 7 can commit after one that took 8; a reader polling "after 6"
would see 8, move its checkpoint past 7, and skip 7 forever. Instead every append updates
the single row of `aj_head` (position = position + n) inside its own transaction. The row
lock is held until COMMIT, so the next writer gets its numbers only after the previous one
is visible: positions are handed out in commit order, and a failed append rolls its
numbers back, leaving no gap. The cost is that appends serialize on that row; each holds it
for one statement and its commit.

An append is one statement (a data-modifying CTE: head, events, stream head, NOTIFY) in
autocommit mode; the arrays of the batch travel in binary, so no payload is escaped. The
previous hash comes without a lock (see SQLJournal._write).

Closed streams: the sub-statements of that CTE run in no promised order, and the trigger
that refuses rows past a stream's closing version (0002_closed_streams.sql) can see the
stream-head upsert of its own statement. So the trigger compares versions instead of
refusing any closed head, and the upsert never changes a closed_at_version already set:
either way the trigger sees the version the stream was closed at before this statement,
or this batch's own closing version, which none of its rows is past.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.types.string import TextLoader
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("PostgreSQL support needs the postgres extra: pip install 'agentjournal[postgres]'") from exc

from agentjournal.journal.backends.sql import SQLJournal, closing_version, text
from agentjournal.journal.dialect import PostgresDialect
from agentjournal.journal.envelope import RecordedEvent
from agentjournal.journal.errors import JournalConnectionError, UnsupportedURLError
from agentjournal.journal.location import Location

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Lower case only: PostgreSQL folds an unquoted search_path to lower case."""

_DEFAULTS = {"connect_timeout": "5", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}
"""Connecting (with logging in) gives up after 5 s; a server that stops answering (a dead host, a cut
network) is found by TCP keepalives in about a minute. Each can be set in the URL."""

_STREAM_CLOSED = "23J01"
"""The SQLSTATE of the closed-stream trigger (class 23, integrity constraint violation)."""

_APPEND = """
WITH head AS (
    UPDATE aj_head SET position = position + %(count)s RETURNING position - %(count)s AS base
), inserted AS (
    INSERT INTO aj_events (position, event_id, stream_id, version, type, schema_version, recorded_at, actor,
                           tenant_id, correlation_id, causation_id, traceparent, data, metadata, prev_hash, hash)
    SELECT head.base + e.ord, e.event_id, %(stream_id)s, e.version, e.type, e.schema_version, e.recorded_at,
           e.actor, e.tenant_id, e.correlation_id, e.causation_id, e.traceparent, e.data, e.metadata,
           e.prev_hash, e.hash
    FROM head, unnest(%(event_ids)b::uuid[], %(versions)b::int[], %(types)b::text[], %(schema_versions)b::int[],
                      %(recorded_ats)b::timestamptz[], %(actors)b::text[], %(tenant_ids)b::text[],
                      %(correlation_ids)b::text[], %(causation_ids)b::text[], %(traceparents)b::text[],
                      %(datas)b::json[], %(metadatas)b::json[], %(prev_hashes)b::text[], %(hashes)b::text[])
         WITH ORDINALITY AS e(event_id, version, type, schema_version, recorded_at, actor, tenant_id, correlation_id,
                              causation_id, traceparent, data, metadata, prev_hash, hash, ord)
    RETURNING 1
), stream AS (
    INSERT INTO aj_streams (stream_id, version, last_hash, created_at, updated_at, closed_at_version)
    VALUES (%(stream_id)s, %(last_version)s, %(last_hash)s, %(updated_at)s, %(updated_at)s, %(closed_at_version)s)
    ON CONFLICT (stream_id) DO UPDATE
        SET version = excluded.version, last_hash = excluded.last_hash, updated_at = excluded.updated_at,
            closed_at_version = coalesce(aj_streams.closed_at_version, excluded.closed_at_version)
)
SELECT base, pg_notify(%(channel)s, (base + %(count)s)::text) FROM head
"""


def _append_params(batch: list[RecordedEvent], channel: str) -> dict[str, Any]:
    last = batch[-1]
    return {
        "count": len(batch),
        "stream_id": last.stream_id,
        "event_ids": [event.event_id for event in batch],
        "versions": [event.version for event in batch],
        "types": [event.type for event in batch],
        "schema_versions": [event.schema_version for event in batch],
        "recorded_ats": [event.recorded_at for event in batch],
        "actors": [event.actor for event in batch],
        "tenant_ids": [event.tenant_id for event in batch],
        "correlation_ids": [event.correlation_id for event in batch],
        "causation_ids": [event.causation_id for event in batch],
        "traceparents": [event.traceparent for event in batch],
        "datas": [text(event.data_json) for event in batch],
        "metadatas": [text(event.metadata_json) for event in batch],
        "prev_hashes": [event.prev_hash for event in batch],
        "hashes": [event.hash for event in batch],
        "last_version": last.version,
        "last_hash": last.hash,
        "updated_at": last.recorded_at,
        "closed_at_version": closing_version(batch),
        "channel": channel,
    }


class PostgresJournal(SQLJournal):
    backend_name = "postgres"
    dialect = "postgres"
    sql_dialect = PostgresDialect()
    param = "%s"

    def __init__(self, url: str, *, create: bool = False, pool_size: int = 8, **options: Any) -> None:
        """Connecting writes nothing, unless `create`: the URL's ?schema= is then created if it is missing."""
        super().__init__(**options)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.schema = query.pop("schema", None)
        if self.schema is not None and not _SCHEMA_NAME.match(self.schema):
            raise UnsupportedURLError(
                f"PostgreSQL schema name {self.schema!r}: use lower-case letters, digits and underscores "
                "(at most 63, not starting with a digit)"
            )
        settings = "-c timezone=UTC" + (f" -c search_path={self.schema}" if self.schema else "")
        query["options"] = f"{query['options']} {settings}" if "options" in query else settings
        query = {**_DEFAULTS, **query}
        for name in (*_DEFAULTS, "tcp_user_timeout", "keepalives"):
            if name in query and not query[name].isdigit():
                raise UnsupportedURLError(
                    f"PostgreSQL URL parameter {name} must be a whole number >= 0, got {query[name]!r}"
                )
        self.connect_timeout = int(query["connect_timeout"])
        self.url = url
        self.notify_channel = f"aj_events_{self.schema}" if self.schema else "aj_events"
        """LISTEN on this channel to be woken with the last position of every append."""
        self.conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query, quote_via=quote), ""))
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        self.connect().close()  # fail here, with host and port, not in the pool's retries
        self._pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=True,
            name=f"agentjournal-{self.schema or 'public'}",
        )
        if create:
            self._create_location()

    def connect(self) -> psycopg.Connection[Any]:
        """A new, unpooled connection with this journal's settings (for LISTEN, for instance)."""
        self._check_open()
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
        except pg_errors.ConnectionTimeout:
            raise JournalConnectionError(
                f"cannot reach PostgreSQL at {self._where}: no answer within {self.connect_timeout} s "
                f"(connect_timeout={self.connect_timeout}); is a PostgreSQL server listening there?"
            ) from None
        except psycopg.OperationalError as exc:
            said = _first_line(exc)
            if "invalid response" in said or "expected authentication request" in said:
                said += "; is a PostgreSQL server listening there?"
            raise JournalConnectionError(f"cannot reach PostgreSQL at {self._where}: {said}") from None
        _configure(conn)
        return conn

    def _location(self) -> Location:
        schema = self.schema or self._rows("SELECT current_schema()")[0][0]
        advice = "give the journal a schema of its own (add ?schema=agentjournal to the URL)"
        if schema is None:
            return Location(False, detail="no schema of its search_path exists")
        if self.schema and not self._rows("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]):
            return Location(False, detail=f"there is no schema {schema}")
        tables = [
            name
            for (name,) in self._rows(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                [schema],
            )
        ]
        return self._location_of(tables, f"schema {schema}", advice, explicit=self.schema is not None)

    def _create_location(self) -> None:
        if not self.schema:
            return
        # Another process may create it at the same moment: IF NOT EXISTS does not cover that race.
        with self._connection() as conn, contextlib.suppress(pg_errors.UniqueViolation, pg_errors.DuplicateSchema):
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        self._check_open()
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise JournalConnectionError(f"lost PostgreSQL at {self._where}: {_first_line(exc)}") from exc

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    def _clash(self, error: Exception) -> str | None:
        if isinstance(error, psycopg.IntegrityError) and error.sqlstate == _STREAM_CLOSED:
            return "closed"
        if not isinstance(error, pg_errors.UniqueViolation):
            return None
        return "event_id" if error.diag.constraint_name == "aj_events_event_id_key" else "version"

    def _insert_many(self, batches: list[list[RecordedEvent]]) -> None:
        """One `_APPEND` per stream; several in one transaction, which holds the position counter's row
        from the first to COMMIT, so the batches' positions are consecutive and commit in order."""
        with self._connection() as conn:
            if len(batches) == 1 and self._before_commit is None:  # one statement: its own transaction
                bases = [conn.execute(_APPEND, _append_params(batches[0], self.notify_channel)).fetchone()[0]]  # type: ignore[index]
            else:
                with conn.transaction():
                    bases = [
                        conn.execute(_APPEND, _append_params(batch, self.notify_channel)).fetchone()[0]  # type: ignore[index]
                        for batch in batches
                    ]
                    if self._before_commit is not None:
                        self._before_commit()
        for base, batch in zip(bases, batches, strict=True):
            for offset, event in enumerate(batch, start=1):
                event.position = base + offset

    def _time_value(self, value: Any) -> datetime:
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    def _applied_migrations(self) -> set[str]:
        with self._connection() as conn:
            exists = conn.execute("SELECT to_regclass('aj_schema_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return set()
            return {name for (name,) in conn.execute("SELECT name FROM aj_schema_migrations")}

    def _apply_migration(self, name: str, script: str) -> None:
        with self._connection() as conn, conn.transaction():
            # Transaction-scoped lock (safe behind connection poolers): one migrator at a time.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/agentjournal-migrations'))")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS aj_schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
            )
            if conn.execute("SELECT 1 FROM aj_schema_migrations WHERE name = %s", [name]).fetchone():
                return
            conn.execute(script.encode())  # no parameters: the simple protocol runs every statement
            conn.execute("INSERT INTO aj_schema_migrations (name, applied_at) VALUES (%s, now())", [name])

    def _release(self) -> None:
        self._pool.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Ids and JSON come back as text: JSON is decoded lazily, and hashed as stored."""
    conn.adapters.register_loader("uuid", TextLoader)
    conn.adapters.register_loader("json", TextLoader)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
