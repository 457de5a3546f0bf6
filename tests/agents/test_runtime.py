"""The orchestrator, offline with the scripted model, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from agentjournal.agents import (
    Agent,
    ModelRequest,
    RunState,
    Runtime,
    ScriptedModel,
    call,
)
from agentjournal.agents.models import Price, RealModelRequestBlocked
from agentjournal.agents.models.base import check_real_request
from agentjournal.agents.runtime import RunError
from agentjournal.forensics import explainers
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.runs import RUN_EVENTS, aggregate_for

from ._run_helpers import (
    EFFECTS,
    agent,
    fresh_effects,
    lookup,
    of_type,
    runtime,
    seed_policy,
    send_email,
    types,
    walk_back,
)


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    fresh_effects()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


# ----- the shape of a run --------------------------------------------------------------------


def test_a_run_records_every_transition_and_answers(journal: Journal) -> None:
    tester = agent([call("lookup", key="a"), "the value is known"])
    result = runtime(journal, tester).run_sync(tester, "what is a?", user_id="u-1", tenant_id="acme")
    assert result.status == "completed"
    assert result.output == "the value is known"
    assert types(journal, result.stream_id) == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    events = journal.read_stream(result.stream_id)
    assert {event.tenant_id for event in events} == {"acme"}
    assert {event.correlation_id for event in events} == {events[0].event_id}
    executed = of_type(journal, result.stream_id, "ToolExecuted")[0]
    assert executed.data["output"] == {"key": "a", "value": "value of a"}
    assert journal.verify().ok


def test_run_started_pins_what_the_run_ran_with(journal: Journal) -> None:
    tester = agent(["hi"], policy=seed_policy(), name="pinned")
    tester.version = "7"
    result = runtime(journal, tester).run_sync(tester, "hello", route="support")
    started = journal.read_stream(result.stream_id, 1, 1)[0].data
    assert started["agent"] == "pinned"
    assert started["agent_version"] == "7"
    assert started["model"] == "scripted"
    assert started["prompt_version"] == hashlib.sha256(b"You test the runtime.").hexdigest()
    assert started["tool_schemas"]["lookup"] == lookup.schema_hash
    assert started["policy_version"] == seed_policy().version
    assert started["route"] == "support"


def test_the_final_answer_traces_back_to_the_users_message(journal: Journal) -> None:
    tester = agent([call("lookup", key="a"), "done"])
    result = runtime(journal, tester).run_sync(tester, "look up a")
    final = of_type(journal, result.stream_id, "ResponseFinalized")[0]
    chain = [event.type for event in walk_back(journal, final)]
    assert chain == [
        "ResponseFinalized",
        "ResponseDrafted",
        "ModelCalled",
        "ObservationCaptured",
        "ToolExecuted",
        "ToolProposed",
        "ModelCalled",
        "RunStarted",
    ]


def test_each_event_type_has_a_plain_language_explainer(journal: Journal) -> None:
    tester = agent([call("lookup", key="a"), call("query_sql", sql="DROP TABLE users"), "done"], policy=seed_policy())
    result = runtime(journal, tester).run_sync(tester, "go")
    titles = [explainers.explain(event).title for event in journal.read_stream(result.stream_id)]
    assert "Decided to call lookup" in titles
    assert "Policy deny_destructive_sql denied query_sql" in titles
    assert "Run completed" in titles
    for event in journal.read_stream(result.stream_id):
        assert "explainer_error" not in explainers.explain(event).tags


def test_run_state_is_the_aggregate_of_run_streams(journal: Journal) -> None:
    tester = agent([call("lookup", key="a"), "done"])
    result = runtime(journal, tester).run_sync(tester, "go")
    assert aggregate_for(journal, result.stream_id) is RunState
    at_step_one = Repository(journal, RunState).load_at_version(result.stream_id, 4)
    assert at_step_one.step == 1
    assert at_step_one.calls["call_1_1"].status == "executed"
    assert at_step_one.final_response is None


def test_a_model_call_records_only_the_new_messages_and_a_fingerprint(journal: Journal) -> None:
    tester = agent([call("lookup", key=str(n)) for n in range(5)] + ["done"])
    result = runtime(journal, tester).run_sync(tester, "go")
    calls = of_type(journal, result.stream_id, "ModelCalled")
    assert calls[0].data["new_messages"] == [{"role": "user", "ref": 1}]
    for later in calls[1:]:
        assert len(later.data["new_messages"]) == 1  # one tool result, by reference
        assert later.data["new_messages"][0]["role"] == "tool"
        assert "content" not in later.data["new_messages"][0]
    assert len({c.data["request_fingerprint"] for c in calls}) == len(calls)
    sizes = [len(c.data_json) for c in calls[1:-1]]
    assert max(sizes) - min(sizes) < 40  # flat: never the whole conversation again


def test_large_tool_outputs_are_stored_once_by_content_hash(journal: Journal) -> None:
    model_script: list[Any] = [call("big", size=20_000), call("big", size=20_000), "done"]
    tester = agent(model_script)
    result = runtime(journal, tester).run_sync(tester, "go")
    executed = of_type(journal, result.stream_id, "ToolExecuted")
    refs = {event.data["output_ref"] for event in executed}
    assert len(refs) == 1 and next(iter(refs)).startswith("blob-")
    assert all(event.data["output"] is None for event in executed)
    assert len(journal.streams("blob-")) == 1
    assert journal.stream_version(next(iter(refs))) == 1
    last_request: ModelRequest = tester.model.requests[-1]  # type: ignore[attr-defined]
    assert last_request.messages[-1]["content"] == '"' + "x" * 20_000 + '"'


def test_side_effecting_tools_get_a_deterministic_attempt_independent_key(journal: Journal) -> None:
    script: list[Any] = [call("send_email", recipient="a@yourcompany.com", subject="s", body="b"), "sent"]
    first = runtime(journal, agent(script)).run_sync(agent(script, name="one"), "mail", run_id="key-run")
    assert first.status == "completed"
    key = EFFECTS[0]["key"]
    assert len(key) == 32
    assert key != ""


# ----- seed 001's policy, rule by rule ---------------------------------------------------------


def test_deny_destructive_sql(journal: Journal) -> None:
    tester = agent([call("query_sql", sql="delete from orders"), "could not"], policy=seed_policy())
    result = runtime(journal, tester).run_sync(tester, "clean up")
    decision = of_type(journal, result.stream_id, "PolicyEvaluated")[0].data
    assert (decision["rule"], decision["action"]) == ("deny_destructive_sql", "deny")
    observation = of_type(journal, result.stream_id, "ObservationCaptured")[0].data
    assert observation["error_type"] == "policy_denied"
    assert "ToolExecuted" not in types(journal, result.stream_id)
    assert EFFECTS == []
    assert result.status == "completed"


def test_external_email_waits_for_a_human_and_internal_email_does_not(journal: Journal) -> None:
    script: list[Any] = [
        call("send_email", recipient="me@yourcompany.com", subject="s", body="b"),
        call("send_email", recipient="them@example.org", subject="s", body="b"),
        "sent",
    ]
    tester = agent(script, policy=seed_policy())
    result = runtime(journal, tester).run_sync(tester, "mail")
    decisions = [event.data for event in of_type(journal, result.stream_id, "PolicyEvaluated")]
    assert [d["action"] for d in decisions] == ["allow", "require_human_approval"]
    assert decisions[1]["rule"] == "deny_external_email_without_approval"
    assert result.status == "waiting_approval"
    assert [a.tool for a in result.pending_approvals] == ["send_email"]
    assert [effect["recipient"] for effect in EFFECTS] == ["me@yourcompany.com"]


def test_ticket_creation_is_capped_after_three(journal: Journal) -> None:
    script: list[Any] = [call("create_ticket", title=f"t{n}") for n in range(5)] + ["done"]
    tester = agent(script, policy=seed_policy())
    result = runtime(journal, tester).run_sync(tester, "tickets")
    decisions = [(e.data["action"], e.data["rule"]) for e in of_type(journal, result.stream_id, "PolicyEvaluated")]
    assert decisions[:4] == [("allow", None)] * 4
    assert decisions[4] == ("deny", "cap_ticket_creation_rate")
    assert len([effect for effect in EFFECTS if effect["tool"] == "create_ticket"]) == 4


def test_invalid_arguments_never_reach_the_policy(journal: Journal) -> None:
    tester = agent([call("query_sql", sqll="drop table x"), "oops"], policy=seed_policy())
    result = runtime(journal, tester).run_sync(tester, "go")
    assert "PolicyEvaluated" not in types(journal, result.stream_id)
    assert of_type(journal, result.stream_id, "ObservationCaptured")[0].data["error_type"] == "invalid_arguments"


# ----- failures, limits, cancellation ----------------------------------------------------------


def test_a_hung_tool_times_out_each_try_is_recorded_and_the_run_goes_on(journal: Journal) -> None:
    tester = agent([call("hangs", seconds=30), "the tool is down"])
    result = runtime(journal, tester, max_attempts=2).run_sync(tester, "go")
    failed = [event.data for event in of_type(journal, result.stream_id, "ToolFailed")]
    assert [(f["error_type"], f["attempt"], f["will_retry"]) for f in failed] == [
        ("timeout", 1, True),
        ("timeout", 2, False),
    ]
    assert of_type(journal, result.stream_id, "ObservationCaptured")[0].data["error_type"] == "timeout"
    assert result.output == "the tool is down"


def test_a_raising_tool_is_a_failed_observation_not_a_crash(journal: Journal) -> None:
    tester = agent([call("explodes", reason="no"), "sorry"])
    result = runtime(journal, tester).run_sync(tester, "go")
    failed = of_type(journal, result.stream_id, "ToolFailed")
    assert [(f.data["error_type"], f.data["will_retry"]) for f in failed] == [("ValueError", False)]
    assert "cannot: no" in failed[0].data["error"]
    assert result.status == "completed"


def test_transient_failures_are_retried_with_backoff(journal: Journal) -> None:
    tester = agent([call("flaky", key="k"), "worked"])
    result = runtime(journal, tester, max_attempts=3).run_sync(tester, "go")
    assert [e.data["attempt"] for e in of_type(journal, result.stream_id, "ToolFailed")] == [1, 2]
    executed = of_type(journal, result.stream_id, "ToolExecuted")[0].data
    assert (executed["attempt"], executed["output"]) == (3, "ok after 3 tries")


def test_a_usd_budget_overrun_aborts_with_a_clear_reason(journal: Journal) -> None:
    tester = agent([call("lookup", key=str(n)) for n in range(10)] + ["done"], price=Price(1000.0, 1000.0))
    result = runtime(journal, tester, budget_usd=0.1).run_sync(tester, "go")
    assert result.status == "aborted"
    exceeded = of_type(journal, result.stream_id, "BudgetExceeded")[0].data
    assert exceeded["kind"] == "usd" and exceeded["limit"] == 0.1 and exceeded["spent"] > 0.1
    assert result.reason is not None and result.reason.startswith("budget exceeded: spent $")
    assert types(journal, result.stream_id)[-2:] == ["BudgetExceeded", "RunAborted"]


def test_a_token_budget_is_enforced_too(journal: Journal) -> None:
    tester = agent([call("lookup", key=str(n)) for n in range(50)] + ["done"])
    result = runtime(journal, tester, budget_tokens=300).run_sync(tester, "go")
    assert result.status == "aborted"
    exceeded = of_type(journal, result.stream_id, "BudgetExceeded")[0].data
    assert exceeded["kind"] == "tokens" and exceeded["spent"] > 300


def test_max_steps_aborts_a_run_that_never_answers(journal: Journal) -> None:
    tester = agent(lambda request: call("lookup", key="again"))
    result = runtime(journal, tester, max_steps=3).run_sync(tester, "loop")
    assert result.status == "aborted"
    assert result.reason == "reached the limit of 3 steps without an answer"
    assert len(of_type(journal, result.stream_id, "ModelCalled")) == 3


def test_a_cancelled_task_records_run_cancelled(journal: Journal) -> None:
    tester = agent([call("slow", seconds=30), "never"])
    rt = runtime(journal, tester)

    async def scenario() -> None:
        task = asyncio.create_task(rt.run(tester, "go", run_id="cancel-me"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    state = rt.load("cancel-me")
    assert state.status == "cancelled"
    assert types(journal, "run-cancel-me")[-1] == "RunCancelled"


def test_cancel_from_elsewhere_stops_the_worker_at_its_next_write(journal: Journal) -> None:
    tester = agent([call("slow", seconds=2), "never"])
    rt = runtime(journal, tester)

    async def scenario() -> Any:
        task = asyncio.create_task(rt.run(tester, "go", run_id="cancel-there"))
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(Runtime(journal).cancel, "cancel-there", "operator said so", by="ops")
        return await task

    result = asyncio.run(scenario())
    assert result.status == "cancelled" and result.superseded
    assert result.reason == "operator said so"
    assert types(journal, "run-cancel-there")[-1] == "RunCancelled"
    assert "ToolExecuted" not in types(journal, "run-cancel-there")
    assert not Runtime(journal).cancel("cancel-there")


# ----- durability: crash, resume, races ------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


def test_a_crash_between_steps_then_resume_finishes_the_run_without_redoing_effects(journal: Journal) -> None:
    crashing = {"on": True}

    def script(request: ModelRequest) -> Any:
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        if turn == 0:
            return call("send_email", recipient="a@yourcompany.com", subject="s", body="b")
        if turn == 1 and crashing["on"]:
            raise Crash
        return "sent once"

    tester = agent(script)
    with pytest.raises(Crash):
        runtime(journal, tester).run_sync(tester, "mail", run_id="crashy")
    assert types(journal, "run-crashy")[-1] == "ObservationCaptured"
    crashing["on"] = False
    fresh_runtime = runtime(journal, agent(script))  # a new process would build its agents again
    result = fresh_runtime.resume_sync("crashy")
    assert result.status == "completed" and result.output == "sent once"
    assert len(EFFECTS) == 1
    assert journal.verify().ok


def test_a_crash_after_a_side_effect_re_executes_with_the_same_key(journal: Journal) -> None:
    tester = agent([call("send_email", recipient="a@yourcompany.com", subject="s", body="b"), "done"])
    rt = runtime(journal, tester)
    original = send_email.fn
    keys: list[str] = []

    def effect_then_die(**kwargs: Any) -> Any:
        keys.append(kwargs["idempotency_key"])
        original(**kwargs)
        raise Crash

    send_email.fn = effect_then_die
    try:
        with pytest.raises(Crash):
            rt.run_sync(tester, "mail", run_id="dies-mid-effect")
    finally:
        send_email.fn = original
    assert "ToolExecuted" not in types(journal, "run-dies-mid-effect")
    result = runtime(journal, tester).resume_sync("dies-mid-effect")
    assert result.status == "completed"
    assert len(EFFECTS) == 1 and EFFECTS[0]["key"] == keys[0]


def test_two_workers_racing_on_one_run_only_one_advances_it(journal: Journal) -> None:
    crashing = {"on": True}

    def script(request: ModelRequest) -> Any:
        if crashing["on"]:
            raise Crash
        return call("lookup", key="a") if len(request.messages) == 1 else "answer"

    racer = agent(script, latency_s=0.3, name="racer")
    with pytest.raises(Crash):
        runtime(journal, racer).run_sync(racer, "go", run_id="race")
    crashing["on"] = False

    async def race() -> list[Any]:
        one = Runtime(journal, agents=[agent(script, latency_s=0.3, name="racer")])
        two = Runtime(journal, agents=[agent(script, latency_s=0.3, name="racer")])
        return list(await asyncio.gather(one.resume("race"), two.resume("race")))

    results = asyncio.run(race())
    assert sorted(result.superseded for result in results) == [False, True]
    winner = next(result for result in results if not result.superseded)
    assert winner.status == "completed"
    assert Runtime(journal).load("race").status == "completed"
    assert len(of_type(journal, "run-race", "ModelCalled")) == 2
    assert types(journal, "run-race").count("RunCompleted") == 1
    assert journal.verify().ok


def test_resuming_a_finished_run_changes_nothing(journal: Journal) -> None:
    tester = agent(["done"])
    rt = runtime(journal, tester)
    rt.run_sync(tester, "go", run_id="finished")
    before = journal.stream_version("run-finished")
    assert rt.resume_sync("finished").status == "completed"
    assert journal.stream_version("run-finished") == before


def test_bad_input_is_refused_before_anything_is_stored(journal: Journal) -> None:
    tester = agent(["x"])
    rt = runtime(journal, tester)
    with pytest.raises(RunError, match="non-empty text"):
        rt.run_sync(tester, "   ", run_id="empty")
    assert journal.stream_version("run-empty") == 0
    rt.run_sync(tester, "hello", run_id="twice")
    with pytest.raises(RunError, match="already exists"):
        rt.run_sync(tester, "hello", run_id="twice")
    with pytest.raises(RunError, match="not registered"):
        Runtime(journal).agent("nobody")


def test_handoff_switches_the_active_agent(journal: Journal) -> None:
    model = ScriptedModel([call("transfer_to_second", reason="specialist needed"), call("lookup", key="b"), "done"])
    second = Agent("second", "You are second.", model, tools=[lookup])
    first = Agent("first", "You are first.", model, tools=[], handoffs=[second])
    result = Runtime(journal).run_sync(first, "help")
    handoff = of_type(journal, result.stream_id, "HandoffInitiated")[0].data
    assert (handoff["from_agent"], handoff["to_agent"], handoff["reason"]) == ("first", "second", "specialist needed")
    assert result.state.agent == "second"
    assert of_type(journal, result.stream_id, "ToolProposed")[0].data["agent"] == "second"


def test_an_invalid_plan_is_rejected_and_answered_with_the_fallback(journal: Journal) -> None:
    plan = {"runId": "short", "maxSteps": 50, "budgetUsd": 1, "steps": [], "stopConditions": []}
    planner = Agent("planner", "Plan.", ScriptedModel([{"json": plan}]), tools=[lookup], planner=True)
    result = Runtime(journal).run_sync(planner, "do things")
    rejected = of_type(journal, result.stream_id, "PlanRejected")[0].data
    assert {tuple(error["loc"]) for error in rejected["errors"]} >= {("runId",), ("maxSteps",), ("steps",)}
    assert result.output == planner.fallback_response
    assert result.state.outcome == "fallback"
    assert "ToolProposed" not in types(journal, result.stream_id)


def test_the_suite_blocks_real_model_requests() -> None:
    with pytest.raises(RealModelRequestBlocked, match="switched off"):
        check_real_request("OpenAI")


def test_a_valid_plan_runs_its_steps_through_the_policy_then_answers(journal: Journal) -> None:
    plan = {
        "runId": "plan-0001",
        "maxSteps": 5,
        "budgetUsd": 1,
        "steps": [
            {"id": "a", "objective": "look it up", "tool": "lookup", "input": {"key": "k"}, "successCriteria": "found"},
            {
                "id": "b",
                "objective": "drop the table",
                "tool": "query_sql",
                "input": {"sql": "DROP TABLE t"},
                "successCriteria": "dropped",
            },
        ],
        "stopConditions": ["done"],
    }
    planner = agent([{"json": plan}, "k is known; the drop was refused"], policy=seed_policy(), name="planner")
    planner.planner = True
    result = runtime(journal, planner).run_sync(planner, "plan it")
    kinds = types(journal, result.stream_id)
    assert kinds[:3] == ["RunStarted", "ModelCalled", "PlanGenerated"]
    proposed = [(e.data["call_id"], e.data["tool"]) for e in of_type(journal, result.stream_id, "ToolProposed")]
    assert proposed == [("plan-a", "lookup"), ("plan-b", "query_sql")]
    decisions = [e.data["action"] for e in of_type(journal, result.stream_id, "PolicyEvaluated")]
    assert decisions == ["allow", "deny"]
    assert result.output == "k is known; the drop was refused"
    final_request: ModelRequest = planner.model.requests[-1]  # type: ignore[attr-defined]
    assert final_request.tools == []  # the synthesis call answers; it does not call tools
    assert [m["role"] for m in final_request.messages] == ["user", "assistant", "tool", "tool"]


def test_a_model_that_does_not_answer_in_time_aborts_the_run(journal: Journal) -> None:
    tester = agent(["never seen"], latency_s=5)
    result = runtime(journal, tester, model_timeout_s=0.1, max_attempts=2).run_sync(tester, "hello?")
    assert result.status == "aborted"
    assert result.reason == "the model call at step 1 failed: scripted: no reply within 0.1 s (after 2 attempts)"


def test_the_runtime_works_on_the_memory_backend() -> None:
    fresh_effects()
    with Journal.open("memory://") as journal:
        tester = agent([call("big", size=10_000), call("lookup", key="a"), "done"])
        result = runtime(journal, tester).run_sync(tester, "go")
        assert result.status == "completed"
        assert Runtime(journal).load(result.run_id).final_response == "done"


def test_every_run_event_type_has_an_explainer() -> None:
    assert {model.__name__ for model in RUN_EVENTS} <= set(explainers.registered())


def test_a_model_that_reuses_a_tool_call_id_aborts_the_run_clearly(journal: Journal) -> None:
    same = {"tool": "lookup", "id": "c1", "arguments": {"key": "a"}}
    tester = agent([same, same, "never"])
    result = runtime(journal, tester).run_sync(tester, "go")
    assert result.status == "aborted"
    assert result.reason == "the model reused tool call id(s) c1 at step 2"


def test_a_handoff_to_an_unknown_agent_aborts_the_run_clearly(journal: Journal) -> None:
    model = ScriptedModel([call("transfer_to_ghost", reason="why not")])
    first = Agent("first", "You are first.", model, tools=[], handoffs=["ghost"])
    result = Runtime(journal).run_sync(first, "help")
    assert result.status == "aborted"
    assert result.reason == "first handed off to 'ghost', which this runtime does not know (known: first)"
