"""Fixtures of the CLI tests: a sample journal to read, and a console as narrow as a pipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner, Result

from agentjournal.cli.app import app, close_journal, console, errors

from .sample import Invoke, Sample, build


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Built once for the CLI tests that only read it."""
    folder = tmp_path_factory.mktemp("sample")
    return build(f"sqlite:///{folder / 'journal.db'}", folder)


@pytest.fixture
def invoke_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], Invoke]]:
    """`invoke_at(80)(url, "events", "run-1")`: one command in process on a console `width` columns wide,
    for its tables and for Typer's own messages, as in a pipe or a CI log with COLUMNS=80."""
    runner = CliRunner()

    def at(width: int) -> Invoke:
        monkeypatch.setattr(console, "width", width)
        monkeypatch.setattr(errors, "width", width)
        monkeypatch.setattr("typer.rich_utils.MAX_WIDTH", width)

        def run(url: str, *args: str, input: str | None = None) -> Result:
            try:
                return runner.invoke(app, ["--db", url, *args], input=input, env={"COLUMNS": str(width)})
            finally:
                close_journal()

        return run

    yield at
