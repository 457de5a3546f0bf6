"""The recorder: a hand-written loop's run lands in the contract, and every reader reads it as a run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentjournal.agents import Policy, approve
from agentjournal.forensics import causes, explainers
from agentjournal.integrations import RecorderError, RunRecorder, current_run
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState, aggregate_for

POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
""",
    source="recorder-policy",
)
ASK = {"role": "user", "content": "I want a refund for ORD-5521"}


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def test_a_hand_written_loop_is_a_run_every_reader_understands(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    with recorder.start(agent="refunds", input=ASK["content"], model="claude-sonnet-4-5", user_id="u-7") as run:
        assert current_run() is run
        lookup = {"id": "toolu_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
        run.model_call(
            model="claude-sonnet-4-5", messages=[ASK], tool_calls=[lookup], input_tokens=120, output_tokens=30
        )
        decision = run.tool_call("lookup_order", {"order_id": "ORD-5521"})  # the id comes from the model's reply
        assert (decision.call_id, decision.action) == ("toolu_1", "allow")
        run.tool_result("toolu_1", {"status": "delivered", "amount": 89.99}, latency_ms=12.0)
        run.model_call(
            model="claude-sonnet-4-5", messages=[ASK, {"role": "assistant", "content": "..."}], text="Refunded."
        )
        run.complete("Refunded.")
    assert current_run() is None
    events = journal.read_stream(run.stream_id)
    assert [event.type for event in events] == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    assert aggregate_for(journal, run.stream_id) is RunState
    state = Repository(journal, RunState).load_at_version(run.stream_id, 5)
    assert state.calls["toolu_1"].output == {"status": "delivered", "amount": 89.99}
    assert state.metrics.cost_usd > 0  # priced from the table
    chain = causes(journal, events[-2].event_id)
    assert chain.root.type == "RunStarted"
    assert all("explainer_error" not in explainers.explain(event).tags for event in events)
    assert journal.verify().ok
    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    [row] = list_runs(journal)
    assert (row.run_id, row.status, row.user_id) == (run.run_id, "completed", "u-7")


def test_the_policy_denies_or_holds_a_call_and_a_human_decides_in_another_process(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    run = recorder.start(agent="refunds", input=ASK["content"], run_id="held")
    denied = run.tool_call("delete_order", {"order_id": "ORD-5521"})
    assert (denied.action, denied.rule) == ("deny", "no_deletes")
    held = run.tool_call("issue_refund", {"order_id": "ORD-5521", "amount": 44.99})
    assert held.action == "require_human_approval" and held.approval_id
    assert approve(journal, held.approval_id, by="alice", reason="ok").status == "approved"
    later = RunRecorder(journal, policy=POLICY).resume("held")  # e.g. the loop restarted
    assert later.decision(held.call_id).allowed
    key = later.claim(held.call_id)
    with pytest.raises(RecorderError, match="another writer moved it"):
        run.claim(held.call_id)  # the first process's view is stale: it cannot claim the call too
    later.tool_result(held.call_id, {"refund_id": "REF-1", "key": key})
    later.complete("Refunded.")
    with pytest.raises(RecorderError, match="has already completed"):
        later.abort("too late")


def test_an_exception_in_the_loop_aborts_the_run_with_the_reason(journal: Journal) -> None:
    recorder = RunRecorder(journal)
    with pytest.raises(ValueError, match="boom"), recorder.start(agent="a", input="hi", run_id="breaks") as run:
        raise ValueError("boom")
    state = Repository(journal, RunState).load(run.stream_id)
    assert (state.status, state.reason) == ("aborted", "the loop failed: ValueError: boom")
    with pytest.raises(RecorderError, match="already exists"):
        recorder.start(agent="a", input="hi", run_id="breaks")
    with pytest.raises(RecorderError, match="non-empty text"):
        recorder.start(agent="a", input=" ")
    with pytest.raises(RecorderError, match="no tool call 'nope'"):
        recorder.start(agent="a", input="x").tool_result("nope", 1)


def test_the_ambient_context_a_decision_made_meanwhile_and_waiting_for_one(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    with journal.context(correlation_id="req-42", tenant_id="acme"):
        run = recorder.start(agent="refunds", input=ASK["content"], run_id="ambient")
    held = run.tool_call("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, call_id="c1")
    assert held.approval_id is not None
    assert run.wait_for_decision("c1", timeout_s=0.05, poll_s=0.01).action == "require_human_approval"
    approve(journal, held.approval_id, by="alice", reason="ok")  # another process, while the loop goes on
    run.tool_call("lookup_order", {"order_id": "ORD-5521"}, call_id="c2")  # the decision is taken in first
    assert run.decision("c1").reason == "approved by alice: ok"
    run.claim("c1")
    run.tool_result("c1", {"refund_id": "REF-1"})
    run.refuse_call("lookup_order", {"order": 1}, error_type="invalid_arguments", error="order_id: missing")
    run.complete("Refunded.")
    events = journal.read_stream(run.stream_id)
    assert {(e.correlation_id, e.tenant_id) for e in events} == {("req-42", "acme")}
    assert Repository(journal, RunState).load(run.stream_id).metrics.approvals == 1
    assert journal.verify().ok
