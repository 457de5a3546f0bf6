"""The decider on its own: every next step decided from a RunState, with no journal, no model and no tool."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentjournal.agents import (
    Agent,
    MemoryService,
    Policy,
    RedactOutput,
    RunOptions,
    ScriptedModel,
    output_check,
    tool,
)
from agentjournal.agents import decider as d
from agentjournal.agents.models import ModelResponse, ToolCall
from agentjournal.agents.policy import seed_policy_path
from agentjournal.agents.tools import Observation
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.runs import RunState
from agentjournal.runs.state import Claim

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@tool
def lookup(key: str) -> dict[str, str]:
    """A read-only lookup."""
    return {"key": key}


@tool(side_effecting=True)
def send_email(recipient: str, subject: str, body: str, idempotency_key: str = "") -> dict[str, Any]:
    """A side effect."""
    return {"sent": True}


def make_agent(**options: Any) -> Agent:
    return Agent("tester", "You test.", ScriptedModel([]), tools=[lookup, send_email], **options)


def turn(*agents: Agent, now: datetime = NOW, **options: Any) -> d.Turn:
    ids = (f"00000000-0000-7000-8000-{n:012d}" for n in itertools.count(1))
    return d.Turn(
        agents={agent.name: agent for agent in agents},
        options=RunOptions(**options),
        now=now,
        worker="host/1/w",
        new_id=lambda: next(ids),
    )


def fold(state: RunState, record: d.Record | d.Draft) -> RunState:
    """Apply what the decider recorded, as a driver would (without a journal)."""
    for draft in record.events if isinstance(record, d.Record) else (record,):
        state.apply(
            RecordedEvent(
                event_id=draft.event_id,
                stream_id=state.stream_id,
                version=state.version + 1,
                position=0,
                type=type(draft.payload).__name__,
                schema_version=1,
                recorded_at=NOW,
                actor=draft.actor,
                tenant_id=None,
                correlation_id=None,
                causation_id=draft.caused_by,
                traceparent=None,
                data_json=b"",
                metadata_json=b"{}",
                prev_hash="",
                hash="",
                data=draft.payload.model_dump(mode="json"),
            )
        )
    return state


def started(agent: Agent, t: d.Turn, *, user_id: str | None = None) -> RunState:
    start = d.started(agent, "help me", "r1", user_id=user_id, route=None, options=t.options)
    return fold(RunState("run-r1"), d.Draft(start, "orchestrator", None, t.new_id()))


def types(record: d.Record) -> list[str]:
    return [type(draft.payload).__name__ for draft in record.events]


def reply(state: RunState, t: d.Turn, response: ModelResponse) -> d.Record:
    ask = d.decide(state, t)
    assert isinstance(ask, d.AskModel)
    return d.model_replied(state, t, ask, response, 1.0)


def test_a_new_run_asks_its_model_with_its_tools() -> None:
    agent = make_agent()
    t = turn(agent)
    state = started(agent, t)
    ask = d.decide(state, t)
    assert isinstance(ask, d.AskModel)
    assert (ask.stage, ask.step, ask.caused_by, ask.model.name) == ("act", 1, state.started_id, "scripted")
    assert [spec.name for spec in ask.request.tools] == ["lookup", "send_email"]
    assert ask.request.messages == [{"role": "user", "content": "help me"}]
    assert d.decide(state, t) == ask  # the same state and turn give the same decision


def test_every_call_of_a_reply_is_proposed_before_any_runs() -> None:
    agent = make_agent()
    t = turn(agent)
    state = started(agent, t)
    both = ModelResponse(tool_calls=[ToolCall("c1", "lookup", {"key": "a"}), ToolCall("c2", "lookup", {"key": "b"})])
    called = reply(state, t, both)
    assert types(called) == ["ModelCalled"] and not called.durable  # written with the next batch
    fold(state, called)
    for call_id in ("c1", "c2"):
        proposed = d.decide(state, t)
        assert isinstance(proposed, d.Record) and types(proposed) == ["ToolProposed"]
        assert proposed.events[0].payload.call_id == call_id  # type: ignore[attr-defined]
        fold(state, proposed)
    run = d.decide(state, t)
    assert isinstance(run, d.RunTool) and (run.call_id, run.claim, run.attempt) == ("c1", False, 1)
    finished = d.tool_finished(state, t, run, Observation(True, {"key": "a"}), None)
    assert types(finished) == ["ToolExecuted", "ObservationCaptured"] and not finished.durable


def test_the_policy_denies_or_sends_a_call_to_a_human_and_it_expires() -> None:
    agent = make_agent(policy=Policy.load(seed_policy_path()))
    t = turn(agent)
    state = started(agent, t)
    fold(
        state,
        reply(
            state,
            t,
            ModelResponse(
                tool_calls=[ToolCall("c1", "send_email", {"recipient": "x@other.org", "subject": "s", "body": "b"})]
            ),
        ),
    )
    proposed = d.decide(state, t)
    assert isinstance(proposed, d.Record)
    assert types(proposed) == ["ToolProposed", "PolicyEvaluated", "ApprovalRequested"]
    fold(state, proposed)
    wait = d.decide(state, t)
    assert isinstance(wait, d.Wait) and wait.approval_id == state.pending_approvals()[0].approval_id
    later = turn(agent, now=NOW + timedelta(days=2))
    expired = d.decide(state, later)
    assert isinstance(expired, d.Record) and types(expired) == ["ToolRejected"] and expired.durable
    assert expired.events[0].payload.by == "system"  # type: ignore[attr-defined]
    fold(state, expired)
    told = d.decide(state, t)
    assert isinstance(told, d.Record) and told.events[0].payload.error_type == "rejected_by_human"  # type: ignore[attr-defined]


def test_a_side_effect_is_claimed_and_a_dead_claim_is_taken_over() -> None:
    agent = make_agent()
    t = turn(agent)
    state = started(agent, t)
    email = ToolCall("c1", "send_email", {"recipient": "a@b.com", "subject": "s", "body": "b"})
    fold(state, reply(state, t, ModelResponse(tool_calls=[email])))
    fold(state, d.decide(state, t))  # type: ignore[arg-type]
    run = d.decide(state, t)
    assert isinstance(run, d.RunTool) and run.claim and run.reclaimed_from is None
    claim = d.tool_claimed(state, t, run)
    fold(state, claim)
    assert state.calls["c1"].status == "claimed"
    alive = turn(agent)
    alive.claim_alive = lambda call_id, held: True
    assert isinstance(d.decide(state, alive), d.Wait)
    dead = turn(agent)
    dead.claim_alive = lambda call_id, held: False
    again = d.decide(state, dead)
    assert isinstance(again, d.RunTool) and again.reclaimed_from == "host/1/w"
    assert again.idempotency_key == run.idempotency_key and again.caused_by == claim.event_id
    assert isinstance(state.calls["c1"].claim, Claim)


def test_a_budget_overrun_ends_the_run() -> None:
    agent = make_agent()
    t = turn(agent, budget_usd=0.01)
    state = started(agent, t)
    record = reply(state, t, ModelResponse(text="pricy", cost_usd=0.5))
    assert types(record) == ["ModelCalled", "BudgetExceeded", "RunAborted"] and record.durable
    assert fold(state, record).reason == "budget exceeded: spent $0.5000 of the $0.0100 allowed"
    assert isinstance(d.decide(state, t), d.Done)


def test_a_handoff_switches_the_agent_that_is_asked_next() -> None:
    second = Agent("second", "You are second.", ScriptedModel([]), tools=[lookup])
    first = make_agent(handoffs=[second])
    t = turn(first, second)
    state = started(first, t)
    fold(state, reply(state, t, ModelResponse(tool_calls=[ToolCall("h", "transfer_to_second", {"reason": "why"})])))
    handoff = d.decide(state, t)
    assert isinstance(handoff, d.Record) and types(handoff) == ["HandoffInitiated", "ObservationCaptured"]
    assert handoff.events[0].payload.tool_schemas == second.tool_schema_hashes()  # type: ignore[attr-defined]
    fold(state, handoff)
    ask = d.decide(state, t)
    assert isinstance(ask, d.AskModel) and ask.agent == "second" and [s.name for s in ask.request.tools] == ["lookup"]


def test_the_plan_stage_uses_the_small_model_and_the_answer_the_strong_one() -> None:
    small = ScriptedModel([], name="small")
    agent = make_agent(planner=True, planner_model=small)
    t = turn(agent)
    state = started(agent, t)
    plan = d.decide(state, t)
    assert isinstance(plan, d.AskModel) and (plan.stage, plan.model.name, plan.request.json_output) == (
        "plan",
        "small",
        True,
    )
    steps = [
        {"id": "s1", "objective": "look it up", "tool": "lookup", "input": {"key": "a"}, "successCriteria": "found it"},
        {
            "id": "s2",
            "objective": "look up more",
            "tool": "lookup",
            "input": {"key": "b"},
            "successCriteria": "found it",
        },
    ]
    text = json.dumps({"runId": "run-0001", "maxSteps": 4, "budgetUsd": 1, "steps": steps, "stopConditions": ["x"]})
    generated = d.model_replied(state, t, plan, ModelResponse(text=text), 1.0)
    assert types(generated) == ["ModelCalled", "PlanGenerated"] and generated.durable
    fold(state, generated)
    first = d.decide(state, t)
    assert isinstance(first, d.Record) and first.durable
    assert first.events[0].payload.step == 2  # type: ignore[attr-defined]
    fold(state, first)
    run = d.decide(state, t)
    assert isinstance(run, d.RunTool) and run.call_id == "plan-s1"
    fold(state, d.tool_finished(state, t, run, Observation(True, {"key": "a"}), None))
    second = d.decide(state, t)
    assert isinstance(second, d.Record) and second.events[0].payload.call_id == "plan-s2"  # type: ignore[attr-defined]
    fold(state, second)
    run = d.decide(state, t)
    assert isinstance(run, d.RunTool)
    fold(state, d.tool_finished(state, t, run, Observation(True, {"key": "b"}), None))
    answer = d.decide(state, t)
    assert isinstance(answer, d.AskModel)
    assert (answer.stage, answer.model.name, answer.request.tools) == ("respond", "scripted", [])


def test_output_checks_rewrite_or_block_the_answer() -> None:
    blocker = output_check("no-promises")(lambda text, state: "guarantee" not in text)
    agent = make_agent(output_checks=[RedactOutput(), blocker])
    t = turn(agent)
    state = started(agent, t)
    record = reply(state, t, ModelResponse(text="Write to bob@example.com"))
    assert types(record) == [
        "ModelCalled",
        "ResponseDrafted",
        "GuardrailTriggered",
        "OutputChecked",
        "ResponseFinalized",
        "RunCompleted",
    ]
    assert fold(state, record).final_response == "Write to [REDACTED:email]"
    state = started(agent, t)
    blocked = reply(state, t, ModelResponse(text="I guarantee a refund"))
    assert types(blocked)[2:4] == ["OutputChecked", "GuardrailTriggered"]
    fold(state, blocked)
    assert (state.final_response, state.outcome) == (agent.fallback_response, "fallback")


def test_memory_is_recalled_before_the_first_model_call() -> None:
    with Journal.open("memory://") as journal:
        agent = make_agent(memory=MemoryService(journal))
    t = turn(agent)
    assert isinstance(d.decide(started(agent, t), t), d.AskModel)  # no user: nothing to recall
    state = started(agent, t, user_id="u-7")
    recall = d.decide(state, t)
    assert isinstance(recall, d.Recall) and (recall.user_id, recall.query) == ("u-7", "help me")
    items = [{"item_id": "m1", "text": "prefers e-mail", "score": 1.0}]
    fold(state, d.recalled(state, t, recall, items))
    ask = d.decide(state, t)
    assert isinstance(ask, d.AskModel)
    assert ask.request.messages[-1]["content"].endswith("- prefers e-mail")


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_transient_failure_is_retried_until_the_attempts_run_out(attempts: int) -> None:
    agent = make_agent()
    t = turn(agent, max_attempts=attempts, backoff_s=0.5)
    state = started(agent, t)
    fold(state, reply(state, t, ModelResponse(tool_calls=[ToolCall("c1", "lookup", {"key": "a"})])))
    fold(state, d.decide(state, t))  # type: ignore[arg-type]
    for attempt in range(1, attempts + 1):
        run = d.decide(state, t)
        assert isinstance(run, d.RunTool) and run.attempt == attempt
        assert run.delay_s == (0.0 if attempt == 1 else t.options.backoff(attempt - 1))
        failed = d.tool_finished(state, t, run, Observation.failure("timeout", "slow", retryable=True), None)
        fold(state, failed)
    assert state.calls["c1"].observed and state.calls["c1"].status == "failed"
