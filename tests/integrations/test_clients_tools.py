"""`@journaled` tools: arguments checked, the policy obeyed, side effects claimed, results and failures recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations import (
    InvalidToolArguments,
    RecordedToolError,
    RecorderError,
    Replay,
    RunRecorder,
    ToolBlocked,
    ToolDenied,
    journaled,
)
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.runs import RunState

from ._client_loops import POLICY, delete_order
from ._forensics import assert_forensics

KEYS: list[str] = []


@journaled(side_effecting=True)
def send_email(to: str, subject: str, idempotency_key: str = "") -> dict[str, Any]:
    """Send an e-mail."""
    KEYS.append(idempotency_key)
    return {"sent": True, "to": to}


@journaled
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


@journaled
def opaque() -> object:
    """Returns something that is not JSON."""
    return object()


@journaled(name="weather")
async def forecast(city: str, days: int = 1) -> dict[str, Any]:
    """The weather in a city."""
    await asyncio.sleep(0)
    return {"city": city, "days": days, "sky": "clear"}


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    KEYS.clear()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def asked(*calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """The model's reply asking for these calls, as RecordedRun.model_call takes it."""
    return {"tool_calls": [{"id": i, "name": n, "arguments": a} for i, n, a in calls], "model": "claude-haiku-4-5"}


def test_outside_a_run_a_journaled_tool_is_the_plain_function() -> None:
    assert divide(6, 3) == 2 and divide.name == "divide"
    assert asyncio.run(forecast("Oslo")) == {"city": "Oslo", "days": 1, "sky": "clear"}
    assert send_email.anthropic_tool == {
        "name": "send_email",
        "description": "Send an e-mail.",
        "input_schema": send_email.parameters,
    }
    assert set(send_email.parameters["properties"]) == {"to", "subject"}  # the key is not the model's to give
    assert forecast.openai_tool["function"]["name"] == "weather" and forecast.openai_function["name"] == "weather"


def test_a_call_is_matched_to_the_models_call_id_claimed_and_recorded(journal: Journal) -> None:
    with RunRecorder(journal).start(agent="a", input="mail bob") as run:
        run.model_call(**asked(("toolu_1", "send_email", {"to": "bob@example.com", "subject": "hi"})))
        assert send_email(to="bob@example.com", subject="hi") == {"sent": True, "to": "bob@example.com"}
        run.complete("sent")
    types = [e.type for e in journal.read_stream(run.stream_id)]
    assert types[2:6] == ["ToolProposed", "ToolClaimed", "ToolExecuted", "ObservationCaptured"]
    call = run.state.calls["toolu_1"]
    assert call.status == "executed" and [journal.read_stream(run.stream_id)[3].data["idempotency_key"]] == KEYS
    assert_forensics(journal, run.run_id, question="mail bob")


def test_bad_arguments_a_failure_and_a_non_json_result_are_recorded_and_raised(journal: Journal) -> None:
    with RunRecorder(journal).start(agent="a", input="divide") as run:
        run.model_call(**asked(("c1", "divide", {"a": "six", "b": 3})))
        with pytest.raises(InvalidToolArguments, match="a: Input should be a valid number") as bad:
            divide(a="six", b=3)
        assert isinstance(bad.value, ToolBlocked) and bad.value.call_id == "c1"
        run.model_call(**asked(("c2", "divide", {"a": 1, "b": 0})))
        with pytest.raises(ZeroDivisionError):
            divide(1, 0)  # positional arguments are bound by the signature
        with pytest.raises(TypeError, match="must return JSON"):
            opaque()
        with pytest.raises(InvalidToolArguments, match="unexpected keyword argument"):
            divide(a=1, b=2, c=3)
        run.complete("could not divide")
    state = Repository(journal, RunState).load(run.stream_id)
    assert (state.calls["c1"].status, state.calls["c2"].status) == ("refused", "failed")
    assert state.calls["c2"].error_type == "ZeroDivisionError"
    assert [c.error_type for c in state.calls.values()][2:] == ["non_json_output", None]
    assert state.metrics.tool_failures >= 1 and journal.verify().ok
    assert_forensics(journal, run.run_id, question="divide")


def test_an_async_tool_records_inside_an_async_loop(journal: Journal) -> None:
    async def loop() -> dict[str, Any]:
        with RunRecorder(journal).start(agent="a", input="weather?") as run:
            run.model_call(**asked(("w1", "weather", {"city": "Oslo", "days": 2})))
            result: dict[str, Any] = await forecast(city="Oslo", days=2)
            run.complete("clear")
            return result

    assert asyncio.run(loop())["sky"] == "clear"
    [stream] = [info.stream_id for info in journal.streams("run-")]
    assert Repository(journal, RunState).load(stream).calls["w1"].output["days"] == 2
    assert_forensics(journal, stream.removeprefix("run-"), question="weather?")


def test_a_denied_call_never_runs_and_a_claimed_call_runs_once(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    with recorder.start(agent="a", input="delete it") as run:
        with pytest.raises(ToolDenied, match="the policy denies it \\(rule no_deletes\\)") as denied:
            delete_order(order_id="ORD-5521")
        assert denied.value.error_type == "policy_denied"
        run.model_call(**asked(("m1", "send_email", {"to": "bob@example.com", "subject": "hi"})))
        other = recorder.resume(run.run_id)  # another worker, e.g. a retry in another process
        other.tool_call("send_email", {"to": "bob@example.com", "subject": "hi"}, call_id="m1")
        other.claim("m1")
        with pytest.raises(RecorderError, match="another writer moved it"):
            send_email(to="bob@example.com", subject="hi")
    assert KEYS == []  # the stale loop lost the claim: the e-mail was never sent twice


def test_a_recorded_tool_failure_is_raised_again_on_replay(journal: Journal) -> None:
    with RunRecorder(journal).start(agent="a", input="divide", run_id="divides") as run:
        run.model_call(**asked(("c1", "divide", {"a": 1, "b": 0})))
        with pytest.raises(ZeroDivisionError):
            divide(a=1, b=0)
        run.complete("no")
    with Replay(journal, "divides") as replay, replay.recorder.start(agent="a", input="divide") as again:
        again.model_call(**asked(("c1", "divide", {"a": 1, "b": 0})))
        with pytest.raises(RecordedToolError, match="ZeroDivisionError: float division by zero"):
            divide(a=1, b=0)
        again.complete("no")
    assert replay.state.calls["c1"].error_type == "ZeroDivisionError" and replay.same_response


def test_a_call_with_a_made_up_id_replays_by_tool_arguments_and_order(journal: Journal) -> None:
    with RunRecorder(journal).start(agent="a", input="twice", run_id="made-up") as run:
        first, second = divide(a=6, b=3), divide(a=6, b=2)  # no model reply names them: ids are made up
        run.complete(f"{first} {second}")
    with Replay(journal, "made-up") as replay, replay.recorder.start(agent="a", input="twice") as again:
        assert (divide(a=6, b=3), divide(a=6, b=2)) == (2.0, 3.0)
        with pytest.raises(DivergenceError, match="the recording has no such call"):
            divide(a=1, b=1)
        again.complete("2.0 3.0")
    assert sorted(replay.resolved.values()) == sorted(run.state.calls)
