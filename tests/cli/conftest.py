"""Run `agentjournal` commands in process with Typer's runner, on a wide console."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner, Result

from agentjournal.cli import main  # noqa: F401  (registers every command module)
from agentjournal.cli.app import app, close_journal, console, errors

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """`invoke(url, "events", "run-1")` runs one command against the journal at `url`."""
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(errors, "width", 200)
    runner = CliRunner()

    def run(url: str, *args: str, input: str | None = None) -> Result:
        try:
            return runner.invoke(app, ["--db", url, *args], input=input)
        finally:
            close_journal()

    yield run
