"""The conformance suite on MariaDB/MySQL (a fresh database per test), and its own errors."""

from __future__ import annotations

import time

import pymysql
import pytest

from agentjournal import Journal, JournalConnectionError, NewEvent
from agentjournal.journal import JournalNotFoundError, UnsupportedURLError
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.urls import connect
from agentjournal.testing.conformance import JournalConformance
from agentjournal.testing.conformance.imports import nested

from .servers import closed_port, hung_port


class TestMySQLJournal(JournalConformance):
    hypothesis_examples = 8
    appends_per_writer = 10

    @pytest.fixture
    def journal_url(self, empty_mysql_url: str) -> str:
        return empty_mysql_url


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_an_unreachable_server_names_host_and_port(scheme: str) -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(JournalConnectionError, match=f"MySQL/MariaDB at 127.0.0.1:{port}"):
        Journal.open(f"{scheme}://root@127.0.0.1:{port}/test")
    assert time.monotonic() - started < 10


def test_an_unknown_database_and_bad_credentials_are_named() -> None:
    from agentjournal.testing import databases

    base = databases.MYSQL_URL.rsplit("/", 1)[0]
    with pytest.raises(JournalNotFoundError, match=r"no journal at .*: the server has no database `aj_no_such_d"):
        Journal.open(f"{base}/aj_no_such_database", create=True)  # a database is not created: the user makes it
    host = base.split("@", 1)[1]
    with pytest.raises(JournalConnectionError, match=r"MySQL/MariaDB at .*:\d+: \(\d+\) Access denied"):
        Journal.open(f"mysql://aj_nobody:wrong@{host}/test")


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_a_port_that_accepts_and_never_answers_fails_within_the_connect_timeout(scheme: str) -> None:
    with hung_port() as port:
        started = time.monotonic()
        with pytest.raises(JournalConnectionError) as refused:
            Journal.open(f"{scheme}://root@127.0.0.1:{port}/test?connect_timeout=1")
        assert time.monotonic() - started < 5
    assert str(refused.value) == (
        f"cannot reach MySQL/MariaDB at 127.0.0.1:{port}: no greeting within 1 s (connect_timeout=1); "
        "is a MySQL/MariaDB server listening there?"
    )


def test_an_answer_slower_than_the_read_timeout_is_a_lost_connection(mysql_url: str) -> None:
    with Journal.open(f"{mysql_url}?read_timeout=1") as journal:
        assert isinstance(journal, SQLJournal)
        started = time.monotonic()
        with pytest.raises(JournalConnectionError, match=r"\(no answer within read_timeout=1 s\)"):
            journal.query("SELECT SLEEP(3)")
        assert time.monotonic() - started < 2.5
        assert journal.query("SELECT 1")[0][0] == 1  # the lost connection was dropped, not reused


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("connect_timeout=0", "connect_timeout must be a number of seconds > 0"),
        ("read_timeout=soon", "read_timeout must be a number of seconds >= 0"),
        ("ssl_verify_cert=maybe", "ssl_verify_cert must be true or false"),
    ],
)
def test_a_bad_parameter_value_is_refused(mysql_url: str, parameter: str, message: str) -> None:
    with pytest.raises(UnsupportedURLError, match=message):
        Journal.open(f"{mysql_url}?{parameter}")


def test_a_journal_made_before_deep_json_was_stored_takes_it_once_migrated(empty_mysql_url: str) -> None:
    """MariaDB's JSON_VALID refuses JSON nested 32 or more levels deep; migration 0003 drops the
    checks that called it, and what was stored before keeps its bytes and hashes."""
    old = connect(empty_mysql_url, create=True)
    try:
        assert isinstance(old, SQLJournal)
        files = old._migration_files("journal", "agentjournal.journal.backends")
        for name, script in files[:2]:  # the journal as it was before 0003
            old._apply_migration(name, script)
        kept = old.append("run-1", [NewEvent("Noted", nested(20))]).events[0]
        with pytest.raises(pymysql.err.OperationalError, match="4025"):
            old.append("run-1", [NewEvent("Deep", nested(40))])
        assert old.migrate() == ["journal/0003_json_of_any_depth"]
        deep = old.append("run-1", [NewEvent("Deep", nested(40))]).events[0]
        assert [event.hash for event in old.read_stream("run-1")] == [kept.hash, deep.hash]
        assert old.read_stream("run-1")[1].data == nested(40)
        assert old.verify().ok
    finally:
        old.close()
