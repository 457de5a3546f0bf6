"""The fixture hook every backend's test class fills in, and the helpers the suite shares.

A backend's test class subclasses `JournalConformance` and overrides the `journal_url`
fixture (and, for a backend without SQL, the tamper hooks). Everything else is inherited.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import pytest

from agentjournal import Journal, NewEvent, RecordedEvent
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.envelope import canonical_json


class ConformanceBase:
    """Fixtures, per-backend knobs and the ways to tamper with stored rows."""

    persistent: ClassVar[bool] = True
    """The journal lives in a database: opening its URL again reaches the same events."""

    hypothesis_examples: ClassVar[int] = 20
    """Examples of the stateful test; keep it modest where each step is a round trip to a server."""

    @pytest.fixture
    def journal_url(self) -> str:
        """A place with no journal yet (a new SQLite file name, PostgreSQL schema, MySQL database)."""
        raise NotImplementedError(f"{type(self).__name__} must override the journal_url fixture")

    def open_journal(self, url: str, **options: Any) -> Journal:
        """How the suite opens a journal; a third-party backend may override it."""
        return Journal.open(url, **options)

    @pytest.fixture
    def journal(self, journal_url: str) -> Iterator[Journal]:
        """A new journal at `journal_url` (created there when there is none yet)."""
        journal = self.open_journal(journal_url, create=True)
        try:
            yield journal
        finally:
            journal._before_commit = None
            journal.close()

    # ----- tampering: change stored rows behind the journal's back ----------------------

    def sql_journal(self, journal: Journal) -> SQLJournal:
        if not isinstance(journal, SQLJournal):
            pytest.skip(f"{journal.backend_name} has no database to reach behind the journal's back")
        return journal

    def disable_immutability(self, journal: SQLJournal, cursor: Any) -> None:
        """Switch off the triggers that refuse UPDATE and DELETE (by their documented names)."""
        if journal.dialect == "postgres":
            cursor.execute("ALTER TABLE aj_events DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS aj_events_no_update")
            cursor.execute("DROP TRIGGER IF EXISTS aj_events_no_delete")

    def tamper_change_data(self, journal: Journal, event: RecordedEvent, data: dict[str, Any]) -> None:
        """Overwrite a stored event's data with the triggers switched off."""
        sql = self.sql_journal(journal)
        p = sql.param
        with sql.transaction() as cursor:
            self.disable_immutability(sql, cursor)
            cursor.execute(
                f"UPDATE aj_events SET data = {p} WHERE position = {p}",
                (self.stored_json(sql, canonical_json(data)), event.position),
            )
            assert cursor.rowcount == 1

    def tamper_delete(self, journal: Journal, event: RecordedEvent) -> None:
        """Delete a stored event with the triggers switched off."""
        sql = self.sql_journal(journal)
        with sql.transaction() as cursor:
            self.disable_immutability(sql, cursor)
            cursor.execute(f"DELETE FROM aj_events WHERE position = {sql.param}", (event.position,))
            assert cursor.rowcount == 1

    def tamper_set_closed(self, journal: Journal, stream_id: str, closed_at_version: int | None) -> None:
        """Reopen a closed stream (None), or mark an open one closed, in its head row."""
        sql = self.sql_journal(journal)
        p = sql.param
        with sql.transaction() as cursor:
            cursor.execute(
                f"UPDATE aj_streams SET closed_at_version = {p} WHERE stream_id = {p}", (closed_at_version, stream_id)
            )
            assert cursor.rowcount == 1

    # ----- the place a URL names, seen behind the journal's back ---------------------------

    def tables_at(self, url: str) -> list[str] | None:
        """The tables and views at `url`, sorted; None when the place itself does not exist (no
        SQLite file, no PostgreSQL schema). A third-party backend overrides it with its own."""
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0].lower()
        if scheme == "sqlite":
            path = Path(unquote(url.split("://", 1)[1].split("?", 1)[0])[1:]).expanduser()
            if not path.exists():
                return None
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                rows = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite%'"
                ).fetchall()
            return sorted(name for (name,) in rows)
        if scheme in ("postgresql", "postgres"):
            import psycopg

            schema = dict(parse_qsl(parts.query)).get("schema", "public")
            with psycopg.connect(urlunsplit((*parts[:3], "", ""))) as conn:
                if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone():
                    return None
                rows = conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                    [schema],
                ).fetchall()
            return sorted(name for (name,) in rows)
        if scheme in ("mysql", "mariadb"):
            with closing(_mysql(url)) as conn, conn.cursor() as cursor:
                cursor.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    [unquote(parts.path.lstrip("/"))],
                )
                return sorted(name for (name,) in cursor.fetchall())
        raise NotImplementedError(f"{type(self).__name__} must override tables_at for {scheme}://")

    def create_foreign_table(self, url: str, name: str) -> None:
        """A table of another application at `url` (in a new SQLite file or schema if need be)."""
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0].lower()
        if scheme == "sqlite":
            path = Path(unquote(url.split("://", 1)[1].split("?", 1)[0])[1:]).expanduser()
            with closing(sqlite3.connect(path)) as conn:
                conn.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note TEXT)")
                conn.commit()
        elif scheme in ("postgresql", "postgres"):
            import psycopg

            schema = dict(parse_qsl(parts.query)).get("schema", "public")
            with psycopg.connect(urlunsplit((*parts[:3], "", "")), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                conn.execute(f'CREATE TABLE "{schema}".{name} (id INTEGER PRIMARY KEY, note TEXT)')
        elif scheme in ("mysql", "mariadb"):
            with closing(_mysql(url)) as conn, conn.cursor() as cursor:
                database = unquote(parts.path.lstrip("/"))
                cursor.execute(f"CREATE TABLE `{database}`.{name} (id INTEGER PRIMARY KEY, note TEXT)")
        else:
            raise NotImplementedError(f"{type(self).__name__} must override create_foreign_table for {scheme}://")

    def stored_json(self, journal: SQLJournal, value: bytes) -> Any:
        """Canonical JSON as the data column's driver parameter."""
        return value.decode()


def _mysql(url: str) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "localhost",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        autocommit=True,
    )


def new_events(count: int, type: str = "Noted", **data: Any) -> list[NewEvent]:
    return [NewEvent(type, {"n": n, **data}) for n in range(1, count + 1)]


def positions(events: list[RecordedEvent]) -> list[int]:
    return [event.position for event in events]


def assert_contiguous(events: list[RecordedEvent], first: int) -> None:
    """Positions are exactly first, first + 1, ... in order: no gap, no repeat."""
    assert positions(events) == list(range(first, first + len(events)))


def tail(journal: Journal, after: int, count: int, *, timeout: float = 30.0) -> list[RecordedEvent]:
    """Poll `read_all(after=checkpoint)` like a catch-up subscriber until `count` events arrive."""
    seen: list[RecordedEvent] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        page = journal.read_all(after, 500)
        if page:
            seen.extend(page)
            after = page[-1].position
        else:
            time.sleep(0.002)
    return seen


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
