"""The conformance suite on PostgreSQL (a fresh schema per test), and PostgreSQL's own errors."""

from __future__ import annotations

import time

import pytest

from agentjournal import Journal, JournalConnectionError, NewEvent
from agentjournal.journal import JournalNotFoundError, LocationInUseError, UnsupportedURLError
from agentjournal.testing.conformance import JournalConformance

from .servers import closed_port, hung_port


class TestPostgresJournal(JournalConformance):
    hypothesis_examples = 12
    explicit_place = True  # every URL of this class names its own ?schema=

    @pytest.fixture
    def journal_url(self, empty_postgres_url: str) -> str:
        return empty_postgres_url


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
        with Journal.open(base.rsplit("/", 1)[0] + f"/{name}", create=True) as journal:
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
            journal = Journal.open(f"{databases.POSTGRES_URL}?schema={schema}", create=True)
        except UnsupportedURLError as refused:
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


def test_a_port_that_accepts_and_never_answers_fails_within_the_connect_timeout() -> None:
    with hung_port() as port:
        started = time.monotonic()
        with pytest.raises(JournalConnectionError) as refused:
            Journal.open(f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=1")
        assert time.monotonic() - started < 5
    assert str(refused.value) == (
        f"cannot reach PostgreSQL at 127.0.0.1:{port}: no answer within 1 s (connect_timeout=1); "
        "is a PostgreSQL server listening there?"
    )


@pytest.mark.parametrize("parameter", ["connect_timeout=soon", "keepalives_idle=-1", "tcp_user_timeout=1.5"])
def test_a_timeout_that_is_not_a_number_is_refused(postgres_url: str, parameter: str) -> None:
    name = parameter.split("=", maxsplit=1)[0]
    with pytest.raises(UnsupportedURLError, match=f"{name} must be a whole number"):
        Journal.open(f"{postgres_url}&{parameter}")


def test_the_timeouts_of_the_url_are_the_connections_settings(postgres_url: str) -> None:
    from agentjournal.journal.backends.postgres import PostgresJournal

    with Journal.open(f"{postgres_url}&connect_timeout=3&keepalives_idle=7&application_name=aj-test") as journal:
        assert isinstance(journal, PostgresJournal)
        assert journal.query("SELECT current_setting('application_name')")[0][0] == "aj-test"
        assert "keepalives_idle=7" in journal.conninfo


def test_reading_a_missing_schema_creates_nothing(empty_postgres_url: str) -> None:
    import psycopg

    from agentjournal.testing import databases

    schema = empty_postgres_url.split("schema=")[1]
    with pytest.raises(JournalNotFoundError, match=f"there is no schema {schema}"):
        Journal.open(empty_postgres_url)
    with psycopg.connect(databases.POSTGRES_URL) as admin:
        assert admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is None


@pytest.mark.usefixtures("postgres_url")  # the server is there (CI=true fails without it, elsewhere skips)
def test_a_database_with_other_tables_needs_a_schema_of_the_journals_own() -> None:
    """Without ?schema= the journal would go into the database's public schema, beside the
    application's tables: refused, unless a schema is given or other tables are allowed."""
    import psycopg

    from agentjournal.testing import databases

    name = databases.unique_name("aj_test_app")
    base = databases.POSTGRES_URL
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as app:
            app.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        with pytest.raises(JournalNotFoundError, match=r"schema public holds another application's tables \(orders\)"):
            Journal.open(url)
        with pytest.raises(LocationInUseError, match=r"add \?schema=agentjournal to the URL"):
            Journal.open(url, create=True)
        with psycopg.connect(url) as app:
            tables = app.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            assert tables == [("orders",)]
        with Journal.open(f"{url}?schema=agentjournal", create=True) as journal:
            journal.append("s", NewEvent("Noted"))
        with Journal.open(url, create=True, allow_other_tables=True) as beside:
            assert beside.head_position() == 0  # the public schema's own journal, beside orders
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
