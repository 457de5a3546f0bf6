"""The run contract: recognised by its first event, versioned with upcasters, final once finished, explained."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

import orjson
import pytest
from typer.testing import Result

from agentjournal.agents import Agent, Runtime, ScriptedModel, call, tool
from agentjournal.forensics import explainers
from agentjournal.journal import Journal, NewEvent, StreamClosedError
from agentjournal.model import Repository, StreamSummary
from agentjournal.runs import (
    CONTRACT_VERSION,
    RUN_EVENTS,
    RunState,
    aggregate_for,
    is_run_start,
    new_event,
)
from agentjournal.runs import events as ev

Invoke = Callable[..., Result]


@tool
def lookup(key: str) -> dict[str, str]:
    """A read-only lookup."""
    return {"key": key}


def finished_run(journal: Journal, run_id: str = "done") -> RunState:
    agent = Agent("tester", "You test.", ScriptedModel([call("lookup", key="a"), "the answer"]), tools=[lookup])
    return Runtime(journal).run_sync(agent, "question", run_id=run_id, user_id="u-1").state


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


# ----- recognised by its contract, not by its stream name -------------------------------------

SEED_000 = [
    NewEvent("RunStarted", {"prompt": "refund order 1234?", "model": "gpt-4o", "context": {}}),
    NewEvent("Reasoned", {"thought": "look it up", "tool_name": "lookup", "args_json": "{}"}),
    NewEvent("ToolFailed", {"tool_name": "lookup", "error_code": "404", "message": "not found"}),
    NewEvent("Answered", {"response": "sorry", "tokens_used": 40, "cost_usd": 0.01}),
]


def test_a_users_own_run_stream_keeps_the_generic_tools(journal: Journal, invoke: Invoke) -> None:
    journal.append("run-X", SEED_000)
    assert aggregate_for(journal, "run-X") is StreamSummary
    assert not is_run_start(journal.read_stream("run-X")[0])
    started = explainers.explain(journal.read_stream("run-X")[0])
    assert "None" not in started.title + started.summary
    assert started.title == "Run started" and "prompt: refund order 1234?" in started.summary
    shown = invoke(journal.url, "state", "run-X", "--at", "3")
    assert shown.exit_code == 0, shown.output
    assert "run-X at version 3 (StreamSummary)" in shown.output and "Traceback" not in shown.output
    explained = invoke(journal.url, "explain", "run-X")
    assert explained.exit_code == 0 and "None" not in explained.output


def test_a_run_of_the_contract_folds_into_run_state(journal: Journal, invoke: Invoke) -> None:
    state = finished_run(journal)
    assert aggregate_for(journal, state.stream_id) is RunState
    started = journal.read_stream(state.stream_id, 1, 1)[0]
    assert started.data["contract_version"] == CONTRACT_VERSION and is_run_start(started)
    shown = invoke(journal.url, "state", state.stream_id, "--json")
    assert orjson.loads(shown.output)["state"]["summary"]["status"] == "completed"


def test_state_is_typed_records() -> None:
    with Journal.open("memory://") as journal:
        state = finished_run(journal)
    call_record = state.calls["call_1_1"]
    assert (call_record.tool, call_record.status, call_record.output) == ("lookup", "executed", {"key": "a"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        call_record.status = "failed"  # type: ignore[misc]
    assert [message.role for message in state.messages] == ["user", "assistant", "tool", "assistant"]


def test_snapshots_of_run_state_restore_the_typed_records(journal: Journal) -> None:
    state = finished_run(journal)

    class Often(RunState):
        snapshot_every = 3

    repository = Repository(journal, Often)
    first = repository.load(state.stream_id)  # takes snapshots at versions 3 and 6
    again = repository.load_at_version(state.stream_id, 7)
    assert isinstance(again.calls["call_1_1"], type(first.calls["call_1_1"]))
    assert again.calls == first.calls
    assert again.summary.metrics.tool_calls == 1


# ----- versions and upcasters ------------------------------------------------------------------

V1_RUN = [  # as contract version 1 (the runtime before the contract) wrote a run
    (
        "RunStarted",
        {
            "run_id": "old",
            "agent": "a",
            "agent_version": "1",
            "model": "m",
            "prompt_version": "p",
            "tool_schemas": {},
            "input": "hello",
            "user_id": None,
            "limits": {},
            "route": None,
            "policy_version": None,
        },
    ),
    (
        "ModelCalled",
        {
            "model": "m",
            "request_fingerprint": "f",
            "new_messages": [{"role": "user", "ref": 1}],
            "response": {"text": "hi"},
            "input_tokens": 3,
            "output_tokens": 1,
            "cost_usd": 0.0,
            "latency_ms": 1.0,
            "step": 1,
            "agent": "a",
            "purpose": "act",
        },
    ),
    ("ResponseDrafted", {"text": "hi", "agent": "a"}),
    ("ResponseFinalized", {"text": "hi"}),
    ("RunCompleted", {"outcome": "answered"}),
]


def test_runs_of_contract_version_1_are_upcast_on_read(journal: Journal) -> None:
    journal.append("run-old", [NewEvent(kind, data, schema_version=1) for kind, data in V1_RUN])
    assert aggregate_for(journal, "run-old") is RunState
    state = Repository(journal, RunState).load("run-old")
    assert (state.summary.contract_version, state.status, state.final_response) == (1, "completed", "hi")
    assert ev.upcast(journal.read_stream("run-old", 2, 2)[0]).data["stage"] == "act"
    assert "explainer_error" not in explainers.explain(journal.read_stream("run-old", 2, 2)[0]).tags


def test_every_contract_event_has_an_explainer_and_schema() -> None:
    assert {model.__name__ for model in RUN_EVENTS} <= set(explainers.registered())
    assert new_event(ev.RunStarted.model_validate(dict(V1_RUN[0][1])), actor="x").schema_version == 2
    assert new_event(ev.RunCompleted(), actor="x").closes_stream
    assert not new_event(
        ev.ToolProposed(tool="t", arguments={}, step=1, call_id="c", agent="a"), actor="x"
    ).closes_stream


# ----- finished is final ------------------------------------------------------------------------


def test_nothing_is_appended_to_a_finished_run(journal: Journal) -> None:
    state = finished_run(journal)
    version = journal.stream_version(state.stream_id)
    for expected in ("any", version):
        with pytest.raises(StreamClosedError, match=re.escape(f"version {version} (RunCompleted)")):
            journal.append(state.stream_id, [NewEvent("RunStarted", {"again": True})], expected_version=expected)
    assert journal.stream_version(state.stream_id) == version
    runtime = Runtime(journal)
    assert runtime.resume_sync(state.run_id).status == "completed"
    assert runtime.cancel(state.run_id) is False
    assert journal.stream_version(state.stream_id) == version
