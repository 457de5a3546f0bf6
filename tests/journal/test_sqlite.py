"""The conformance suite on SQLite, the embedded default (a file in WAL mode), and SQLite's own edges:
another application's file, read-only journals, and a damaged file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from agentjournal import Journal, NewEvent
from agentjournal.journal import (
    DamagedDatabaseError,
    JournalError,
    JournalNotFoundError,
    LocationInUseError,
    ReadOnlyJournalError,
    UnsupportedURLError,
)
from agentjournal.testing.conformance import JournalConformance

PAGE = 4096


class TestSQLiteJournal(JournalConformance):
    hypothesis_examples = 25

    @pytest.fixture
    def journal_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'journal.db'}"


def _journal_of(path: Path, streams: int = 40, events: int = 25) -> None:
    with Journal.open(f"sqlite:///{path}", create=True) as journal:
        for run in range(streams):
            journal.append(f"run-{run}", [NewEvent("Step", {"n": n, "text": "y" * 200}) for n in range(events)])


def _overwrite_page(path: Path, page: int) -> None:
    with path.open("r+b") as file:
        file.seek(page * PAGE)
        file.write(bytes(range(256)) * (PAGE // 256))


def test_another_applications_file_is_read_without_a_single_write(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ana')")
    before = path.read_bytes()
    for create in (False, True):
        with pytest.raises((JournalNotFoundError, LocationInUseError), match=r"another application's tables \(users\)"):
            Journal.open(f"sqlite:///{path}", create=create)
    assert path.read_bytes() == before  # not even switched to WAL
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["app.db"]


def test_mode_ro_reads_a_journal_and_refuses_every_write(tmp_path: Path) -> None:
    _journal_of(tmp_path / "j.db", streams=2, events=3)
    with Journal.open(f"sqlite:///{tmp_path / 'j.db'}?mode=ro") as journal:
        assert journal.read_only
        assert journal.stream_version("run-1") == 3
        assert journal.verify().ok
        with pytest.raises(ReadOnlyJournalError, match=r"is opened read-only \(mode=ro\): nothing can be written"):
            journal.append("run-1", NewEvent("Step"))
        assert journal.head_position() == 6
    with pytest.raises(JournalNotFoundError, match="no such file"):
        Journal.open(f"sqlite:///{tmp_path / 'other.db'}?mode=ro", create=True)  # read-only creates nothing
    assert not (tmp_path / "other.db").exists()
    for bad in ("mode=rw", "mode=memory", "synchronous=SOMETIMES"):
        with pytest.raises(UnsupportedURLError, match="must be"):
            Journal.open(f"sqlite:///{tmp_path / 'j.db'}?{bad}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only file anyway")
def test_a_file_this_process_cannot_write_refuses_writes_clearly(tmp_path: Path) -> None:
    _journal_of(tmp_path / "j.db", streams=1, events=1)
    (tmp_path / "j.db").chmod(0o444)
    try:
        with Journal.open(f"sqlite:///{tmp_path / 'j.db'}") as journal:
            assert journal.stream_version("run-0") == 1
            with pytest.raises(ReadOnlyJournalError, match="not writable by this process"):
                journal.append("run-0", NewEvent("Step"))
    finally:
        (tmp_path / "j.db").chmod(0o644)


@pytest.mark.parametrize("page", [40, 90, 150])
def test_verify_reports_a_damaged_page_with_what_it_could_read(tmp_path: Path, page: int) -> None:
    path = tmp_path / "j.db"
    _journal_of(path)
    assert path.stat().st_size // PAGE > page
    _overwrite_page(path, page)
    with Journal.open(f"sqlite:///{path}") as journal:
        report = journal.verify()
    assert not report.ok
    assert report.damage is not None
    assert report.damage.startswith(f"the SQLite file {str(path)!r} is damaged")
    assert report.first_broken is None
    if "read and intact" not in report.damage:  # an index page or the like: SQLite's own check names it
        assert report.events_checked == 1000
        assert "PRAGMA quick_check: " in report.damage
        return
    # A page of events: how far reading got, and where it stopped; reading it later says so too.
    assert 0 < report.events_checked < 1000
    assert f"up to position {report.events_checked} " in report.damage
    with Journal.open(f"sqlite:///{path}") as journal, pytest.raises(DamagedDatabaseError, match="is damaged"):
        journal.read_all(limit=1000)


def test_a_damaged_header_is_one_clear_error_when_opening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _journal_of(path, streams=2, events=2)
    _overwrite_page(path, 0)
    with pytest.raises(JournalError, match=f"{path}.*(is damaged|file is not a database)"):
        Journal.open(f"sqlite:///{path}")
