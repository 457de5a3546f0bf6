"""Integrity: the database refuses changes, verify finds the ones made behind its back,
migrations are versioned and checkable, and a journal moves between backends intact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentjournal import InvalidEventError, Journal, NewEvent
from agentjournal.journal import MigrationError
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.urls import connect

from .base import ConformanceBase, new_events

WIDGETS = f"{__package__.rsplit('.', 1)[0]}.widgets"
"""A test component with two migrations per dialect (agentjournal/testing/widgets/migrations)."""


class IntegrityConformance(ConformanceBase):
    # ----- immutable for real ----------------------------------------------------------------

    def test_the_database_refuses_update_and_delete(self, journal: Journal) -> None:
        sql = self.sql_journal(journal)
        stored = journal.append("s", new_events(2)).events
        p = sql.param
        statements = [
            (f"UPDATE aj_events SET actor = {p} WHERE position = {p}", ("mallory", 1)),
            (f"UPDATE aj_events SET version = version + 10 WHERE stream_id = {p}", ("s",)),
            (f"DELETE FROM aj_events WHERE position = {p}", (2,)),
            ("DELETE FROM aj_events", ()),
        ]
        for statement, params in statements:
            with pytest.raises(Exception, match=re.compile("immutable", re.IGNORECASE)), sql.transaction() as cursor:
                cursor.execute(statement, params)
        assert journal.read_stream("s") == stored
        assert journal.verify().ok

    def test_the_database_refuses_truncate(self, journal: Journal) -> None:
        """TRUNCATE skips row triggers: PostgreSQL refuses it with a statement trigger; on MySQL/MariaDB
        a foreign key that references aj_events makes InnoDB refuse it (SQLite has no TRUNCATE)."""
        sql = self.sql_journal(journal)
        if sql.dialect == "sqlite":
            pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE goes through the triggers")
        stored = journal.append("s", new_events(2)).events
        refused = re.compile("immutable|truncate", re.IGNORECASE)
        with pytest.raises(Exception, match=refused), sql.transaction() as cursor:
            cursor.execute("TRUNCATE aj_events")
        assert journal.read_stream("s") == stored

    def test_the_immutability_triggers_have_their_documented_names(self, journal: Journal) -> None:
        sql = self.sql_journal(journal)
        expected = {
            "sqlite": ("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'aj_events'", ()),
            "postgres": (
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'aj_events'::regclass AND NOT tgisinternal",
                (),
            ),
            "mysql": (
                "SELECT trigger_name FROM information_schema.triggers "
                "WHERE event_object_schema = DATABASE() AND event_object_table = 'aj_events'",
                (),
            ),
        }
        names = {row[0] for row in sql.query(*expected[sql.dialect])}
        if sql.dialect == "postgres":
            assert {"aj_events_immutable", "aj_events_no_truncate"} <= names
        else:
            assert {"aj_events_no_update", "aj_events_no_delete"} <= names

    def test_verify_passes_on_an_untouched_journal(self, journal: Journal) -> None:
        assert journal.verify().ok
        for stream in ("a", "b", "c"):
            journal.append(stream, new_events(4))
        report = journal.verify()
        assert report.ok
        assert (report.streams_checked, report.events_checked) == (3, 12)
        single = journal.verify("b")
        assert single.ok
        assert single.events_checked == 4

    def test_verify_names_the_first_changed_event(self, journal: Journal) -> None:
        journal.append("a", new_events(3))
        victim = journal.append("run-42", new_events(4)).events[1]
        later = journal.append("z", new_events(2)).events[0]
        self.tamper_change_data(journal, victim, {"n": 2, "refund": 10_000})
        self.tamper_change_data(journal, later, {"n": 99})
        assert journal.read_stream("run-42")[1].data == {"n": 2, "refund": 10_000}
        report = journal.verify()
        assert not report.ok
        assert report.first_broken is not None
        assert (report.first_broken.stream_id, report.first_broken.version) == ("run-42", 2)
        assert report.first_broken.position == victim.position
        assert "changed" in report.first_broken.reason
        assert "'run-42' version 2" in str(report.first_broken)
        assert journal.verify("a").ok
        assert journal.verify("z").first_broken is not None

    def test_verify_notices_a_deleted_last_event(self, journal: Journal) -> None:
        journal.append("a", new_events(2))
        events = journal.append("run-42", new_events(3)).events
        journal.append("b", new_events(2))
        self.tamper_delete(journal, events[-1])
        assert [event.version for event in journal.read_stream("run-42")] == [1, 2]
        report = journal.verify()
        assert report.first_broken is not None
        assert report.first_broken.stream_id == "run-42"
        assert report.first_broken.version == 2  # the last intact link; the head still says 3
        assert "version 3" in report.first_broken.reason
        assert journal.verify("run-42").first_broken == report.first_broken
        assert journal.verify("a").ok

    def test_verify_notices_a_deleted_middle_event(self, journal: Journal) -> None:
        events = journal.append("run-42", new_events(4)).events
        self.tamper_delete(journal, events[1])
        report = journal.verify()
        assert report.first_broken is not None
        assert (report.first_broken.stream_id, report.first_broken.version) == ("run-42", 3)
        assert "follows version 1" in report.first_broken.reason

    # ----- migrations ------------------------------------------------------------------------

    def test_open_migrates_and_opening_twice_is_idempotent(self, journal: Journal, journal_url: str) -> None:
        assert journal.pending_migrations() == []
        journal.append("s", new_events(2))
        with self.open_journal(journal_url) as again:
            assert again.pending_migrations() == []
            assert again.migrate() == []
            if self.persistent:
                assert again.read_stream("s") == journal.read_stream("s")

    def test_open_without_migrating_refuses_a_journal_that_is_behind(self, journal_url: str) -> None:
        if not self.persistent:
            pytest.skip("the memory backend has no schema to migrate")
        behind = connect(journal_url, create=True)  # a journal made before its later migrations
        try:
            assert isinstance(behind, SQLJournal)
            files = behind._migration_files("journal", "agentjournal.journal.backends")
            behind._apply_migration(*files[0])
        finally:
            behind.close()
        later = ", ".join(name for name, _ in files[1:])
        for _ in range(2):  # the refusal changed nothing: it is refused again, the same way
            pending = rf"{len(files) - 1} migration\(s\) pending \({re.escape(later)}\)"
            with pytest.raises(MigrationError, match=pending):
                self.open_journal(journal_url, migrate=False)
        with self.open_journal(journal_url) as migrated:
            assert migrated.pending_migrations() == []
        with self.open_journal(journal_url, migrate=False) as journal:
            assert journal.append("s", new_events(1)).last_position == 1

    def test_component_migrations_are_listed_applied_once_and_recorded(self, journal: Journal) -> None:
        sql = self.sql_journal(journal)
        names = ["widgets/0001_widgets", "widgets/0002_widget_color"]
        for _ in range(2):  # listing what is pending changes nothing
            assert sql.pending_migrations("widgets", WIDGETS) == names
            assert not _has_table(sql, "aj_test_widgets")
        assert sql.migrate("widgets", WIDGETS) == names
        assert sql.migrate("widgets", WIDGETS) == []
        assert sql.pending_migrations("widgets", WIDGETS) == []
        assert sql.pending_migrations() == []
        p = sql.param
        with sql.transaction() as cursor:
            cursor.execute(f"INSERT INTO aj_test_widgets (name, size, color) VALUES ({p}, {p}, {p})", ("w", 3, "red"))
        assert [tuple(row) for row in sql.query("SELECT name, size, color FROM aj_test_widgets")] == [("w", 3, "red")]

    def test_a_transaction_rolls_back_on_error(self, journal: Journal) -> None:
        sql = self.sql_journal(journal)
        sql.migrate("widgets", WIDGETS)
        p = sql.param
        with pytest.raises(RuntimeError, match="stop"), sql.transaction() as cursor:
            cursor.execute(f"INSERT INTO aj_test_widgets (name, size) VALUES ({p}, {p})", ("w", 1))
            raise RuntimeError("stop")
        assert sql.query("SELECT name FROM aj_test_widgets") == []

    # ----- moving a journal between backends ---------------------------------------------------

    def test_import_from_sqlite_keeps_ids_versions_and_hashes(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            _fill(source)
            exported = [event.to_dict() for event in source.iter_all(batch_size=7)]
        journal.append("already-here", new_events(2))
        assert journal.import_events(record for record in exported).imported == len(exported)
        imported = journal.read_all(after=2, limit=1000)
        assert [event.to_dict() | {"position": 0} for event in imported] == [
            record | {"position": 0} for record in exported
        ]
        assert [event.position for event in imported] == list(range(3, 3 + len(exported)))
        report = journal.verify()
        assert report.ok
        assert report.events_checked == len(exported) + 2
        for record in exported[:3]:
            assert journal.get_event(record["event_id"]).hash == record["hash"]

    def test_an_export_imports_into_sqlite(self, journal: Journal, tmp_path: Path) -> None:
        _fill(journal)
        exported = [event.to_dict() for event in journal.iter_all(batch_size=4)]
        with Journal.open(f"sqlite:///{tmp_path / 'target.db'}", create=True) as target:
            assert target.import_events(exported).imported == len(exported)
            assert [event.to_dict() for event in target.iter_all()] == exported
            assert target.verify().ok
            # The imported chains continue: a new event links onto the imported last hash.
            last = target.read_stream("run-1")[-1]
            appended = target.append("run-1", NewEvent("Resumed"), expected_version=last.version).events[0]
            assert appended.prev_hash == last.hash
            assert target.verify().ok

    def test_an_export_read_through_upcasters_still_imports(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", [NewEvent("ToolCalled", {"name": "search"}), NewEvent("Noted", {"n": 1})])
            source.registry.add_upcaster("ToolCalled", 1, lambda data: {"tool": data["name"]})
            read = source.read_all()
            assert (read[0].schema_version, read[0].data) == (2, {"tool": "search"})
            exported = [event.to_dict() for event in read]
        assert exported[0]["schema_version"] == 1
        assert exported[0]["data"] == {"name": "search"}
        assert journal.import_events(exported).imported == 2
        assert journal.verify().ok
        assert journal.read_stream("run-1")[0].data == {"name": "search"}

    def test_import_refuses_a_changed_record(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", new_events(3))
            exported = [event.to_dict() for event in source.read_all()]
        for change in ({"data": {"n": 2, "refund": 10_000}}, {"actor": "mallory"}, {"version": 7}):
            records: list[dict[str, Any]] = [dict(record) for record in exported]
            records[1].update(change)
            with pytest.raises(InvalidEventError, match=r"record 2 .*'run-1'.*refusing to import a changed"):
                journal.import_events(records)
            assert journal.head_position() == 0  # record 1 is fine, but nothing is imported
        with pytest.raises(InvalidEventError, match="record 1: not an exported envelope"):
            journal.import_events([{"event_id": exported[0]["event_id"]}])
        assert journal.head_position() == 0

    def test_import_refuses_a_stream_that_does_not_fit(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", new_events(3))
            exported = [event.to_dict() for event in source.read_all()]
        missing = r"record 1: stream 'run-1' starts at version 2 .* has no stream 'run-1': version 1 is missing"
        with pytest.raises(InvalidEventError, match=missing):
            journal.import_events(exported[1:])  # version 2 without version 1
        assert journal.head_position() == 0
        journal.append("run-1", new_events(1))  # a different version 1: version 2 does not chain onto it
        with pytest.raises(InvalidEventError, match="'run-1' version 2 does not chain onto the stored version 1"):
            journal.import_events(exported[1:])
        with pytest.raises(InvalidEventError, match="record 1: stream 'run-1' version 1 is stored in this journal"):
            journal.import_events(exported)  # another history of the stream: refused, not duplicated
        assert journal.head_position() == 1


def _fill(journal: Journal) -> None:
    """A small journal with interleaved streams and every envelope field used."""
    started = journal.append("run-1", [NewEvent("RunStarted", {"prompt": "refund ORD-5521 ✓"}, actor="user:ana")])
    with journal.context(caused_by=started.events[0], tenant_id="acme", actor="agent"):
        journal.append("run-2", new_events(2, type="RunStarted"))
        journal.append("run-1", [NewEvent("ToolCalled", {"tool": "refund", "args": {"order": "ORD-5521"}})])
        journal.append("run-2", new_events(3, type="ToolCalled"), expected_version=2)
        journal.append("run-1", [NewEvent("RunCompleted", {"ok": True}, metadata={"cost": 0.12})])


def _has_table(journal: SQLJournal, name: str) -> bool:
    catalog = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
        "postgres": "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = %s",
        "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
    }
    return bool(journal.query(catalog[journal.dialect], (name,)))
