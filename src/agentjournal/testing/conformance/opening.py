"""Opening: reading never creates a journal, creating is asked for, another application's tables are
left alone, a closed journal stays closed, and a URL says only what its backend understands."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from agentjournal import Journal, NewEvent
from agentjournal.journal import (
    AsyncJournal,
    JournalClosedError,
    JournalNotFoundError,
    LocationInUseError,
    UnsupportedURLError,
)
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.urls import PARAMETERS

from .base import ConformanceBase, new_events


class OpeningConformance(ConformanceBase):
    explicit_place: ClassVar[bool] = False
    """The URL names a place of the journal's own (PostgreSQL's ?schema=): other tables there are
    the user's choice, and a journal is created beside them."""

    # ----- reading never creates ------------------------------------------------------------

    def test_opening_where_there_is_no_journal_creates_nothing(self, journal_url: str) -> None:
        if not self.persistent:
            pytest.skip("a memory journal is new each time it is opened: there is nothing to find")
        for _ in range(2):  # the refusal changed nothing: it is refused again, the same way
            with pytest.raises(JournalNotFoundError, match=r"^no journal at .*`agentjournal migrate` creates one"):
                self.open_journal(journal_url)
            with pytest.raises(JournalNotFoundError):
                self.open_journal(journal_url, migrate=False)
            assert self.tables_at(journal_url) in (None, [])
        with self.open_journal(journal_url, create=True) as created:
            created.append("s", new_events(2))
        with self.open_journal(journal_url) as reopened:  # now there is one: opening finds it
            assert reopened.stream_version("s") == 2
            assert reopened.verify().ok

    def test_another_applications_tables_are_never_made_a_journal(self, journal_url: str) -> None:
        if not self.persistent:
            pytest.skip("a memory journal has no place shared with anything")
        self.create_foreign_table(journal_url, "app_orders")
        with pytest.raises(JournalNotFoundError, match=r"another application's tables \(app_orders\)"):
            self.open_journal(journal_url)
        if self.explicit_place:
            with self.open_journal(journal_url, create=True) as beside:
                assert beside.head_position() == 0
            return
        for _ in range(2):
            in_use = r"holds another application's tables \(app_orders\)"
            with pytest.raises(LocationInUseError, match=in_use) as refused:
                self.open_journal(journal_url, create=True)
            assert refused.value.tables == ["app_orders"]
            assert "--allow-other-tables" in str(refused.value)
            assert self.tables_at(journal_url) == ["app_orders"]  # nothing was created beside it
        with self.open_journal(journal_url, create=True, allow_other_tables=True) as beside:
            beside.append("s", new_events(1))
        assert "app_orders" in (self.tables_at(journal_url) or [])
        with self.open_journal(journal_url) as journal:  # from now on it is a journal, opened as any other
            assert journal.stream_version("s") == 1

    def test_a_journal_beside_other_tables_keeps_opening(self, journal: Journal, journal_url: str) -> None:
        """Tables added later (a user's own read model) do not make the journal someone else's."""
        if not self.persistent:
            pytest.skip("a memory journal has no tables")
        journal.append("s", new_events(1))
        self.create_foreign_table(journal_url, "my_read_model")
        with self.open_journal(journal_url) as again:
            assert again.stream_version("s") == 1

    # ----- a closed journal is closed ----------------------------------------------------------

    def test_every_call_on_a_closed_journal_says_it_is_closed(self, journal: Journal) -> None:
        stored = journal.append("s", new_events(2)).events
        exported = [event.to_dict() for event in stored]
        journal.close()
        calls: dict[str, Callable[[], Any]] = {
            "append": lambda: journal.append("s", new_events(1)),
            "append (invalid)": lambda: journal.append("", []),
            "read_stream": lambda: journal.read_stream("s"),
            "read_all": journal.read_all,
            "iter_all": lambda: next(journal.iter_all()),
            "get_event": lambda: journal.get_event(stored[0].event_id),
            "stream_version": lambda: journal.stream_version("s"),
            "streams": journal.streams,
            "head_position": journal.head_position,
            "verify": journal.verify,
            "import_events": lambda: journal.import_events(exported),
            "pending_migrations": journal.pending_migrations,
            "migrate": journal.migrate,
        }
        if isinstance(journal, SQLJournal):
            sql = journal
            calls["query"] = lambda: sql.query("SELECT 1")
            calls["transaction"] = lambda: sql.transaction().__enter__()
        for name, call in calls.items():
            with pytest.raises(JournalClosedError, match=r"^this journal is closed \(") as raised:
                call()
            assert journal.url in str(raised.value), name
        journal.close()  # closing again is fine
        if self.persistent:
            with Journal.open(journal.url) as reopened:  # nothing was written after close
                assert reopened.head_position() == 2

    def test_a_closed_async_journal_is_closed(self, journal: Journal) -> None:
        async def scenario() -> None:
            async_journal = AsyncJournal(journal)
            await async_journal.append("s", new_events(1))
            await async_journal.aclose()
            with pytest.raises(JournalClosedError):
                await async_journal.append("s", new_events(1))
            with pytest.raises(JournalClosedError):
                await async_journal.read_stream("s")

        asyncio.run(scenario())

    # ----- URL parameters ------------------------------------------------------------------

    def test_an_unknown_url_parameter_is_refused_naming_the_known_ones(self, journal_url: str) -> None:
        backend = _backend(journal_url)
        for bad in ("foo=bar", "Schema=x", "connect-timeout=3"):
            url = journal_url + ("&" if "?" in journal_url else "?") + bad
            with pytest.raises(UnsupportedURLError, match=f"unknown parameter '{bad.split('=')[0]}'") as refused:
                self.open_journal(url, create=True)
            known = ", ".join(PARAMETERS[backend]) or "none"
            assert str(refused.value).endswith(f"known parameters: {known}")
        if self.persistent:
            assert self.tables_at(journal_url) in (None, [])

    def test_a_parameter_given_twice_is_refused(self, journal_url: str) -> None:
        backend = _backend(journal_url)
        if not PARAMETERS[backend]:
            pytest.skip(f"{backend} URLs take no parameters")
        name = next(iter(PARAMETERS[backend]))
        url = journal_url + ("&" if "?" in journal_url else "?") + f"{name}=1&{name}=2"
        with pytest.raises(UnsupportedURLError, match=re.escape(f"parameter {name!r} appears twice")):
            self.open_journal(url, create=True)

    def test_a_journal_after_a_failed_open_is_not_left_half_made(self, journal_url: str) -> None:
        """A refused create leaves the place as it was, so the same URL can be created afterwards."""
        if not self.persistent:
            pytest.skip("a memory journal is new each time")
        with pytest.raises(UnsupportedURLError):
            self.open_journal(journal_url + ("&" if "?" in journal_url else "?") + "nope=1", create=True)
        with self.open_journal(journal_url, create=True) as journal:
            assert journal.append("s", NewEvent("Noted")).last_position == 1


def _backend(url: str) -> str:
    scheme = url.split("://", 1)[0].split("+", maxsplit=1)[0].lower()
    return {"postgresql": "postgres", "mariadb": "mysql"}.get(scheme, scheme)
