"""Fixtures that hand out journal URLs on real, throwaway databases.

`journal_url` is parametrized over every backend; `sql_journal_url` over the persistent ones.
Each URL holds a new, empty journal (opening a URL to read never creates one); the `empty_*`
fixtures hand out places with no journal at all. A backend whose server cannot be reached fails
under CI=true and skips (saying why) elsewhere.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner, Result

from agentjournal import Journal
from agentjournal.cli import main  # noqa: F401  (registers every command module)
from agentjournal.cli.app import app, close_journal, console, errors
from agentjournal.testing import databases

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _no_real_model_requests() -> Iterator[None]:
    """Any request to a real LLM provider fails inside the test suite (the scripted model is offline)."""
    from agentjournal.agents.models.base import real_requests

    with real_requests(False):
        yield


def _require(name: str, url: str) -> None:
    reason = databases.unreachable(name, url)
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _created(url: str) -> str:
    Journal.open(url, create=True).close()
    return url


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL naming a file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def sqlite_url(empty_sqlite_url: str) -> str:
    return _created(empty_sqlite_url)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL URL naming a schema that does not exist yet (dropped afterwards if created)."""
    _require("PostgreSQL", databases.POSTGRES_URL)
    with databases.postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    return _created(empty_postgres_url)


@pytest.fixture
def empty_mysql_url() -> Iterator[str]:
    """A MySQL/MariaDB URL naming a new database with no table in it."""
    _require("MariaDB", databases.MYSQL_URL)
    with databases.mysql_database() as url:
        yield url


@pytest.fixture
def mysql_url(empty_mysql_url: str) -> str:
    return _created(empty_mysql_url)


NATS_URL = os.environ.get("AGENTJOURNAL_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
def nats_url() -> str:
    """The NATS JetStream server of the machine (`.ci/run` starts it); tests make their own streams."""
    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=2).close()
    except OSError as exc:
        reason = (
            f"NATS at {parts.hostname}:{parts.port} is not reachable ({exc}); start it with: "
            "nats-server -js -a 127.0.0.1 -p 4222"
        )
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return NATS_URL


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def empty_sql_url(request: pytest.FixtureRequest) -> str:
    """A place with no journal, on each of the three real database backends."""
    return str(request.getfixturevalue(f"empty_{request.param}_url"))


def _backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "memory":
        return "memory://"
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres", "mysql"])
def journal_url(request: pytest.FixtureRequest) -> str:
    """Every backend, the in-memory one included."""
    return _backend_url(request, request.param)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def sql_journal_url(request: pytest.FixtureRequest) -> str:
    """The three real database backends."""
    return _backend_url(request, request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def sqlite_or_postgres_url(request: pytest.FixtureRequest) -> str:
    """For higher layers, tested at least on SQLite and PostgreSQL."""
    return _backend_url(request, request.param)


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`invoke(url, "events", "run-1")` runs one `agentjournal` command in process against the
    journal at `url`, on a wide console so that tables do not wrap."""
    monkeypatch.setattr(console, "width", 220)
    monkeypatch.setattr(errors, "width", 220)
    runner = CliRunner()

    def run(url: str, *args: str, input: str | None = None) -> Result:
        try:
            return runner.invoke(app, ["--db", url, *args], input=input)
        finally:
            close_journal()

    yield run
