"""What the runtime promises: it never blocks its event loop, nothing escapes a run, redaction and replay go
together, memory is part of the record, and seed 001's stages each use their own model."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from typing import Any

import pytest

from agentjournal.agents import (
    Agent,
    MemoryService,
    ModelRequest,
    Redactor,
    Runtime,
    ScriptedModel,
    approve,
    call,
    replay_sync,
    tool,
)
from agentjournal.agents.models import Model, ModelResponse
from agentjournal.agents.replay import DivergenceError
from agentjournal.journal import Journal

from ._run_helpers import agent, big, fresh_effects, lookup, of_type, runtime, seed_policy, send_email

EXTERNAL = call("send_email", recipient="partner@example.org", subject="s", body="b")


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    fresh_effects()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


# ----- never blocks ---------------------------------------------------------------------------

JOURNAL_CALLS = ("append", "read_stream", "read_all", "stream_version", "get_event", "query", "transaction")


def watched(journal: Journal) -> list[str]:
    """Make every journal call record it when it runs on a thread that is running an event loop."""
    on_loop: list[str] = []
    for name in JOURNAL_CALLS:
        original = getattr(journal, name)

        @functools.wraps(original)
        def wrapper(*args: Any, __name: str = name, __original: Any = original, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return __original(*args, **kwargs)
            on_loop.append(__name)
            return __original(*args, **kwargs)

        setattr(journal, name, wrapper)
    return on_loop


def test_no_journal_call_runs_on_the_event_loops_thread(postgres_url: str) -> None:
    second = Agent(
        "second", "You are second.", ScriptedModel([]), tools=[lookup, big, send_email], policy=seed_policy()
    )
    script = [
        call("lookup", key="a"),
        call("big", size=10_000),  # a blob
        call("transfer_to_second", reason="needs second"),
        EXTERNAL,  # held for a human
        "done",
    ]
    model = ScriptedModel(script)
    second.model = model
    with Journal.open(postgres_url) as journal:
        memory = MemoryService(journal)
        memory.remember("acme", "u-1", "prefers short answers about lookups")
        first = Agent("first", "You test.", model, tools=[lookup, big], handoffs=[second], memory=memory)
        on_loop = watched(journal)

        async def blocking() -> None:
            journal.stream_version("run-watched")

        asyncio.run(blocking())
        assert on_loop == ["stream_version"]  # the watch sees a call on the loop's thread
        on_loop.clear()
        rt = Runtime(journal, agents=[first, second])
        waiting = asyncio.run(rt.run(first, "lookup please", run_id="watched", user_id="u-1", tenant_id="acme"))
        assert waiting.status == "waiting_approval", waiting.reason
        approve(journal, waiting.pending_approvals[0].approval_id, by="alice", reason="ok")
        done = asyncio.run(rt.resume("watched"))
        assert done.status == "completed", done.reason
        assert asyncio.run(rt.resume_ready()) == []
        assert on_loop == []
        assert of_type(journal, "run-watched", "MemoryRecalled")


# ----- nothing escapes a run --------------------------------------------------------------------


class Exploding(Model):
    name = "exploding"

    async def request(self, request: ModelRequest) -> ModelResponse:
        raise RuntimeError("the SDK's event loop is closed")


def test_an_exception_from_a_model_ends_the_run_with_the_reason(journal: Journal) -> None:
    broken = Agent("broken", "You test.", Exploding(), tools=[lookup])
    result = Runtime(journal).run_sync(broken, "hello")
    assert result.status == "aborted"
    assert result.reason == "the model call at step 1 failed: exploding: RuntimeError: the SDK's event loop is closed"
    assert [event.type for event in journal.read_stream(result.stream_id)] == ["RunStarted", "RunAborted"]


def test_an_exception_inside_the_runtime_ends_the_run_with_its_type(journal: Journal) -> None:
    from agentjournal.agents import output_check

    def bug(text: str, state: Any) -> bool:
        raise KeyError("missing")

    buggy = Agent("buggy", "You test.", ScriptedModel(["an answer"]), output_checks=[output_check("bug")(bug)])
    result = Runtime(journal).run_sync(buggy, "hello")
    assert result.status == "aborted"
    assert result.reason == "the runtime failed: KeyError: 'missing'"
    aborted = of_type(journal, result.stream_id, "RunAborted")[0]
    assert aborted.data["error_type"] == "KeyError"
    assert Runtime(journal).load(result.run_id).status == "aborted"  # not a bare `running`


# ----- redaction and replay -----------------------------------------------------------------------


@tool
def contact(name: str) -> dict[str, str]:
    """Returns a contact with personal data."""
    return {"name": name, "email": f"{name}@example.com", "phone": "+44 20 7946 0958"}


def test_a_run_recorded_through_a_redacting_journal_replays(sqlite_or_postgres_url: str) -> None:
    script = [call("contact", name="carol"), "Write to carol@example.com or call +44 20 7946 0958."]

    def make() -> Agent:
        return Agent("redacted", "You test.", ScriptedModel(script), tools=[contact])

    with Journal.open(sqlite_or_postgres_url, redact=Redactor()) as journal:
        result = Runtime(journal).run_sync(make(), "my e-mail is dave@example.com", run_id="private")
        assert result.status == "completed"
        stored = "".join(str(event.data) for event in journal.read_stream("run-private"))
        assert "example.com" not in stored and "7946" not in stored
        assert result.output == "Write to [REDACTED:email] or call [REDACTED:phone]."  # what the journal holds
        replayed = replay_sync(journal, "private", [make()])
        assert replayed.same_response and replayed.replayed.status == "completed"


def test_a_divergence_names_the_tool_whose_schema_changed(journal: Journal) -> None:
    @tool(name="lookup")
    def lookup_v2(key: str, deep: bool = False) -> dict[str, Any]:
        """A read-only lookup."""
        return {"key": key, "value": f"value of {key}"}

    tester = agent([call("lookup", key="a"), "done"])
    runtime(journal, tester).run_sync(tester, "go", run_id="schema")
    from ._run_helpers import ALL_TOOLS

    newer = Agent(
        "tester",
        "You test the runtime.",
        ScriptedModel([call("lookup", key="a"), "done"]),
        tools=[lookup_v2, *ALL_TOOLS[1:]],
    )
    with pytest.raises(DivergenceError) as raised:
        replay_sync(journal, "schema", [newer])
    assert raised.value.changes == ["tool lookup changed its description or schema"]


# ----- memory in the loop -------------------------------------------------------------------------


def test_memory_is_recalled_into_the_context_and_recorded(journal: Journal) -> None:
    memory = MemoryService(journal)
    kept = memory.remember("acme", "u-9", "Prefers refunds to the original card")
    memory.remember("acme", "u-9", "Lives in Lyon")
    model = ScriptedModel(["Refunded to your original card."])
    helper = Agent("helper", "You help.", model, memory=memory)
    result = Runtime(journal).run_sync(helper, "how will my refund be paid?", user_id="u-9", tenant_id="acme")
    [recalled] = of_type(journal, result.stream_id, "MemoryRecalled")
    assert [item["item_id"] for item in recalled.data["items"]] == [kept]
    assert "Prefers refunds to the original card" in model.requests[0].messages[-1]["content"]
    assert "Lyon" not in str(model.requests[0].messages)
    assert replay_sync(
        journal,
        result.run_id,
        [Agent("helper", "You help.", ScriptedModel(["Refunded to your original card."]), memory=memory)],
    ).same_response


def test_an_agent_stores_memory_only_when_it_may(journal: Journal) -> None:
    memory = MemoryService(journal)
    model = ScriptedModel([call("remember", note="Likes short answers"), "Noted."])
    reader = Agent("reader", "You help.", ScriptedModel([]), memory=memory)
    assert "remember" not in reader.registry
    writer = Agent("writer", "You help.", model, memory=memory, memory_writes=True)
    result = Runtime(journal).run_sync(writer, "keep it short from now on", user_id="u-9", tenant_id="acme")
    assert result.status == "completed", result.reason
    assert [item.text for item in memory.items("acme", "u-9")] == ["Likes short answers"]
    assert of_type(journal, result.stream_id, "ToolClaimed")  # a side effect like any other
    streams = [info.stream_id for info in journal.streams("memory-")]
    assert streams and all("u-9" not in stream for stream in streams)
    with pytest.raises(ValueError, match="memory_writes=True needs memory"):
        Agent("bad", "x", ScriptedModel([]), memory_writes=True)


# ----- seed 001's stages ----------------------------------------------------------------------------


def test_a_small_model_plans_and_the_strong_model_answers(journal: Journal) -> None:
    plan = {
        "runId": "stages-001",
        "maxSteps": 3,
        "budgetUsd": 1,
        "steps": [
            {
                "id": "s1",
                "objective": "look it up",
                "tool": "lookup",
                "input": {"key": "a"},
                "successCriteria": "found it",
            }
        ],
        "stopConditions": ["found"],
    }
    small = ScriptedModel([{"json": plan}], name="small-planner")
    strong = ScriptedModel(["", "", "the value of a is known"], name="strong")
    staged = Agent("staged", "You plan.", strong, tools=[lookup], planner=True, planner_model=small)
    result = Runtime(journal).run_sync(staged, "what is a?")
    assert result.status == "completed", result.reason
    calls = [(e.data["stage"], e.data["model"]) for e in of_type(journal, result.stream_id, "ModelCalled")]
    assert calls == [("plan", "small-planner"), ("respond", "strong")]
    assert journal.read_stream(result.stream_id, 1, 1)[0].data["planner_model"] == "small-planner"
    with pytest.raises(ValueError, match="set planner=True"):
        Agent("x", "x", strong, planner_model=small)
