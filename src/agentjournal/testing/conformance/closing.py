"""Closed streams: an event appended with `closes_stream=True` is its stream's last, and every
later append is refused (by the database itself on the SQL backends), on every write path."""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentjournal import ANY, ConcurrencyError, DuplicateEventError, InvalidEventError, Journal, NewEvent
from agentjournal.journal import ImportRefusedError, StreamClosedError
from agentjournal.journal.backends.sql import COLUMNS, SQLJournal, event_row
from agentjournal.journal.envelope import RecordedEvent, canonical_json
from agentjournal.journal.urls import connect

from .base import ConformanceBase, assert_contiguous, new_events


def closing(type: str = "RunCompleted", data: dict[str, Any] | None = None, **options: Any) -> NewEvent:
    return NewEvent(type, {"ok": True} if data is None else data, closes_stream=True, **options)


class ClosingConformance(ConformanceBase):
    # ----- a closed stream refuses every append, and stores nothing ---------------------------

    def test_a_closed_stream_refuses_every_append(self, journal: Journal) -> None:
        journal.append("other", new_events(1))
        stored = journal.append("run-7", [NewEvent("RunStarted"), closing()]).events
        assert [event.closes_stream for event in stored] == [False, True]
        head = journal.head_position()
        attempts: list[tuple[list[NewEvent], Any]] = [
            ([closing()], ANY),  # closing it again, straight after it was closed
            (new_events(1), ANY),
            (new_events(1), 2),  # the right expected version
            (new_events(1), 1),  # a stale one: still "closed", since retrying cannot help
            (new_events(1), 0),
            (new_events(3), ANY),  # a batch
            ([NewEvent("A"), closing()], 2),
        ]
        for batch, expected in attempts:
            with pytest.raises(StreamClosedError) as refused:
                journal.append("run-7", batch, expected_version=expected)
            assert not isinstance(refused.value, ConcurrencyError)
            assert (refused.value.stream_id, refused.value.closed_at_version) == ("run-7", 2)
            assert "stream 'run-7' is closed: version 2 (RunCompleted) closed it" in str(refused.value)
            assert journal.stream_version("run-7") == 2
            assert journal.head_position() == head
        # The refusals left no gap: the next append anywhere takes the next position.
        assert journal.append("other", new_events(1)).last_position == head + 1
        assert_contiguous(journal.read_all(), 1)
        assert journal.read_stream("run-7") == stored
        assert journal.verify().ok

    def test_the_closing_event_is_readable_with_its_flag(self, journal: Journal) -> None:
        journal.append("run-7", [NewEvent("RunStarted"), closing(metadata={"cost": 0.5})])
        last = journal.read_stream("run-7")[-1]
        assert last.closes_stream
        assert last.metadata == {"cost": 0.5, "closes_stream": True}
        assert journal.get_event(last.event_id).closes_stream
        assert journal.read_all(types=["RunCompleted"])[0].closes_stream
        assert not journal.read_stream("run-7")[0].closes_stream

    def test_a_stream_that_is_not_closed_is_unaffected(self, journal: Journal) -> None:
        journal.append("done", [closing()])
        journal.append("open", [NewEvent("A", metadata={"closes_stream": False})])
        journal.append("open", [NewEvent("B", metadata={"note": {"closes_stream": True}})])  # nested: not the flag
        journal.append("open", [NewEvent("C", {"closes_stream": True})])  # data: not the flag
        events = journal.read_stream("open")
        assert [event.closes_stream for event in events] == [False, False, False]
        assert journal.append("open", new_events(2), expected_version=3).last_version == 5
        assert journal.verify().ok

    def test_the_flag_can_come_in_the_metadata(self, journal: Journal) -> None:
        """As in an export: `"closes_stream": true` in the metadata closes the stream too."""
        journal.append("s", [NewEvent("Done", metadata={"closes_stream": True})])
        with pytest.raises(StreamClosedError, match="version 1 \\(Done\\)"):
            journal.append("s", new_events(1))

    # ----- idempotent retries still work ------------------------------------------------------

    def test_retrying_the_closing_batch_is_a_no_op(self, journal: Journal) -> None:
        batch = [
            NewEvent("ToolExecuted", {"n": 1}, event_id=str(uuid.uuid4())),
            closing(event_id=str(uuid.uuid4())),
        ]
        first = journal.append("run-7", batch, expected_version=0)
        journal.append("other", new_events(1))
        for expected in (0, ANY, 2):
            retry = journal.append("run-7", batch, expected_version=expected)
            assert retry.already_appended
            assert retry.events == first.events
        changed = [batch[0], closing(event_id=batch[1].event_id, data={"ok": False})]
        with pytest.raises(DuplicateEventError, match="different content"):
            journal.append("run-7", changed)
        with pytest.raises(StreamClosedError):
            journal.append("run-7", [closing(event_id=str(uuid.uuid4()))])  # a new event, not a retry
        assert journal.head_position() == 3
        assert journal.stream_version("run-7") == 2

    # ----- import, export ---------------------------------------------------------------------

    def test_import_events_cannot_append_to_a_closed_stream(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", [NewEvent("RunStarted"), closing()])
            exported = [event.to_dict() for event in source.read_all()]
        sneaked = _next_event(exported[-1]["stream_id"], exported[-1]["version"], exported[-1]["hash"]).to_dict()
        # In one import: refused before anything is stored, naming the record after the closing event.
        with pytest.raises(ImportRefusedError, match=r"record 3: stream 'run-1' version 3 follows its closing event"):
            journal.import_events([*exported, sneaked])
        assert journal.head_position() == 0
        assert journal.import_events(exported).imported == 2
        with pytest.raises(ImportRefusedError, match="'run-1' is closed in this journal at version 2"):
            journal.import_events([sneaked])  # and on its own, onto the stored stream
        with pytest.raises(ImportRefusedError, match=r"'run-1' is closed: version 2 \(RunCompleted\)"):
            journal.import_events(iter([sneaked]))  # read once: refused by the database itself
        assert journal.head_position() == 2
        assert journal.append("other", new_events(1)).last_position == 3
        assert journal.verify().ok

    def test_an_exported_closed_stream_stays_closed_when_imported(self, journal: Journal, tmp_path: Path) -> None:
        """Into this backend from SQLite, and out of it into SQLite: the flag travels in the metadata."""
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", [NewEvent("RunStarted"), closing()])
            source.append("run-2", [NewEvent("RunStarted")])
            exported = [event.to_dict() for event in source.read_all()]
        assert exported[1]["metadata"] == {"closes_stream": True}
        assert journal.import_events(exported).imported == 3
        assert journal.read_stream("run-1")[-1].closes_stream
        with pytest.raises(StreamClosedError, match="version 2 \\(RunCompleted\\)"):
            journal.append("run-1", new_events(1))
        assert journal.append("run-2", new_events(1)).last_version == 2
        assert journal.verify().ok
        again = [event.to_dict() for event in journal.read_all()]
        with Journal.open(f"sqlite:///{tmp_path / 'target.db'}", create=True) as target:
            assert target.import_events(again).imported == 4
            with pytest.raises(StreamClosedError, match="version 2 \\(RunCompleted\\)"):
                target.append("run-1", new_events(1))
            assert target.verify().ok

    # ----- refused input: a clear error before any I/O ----------------------------------------

    def test_a_closing_event_must_be_the_last_of_its_batch(self, journal: Journal) -> None:
        for batch in (
            [NewEvent("A"), closing(), NewEvent("C")],
            [NewEvent("A"), NewEvent("B", metadata={"closes_stream": True}), NewEvent("C")],
        ):
            message = "stream 's': event 2 of 3 closes the stream; nothing may follow it in the batch"
            with pytest.raises(InvalidEventError, match=re.escape(message)):
                journal.append("s", batch)
        assert journal.head_position() == 0
        assert journal.streams() == []

    def test_a_closing_flag_that_is_not_a_boolean_is_refused(self, journal: Journal) -> None:
        for value in ("yes", 1, None, [True]):
            with pytest.raises(InvalidEventError) as refused:
                journal.append("s", [NewEvent("A"), NewEvent("Done", metadata={"closes_stream": value})])
            assert (
                f"stream 's', event 2 of 2 (Done): metadata 'closes_stream' must be true or false, got {value!r}"
                in str(refused.value)
            )
        bad: Any = "yes"
        with pytest.raises(InvalidEventError, match=r"event 1 of 1 \(Done\): closes_stream must be True or False"):
            journal.append("s", NewEvent("Done", closes_stream=bad))
        with pytest.raises(InvalidEventError, match="closes_stream=True, but its metadata says 'closes_stream': false"):
            journal.append("s", closing(metadata={"closes_stream": False}))
        assert journal.head_position() == 0
        assert journal.streams() == []

    # ----- races --------------------------------------------------------------------------------

    def test_racing_writers_never_append_after_the_closing_event(self, journal: Journal) -> None:
        rounds, writers = 4, 5
        outcomes: list[str] = []
        lock = threading.Lock()

        def write(stream: str, number: int, start: threading.Barrier) -> None:
            """Writer 0 closes the stream; the others append until they are refused (at most 3 times)."""
            start.wait()
            event = closing() if number == 0 else NewEvent("Noted", {"writer": number})
            for _ in range(3):
                try:
                    journal.append(stream, event)
                except StreamClosedError:
                    with lock:
                        outcomes.append("closed")
                    return

        for round_ in range(rounds):
            stream = f"run-{round_}"
            journal.append(stream, [NewEvent("RunStarted")])
            start = threading.Barrier(writers)
            with ThreadPoolExecutor(writers) as pool:
                list(pool.map(write, [stream] * writers, range(writers), [start] * writers))
            events = journal.read_stream(stream)
            assert events[-1].closes_stream, f"{stream}: {[event.type for event in events]}"
            assert [event.closes_stream for event in events].count(True) == 1
            assert [event.version for event in events] == list(range(1, len(events) + 1))
        assert "closed" in outcomes
        assert_contiguous(journal.read_all(), 1)
        assert journal.verify().ok

    def test_a_writer_with_a_stale_head_is_refused(self, journal: Journal, journal_url: str) -> None:
        """Another process closed the stream after this one last wrote to it."""
        if not self.persistent:
            pytest.skip(f"each {journal.backend_name} journal is its own store")
        journal.append("run-7", new_events(1))  # this journal now remembers version 1 as the head
        with self.open_journal(journal_url) as other:
            other.append("run-7", closing(), expected_version=1)
        for expected in (ANY, 1, 2):
            with pytest.raises(StreamClosedError, match="version 2 \\(RunCompleted\\)"):
                journal.append("run-7", new_events(1), expected_version=expected)
        assert journal.stream_version("run-7") == 2
        assert journal.head_position() == 2
        assert journal.verify().ok

    # ----- the database itself ------------------------------------------------------------------

    def test_the_database_refuses_a_row_after_the_closing_event(self, journal: Journal) -> None:
        sql = self.sql_journal(journal)
        last = journal.append("run-7", [NewEvent("RunStarted"), closing()]).events[-1]
        sneaked = _next_event(last.stream_id, last.version, last.hash, position=journal.head_position() + 1)
        marks = ", ".join([sql.param] * 16)
        with (
            pytest.raises(Exception, match="agentjournal: the stream is closed") as refused,
            sql.transaction() as cursor,
        ):
            cursor.execute(
                f"INSERT INTO aj_events ({COLUMNS}) VALUES ({marks})",
                event_row(sneaked, sql._time_param(sneaked.recorded_at)),
            )
        if sql.dialect == "postgres":
            assert getattr(refused.value, "sqlstate", None) == "23J01"
        assert journal.stream_version("run-7") == 2
        assert journal.head_position() == 2
        assert "aj_events_closed_stream" in _trigger_names(sql)

    def test_an_existing_journal_migrates_to_closed_streams(self, journal_url: str) -> None:
        if not self.persistent:
            pytest.skip("the memory backend has no schema to migrate")
        sql = connect(journal_url, create=True)
        try:
            if not isinstance(sql, SQLJournal):
                pytest.skip(f"{sql.backend_name} has no SQL migrations")
            files = sql._migration_files("journal", "agentjournal.journal.backends")
            later = [name for name, _ in files[1:]]
            assert "journal/0002_closed_streams" in later
            sql._apply_migration(*files[0])  # a journal made before streams could close
            assert sql.pending_migrations() == later
            assert sql.migrate() == later
            assert sql.pending_migrations() == []
            sql.append("run-7", [NewEvent("RunStarted"), closing()])
            with pytest.raises(StreamClosedError):
                sql.append("run-7", new_events(1))
        finally:
            sql.close()

    # ----- verify -------------------------------------------------------------------------------

    def test_verify_reports_a_reopened_stream(self, journal: Journal) -> None:
        journal.append("a", new_events(2))
        journal.append("run-42", [NewEvent("RunStarted"), NewEvent("ToolExecuted"), closing()])
        journal.append("z", [closing()])
        assert journal.verify().ok
        self.tamper_set_closed(journal, "run-42", None)
        report = journal.verify()
        assert report.first_broken is not None
        assert (report.first_broken.stream_id, report.first_broken.version) == ("run-42", 3)
        assert "the stream head says it is open, but its last event (version 3) closed it" in str(report.first_broken)
        assert journal.verify("run-42").first_broken == report.first_broken
        assert journal.verify("a").ok
        # Reopened, it takes appends again; verify then names the event after the closing one.
        after = journal.append("run-42", new_events(1)).events[0]
        report = journal.verify()
        assert report.first_broken is not None
        assert (report.first_broken.version, report.first_broken.position) == (4, after.position)
        assert "version 4 follows version 3, which closed the stream" in report.first_broken.reason

    def test_verify_reports_a_head_closed_behind_the_journals_back(self, journal: Journal) -> None:
        journal.append("run-42", new_events(3))
        self.tamper_set_closed(journal, "run-42", 2)
        report = journal.verify()
        assert report.first_broken is not None
        assert report.first_broken.stream_id == "run-42"
        assert "says version 2 closed it, but its last event is open" in report.first_broken.reason


def _next_event(stream_id: str, version: int, prev_hash: str, position: int = 0) -> RecordedEvent:
    """A well-formed event that chains onto version `version`: only the stream being closed is wrong."""
    event = RecordedEvent(
        event_id=str(uuid.uuid4()),
        stream_id=stream_id,
        version=version + 1,
        position=position,
        type="Sneaked",
        schema_version=1,
        recorded_at=datetime.now(UTC),
        actor=None,
        tenant_id=None,
        correlation_id=None,
        causation_id=None,
        traceparent=None,
        data_json=canonical_json({}),
        metadata_json=canonical_json({}),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = event.compute_hash()
    return event


def _trigger_names(sql: SQLJournal) -> set[str]:
    catalog = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'aj_events'",
        "postgres": "SELECT tgname FROM pg_trigger WHERE tgrelid = 'aj_events'::regclass AND NOT tgisinternal",
        "mysql": "SELECT trigger_name FROM information_schema.triggers "
        "WHERE event_object_schema = DATABASE() AND event_object_table = 'aj_events'",
    }
    return {row[0] for row in sql.query(catalog[sql.dialect])}
