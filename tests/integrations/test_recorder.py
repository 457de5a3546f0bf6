"""The recorder: a hand-written loop's run lands in the contract, and every reader reads it as a run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agentjournal.agents import Policy, approve
from agentjournal.forensics import causes, explainers
from agentjournal.integrations import RecordedRun, RecorderError, RunRecorder, current_run, journaled
from agentjournal.journal import InvalidEventError, Journal, JournalClosedError, JournalConnectionError
from agentjournal.model import Repository
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState, aggregate_for

from ._forensics import assert_forensics

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
    assert_forensics(journal, run.run_id, question=ASK["content"])


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
    assert assert_forensics(journal, "held", question=ASK["content"]).metrics.denials == 1


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


# ----- what is written when: a step in one transaction, durable points at once ------------------------

MODEL = "claude-sonnet-4-5"
STEP = ["ToolProposed", "PolicyEvaluated", "ToolExecuted", "ObservationCaptured"]
"""What a read-only call adds to a run under a policy, written with the model's next reply."""


class Appends:
    """The event types of every append the journal made (one transaction each): `journal.append` wrapped,
    so what is counted is transactions, not events; `fail_with` makes the next appends raise it."""

    def __init__(self, journal: Journal) -> None:
        self.batches: list[list[str]] = []
        self.fail_with: Exception | None = None
        original = journal.append

        def append(stream_id: str, events: Any, *args: Any, **kwargs: Any) -> Any:
            if self.fail_with is not None:
                raise self.fail_with
            result = original(stream_id, events, *args, **kwargs)
            self.batches.append([event.type for event in events])
            return result

        journal.append = append  # type: ignore[method-assign]


def lookup(step: int) -> dict[str, Any]:
    return {"id": f"toolu_{step}", "name": "lookup_order", "arguments": {"order_id": f"ORD-{step}"}}


def read_only_step(run: RecordedRun, step: int) -> str:
    """The model asks for a lookup, the policy lets it run, it returns: the loop's part of one step."""
    run.model_call(model=MODEL, messages=[ASK], tool_calls=[lookup(step)], input_tokens=10, output_tokens=5)
    decision = run.tool_call("lookup_order", {"order_id": f"ORD-{step}"})
    assert decision.allowed
    run.tool_result(decision.call_id, {"order_id": f"ORD-{step}", "status": "delivered"})
    return decision.call_id


def types_in(journal: Journal, stream_id: str) -> list[str]:
    return [event.type for event in journal.read_stream(stream_id)]


def types_another_process_sees(url: str, stream_id: str) -> list[str]:
    code = (
        "import json, sys\n"
        "from agentjournal import Journal\n"
        "with Journal.open(sys.argv[1]) as journal:\n"
        "    print(json.dumps([event.type for event in journal.read_stream(sys.argv[2])]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url, stream_id], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    types: list[str] = json.loads(done.stdout)
    return types


def test_a_read_only_step_is_one_transaction_and_reads_see_what_is_buffered(journal: Journal) -> None:
    appends = Appends(journal)
    recorder = RunRecorder(journal, policy=POLICY)
    with recorder.start(agent="refunds", input=ASK["content"], model=MODEL) as run:
        for step in (1, 2, 3):
            call_id = read_only_step(run, step)
            # the recorder's reads see the step at once; the journal gets it with the next reply
            assert run.state.calls[call_id].status == "executed" and run.decision(call_id).allowed
            assert run.state.metrics.tool_calls == step
            assert journal.stream_version(run.stream_id) == run.state.version - len(STEP)
        run.model_call(model=MODEL, messages=[ASK], text="All three are delivered.")
        run.complete("All three are delivered.")
    assert appends.batches == [
        ["RunStarted"],
        ["ModelCalled"],  # a reply is written before the loop can act on it
        [*STEP, "ModelCalled"],
        [*STEP, "ModelCalled"],
        [*STEP, "ModelCalled"],
        ["ResponseDrafted", "ResponseFinalized", "RunCompleted"],
    ]
    stored = Repository(journal, RunState).load(run.stream_id)
    assert stored.version == run.state.version and stored.last_event_id == run.state.last_event_id
    assert stored.calls == run.state.calls and stored.messages == run.state.messages  # folded as stored
    assert stored.metrics == run.state.metrics
    assert journal.verify().ok


def test_a_run_of_tool_calls_alone_writes_each_call_once_it_has_its_outcome(journal: Journal) -> None:
    appends = Appends(journal)
    run = RunRecorder(journal, policy=POLICY).start(agent="refunds", input=ASK["content"])
    run.tool_call("lookup_order", {"order_id": "ORD-5521"}, call_id="c1")
    assert types_in(journal, run.stream_id) == ["RunStarted"]  # no model reply will carry it: its outcome does
    run.tool_result("c1", {"status": "delivered"})
    assert run.tool_call("delete_order", {"order_id": "ORD-5521"}).action == "deny"  # a denial is an outcome
    assert appends.batches == [["RunStarted"], STEP, ["ToolProposed", "PolicyEvaluated", "ObservationCaptured"]]


def test_a_claim_is_durable_before_its_tool_runs_and_the_effect_is_written_when_it_returns(
    journal: Journal, sqlite_or_postgres_url: str
) -> None:
    seen: dict[str, list[str]] = {}

    @journaled(side_effecting=True)
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Issue a refund."""
        with Journal.open(sqlite_or_postgres_url) as elsewhere:  # another connection: what others can see
            seen["refund"] = types_in(elsewhere, run.stream_id)
        return {"refund_id": "REF-1", "amount": amount}

    @journaled
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look an order up."""
        with Journal.open(sqlite_or_postgres_url) as elsewhere:
            seen["lookup"] = types_in(elsewhere, run.stream_id)
        return {"order_id": order_id, "amount": 89.99}

    appends = Appends(journal)
    recorder = RunRecorder(journal, policy=POLICY)
    with recorder.start(agent="refunds", input=ASK["content"], model=MODEL) as run:
        run.model_call(model=MODEL, messages=[ASK], tool_calls=[lookup(1)])
        lookup_order(order_id="ORD-1")
        refund = {"id": "toolu_2", "name": "issue_refund", "arguments": {"order_id": "ORD-1", "amount": 20.0}}
        run.model_call(model=MODEL, messages=[ASK], tool_calls=[refund])
        issue_refund(order_id="ORD-1", amount=20.0)
        assert types_in(journal, run.stream_id)[-2:] == ["ToolExecuted", "ObservationCaptured"]  # at once
        run.model_call(model=MODEL, messages=[ASK], text="Refunded.")
        run.complete("Refunded.")
    assert seen["lookup"] == ["RunStarted", "ModelCalled"]  # a read-only call runs before its record is written
    assert seen["refund"] == [
        "RunStarted",
        "ModelCalled",
        *STEP,
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ToolClaimed",
    ]
    assert appends.batches[3:5] == [
        ["ToolProposed", "PolicyEvaluated", "ToolClaimed"],
        ["ToolExecuted", "ObservationCaptured"],
    ]
    assert len(appends.batches) == 7


def test_what_is_buffered_is_written_when_the_loop_fails_or_is_interrupted(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    with pytest.raises(RuntimeError, match="broke"), recorder.start(agent="a", input="hi", run_id="fails") as run:
        read_only_step(run, 1)
        assert types_in(journal, run.stream_id) == ["RunStarted", "ModelCalled"]
        raise RuntimeError("the loop broke")
    assert types_in(journal, "run-fails") == ["RunStarted", "ModelCalled", *STEP, "RunAborted"]

    with pytest.raises(KeyboardInterrupt), recorder.start(agent="a", input="hi", run_id="interrupted") as run:
        read_only_step(run, 1)
        raise KeyboardInterrupt
    assert types_in(journal, "run-interrupted") == ["RunStarted", "ModelCalled", *STEP]  # written, not ended


def test_another_process_sees_what_is_buffered_once_it_is_flushed(
    journal: Journal, sqlite_or_postgres_url: str
) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    run = recorder.start(agent="refunds", input=ASK["content"], model=MODEL, run_id="flushed")
    read_only_step(run, 1)
    assert types_another_process_sees(sqlite_or_postgres_url, run.stream_id) == ["RunStarted", "ModelCalled"]
    run.flush()
    assert types_another_process_sees(sqlite_or_postgres_url, run.stream_id) == ["RunStarted", "ModelCalled", *STEP]
    run.flush()  # nothing buffered: nothing written
    read_only_step(run, 2)
    with run.active():
        pass  # leaving active() keeps the buffer for the run's next write
    assert run.refresh() is run.state  # refresh writes first, then catches up
    assert types_in(journal, run.stream_id) == ["RunStarted", "ModelCalled", *STEP, "ModelCalled", *STEP]


def test_another_writer_still_stops_a_run_and_what_was_buffered_is_not_written(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    run = recorder.start(agent="refunds", input=ASK["content"], model=MODEL, run_id="contested")
    read_only_step(run, 1)
    written = journal.stream_version(run.stream_id)
    other = RunRecorder(journal).resume("contested")  # another process goes on with the run
    other.model_call(model=MODEL, messages=[ASK], text="Mine now.")
    unwritten = ", ".join([*STEP, "ModelCalled"])
    with pytest.raises(RecorderError, match=f"another writer moved it .*not written: {unwritten}; resume it"):
        run.model_call(model=MODEL, messages=[ASK], text="Still mine?")
    assert run.state.version == written and "toolu_1" not in run.state.calls  # the run as this process wrote it
    with pytest.raises(RecorderError, match="another writer moved it"):
        run.complete("too late")
    other.complete("Mine now.")
    assert types_in(journal, run.stream_id)[-4:] == [
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]

    stale = RunRecorder(journal, policy=POLICY).start(agent="a", input="x", run_id="closed-meanwhile")
    read_only_step(stale, 1)
    RunRecorder(journal).resume("closed-meanwhile").abort("stopped by another process")
    with pytest.raises(RecorderError, match=r"has already finished; nothing more can be recorded \(not written: Tool"):
        stale.flush()


def test_a_decision_appended_meanwhile_is_taken_in_before_the_record_that_follows_it(journal: Journal) -> None:
    appends = Appends(journal)
    run = RunRecorder(journal, policy=POLICY).start(agent="refunds", input=ASK["content"], run_id="decided")
    held = run.tool_call("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, call_id="c1")
    assert held.approval_id is not None
    assert types_in(journal, run.stream_id)[-1] == "ApprovalRequested"  # a hold is written at once
    approve(journal, held.approval_id, by="alice", reason="ok")
    run.tool_call("lookup_order", {"order_id": "ORD-5521"}, call_id="c2")  # written at once while a call waits
    assert run.decision("c1").reason == "approved by alice: ok"
    assert types_in(journal, run.stream_id)[-3:] == ["ToolApproved", "ToolProposed", "PolicyEvaluated"]
    stored = Repository(journal, RunState).load(run.stream_id)
    assert (stored.version, stored.calls, stored.approvals) == (run.state.version, run.state.calls, run.state.approvals)
    assert appends.batches[-1] == ["ToolProposed", "PolicyEvaluated"]


def test_a_write_that_fails_keeps_its_events_and_one_the_journal_refuses_drops_them(journal: Journal) -> None:
    appends = Appends(journal)
    run = RunRecorder(journal, policy=POLICY).start(agent="refunds", input=ASK["content"], model=MODEL)
    read_only_step(run, 1)
    appends.fail_with = JournalConnectionError("the database is down")
    with pytest.raises(JournalConnectionError):
        run.model_call(model=MODEL, messages=[ASK], tool_calls=[lookup(2)])  # the reply is not returned unrecorded
    appends.fail_with = None
    run.complete("Delivered.")  # the journal is back: what failed is written with it
    assert appends.batches[-1] == [*STEP, "ModelCalled", "ResponseDrafted", "ResponseFinalized", "RunCompleted"]

    run = RunRecorder(journal, policy=POLICY).start(agent="refunds", input=ASK["content"], model=MODEL)
    run.model_call(model=MODEL, messages=[ASK], tool_calls=[lookup(1)])
    run.tool_call("lookup_order", {"order_id": "ORD-1"})
    run.tool_result("toolu_1", "x" * journal.max_payload_bytes)  # more than the journal takes
    with pytest.raises(InvalidEventError, match="the limit is") as refused:
        run.model_call(model=MODEL, messages=[ASK], text="Done.")
    assert "not written: " + ", ".join([*STEP, "ModelCalled"]) in "\n".join(refused.value.__notes__)
    assert run.state.version == journal.stream_version(run.stream_id) == 2  # as last written
    run.abort("the lookup's answer was too large to record")
    assert types_in(journal, run.stream_id) == ["RunStarted", "ModelCalled", "RunAborted"]


def test_a_closed_journal_is_refused_at_once_not_buffered(sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        run = RunRecorder(journal, policy=POLICY).start(agent="refunds", input=ASK["content"], model=MODEL)
        run.model_call(model=MODEL, messages=[ASK], tool_calls=[lookup(1)])
    with pytest.raises(JournalClosedError):
        run.tool_call("lookup_order", {"order_id": "ORD-1"})  # it could never be written: the tool must not run
    assert "toolu_1" not in run.state.calls


def test_a_recorder_that_does_not_buffer_writes_every_record_at_once(journal: Journal) -> None:
    appends = Appends(journal)
    with RunRecorder(journal, policy=POLICY, buffer=False).start(agent="a", input=ASK["content"]) as run:
        read_only_step(run, 1)
        run.complete("Delivered.")
    assert appends.batches == [
        ["RunStarted"],
        ["ModelCalled"],
        ["ToolProposed", "PolicyEvaluated"],
        ["ToolExecuted", "ObservationCaptured"],
        ["ResponseDrafted", "ResponseFinalized", "RunCompleted"],
    ]
