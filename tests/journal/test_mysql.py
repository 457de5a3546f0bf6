"""The conformance suite on MariaDB/MySQL (a fresh database per test), and its own errors."""

from __future__ import annotations

import time

import pytest

from agentjournal import Journal, JournalConnectionError
from agentjournal.testing.conformance import JournalConformance

from .servers import closed_port


class TestMySQLJournal(JournalConformance):
    hypothesis_examples = 8
    appends_per_writer = 10

    @pytest.fixture
    def journal_url(self, mysql_url: str) -> str:
        return mysql_url


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
    with pytest.raises(JournalConnectionError, match=r"MySQL/MariaDB at .*:\d+: \(1049\) Unknown database"):
        Journal.open(f"{base}/aj_no_such_database")
    host = base.split("@", 1)[1]
    with pytest.raises(JournalConnectionError, match=r"MySQL/MariaDB at .*:\d+: \(\d+\) Access denied"):
        Journal.open(f"mysql://aj_nobody:wrong@{host}/test")
