"""The conformance suite on PostgreSQL (a fresh schema per test), and PostgreSQL's own errors."""

from __future__ import annotations

import time

import pytest

from agentjournal import InvalidEventError, Journal, JournalConnectionError, NewEvent
from agentjournal.testing.conformance import JournalConformance

from .servers import closed_port


class TestPostgresJournal(JournalConformance):
    hypothesis_examples = 12

    @pytest.fixture
    def journal_url(self, postgres_url: str) -> str:
        return postgres_url


def test_an_unreachable_server_names_host_and_port() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(JournalConnectionError, match=f"PostgreSQL at 127.0.0.1:{port}"):
        Journal.open(f"postgresql://postgres@127.0.0.1:{port}/test")
    assert time.monotonic() - started < 10


def test_a_bad_schema_name_is_refused(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="schema name"):
        Journal.open(postgres_url.split("?", maxsplit=1)[0] + '?schema=bad"name')


def test_stream_order_does_not_depend_on_the_database_collation() -> None:
    """On a database whose default collation is ICU en-US, streams still list in code point order,
    the order `after=` pagination and every other backend use."""
    import psycopg

    from agentjournal.testing import databases

    name = databases.unique_name("aj_test_icu")
    base = databases.POSTGRES_URL
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
            "LOCALE 'C.UTF-8'"
        )
    try:
        with Journal.open(base.rsplit("/", 1)[0] + f"/{name}") as journal:
            names = ["B-run", "a-run", "run_x", "run-a", "Run-b", "ä-run", "z"]
            for stream in names:
                journal.append(stream, [NewEvent("Noted")])
            assert [info.stream_id for info in journal.streams()] == sorted(names)
            paged = [info.stream_id for info in journal.streams(limit=2)]
            while len(paged) < len(names):
                page = journal.streams(after=paged[-1], limit=2)
                assert page, f"pagination stopped after {paged}"
                paged += [info.stream_id for info in page]
            assert paged == sorted(names)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_append_notifies_listeners_with_the_last_position(postgres_url: str) -> None:
    from agentjournal.journal.backends.postgres import PostgresJournal

    with Journal.open(postgres_url) as journal:
        assert isinstance(journal, PostgresJournal)
        listener = journal.connect()
        try:
            listener.execute(f'LISTEN "{journal.notify_channel}"')
            journal.append("s", [NewEvent("A"), NewEvent("B")])
            journal.append("t", [NewEvent("C")])
            received = [note.payload for note in listener.notifies(timeout=5, stop_after=2)]
        finally:
            listener.close()
    assert received == ["2", "3"]


def test_a_mixed_case_schema_name_works_or_is_refused_clearly() -> None:
    """`?schema=Runs_2024` must either be the schema the journal lives in, or be refused up front
    (PostgreSQL folds unquoted names to lower case, so half-quoting it breaks migrations)."""
    import psycopg

    from agentjournal.testing import databases

    schema = databases.unique_name("Aj_Case")
    try:
        try:
            journal = Journal.open(f"{databases.POSTGRES_URL}?schema={schema}")
        except InvalidEventError as refused:
            assert "schema name" in str(refused)
            return
        with journal:
            journal.append("s", NewEvent("Noted"))
            assert journal.query("SELECT current_schema()")[0][0] == schema
            assert journal.read_stream("s")[0].type == "Noted"
    finally:
        with psycopg.connect(databases.POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema.lower()}" CASCADE')


def test_an_unknown_database_is_named() -> None:
    from agentjournal.testing import databases

    url = databases.POSTGRES_URL.rsplit("/", 1)[0] + "/aj_no_such_database"
    with pytest.raises(JournalConnectionError, match=r"PostgreSQL at .*:\d+: .*aj_no_such_database"):
        Journal.open(url)
