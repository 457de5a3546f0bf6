"""Journal URLs that name no backend, or a place that cannot hold a journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentjournal import Journal, JournalConnectionError
from agentjournal.journal import UnsupportedURLError


@pytest.mark.parametrize("url", ["redis://localhost/0", "mongodb://x", "http://example.com/journal"])
def test_an_unknown_scheme_is_refused(url: str) -> None:
    with pytest.raises(UnsupportedURLError, match=r"unknown journal URL scheme .* supported: sqlite://"):
        Journal.open(url)


@pytest.mark.parametrize("url", ["", "journal.db", "/tmp/journal.db"])
def test_a_string_that_is_not_a_url_is_refused(url: str) -> None:
    with pytest.raises(UnsupportedURLError, match="not a journal URL"):
        Journal.open(url)


def test_a_sqlite_url_without_a_file_is_refused() -> None:
    with pytest.raises(UnsupportedURLError, match="names no file"):
        Journal.open("sqlite://")


def test_a_sqlite_file_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(JournalConnectionError, match=f"folder {missing} does not exist"):
        Journal.open(f"sqlite:///{missing / 'journal.db'}")
    assert not missing.exists()


def test_sqlite_in_memory_is_one_database_for_every_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from agentjournal import NewEvent

    def work(writer: int) -> None:
        for number in range(20):
            journal.append(f"s{writer}", NewEvent("Noted"), expected_version=number)
            assert journal.read_stream(f"s{writer}")[-1].version == number + 1

    with Journal.open("sqlite:///:memory:") as journal, ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
        assert journal.head_position() == 80
        assert journal.verify().ok


def test_a_file_that_is_not_a_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database " * 10)
    with pytest.raises(JournalConnectionError, match=f"cannot open SQLite journal '{path}': file is not a database"):
        Journal.open(f"sqlite:///{path}")
    assert path.read_text().startswith("these are notes")
