"""The OpenAI Agents SDK integration, against the real SDK: `Runner.run` with seed 002's triage → refund
handoff, a call the policy denies, a refund a human approves in another process, replay.

The model is `RefundModel` (_openai_agents_refunds.py), a fake of the SDK's own `Model` interface: no
request leaves the machine. The restart test runs the run, the approval and the resume as three real
processes.

Why this module may skip itself: pytest puts tests/ on sys.path, where the test package tests/agents
is importable as `agents` and hides the SDK's own package of that name. In such a process this module
cannot import the SDK, so it skips, and test_openai_agents_isolated.py runs it in a child pytest with
`--import-mode=importlib` (which leaves sys.path alone), where `agents` is the SDK.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def sdk_hidden() -> bool:
    """True when `import agents` would not give the OpenAI Agents SDK (tests/agents hides it)."""
    spec = importlib.util.find_spec("agents")
    return spec is None or spec.origin is None or Path(spec.origin).resolve().is_relative_to(ROOT / "tests")


if sdk_hidden():
    pytest.skip(
        "tests/agents hides the SDK's `agents` package in this process; test_openai_agents_isolated.py runs "
        "this module in a child process where it is the SDK",
        allow_module_level=True,
    )

sys.path.insert(0, str(HERE))  # the helper modules next to this file (tests/ itself would hide the SDK again)

from _forensics import assert_forensics  # noqa: E402
from _openai_agents_refunds import ASK, Ledger, RefundModel, policy, refund_agents  # noqa: E402
from agents.exceptions import OutputGuardrailTripwireTriggered  # noqa: E402

from agentjournal import Journal  # noqa: E402
from agentjournal.agents import approve, reject  # noqa: E402
from agentjournal.agents.replay import DivergenceError  # noqa: E402
from agentjournal.forensics import causes, timeline  # noqa: E402
from agentjournal.integrations.openai_agents import (  # noqa: E402
    STATE_SAVED,
    AgentsJournal,
    ApprovalPending,
    NotReplayable,
    RecordingFailed,
    RunMoved,
    replay,
    state_stream,
)
from agentjournal.integrations.recorder import RecorderError  # noqa: E402
from agentjournal.model import Repository  # noqa: E402
from agentjournal.projections.metrics import metrics  # noqa: E402
from agentjournal.projections.queries import list_runs  # noqa: E402
from agentjournal.runs import RunState  # noqa: E402
from agents import Agent, RunConfig, function_tool, set_trace_processors  # noqa: E402

HANDOFF_RUN = [
    "RunStarted",
    "ModelCalled",  # triage: lookup_order
    "ToolProposed",
    "PolicyEvaluated",
    "ToolExecuted",
    "ObservationCaptured",
    "ModelCalled",  # triage: transfer_to_refund_agent
    "HandoffInitiated",
    "ObservationCaptured",
    "ModelCalled",  # refund: check_refund_policy
    "ToolProposed",
    "PolicyEvaluated",
    "ToolExecuted",
    "ObservationCaptured",
    "ModelCalled",  # refund: issue_refund ($25, under the policy's $40)
    "ToolProposed",
    "PolicyEvaluated",
    "ToolExecuted",
    "ObservationCaptured",
    "ModelCalled",  # refund: the answer
    "ResponseDrafted",
    "ResponseFinalized",
    "RunCompleted",
]


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


@pytest.fixture
def journaled(journal: Journal) -> Iterator[AgentsJournal]:
    recording = AgentsJournal(journal, policy=policy())
    set_trace_processors([recording.processor])  # and no export to OpenAI
    yield recording
    set_trace_processors([])


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.jsonl")


def load(journal: Journal, run_id: str) -> RunState:
    return Repository(journal, RunState).load(f"run-{run_id}")


def check_readers(journal: Journal, state: RunState) -> None:
    """What every integration must give (the timeline in plain words, state at N, lineage, metrics, verify:
    assert_forensics), and what this run's handoff must show in them."""
    assert_forensics(journal, state.run_id, question=ASK)
    events = journal.read_stream(state.stream_id)
    entries = timeline(journal, state.stream_id)
    titles = [entry.explanation.title for entry in entries]
    assert "Handed off from triage_agent to refund_agent" in titles
    assert "Run completed" in titles
    handed = next(e.version for e in events if e.type == "HandoffInitiated")
    before = Repository(journal, RunState).load_at_version(state.stream_id, handed - 1)
    after = Repository(journal, RunState).load_at_version(state.stream_id, handed)
    assert (before.agent, after.agent) == ("triage_agent", "refund_agent")
    assert before.calls["call_1_lookup"].output == {"order_id": "ORD-5521", "status": "delivered", "amount": 89.99}
    final = next(e for e in events if e.type == "ResponseFinalized")
    chain = causes(journal, final.event_id)
    assert chain.root.type == "RunStarted" and chain.root.data["input"] == ASK
    kinds = [e.type for e in chain.events]
    assert kinds[:3] == ["ResponseFinalized", "ResponseDrafted", "ModelCalled"]
    assert "HandoffInitiated" in kinds and "ToolExecuted" in kinds
    [row] = [row for row in list_runs(journal) if row.run_id == state.run_id]
    assert (row.status, row.user_id) == ("completed", "u-7")
    [group] = metrics(journal, by="model", since=datetime.now(UTC) - timedelta(hours=1))
    assert (group.runs, group.successes) == (1, 1) and group.tokens == state.metrics.tokens > 0


def test_a_triage_to_refund_handoff_is_one_run_every_reader_understands(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    model = RefundModel()
    triage = refund_agents(ledger, model=model, max_refund=25.0)
    result = asyncio.run(journaled.run(triage, ASK, run_id="refund-8842", user_id="u-7"))
    assert result.final_output == "I have issued a partial refund of $25.00 (REF-3301) for ORD-5521."
    assert result.last_agent.name == "refund_agent"
    events = journal.read_stream("run-refund-8842")
    assert [event.type for event in events] == HANDOFF_RUN
    state = load(journal, "refund-8842")
    assert (state.status, state.final_response) == ("completed", result.final_output)
    assert [(h.from_agent, h.to_agent, h.call_id) for h in state.handoffs] == [
        ("triage_agent", "refund_agent", "call_2_handoff")
    ]
    asked = [
        (e.data["agent"], e.data["input_tokens"], e.data["output_tokens"]) for e in events if e.type == "ModelCalled"
    ]
    assert [agent for agent, *_ in asked] == ["triage_agent"] * 2 + ["refund_agent"] * 3
    assert state.metrics.model_calls == 5 and state.metrics.handoffs == 1
    assert state.metrics.tokens == sum(i + o for _, i, o in asked) == sum(40 + 10 * len(r) + 12 for r in model.requests)
    assert state.metrics.cost_usd > 0  # gpt-4o-mini is in the price table
    assert state.calls["call_4_refund"].output == {"refund_id": "REF-3301", "status": "processed", "amount": 25.0}
    assert [entry["action"] for entry in ledger.entries()] == ["lookup", "check", "refund"]
    check_readers(journal, state)


def test_the_run_is_one_opentelemetry_trace_of_genai_spans(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    from _traced import as_dict, in_memory_spans  # the tracing tests' helpers, next to this file

    with in_memory_spans() as exporter:
        asyncio.run(journaled.run(refund_agents(ledger, max_refund=25.0), ASK, run_id="traced"))
        spans = [as_dict(span) for span in exporter.get_finished_spans()]
    [run] = [span for span in spans if span["name"] == "invoke_agent triage_agent"]
    chats = [span for span in spans if span["name"] == "chat gpt-4o-mini"]
    tools = [span for span in spans if span["name"].startswith("execute_tool ")]
    assert (len(chats), len(tools)) == (5, 3)
    assert {span["trace_id"] for span in spans} == {run["trace_id"]}
    assert all(span["parent_id"] == run["span_id"] for span in chats + tools)
    assert chats[0]["attributes"]["gen_ai.usage.input_tokens"] == 50
    assert run["attributes"]["agentjournal.run.status"] == "completed"
    written_by = {span["span_id"]: span for span in spans}
    for event in journal.read_stream("run-traced"):
        assert event.traceparent is not None and event.traceparent.split("-")[2] in written_by, event.type


def test_a_denied_call_never_runs_and_the_model_is_told_why(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    model = RefundModel(try_delete=True)
    triage = refund_agents(ledger, model=model, max_refund=25.0)
    result = asyncio.run(journaled.run(triage, ASK, run_id="denied"))
    assert result.final_output.startswith("I have issued a partial refund of $25.00")
    assert ledger.entries("delete") == []
    state = load(journal, "denied")
    call = state.calls["call_1_delete"]
    assert (call.status, call.decision, call.rule, call.observed) == (
        "refused",
        "deny",
        "orders_are_never_deleted",
        True,
    )
    types = [e.type for e in journal.read_stream("run-denied")][:5]
    assert types == ["RunStarted", "ModelCalled", "ToolProposed", "PolicyEvaluated", "ObservationCaptured"]
    [told] = [item for item in model.requests[1] if item.get("type") == "function_call_output"]
    assert told["output"].startswith("The call to delete_order was not run: the policy denied it")
    assert state.metrics.denials == 1 and state.status == "completed"
    assert journal.verify().ok


def _process(phase: str, url: str, run_id: str, ledger: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(HERE / "_openai_agents_process.py"), phase, url, run_id, str(ledger)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{phase} printed nothing (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.returncode, json.loads(lines[-1])


def test_an_approved_refund_runs_once_across_a_process_restart(sqlite_or_postgres_url: str, tmp_path: Path) -> None:
    url, ledger = sqlite_or_postgres_url, tmp_path / "ledger.jsonl"
    code, first = _process("start", url, "refund-5521", ledger)  # process 1: runs until the SDK stops for approval
    assert (code, first["held"]) == (0, ["call_4_refund"])
    with Journal.open(url) as journal:
        state = load(journal, "refund-5521")
        assert (state.status, state.summary.waiting_for) == ("waiting_approval", "approval")
        [approval] = state.pending_approvals()
        assert approval.arguments == {"order_id": "ORD-5521", "amount": 44.99}
        [saved] = journal.read_stream(state_stream("refund-5521"))
        assert saved.type == STATE_SAVED and saved.data["interruptions"] == [
            {"call_id": "call_4_refund", "tool": "issue_refund"}
        ]
        order = [e.type for e in journal.read_all(limit=1000) if e.stream_id in (state.stream_id, saved.stream_id)]
        assert order[-2:] == [STATE_SAVED, "ApprovalRequested"]  # the state is saved before anyone can approve
    assert _process("resume", url, "refund-5521", ledger)[0] == 3  # nobody decided yet: it still waits
    approved = subprocess.run(  # process 2: a human, with the CLI
        [
            str(Path(sys.executable).with_name("agentjournal")),
            "--db",
            url,
            "approvals",
            "approve",
            approval.approval_id,
            "--by",
            "alice",
            "--reason",
            "half the price, as the policy allows",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert approved.returncode == 0, approved.stdout + approved.stderr
    code, third = _process("resume", url, "refund-5521", ledger)  # process 3: the approved refund runs, once
    assert (code, third["final"]) == (0, "I have issued a partial refund of $44.99 (REF-3301) for ORD-5521.")
    code, again = _process("resume", url, "refund-5521", ledger)
    assert code == 4 and "has already completed" in again["error"]
    actions = [json.loads(line)["action"] for line in ledger.read_text().splitlines()]
    assert actions == ["lookup", "check", "refund"]
    with Journal.open(url) as journal:
        state = load(journal, "refund-5521")
        events = journal.read_stream(state.stream_id)
        tail = [e.type for e in events][-9:]
        assert tail == [
            "ApprovalRequested",
            "ToolApproved",
            "ToolClaimed",
            "ToolExecuted",
            "ObservationCaptured",
            "ModelCalled",
            "ResponseDrafted",
            "ResponseFinalized",
            "RunCompleted",
        ]
        call = state.calls["call_4_refund"]
        assert (call.status, call.attempts, state.approvals[approval.approval_id].by) == ("executed", 1, "alice")
        claim = next(e for e in events if e.type == "ToolClaimed")
        assert claim.causation_id == next(e.event_id for e in events if e.type == "ToolApproved")
        check_readers(journal, state)


def test_a_rejected_refund_never_runs_and_the_model_is_told_who_said_no(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    result = asyncio.run(journaled.run(refund_agents(ledger), ASK, run_id="rejected"))
    [held] = result.interruptions
    [approval] = load(journal, "rejected").pending_approvals()
    with pytest.raises(ApprovalPending, match=approval.approval_id):
        asyncio.run(journaled.resume(refund_agents(ledger), "rejected"))
    reject(journal, approval.approval_id, by="bob", reason="the customer already got a voucher")
    model = RefundModel()
    later = AgentsJournal(journal, policy=policy(), processor=journaled.processor)  # as a restarted service would
    result = asyncio.run(later.resume(refund_agents(ledger, model=model), "rejected"))
    assert result.final_output.startswith("I could not issue the refund for ORD-5521: A human (bob) rejected")
    assert ledger.entries("refund") == []
    state = load(journal, "rejected")
    call = state.calls[held.call_id]
    assert (call.status, call.observed, state.status) == ("refused", True, "completed")
    observed = [e for e in journal.read_stream(state.stream_id) if e.type == "ObservationCaptured"][-1]
    assert (observed.data["error_type"], observed.data["error"]) == (
        "rejected_by_human",
        "the customer already got a voucher",
    )
    with pytest.raises(RecorderError, match="has already completed"):
        asyncio.run(later.resume(refund_agents(ledger), "rejected"))
    with pytest.raises(RecorderError, match="no saved SDK state"):
        unsaved = AgentsJournal(journal).recorder.start(agent="triage_agent", input=ASK, run_id="never-held")
        asyncio.run(later.resume(refund_agents(ledger), unsaved.run_id))


def test_two_processes_resuming_one_approved_run_run_the_refund_once(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    asyncio.run(journaled.run(refund_agents(ledger), ASK, run_id="raced"))
    [approval] = load(journal, "raced").pending_approvals()
    approve(journal, approval.approval_id, by="alice", reason="ok")

    async def both() -> list[Any]:
        with Journal.open(journal.url) as mine, Journal.open(journal.url) as theirs:
            workers = [AgentsJournal(j, policy=policy(), processor=journaled.processor) for j in (mine, theirs)]
            return await asyncio.gather(
                *(worker.resume(refund_agents(ledger), "raced") for worker in workers), return_exceptions=True
            )

    outcomes = asyncio.run(both())
    moved = [outcome for outcome in outcomes if isinstance(outcome, RunMoved)]
    done = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert (len(moved), len(done)) == (1, 1), outcomes
    assert "another process appended to it" in str(moved[0])
    assert len(ledger.entries("refund")) == 1
    state = load(journal, "raced")
    assert state.status == "completed" and state.calls["call_4_refund"].attempts == 1


def test_replay_answers_from_the_recording_and_names_what_changed(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    live = refund_agents(ledger, model=RefundModel(try_delete=True), max_refund=25.0)
    asyncio.run(journaled.run(live, ASK, run_id="replayed"))
    held = asyncio.run(journaled.run(refund_agents(ledger), ASK, run_id="approved"))
    [approval] = load(journal, "approved").pending_approvals()
    approve(journal, approval.approval_id, by="alice", reason="ok")
    asyncio.run(journaled.resume(refund_agents(ledger), "approved"))
    assert held.interruptions
    recorded = len(ledger.entries())
    again = asyncio.run(
        replay(journal, "replayed", refund_agents(ledger, model=RefundModel(try_delete=True), max_refund=25.0))
    )
    assert again.same_answer and (again.model_calls, again.tool_calls) == (6, 3)
    approved = asyncio.run(journaled.replay(refund_agents(ledger), "approved"))
    assert approved.same_answer and approved.final_output.startswith("I have issued a partial refund of $44.99")
    assert len(ledger.entries()) == recorded  # nothing ran for real
    changed = refund_agents(ledger, model=RefundModel(try_delete=True), max_refund=25.0)
    refund = changed.handoffs[0]
    assert isinstance(refund, Agent)
    refund.instructions = "You are the refund agent. Refund the whole price."
    with pytest.raises(DivergenceError, match=r"agent refund_agent\).*the instructions changed"):
        asyncio.run(replay(journal, "replayed", changed))


def test_a_model_that_is_not_wrapped_is_recorded_from_its_generation_spans(journal: Journal, ledger: Ledger) -> None:
    spans_only = AgentsJournal(journal, policy=policy(), record_models=False)
    set_trace_processors([spans_only.processor])
    try:
        result = asyncio.run(spans_only.run(refund_agents(ledger, max_refund=25.0), ASK, run_id="spans"))
    finally:
        set_trace_processors([])
    assert result.final_output.startswith("I have issued")
    events = journal.read_stream("run-spans")
    assert [event.type for event in events] == HANDOFF_RUN
    called = [e.data for e in events if e.type == "ModelCalled"]
    assert all(data["input_tokens"] > 0 and data["output_tokens"] == 12 for data in called)
    assert called[0]["response"]["tool_calls"][0]["name"] == "lookup_order"
    assert called[-1]["response"]["text"] == result.final_output and "sdk_output" not in called[-1]
    assert load(journal, "spans").handoffs[0].call_id == "call_2_handoff"
    with pytest.raises(NotReplayable, match="recorded from a trace span"):
        asyncio.run(replay(journal, "spans", refund_agents(ledger, max_refund=25.0)))


def test_models_a_provider_resolves_by_name_are_recorded_too(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    from agents import ModelProvider

    class Offline(ModelProvider):
        """Resolves every model name to the fake, as a provider resolves names to its models."""

        def __init__(self) -> None:
            self.names: list[str | None] = []
            self.model = RefundModel()

        def get_model(self, model_name: str | None) -> Any:
            self.names.append(model_name)
            return self.model

    provider = Offline()
    triage = refund_agents(ledger, model="gpt-4.1-mini", max_refund=25.0)
    result = asyncio.run(journaled.run(triage, ASK, run_id="named", run_config=RunConfig(model_provider=provider)))
    assert result.final_output.startswith("I have issued") and set(provider.names) == {"gpt-4.1-mini"}
    called = [e.data for e in journal.read_stream("run-named") if e.type == "ModelCalled"]
    assert len(called) == 5 and {data["model"] for data in called} == {"gpt-4.1-mini"}
    assert load(journal, "named").model == "gpt-4.1-mini"


def _fake_providers() -> Any:
    """tests/agents/_fake_providers.py (a local HTTP server answering as the OpenAI API), loaded by its path:
    the package name `agents` is the SDK's here."""
    name = "_openai_agents_fake_providers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "agents" / "_fake_providers.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.mark.parametrize("record_models", [True, False], ids=["RecordingModel", "response spans"])
def test_the_sdks_own_responses_model_over_http_is_recorded(
    journal: Journal, ledger: Ledger, record_models: bool
) -> None:
    from openai import AsyncOpenAI

    from agents import OpenAIResponsesModel

    fake = _fake_providers()
    script = [
        fake.responses_function_call("lookup_order", {"order_id": "ORD-5521"}, call_id="call_1"),
        fake.responses_text("ORD-5521 was delivered."),
    ]
    journaled = AgentsJournal(journal, policy=policy(), record_models=record_models)
    set_trace_processors([journaled.processor])

    async def ask(url: str) -> Any:
        async with AsyncOpenAI(base_url=f"{url}/v1", api_key="offline", max_retries=0) as client:
            triage = refund_agents(ledger, model=OpenAIResponsesModel(model="gpt-4.1-mini", openai_client=client))
            triage.handoffs = []
            return triage, await journaled.run(triage, "Where is ORD-5521?", run_id="http")

    try:
        with fake.serving(script) as server:
            triage, result = asyncio.run(ask(server.url))
    finally:
        set_trace_processors([])
    assert result.final_output == "ORD-5521 was delivered." and len(server.requests) == 2
    called = [e.data for e in journal.read_stream("run-http") if e.type == "ModelCalled"]
    assert [(data["input_tokens"], data["output_tokens"]) for data in called] == [(150, 25), (150, 25)]
    assert called[0]["response"]["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert called[1]["response"]["text"] == "ORD-5521 was delivered."
    assert ("sdk_output" in called[0]) is record_models
    assert load(journal, "http").calls["call_1"].status == "executed"
    if record_models:  # replayed offline: the recording answers, no request is made
        again = asyncio.run(replay(journal, "http", triage, input="Where is ORD-5521?"))
        assert again.same_answer and len(server.requests) == 2


def test_output_guardrails_check_the_answer_and_a_tripped_one_aborts_the_run(
    journal: Journal, journaled: AgentsJournal, ledger: Ledger
) -> None:
    asyncio.run(journaled.run(refund_agents(ledger, max_refund=25.0, output_check=True), ASK, run_id="checked"))
    tail = [(e.type, e.data.get("check")) for e in journal.read_stream("run-checked")][-5:]
    assert tail == [
        ("ModelCalled", None),
        ("ResponseDrafted", None),
        ("OutputChecked", "no_promises"),
        ("ResponseFinalized", None),
        ("RunCompleted", None),
    ]
    with pytest.raises(OutputGuardrailTripwireTriggered):
        asyncio.run(journaled.run(refund_agents(ledger, max_refund=25.0, output_check=False), ASK, run_id="blocked"))
    state = load(journal, "blocked")
    assert (state.status, state.reason) == ("aborted", "output guardrail no_promises blocked the answer")
    assert state.metrics.guardrails_triggered == 1
    assert [e.type for e in journal.read_stream(state.stream_id)][-3:] == [
        "ResponseDrafted",
        "GuardrailTriggered",
        "RunAborted",
    ]


def test_a_journal_that_goes_down_stops_the_run_before_the_next_effect(journal: Journal, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    down = Journal.open(journal.url)  # a connection of the run's own, which the lookup tool closes
    journaled = AgentsJournal(down, policy=policy())
    set_trace_processors([journaled.processor])
    triage = refund_agents(ledger, max_refund=25.0)
    lookup = next(tool for tool in triage.tools if getattr(tool, "name", "") == "lookup_order")
    invoke = lookup.on_invoke_tool

    async def lookup_then_fail(context: Any, arguments: str) -> Any:
        output = await invoke(context, arguments)
        down.close()  # the database is gone after the tool ran, before its result is recorded
        return output

    lookup.on_invoke_tool = lookup_then_fail
    try:
        with pytest.raises(RecordingFailed, match="could not record run gone") as failure:
            asyncio.run(journaled.run(triage, ASK, run_id="gone"))
    finally:
        set_trace_processors([])
    assert "not written: ToolProposed, PolicyEvaluated, ToolExecuted, ObservationCaptured, ModelCalled" in str(
        failure.value
    )
    assert "could not record that the run aborted either" in "\n".join(failure.value.__notes__)
    assert [entry["action"] for entry in ledger.entries()] == ["lookup"]  # nothing ran after the failure
    stored = [event.type for event in journal.read_stream("run-gone")]
    assert stored == ["RunStarted", "ModelCalled"]  # the read-only lookup was in flight, and said so


def test_without_tracing_spans_the_run_fails_loudly(journal: Journal, ledger: Ledger) -> None:
    journaled = AgentsJournal(journal, policy=policy())
    with pytest.raises(RecorderError, match="trace spans"):
        asyncio.run(journaled.run(refund_agents(ledger), ASK, run_config=RunConfig(tracing_disabled=True)))
    assert journal.streams("run-") == []  # refused before the run started
    set_trace_processors([])  # the processor is not registered
    with pytest.raises(RecorderError, match=re.escape("add_trace_processor(journaled.processor)")):
        asyncio.run(journaled.run(refund_agents(ledger), ASK, run_id="unseen"))
    state = load(journal, "unseen")
    assert state.status == "aborted" and "no trace span" in str(state.reason)
    assert ledger.entries() == []


def test_calls_the_sdk_holds_without_asking_the_policy_are_decided_by_it(
    journal: Journal, journaled: AgentsJournal, tmp_path: Path
) -> None:
    ran: list[dict[str, Any]] = []

    @function_tool
    def issue_refund(order_id: str, amount: float, note: str = "") -> str:
        """Refund an order (`note`: a default the model leaves out, so the SDK cannot show the policy raw arguments)."""
        ran.append({"order_id": order_id, "amount": amount})
        return "refunded"

    from agents.testing import ScriptedModel, assistant_message, function_call

    small, big = {"order_id": "A", "amount": 5.0}, {"order_id": "B", "amount": 80.0}
    model = ScriptedModel(
        [
            [function_call("issue_refund", small, call_id="small")],
            [function_call("issue_refund", big, call_id="big")],
            [assistant_message("Refunded A; B waits for a person.")],
        ]
    )
    agent = Agent(name="refunds", instructions="Refund.", tools=[issue_refund], model=model)
    result = asyncio.run(journaled.run(agent, "refund A and B", run_id="held"))
    assert [item.call_id for item in result.interruptions] == ["big"]  # the small one was decided and ran at once
    assert ran == [small]
    state = load(journal, "held")
    assert (state.calls["small"].status, state.calls["big"].status) == ("executed", "waiting_approval")
    [approval] = state.pending_approvals()
    approve(journal, approval.approval_id, by="alice", reason="ok")
    result = asyncio.run(journaled.resume(agent, "held"))
    assert result.final_output == "Refunded A; B waits for a person." and ran == [small, big]


def test_a_tools_own_needs_approval_is_a_durable_approval_and_an_expired_one_is_a_rejection(
    journal: Journal, tmp_path: Path
) -> None:
    from agents.testing import ScriptedModel, assistant_message, function_call

    ran: list[str] = []

    @function_tool(needs_approval=True)
    def close_account(account: str) -> str:
        """Close an account (the tool itself always asks for a human)."""
        ran.append(account)
        return "closed"

    def agent() -> Agent[Any]:
        model = ScriptedModel(
            [[function_call("close_account", {"account": "A-1"}, call_id="c1")], [assistant_message("Not closed.")]]
        )
        return Agent(name="accounts", instructions="Close accounts.", tools=[close_account], model=model)

    hurried = AgentsJournal(journal, approval_ttl_s=0.05)  # no policy: the tool's own setting holds it
    set_trace_processors([hurried.processor])
    try:
        held = asyncio.run(hurried.run(agent(), "close A-1", run_id="own-approval"))
        assert [item.call_id for item in held.interruptions] == ["c1"]
        call = load(journal, "own-approval").calls["c1"]
        assert (call.status, call.rule) == ("waiting_approval", "needs_approval")
        time.sleep(0.1)  # nobody decided in time
        result = asyncio.run(hurried.resume(agent(), "own-approval"))
    finally:
        set_trace_processors([])
    assert result.final_output == "Not closed." and ran == []
    state = load(journal, "own-approval")
    approval = state.approvals[str(call.approval_id)]
    assert (approval.status, approval.by) == ("rejected", "system") and "expired" in str(approval.reason)
    assert state.calls["c1"].observed and state.status == "completed"


def test_a_tripped_input_guardrail_is_recorded_and_ends_the_run(journal: Journal, journaled: AgentsJournal) -> None:
    from agents.testing import ScriptedModel, assistant_message

    from agents import GuardrailFunctionOutput, InputGuardrailTripwireTriggered, input_guardrail

    @input_guardrail
    def no_threats(context: Any, agent: Any, input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info={"threat": True}, tripwire_triggered=True)

    model = ScriptedModel([[assistant_message("never sent")]])
    agent = Agent(name="support", instructions="Help.", model=model, input_guardrails=[no_threats])
    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(journaled.run(agent, "give me the money or else", run_id="threat"))
    state = load(journal, "threat")
    assert (state.status, state.reason) == ("aborted", "input guardrail no_threats tripped on the user's message")
    triggered = [e.data for e in journal.read_stream(state.stream_id) if e.type == "GuardrailTriggered"]
    assert [(t["check"], t["outcome"]) for t in triggered] == [("input guardrail no_threats", "blocked")]


def test_the_benchmark_runs(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    benchmark = ROOT / "benchmarks" / "integration_openai_agents.py"
    done = subprocess.run(
        [sys.executable, str(benchmark), "--quick", "--backends", "sqlite", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = json.loads(figures.read_text())
    assert row["backend"] == "sqlite" and row["events"] == 5 * 20 + 5
    assert row["sdk_ms_per_step"] > 0 and row["recorded_ms_per_step"] > 0


def test_a_tool_the_policy_cannot_stand_in_front_of_is_still_recorded_from_its_span(
    journal: Journal, journaled: AgentsJournal
) -> None:
    @function_tool
    def order_status(order_id: str) -> str:
        """The order's status (a tool the agent only adds at run time)."""
        return f"{order_id} is delivered"

    class RuntimeTools(Agent[Any]):
        async def get_all_tools(self, run_context: Any) -> list[Any]:
            return [*await super().get_all_tools(run_context), order_status]

    from agents.testing import ScriptedModel, assistant_message, function_call

    model = ScriptedModel(
        [[function_call("order_status", {"order_id": "ORD-1"}, call_id="c1")], [assistant_message("Delivered.")]]
    )
    asyncio.run(
        journaled.run(RuntimeTools(name="status", instructions="Answer.", model=model), "where?", run_id="unguarded")
    )
    events = journal.read_stream("run-unguarded")
    assert [e.type for e in events][2:5] == ["ToolProposed", "ToolExecuted", "ObservationCaptured"]
    assert events[2].data["guarded"] is False and events[3].data["output"] == "ORD-1 is delivered"


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = (ROOT / "docs" / "integrations" / "openai-agents.md").read_text()
    [code] = re.findall(r"## Wire it in three lines\n.*?```text\n(.*?)```", page, re.S)
    monkeypatch.chdir(tmp_path)
    try:
        exec(compile(code, "openai-agents.md", "exec"), {"__name__": "docs_example"})
    finally:
        set_trace_processors([])
    with Journal.open(f"sqlite:///{tmp_path / 'agents.db'}") as journal:
        [info] = journal.streams("run-")
        assert load(journal, info.stream_id.removeprefix("run-")).status == "completed"


def test_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['agents'] = None\n"
        "try:\n    import agentjournal.integrations.openai_agents\n"
        "except ImportError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'agentjournal[openai-agents]'" in done.stdout
