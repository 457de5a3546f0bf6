"""The fixture hook every backend's test class fills in, and the helpers the suite shares.

A backend's test class subclasses `JournalConformance` and overrides the `journal_url`
fixture (and, for a backend without SQL, the tamper hooks). Everything else is inherited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

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
        raise NotImplementedError(f"{type(self).__name__} must override the journal_url fixture")

    def open_journal(self, url: str, **options: Any) -> Journal:
        """How the suite opens a journal; a third-party backend may override it."""
        return Journal.open(url, **options)

    @pytest.fixture
    def journal(self, journal_url: str) -> Iterator[Journal]:
        journal = self.open_journal(journal_url)
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

    def stored_json(self, journal: SQLJournal, value: bytes) -> Any:
        """Canonical JSON as the data column's driver parameter."""
        return value.decode()


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
