"""OpenTelemetry: runs, model calls and tool calls as GenAI spans, stitched across processes by traceparent.

Tested with the SDK's TracerProvider and InMemorySpanExporter, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentjournal.agents import Policy, Runtime, approve, call
from agentjournal.forensics import causes
from agentjournal.integrations import RunRecorder
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.queries import list_runs
from agentjournal.runs import tracing

from ._traced import DROP, LOOKUP, as_dict, global_provider, in_memory_spans, traced_agent, waiting_agent

OPERATION = "gen_ai.operation.name"


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def ids(traceparent: str | None) -> tuple[str, str]:
    """(trace id, span id) of a W3C traceparent."""
    assert traceparent is not None
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def of_operation(spans: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [span for span in spans if span["attributes"].get(OPERATION) == operation]


def event_names(span: dict[str, Any]) -> list[str]:
    return [event["name"] for event in span["events"]]


# ----- the runtime ---------------------------------------------------------------------------


def test_a_run_is_one_trace_of_genai_spans_and_each_event_names_the_span_that_wrote_it(journal: Journal) -> None:
    with in_memory_spans() as exporter:
        agent = traced_agent(LOOKUP, DROP, "ORD-1 is fine; I did not drop anything.")
        result = Runtime(journal, agents=[agent]).run_sync(agent, "check ORD-1", run_id="traced")
    assert result.status == "completed"
    spans = [as_dict(span) for span in exporter.get_finished_spans()]
    [run] = of_operation(spans, "invoke_agent")
    assert run["name"] == "invoke_agent tester" and run["kind"] == "INTERNAL" and run["parent_id"] is None
    assert run["attributes"]["gen_ai.agent.name"] == "tester"
    assert run["attributes"]["gen_ai.conversation.id"] == "traced"
    assert run["attributes"]["gen_ai.request.model"] == "scripted"
    assert run["attributes"]["agentjournal.run.status"] == "completed"
    assert {span["trace_id"] for span in spans} == {run["trace_id"]}

    chats = of_operation(spans, "chat")
    assert len(chats) == 3
    called = [event for event in journal.read_stream("run-traced") if event.type == "ModelCalled"]
    for chat, event in zip(sorted(chats, key=lambda s: s["start"]), called, strict=True):
        assert chat["name"] == "chat scripted" and chat["kind"] == "CLIENT" and chat["parent_id"] == run["span_id"]
        attributes = chat["attributes"]
        assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == "scripted"
        assert attributes["gen_ai.provider.name"] == "_OTHER"
        assert attributes["gen_ai.usage.input_tokens"] == event.data["input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] == event.data["output_tokens"] > 0
        assert ids(event.traceparent) == (chat["trace_id"], chat["span_id"])

    [executed] = of_operation(spans, "execute_tool")  # the denied query never ran
    events = journal.read_stream("run-traced")
    proposed = {event.data["tool"]: event.data["call_id"] for event in events if event.type == "ToolProposed"}
    assert executed["name"] == "execute_tool lookup" and executed["parent_id"] == run["span_id"]
    assert executed["attributes"]["gen_ai.tool.name"] == "lookup"
    assert executed["attributes"]["gen_ai.tool.call.id"] == proposed["lookup"]
    assert executed["attributes"]["gen_ai.tool.type"] == "function"
    assert executed["attributes"]["agentjournal.policy.action"] == "allow"

    decisions = [event["attributes"] for event in run["events"] if event["name"] == "agentjournal.policy.decision"]
    assert [(d["gen_ai.tool.name"], d["agentjournal.policy.action"]) for d in decisions] == [
        ("lookup", "allow"),
        ("query_sql", "deny"),
    ]
    assert decisions[1]["agentjournal.policy.rule"] == "deny_destructive_sql"
    assert decisions[1]["gen_ai.tool.call.id"] == proposed["query_sql"]

    by_id = {span["span_id"]: span for span in spans}
    last_chat = max(chats, key=lambda s: s["start"])
    for event in journal.read_stream("run-traced"):
        trace_id, span_id = ids(event.traceparent)
        writer = by_id[span_id]
        assert trace_id == run["trace_id"]
        if event.type == "ModelCalled":
            assert writer["attributes"]["agentjournal.run.step"] == event.data["step"]
        elif event.type in ("ResponseDrafted", "ResponseFinalized", "RunCompleted"):
            assert writer is last_chat  # the last reply's handling drafts the answer and ends the run
        elif event.type in ("ToolExecuted", "ObservationCaptured") and event.data["call_id"] == proposed["lookup"]:
            assert writer is executed, event.type
        else:  # RunStarted, ToolProposed, PolicyEvaluated, the denied call's observation
            assert writer is run, event.type
    assert journal.verify().ok


def test_failures_mark_their_spans(journal: Journal) -> None:
    with in_memory_spans() as exporter:
        agent = traced_agent(call("explodes", reason="no"))  # then the script has no reply: the model fails
        result = Runtime(journal, agents=[agent]).run_sync(agent, "try", run_id="failing")
        spans = [as_dict(span) for span in exporter.get_finished_spans()]
    assert result.status == "aborted"
    [tool] = of_operation(spans, "execute_tool")
    assert (tool["status"], tool["attributes"]["error.type"]) == ("ERROR", "ValueError")
    failed_chat = of_operation(spans, "chat")[-1]
    assert (failed_chat["status"], failed_chat["attributes"]["error.type"]) == ("ERROR", "ModelError")
    [run] = of_operation(spans, "invoke_agent")
    assert (run["status"], run["attributes"]["error.type"]) == ("ERROR", "run_aborted")
    assert run["attributes"]["agentjournal.run.status"] == "aborted"


def test_a_run_resumed_in_another_process_continues_its_trace(journal: Journal, sqlite_or_postgres_url: str) -> None:
    with in_memory_spans() as exporter:
        agent = waiting_agent()
        held = Runtime(journal, agents=[agent]).run_sync(agent, "tell the partner", run_id="held")
    assert held.status == "waiting_approval"
    [first] = of_operation([as_dict(span) for span in exporter.get_finished_spans()], "invoke_agent")
    assert first["attributes"]["agentjournal.run.status"] == "waiting_approval"
    assert "agentjournal.approval.requested" in event_names(first)
    approval = held.pending_approvals[0]
    approve(journal, approval.approval_id, by="alice", reason="known partner", arguments_hash=approval.arguments_hash)
    started = journal.read_stream("run-held")[0]
    assert ids(started.traceparent) == (first["trace_id"], first["span_id"])
    decided_at = journal.read_stream("run-held")[-1].version

    child = subprocess.run(
        [sys.executable, "-c", RESUME_IN_A_CHILD, sqlite_or_postgres_url, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    resumed = json.loads(child.stdout.strip().splitlines()[-1])
    assert resumed["status"] == "completed"
    spans = resumed["spans"]
    assert {span["trace_id"] for span in spans} == {first["trace_id"]}  # one trace, across the two processes
    [again] = of_operation(spans, "invoke_agent")
    assert again["parent_id"] == first["span_id"]  # a child of the span that wrote RunStarted
    assert again["attributes"]["agentjournal.run.resumed"] is True
    assert again["attributes"]["agentjournal.run.status"] == "completed"
    [decided] = [event["attributes"] for event in again["events"] if event["name"] == "agentjournal.approval.decided"]
    assert (decided["agentjournal.approval.by"], decided["agentjournal.approval.status"]) == ("alice", "approved")
    [sent] = of_operation(spans, "execute_tool")
    assert sent["name"] == "execute_tool send_email" and sent["parent_id"] == again["span_id"]
    assert sent["attributes"]["agentjournal.approval.by"] == "alice"
    assert sent["attributes"]["agentjournal.policy.rule"] == "deny_external_email_without_approval"
    assert "agentjournal.tool.claimed" in event_names(sent)
    written = {span["span_id"] for span in spans}
    later = journal.read_stream("run-held", decided_at + 1)
    assert [event.type for event in later][:3] == ["ToolClaimed", "ToolExecuted", "ObservationCaptured"]
    for event in later:  # what the child wrote names the child's spans, in the run's trace
        trace_id, span_id = ids(event.traceparent)
        assert trace_id == first["trace_id"] and span_id in written


RESUME_IN_A_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])
from _traced import as_dict, in_memory_spans, waiting_agent
from agentjournal.agents import Runtime
from agentjournal.journal import Journal

with in_memory_spans() as exporter, Journal.open(sys.argv[1]) as journal:
    agent = waiting_agent()
    result = Runtime(journal, agents=[agent]).resume_sync("held")
    spans = [as_dict(span) for span in exporter.get_finished_spans()]
print(json.dumps({"status": result.status, "spans": spans}))
"""


# ----- projections ---------------------------------------------------------------------------


def test_a_projection_applying_a_run_continues_its_trace(journal: Journal) -> None:
    with in_memory_spans() as exporter:
        agent = traced_agent(LOOKUP, "found")
        Runtime(journal, agents=[agent]).run_sync(agent, "look it up", run_id="one")
        events = journal.read_stream("run-one")
        last = events[-1]
        exporter.clear()
        for projection in builtin_projections():
            ProjectionRunner(journal, projection).catch_up()
        spans = [as_dict(span) for span in exporter.get_finished_spans()]
    types = {event.type for event in events}
    applying = [p for p in builtin_projections() if not p.event_types or types & set(p.event_types)]
    assert "evaluations" not in {p.name for p in applying}  # it reads evaluation streams only
    assert sorted(span["name"] for span in spans) == sorted(f"projection {p.name}" for p in applying)
    trace_id, span_id = ids(last.traceparent)
    runs = next(span for span in spans if span["name"] == "projection runs")
    assert (runs["trace_id"], runs["parent_id"], runs["kind"]) == (trace_id, span_id, "CONSUMER")
    assert runs["attributes"]["agentjournal.projection.name"] == "runs"
    assert runs["attributes"]["agentjournal.projection.traces"] == 1
    assert [row.run_id for row in list_runs(journal)] == ["one"]


def test_a_batch_of_several_traces_is_linked_to_each_and_each_trace_shows_it(journal: Journal) -> None:
    with in_memory_spans() as exporter:
        for run_id in ("a", "b"):
            agent = traced_agent("hello")
            Runtime(journal, agents=[agent]).run_sync(agent, "hi", run_id=run_id)
        lasts = {run_id: ids(journal.read_stream(f"run-{run_id}")[-1].traceparent) for run_id in ("a", "b")}
        exporter.clear()
        [runs] = [p for p in builtin_projections() if p.name == "runs"]
        ProjectionRunner(journal, runs).catch_up()
        spans = [as_dict(span) for span in exporter.get_finished_spans()]
    [batch] = [span for span in spans if span["parent_id"] is None]
    assert batch["attributes"]["agentjournal.projection.traces"] == 2
    assert sorted(link.split("-")[0] for link in batch["links"]) == sorted(t for t, _ in lasts.values())
    parts = [span for span in spans if span is not batch]
    assert sorted((span["trace_id"], span["parent_id"]) for span in parts) == sorted(lasts.values())
    for part in parts:
        assert part["links"] == [f"{batch['trace_id']}-{batch['span_id']}"]
        assert (part["start"], part["end"]) == (batch["start"], batch["end"])


# ----- the recorder --------------------------------------------------------------------------

POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
""",
    source="tracing-policy",
)


def test_a_recorded_run_gets_spans_and_its_resume_continues_the_trace(journal: Journal) -> None:
    ask = {"role": "user", "content": "I want a refund for ORD-5521"}
    lookup = {"id": "toolu_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    with in_memory_spans() as exporter:
        recorder = RunRecorder(journal, policy=POLICY)
        with recorder.start(agent="refunds", input=ask["content"], model="claude-sonnet-4-5") as run:
            run.model_call(
                model="claude-sonnet-4-5",
                messages=[ask],
                tool_calls=[lookup],
                input_tokens=120,
                output_tokens=30,
                latency_ms=250.0,
            )
            run.tool_call("lookup_order", {"order_id": "ORD-5521"})
            run.tool_result("toolu_1", {"status": "delivered", "amount": 89.99}, latency_ms=12.0)
            held = run.tool_call("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, call_id="toolu_2")
        assert held.action == "require_human_approval" and held.approval_id is not None
        approve(journal, held.approval_id, by="alice", reason="ok")
        with recorder.resume(run.run_id) as again:
            assert again.decision("toolu_2").allowed
            again.tool_result("toolu_2", {"refund_id": "REF-1"}, latency_ms=5.0)
            again.complete("Refunded.")
        # `approve` catches up the approvals' read models: those are projection spans, left out here
        spans = [as_dict(span) for span in exporter.get_finished_spans() if not span.name.startswith("projection")]
    first, second = sorted(of_operation(spans, "invoke_agent"), key=lambda s: s["start"])
    assert first["name"] == "invoke_agent refunds"
    assert first["attributes"]["agentjournal.run.status"] == "waiting_approval"
    assert second["parent_id"] == first["span_id"] and second["attributes"]["agentjournal.run.resumed"] is True
    assert second["attributes"]["agentjournal.run.status"] == "completed"
    assert {span["trace_id"] for span in spans} == {first["trace_id"]}
    assert event_names(first) == ["agentjournal.policy.decision"] * 2 + ["agentjournal.approval.requested"]
    assert "agentjournal.approval.decided" in event_names(second)

    [chat] = of_operation(spans, "chat")
    assert chat["parent_id"] == first["span_id"]
    assert chat["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == 120
    assert chat["end"] - chat["start"] == 250_000_000  # timed back from the latency the loop reported
    tools = {span["attributes"]["gen_ai.tool.call.id"]: span for span in of_operation(spans, "execute_tool")}
    assert tools["toolu_1"]["end"] - tools["toolu_1"]["start"] == 12_000_000
    assert tools["toolu_1"]["parent_id"] == first["span_id"]
    assert tools["toolu_2"]["parent_id"] == second["span_id"]
    assert tools["toolu_2"]["attributes"]["agentjournal.approval.by"] == "alice"

    by_id = {span["span_id"]: span for span in spans}
    for event in journal.read_stream(run.stream_id):
        if event.type == "ToolApproved":  # appended by `approve`, outside any span
            assert event.traceparent is None
            continue
        writer = by_id[ids(event.traceparent)[1]]
        expected = {"ModelCalled": "chat", "ToolExecuted": "execute_tool"}.get(event.type, "invoke_agent")
        assert writer["attributes"][OPERATION] == expected, event.type
    assert causes(journal, journal.read_stream(run.stream_id)[-2].event_id).root.type == "RunStarted"
    assert journal.verify().ok


# ----- off -----------------------------------------------------------------------------------


def test_with_no_tracer_provider_no_span_is_made_and_everything_works(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_spans() -> Any:
        raise AssertionError("a span was made with no tracer provider configured")

    monkeypatch.setattr(tracing, "tracer", no_spans)
    with global_provider(None):
        assert not tracing.enabled()
        agent = waiting_agent()
        runtime = Runtime(journal, agents=[agent])
        held = runtime.run_sync(agent, "tell the partner", run_id="quiet")
        approve(journal, held.pending_approvals[0].approval_id, by="alice", reason="ok")
        assert runtime.resume_sync("quiet").status == "completed"
        with RunRecorder(journal, policy=POLICY).start(agent="refunds", input="refund ORD-1") as run:
            run.model_call(model="claude-sonnet-4-5", text="Done.", input_tokens=3, output_tokens=1)
            run.complete("Done.")
        for projection in builtin_projections():
            ProjectionRunner(journal, projection).catch_up()
    events: list[RecordedEvent] = journal.read_all(limit=1000)
    assert events and all(event.traceparent is None for event in events)
    assert sorted(row.run_id for row in list_runs(journal)) == sorted(["quiet", run.run_id])


def test_a_run_started_inside_a_span_is_its_child() -> None:
    with in_memory_spans() as exporter, Journal.open("memory://") as journal:
        outer = tracing.tracer().start_span("request")
        with tracing.activate(outer):
            agent = traced_agent("hello")
            Runtime(journal, agents=[agent]).run_sync(agent, "hi", run_id="nested")
        spans = [as_dict(span) for span in exporter.get_finished_spans()]
    [run] = of_operation(spans, "invoke_agent")
    request = next(span for span in spans if span["name"] == "request")
    assert (run["trace_id"], run["parent_id"]) == (request["trace_id"], request["span_id"])


def test_traceparents_are_parsed_strictly() -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    context = tracing.span_context_of(good)
    assert context is not None and context.is_remote and context.is_valid
    assert f"{context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "ff-" + good[3:], good + "-extra"):
        assert tracing.span_context_of(bad) is None, bad
        assert tracing.continue_from(bad) is None
    assert tracing.continue_from(good) is not None
