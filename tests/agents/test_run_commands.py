"""`runs list` and `runs resume --stalled-after`: runs you can find, and runs a crashed worker left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from typer.testing import Result

from agentjournal.agents import Runtime
from agentjournal.cli.app import console
from agentjournal.journal import Journal

from ._run_helpers import EFFECTS, EXTERNAL, agent, call, fresh_effects, seed_policy, send_email

Invoke = Callable[..., Result]
AGENTS = "agents._run_helpers:tester_agents"


class Crash(BaseException):
    """Stands for the worker process dying in the middle of a side effect."""


@pytest.fixture
def url(sqlite_url: str) -> str:
    """Three runs: one completed, one waiting for a human, one a worker died in (its claim open)."""
    fresh_effects()
    with Journal.open(sqlite_url) as journal:
        done = agent([call("lookup", key="a"), "done"])
        Runtime(journal, agents=[done]).run_sync(done, "look up a", run_id="done", user_id="u-1")
        held = agent([EXTERNAL, "sent"], policy=seed_policy())
        Runtime(journal, agents=[held]).run_sync(held, "mail the partner", run_id="held", user_id="u-2")
        dies = agent([call("send_email", recipient="a@yourcompany.com", subject="s", body="b"), "sent"])
        original = send_email.fn

        def die(**kwargs: Any) -> Any:
            raise Crash

        send_email.fn = die
        try:
            with pytest.raises(Crash):
                Runtime(journal, agents=[dies]).run_sync(dies, "mail us", run_id="crashed", user_id="u-3")
        finally:
            send_email.fn = original
    return sqlite_url


def test_runs_list_shows_where_each_run_stands(invoke: Invoke, url: str) -> None:
    listed = invoke(url, "runs", "list")
    assert listed.exit_code == 0, listed.output
    for run_id, status in (("done", "completed"), ("held", "waiting_approval"), ("crashed", "running")):
        assert any(run_id in line and status in line for line in listed.output.splitlines()), (run_id, listed.output)
    assert "approval: apr-" in listed.output and "claim: call_1_1 by" in listed.output
    rows = [orjson.loads(line) for line in invoke(url, "runs", "list", "--json").output.splitlines()]
    assert {row["run_id"]: (row["status"], row["user_id"], row["waiting_for"]) for row in rows} == {
        "done": ("completed", "u-1", None),
        "held": ("waiting_approval", "u-2", "approval"),
        "crashed": ("running", "u-3", "claim"),
    }
    waiting = invoke(url, "runs", "list", "--status", "unfinished", "--json").output.splitlines()
    assert sorted(orjson.loads(line)["run_id"] for line in waiting) == ["crashed", "held"]


def test_runs_list_keeps_what_a_reader_copies_at_80_columns(
    invoke: Invoke, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 80)
    listed = invoke(url, "runs", "list").output
    assert all(len(line) <= 80 for line in listed.splitlines())
    assert "waiting_approval" in listed and "completed" in listed


def test_a_stalled_run_is_resumed_and_its_call_executed_again_with_the_same_key(invoke: Invoke, url: str) -> None:
    assert "no run is waiting to be resumed" in invoke(url, "runs", "resume", "--agents", AGENTS).output
    resumed = invoke(url, "runs", "resume", "--stalled-after", "0s", "--agents", AGENTS)
    assert resumed.exit_code == 0, resumed.output
    assert "run crashed: completed" in resumed.output
    with Journal.open(url) as journal:
        claims = [event.data for event in journal.read_stream("run-crashed") if event.type == "ToolClaimed"]
    assert [claim["reclaimed_from"] is not None for claim in claims] == [False, True]
    assert claims[0]["idempotency_key"] == claims[1]["idempotency_key"]
    assert [effect["key"] for effect in EFFECTS] == [claims[0]["idempotency_key"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "list", "--status", "sleeping"), "'sleeping' is not one of"),
        (("runs", "list", "--since", "yesterday"), "'yesterday' is neither"),
        (("runs", "resume", "--stalled-after", "5 minutes"), "not a duration: '5 minutes'"),
    ],
)
def test_bad_run_options_are_one_clear_line(invoke: Invoke, url: str, args: tuple[str, ...], message: str) -> None:
    result = invoke(url, *args)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
