"""Journal URLs that name no backend, or a place that cannot hold a journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentjournal import Journal, JournalConnectionError
from agentjournal.journal import JournalNotFoundError, UnsupportedURLError


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


def test_a_memory_url_takes_no_parameters() -> None:
    message = "unknown parameter 'x' in the memory URL memory://\\?x=1; known parameters: none"
    with pytest.raises(UnsupportedURLError, match=message):
        Journal.open("memory://?x=1")


@pytest.mark.parametrize(
    ("url", "known"),
    [
        ("sqlite:///j.db?foo=bar", "mode, synchronous"),
        ("postgresql://u:secret@127.0.0.1:1/db?sslmode=require&foo=bar", "schema, connect_timeout"),
        ("mysql://u:secret@127.0.0.1:1/db?timeout=3", "connect_timeout, read_timeout, write_timeout"),
    ],
)
def test_an_unknown_parameter_is_refused_before_connecting_and_without_the_password(url: str, known: str) -> None:
    with pytest.raises(UnsupportedURLError, match="unknown parameter") as refused:
        Journal.open(url, create=True)
    assert f"known parameters: {known}" in str(refused.value)
    assert "secret" not in str(refused.value)
    assert not Path("j.db").exists()


def test_a_sqlite_url_naming_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalConnectionError, match="it is a folder, not a file"):
        Journal.open(f"sqlite:///{tmp_path}", create=True)


def test_a_missing_sqlite_file_is_not_created_by_opening(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(JournalNotFoundError, match=f"^no journal at sqlite:///{path} \\(no such file\\); "):
        Journal.open(f"sqlite:///{path}")
    assert list(tmp_path.iterdir()) == []
    with Journal.open(f"sqlite:///{path}", create=True) as journal:
        assert journal.head_position() == 0
    assert path.exists()
