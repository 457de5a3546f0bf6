"""pydantic-ai: real `Agent` runs (FunctionModel, TestModel, a provider model over HTTP) recorded as contract runs,
under the policy, with durable approvals across a process restart; failures inside agentjournal are loud."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

import httpx2
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.exceptions import ModelRetry, UserError
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
from pydantic_ai.models.test import TestModel

from agentjournal.agents import approve, reject
from agentjournal.agents.models.base import RealModelRequestBlocked, real_requests
from agentjournal.integrations import RecorderError, RunRecorder
from agentjournal.integrations.pydantic_ai import AgentJournal, approval_results
from agentjournal.journal import Journal, JournalError
from agentjournal.model import Repository
from agentjournal.runs import RunState
from agents._fake_providers import anthropic_reply, anthropic_stream, anthropic_tool_use, serving

from ._pydantic_ai_agents import (
    ANSWER,
    DELETED,
    MODEL,
    POLICY,
    QUESTION,
    REFUNDS,
    check_forensics,
    refund_agent,
    refund_script,
    responses,
    tool_returns,
)

STREAMED_LOOKUP = DeltaToolCall(name="lookup_order", json_args='{"order_id": "ORD-5521"}', tool_call_id="toolu_lookup")


@pytest.fixture(autouse=True)
def _nothing_done_yet() -> Iterator[None]:
    REFUNDS.clear()
    DELETED.clear()
    yield
    REFUNDS.clear()
    DELETED.clear()


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def run(agent: Agent[Any, Any], prompt: str | None = None, **options: Any) -> Any:
    """`agent.run` on a fresh event loop (`run_sync` keeps one on the thread, which the next `asyncio.run` drops)."""
    return asyncio.run(agent.run(prompt, **options))


def run_id_of(messages: list[ModelMessage]) -> str:
    stamps = [m.metadata["agentjournal"] for m in messages if isinstance(m, ModelResponse) and m.metadata]
    return str(stamps[-1]["run_id"])


def types(journal: Journal, run_id: str) -> list[str]:
    return [event.type for event in journal.read_stream(f"run-{run_id}")]


def test_a_function_model_run_is_a_run_every_reader_understands(journal: Journal) -> None:
    result = run(refund_agent(RunRecorder(journal)), QUESTION)  # no policy: every call runs
    assert result.output == ANSWER
    run_id = run_id_of(result.all_messages())
    assert run_id == result.run_id  # one agent.run, one contract run, the same id
    events = journal.read_stream(f"run-{run_id}")
    kinds = [event.type for event in events]
    assert kinds[:6] + kinds[-4:] == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    per_call: dict[str, list[str]] = {}  # the second reply's two calls run at the same time: each in order
    for event in events[6:-4]:
        per_call.setdefault(event.data["call_id"], []).append(event.type)
    assert per_call == {
        "toolu_delete": ["ToolProposed", "ToolExecuted", "ObservationCaptured"],
        "toolu_refund": ["ToolProposed", "ToolClaimed", "ToolExecuted", "ObservationCaptured"],  # a side effect
    }
    started, first_call = events[0].data, events[1].data
    pinned = (started["agent"], started["model"], started["user_id"], started["route"])
    assert pinned == ("refunds", MODEL, "u-7", "refunds")
    assert set(started["tool_schemas"]) == {"lookup_order", "delete_order", "issue_refund"}
    assert first_call["new_messages"] == [{"role": "user", "ref": 1}]  # the input, held by RunStarted
    assert first_call["response"]["tool_calls"] == [
        {"id": "toolu_lookup", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert (first_call["input_tokens"], first_call["output_tokens"], first_call["stage"]) == (120, 30, "act")
    assert first_call["cost_usd"] > 0 and first_call["prompt_hash"] == started["prompt_version"]
    second = events[5].data
    assert [m["tool_call_id"] for m in second["new_messages"]] == ["toolu_lookup"]
    assert second["new_messages"][0]["ref"] == 4  # the output is the ToolExecuted's, not kept twice
    [refund] = REFUNDS
    [claimed] = [event for event in events if event.type == "ToolClaimed"]
    assert refund["key"] == claimed.data["idempotency_key"]  # the tool saw its claim's idempotency key
    state = check_forensics(journal, run_id)
    assert state.metrics.model_calls == 3 and state.metrics.tokens == 120 + 30 + 180 + 40 + 240 + 25


def test_the_policy_denies_a_call_before_it_runs_and_holds_one_for_a_human(journal: Journal) -> None:
    seen: list[list[ModelMessage]] = []
    script = refund_script()

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        return script(messages, info)

    agent = refund_agent(RunRecorder(journal, policy=POLICY), FunctionModel(model, model_name=MODEL))
    result = run(agent, QUESTION)
    assert isinstance(result.output, DeferredToolRequests)  # the run waits for a human
    assert DELETED == [] and REFUNDS == []  # neither call ran
    [held] = result.output.approvals
    assert held.tool_call_id == "toolu_refund"
    stamp = result.output.metadata["toolu_refund"]["agentjournal"]
    run_id = run_id_of(result.all_messages())
    assert stamp["run_id"] == run_id
    state = Repository(journal, RunState).load(f"run-{run_id}")
    assert state.status == "waiting_approval"
    assert state.calls["toolu_delete"].status == "refused" and state.calls["toolu_delete"].rule == "no_deletes"
    assert state.calls["toolu_refund"].status == "waiting_approval"
    [approval] = state.pending_approvals()
    assert approval.approval_id == stamp["approval_id"]
    assert approval.arguments == {"order_id": "ORD-5521", "amount": 44.99}
    assert state.metrics.denials == 1 and state.metrics.approvals_required == 1
    with pytest.raises(RecorderError, match=f"still waits for a human on {approval.approval_id} \\(issue_refund\\)"):
        approval_results(journal, result.all_messages())

    reject(journal, approval.approval_id, by="bob", reason="refunds above 40 need a receipt")
    history = result.all_messages()
    later = refund_agent(RunRecorder(journal, policy=POLICY), FunctionModel(model, model_name=MODEL))
    done = run(later, message_history=history, deferred_tool_results=approval_results(journal, history))
    assert done.output == ANSWER and REFUNDS == []
    told = {part.tool_call_id: part for part in tool_returns(seen[-1])}
    assert told["toolu_delete"].outcome == "failed"
    assert "denied by policy (rule no_deletes)" in str(told["toolu_delete"].content)
    assert told["toolu_refund"].outcome == "denied"
    assert told["toolu_refund"].content == "The call was rejected by bob: refunds above 40 need a receipt"
    state = Repository(journal, RunState).load(f"run-{run_id}")
    assert (state.status, state.calls["toolu_refund"].status) == ("completed", "refused")
    observed = [e.data for e in journal.read_stream(f"run-{run_id}") if e.type == "ObservationCaptured"]
    assert {"call_id": "toolu_refund", "error_type": "rejected_by_human"}.items() <= observed[-1].items()
    assert types(journal, run_id).count("RunStarted") == 1  # the second agent.run continued the same run


_FIRST_PROCESS = """
import sys
sys.path[:0] = {paths!r}
from pydantic_ai.messages import ModelMessagesTypeAdapter
from agentjournal import Journal
from agentjournal.integrations import RunRecorder
from integrations._pydantic_ai_agents import POLICY, QUESTION, refund_agent

with Journal.open({url!r}) as journal:
    result = refund_agent(RunRecorder(journal, policy=POLICY)).run_sync(QUESTION)
    open({saved!r}, "wb").write(ModelMessagesTypeAdapter.dump_json(result.all_messages()))
    print(type(result.output).__name__)
"""


def test_an_approved_call_runs_once_after_the_process_that_asked_has_exited(
    journal: Journal, tmp_path: Path, invoke: Any
) -> None:
    tests = Path(__file__).parents[1]
    saved = tmp_path / "history.json"
    script = _FIRST_PROCESS.format(paths=[str(tests)], url=journal.url, saved=str(saved))
    command = [sys.executable, "-c", textwrap.dedent(script)]
    first = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "DeferredToolRequests"
    history = ModelMessagesTypeAdapter.validate_json(saved.read_bytes())
    run_id = run_id_of(history)
    [approval] = Repository(journal, RunState).load(f"run-{run_id}").pending_approvals()
    approving = ["approvals", "approve", approval.approval_id, "--by", "alice", "--reason", "receipt seen"]
    decided = invoke(journal.url, *approving)  # the CLI, as a reviewer would
    assert decided.exit_code == 0, decided.output

    results = approval_results(journal, history)  # the journal's decision, in pydantic-ai's terms
    assert list(results.approvals) == ["toolu_refund"]
    agent = refund_agent(RunRecorder(journal, policy=POLICY))
    done = run(agent, message_history=history, deferred_tool_results=results)
    assert done.output == ANSWER
    [refund] = REFUNDS
    assert refund["amount"] == 44.99 and refund["key"]
    state = check_forensics(journal, run_id)
    call = state.calls["toolu_refund"]
    assert (call.status, call.approval_id) == ("executed", approval.approval_id)
    assert state.approvals[approval.approval_id].by == "alice"
    kinds = types(journal, run_id)
    after = kinds.index("ToolApproved")
    assert kinds[after:] == [
        "ToolApproved",
        "ToolClaimed",  # a call a human approved is claimed before it runs
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]

    again = refund_agent(RunRecorder(journal, policy=POLICY))  # a history that lost the refund's result
    rerun = run(again, QUESTION)
    assert len(REFUNDS) == 1 and isinstance(rerun.output, DeferredToolRequests)  # a new run asks again


def test_the_journal_decides_not_what_the_application_passes(journal: Journal) -> None:
    agent = refund_agent(RunRecorder(journal, policy=POLICY))
    held = run(agent, QUESTION)
    assert isinstance(held.output, DeferredToolRequests)
    history = held.all_messages()
    forged = held.output.build_results(approve_all=True)  # nobody approved it in the journal
    still = run(agent, message_history=history, deferred_tool_results=forged)
    assert isinstance(still.output, DeferredToolRequests) and REFUNDS == []  # held again, not run
    run_id = run_id_of(history)
    assert Repository(journal, RunState).load(f"run-{run_id}").status == "waiting_approval"


def test_testmodel_calls_every_tool_and_the_run_is_recorded(journal: Journal) -> None:
    recorder = RunRecorder(journal, policy=POLICY)
    journaled = AgentJournal(recorder, user_id=lambda ctx: ctx.deps["user"], tenant_id="acme")
    agent = Agent(TestModel(), name="lookup", deps_type=dict, capabilities=[journaled])

    @agent.tool_plain
    def lookup_order(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id, "status": "delivered"}

    @agent.tool_plain
    def delete_order(order_id: str) -> str:
        DELETED.append(order_id)
        return "deleted"

    result = run(agent, "What happened to my order?", deps={"user": "u-9"})
    assert DELETED == []
    run_id = run_id_of(result.all_messages())
    state = Repository(journal, RunState).load(f"run-{run_id}")
    assert (state.user_id, state.tenant_id) == ("u-9", "acme")  # read from the run's deps
    assert state.status == "completed" and state.final_response == result.output
    statuses = {call.tool: call.status for call in state.calls.values()}
    assert statuses == {"lookup_order": "executed", "delete_order": "refused"}
    assert journal.verify().ok


def test_parallel_calls_a_failing_tool_and_a_retry_are_each_recorded_once(journal: Journal) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses(messages) == 0:
            calls = [ToolCallPart("lookup_order", {"order_id": f"ORD-{n}"}, tool_call_id=f"c{n}") for n in range(4)]
            return ModelResponse(parts=[*calls, ToolCallPart("flaky", {}, tool_call_id="f1")])
        if responses(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("broken", {}, tool_call_id="b1")])
        return ModelResponse(parts=[TextPart("never")])

    agent = Agent(FunctionModel(model), capabilities=[AgentJournal(RunRecorder(journal))])

    @agent.tool_plain
    async def lookup_order(order_id: str) -> str:
        await asyncio.sleep(0.01 * (4 - int(order_id[-1])))  # they finish in the reverse order
        return order_id

    @agent.tool_plain(retries=1)
    def flaky() -> str:
        raise ModelRetry("the service is busy, try later")

    @agent.tool_plain
    def broken() -> str:
        raise ValueError("the refund service is down")

    with pytest.raises(ValueError, match="the refund service is down"):
        run(agent, "look up four orders")
    events = _the_only_run(journal)
    proposed = [e.data["call_id"] for e in events if e.type == "ToolProposed"]
    assert proposed == ["c0", "c1", "c2", "c3", "f1", "b1"]
    failed = {e.data["call_id"]: e.data for e in events if e.type == "ToolFailed"}
    assert failed["f1"]["error_type"] == "ModelRetry" and "the service is busy" in failed["f1"]["error"]
    assert (failed["b1"]["error_type"], failed["b1"]["error"]) == ("ValueError", "the refund service is down")
    assert events[-1].type == "RunAborted"
    assert events[-1].data["reason"] == "the agent failed: ValueError: the refund service is down"
    assert events[-1].data["error_type"] == "ValueError"
    assert journal.verify().ok


def _the_only_run(journal: Journal) -> list[Any]:
    starts = [event for event in journal.read_all() if event.type == "RunStarted"]
    assert len(starts) == 1
    return journal.read_stream(starts[0].stream_id)


def test_a_streamed_run_is_recorded_like_any_other(journal: Journal) -> None:
    async def stream(messages: list[ModelMessage], info: AgentInfo) -> Any:
        if responses(messages) == 0:
            yield {0: STREAMED_LOOKUP}
        else:
            for word in ANSWER.split(" "):
                yield word + " "

    agent = refund_agent(RunRecorder(journal), FunctionModel(stream_function=stream, model_name=MODEL))

    async def main() -> str:
        async with agent.run_stream(QUESTION) as run:
            return str(await run.get_output())

    assert asyncio.run(main()).strip() == ANSWER
    events = _the_only_run(journal)
    assert [e.type for e in events] == [
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
    assert events[1].data["response"]["tool_calls"][0]["arguments"] == {"order_id": "ORD-5521"}
    assert events[5].data["response"]["text"].strip() == ANSWER


def test_a_provider_model_over_http_is_recorded_and_blocked_in_tests_unless_allowed(journal: Journal) -> None:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    lookup = anthropic_tool_use("lookup_order", {"order_id": "ORD-5521"}, "toolu_lookup")
    replies = [anthropic_stream(lookup), anthropic_stream(anthropic_reply([{"type": "text", "text": ANSWER}]))]
    recorder = RunRecorder(journal, policy=POLICY)

    async def main(url: str) -> Any:
        async with httpx2.AsyncClient() as http:
            provider = AnthropicProvider(api_key="sk-test", base_url=url, http_client=http)
            agent = refund_agent(recorder, AnthropicModel("claude-haiku-4-5", provider=provider))
            return await agent.run(QUESTION)

    with serving(replies) as fake:
        with pytest.raises(RealModelRequestBlocked, match="pydantic-ai anthropic"):
            asyncio.run(main(fake.url))
        assert fake.requests == []  # refused before anything was sent
        with real_requests(True):
            result = asyncio.run(main(fake.url))
    assert result.output == ANSWER
    assert [body["model"] for body in fake.requests] == ["claude-haiku-4-5", "claude-haiku-4-5"]
    events = journal.read_stream(f"run-{run_id_of(result.all_messages())}")
    called = [e.data for e in events if e.type == "ModelCalled"]
    assert [c["model"] for c in called] == ["claude-haiku-4-5-20251001"] * 2  # as the provider named it
    assert (called[0]["input_tokens"], called[0]["output_tokens"]) == (200, 40) and called[0]["cost_usd"] > 0
    assert events[-1].type == "RunCompleted"
    blocked = [e for e in journal.read_all() if e.type == "RunAborted"]
    assert "RealModelRequestBlocked" in blocked[0].data["reason"]  # the blocked attempt is a run that failed


def test_a_later_turn_on_a_finished_runs_history_is_a_new_run(journal: Journal) -> None:
    agent = refund_agent(RunRecorder(journal))
    first = run(agent, QUESTION)

    def thanks(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("You're welcome!")])

    follow_up = refund_agent(RunRecorder(journal), FunctionModel(thanks, model_name=MODEL))
    second = run(follow_up, "Thanks!", message_history=first.all_messages())
    one, two = run_id_of(first.all_messages()), run_id_of(second.all_messages())
    assert one != two
    later = journal.read_stream(f"run-{two}")
    assert later[0].data["input"] == "Thanks!"
    sent = later[1].data["new_messages"]
    assert sent[0] == {"role": "user", "content": QUESTION} and sent[-1] == {"role": "user", "ref": 1}
    state = Repository(journal, RunState).load(f"run-{two}")
    assert [m.content for m in state.messages if m.role == "user"] == ["Thanks!", QUESTION]


def test_a_read_only_step_is_one_transaction(journal: Journal) -> None:
    def lookups(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        step = responses(messages)
        if step < 3:
            return ModelResponse(
                parts=[ToolCallPart("lookup_order", {"order_id": f"ORD-{step}"}, tool_call_id=f"t{step}")]
            )
        return ModelResponse(parts=[TextPart(ANSWER)])

    result = run(refund_agent(RunRecorder(journal, policy=POLICY), FunctionModel(lookups, model_name=MODEL)), QUESTION)
    batches: list[list[str]] = []
    last = None
    for event in journal.read_stream(f"run-{run_id_of(result.all_messages())}"):
        if event.recorded_at != last:  # the events of one append share its time
            batches.append([])
            last = event.recorded_at
        batches[-1].append(event.type)
    step = ["ToolProposed", "PolicyEvaluated", "ToolExecuted", "ObservationCaptured", "ModelCalled"]
    assert batches == [
        ["RunStarted"],
        ["ModelCalled"],
        step,
        step,
        step,  # the last reply, the answer, carries the third lookup
        ["ResponseDrafted", "ResponseFinalized", "RunCompleted"],
    ]


def test_a_failure_inside_agentjournal_fails_the_run_loudly_and_the_tool_never_runs(sqlite_url: str) -> None:
    journal = Journal.open(sqlite_url)

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        journal.close()  # the database goes away while the model is thinking
        return ModelResponse(parts=[ToolCallPart("delete_order", {"order_id": "ORD-5521"}, tool_call_id="t1")])

    agent = refund_agent(RunRecorder(journal), FunctionModel(model, model_name=MODEL))
    with pytest.raises(JournalError) as failed:
        run(agent, QUESTION)
    assert DELETED == []
    notes = "\n".join(getattr(failed.value, "__notes__", []))
    assert "agentjournal could not record the end of the run" in notes
    with Journal.open(sqlite_url) as reopened:
        [started] = [e for e in reopened.read_all() if e.type == "RunStarted"]
        assert reopened.read_stream(started.stream_id)[-1].type == "RunStarted"  # nothing half-written


def test_bad_inputs_get_clear_errors(journal: Journal) -> None:
    with pytest.raises(TypeError, match=r"AgentJournal needs a RunRecorder \(RunRecorder\(journal"):
        AgentJournal(journal)  # type: ignore[arg-type]
    plain = run(Agent(FunctionModel(refund_script(), model_name=MODEL)), QUESTION)
    with pytest.raises(RecorderError, match="not recorded by AgentJournal"):
        approval_results(journal, plain.all_messages())
    with pytest.raises(Exception, match="'agentjournal' is used by multiple capabilities"):
        Agent(TestModel(), capabilities=[AgentJournal(RunRecorder(journal)), AgentJournal(RunRecorder(journal))])


def test_without_the_extra_the_import_error_names_it() -> None:
    code = (
        "import sys; sys.modules['pydantic_ai'] = None\n"
        "try:\n    import agentjournal.integrations.pydantic_ai\n"
        "except ImportError as error:\n    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'agentjournal[pydantic-ai]'" in out


def test_the_recorded_parts_of_a_reply_the_contract_cannot_say_are_kept(journal: Journal) -> None:
    from pydantic_ai.messages import ThinkingPart

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ThinkingPart("the user is upset"), TextPart(ANSWER)])

    agent = refund_agent(RunRecorder(journal), FunctionModel(model, model_name=MODEL))
    run(agent, QUESTION)
    [called] = [e.data for e in _the_only_run(journal) if e.type == "ModelCalled"]
    assert called["response"] == {"text": ANSWER}
    assert [part["part_kind"] for part in called["pydantic_ai_parts"]] == ["thinking", "text"]
    assert json.loads(json.dumps(called["pydantic_ai_parts"]))[0]["content"] == "the user is upset"


_DIES_AFTER_THE_REFUND = """
import os, sys
sys.path[:0] = {paths!r}
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models.function import FunctionModel
from agentjournal import Journal
from agentjournal.integrations import RunRecorder
from agentjournal.integrations.pydantic_ai import approval_results
from integrations._pydantic_ai_agents import MODEL, POLICY, REFUNDS, refund_agent, refund_script

script = refund_script()

def dies(messages, info):
    if sum(isinstance(m, ModelResponse) for m in messages) >= 2:
        os._exit(3)  # killed after the refund ran and was recorded, before the model answered
    return script(messages, info)

with Journal.open({url!r}) as journal:
    history = ModelMessagesTypeAdapter.validate_json(open({saved!r}, "rb").read())
    agent = refund_agent(RunRecorder(journal, policy=POLICY), FunctionModel(dies, model_name=MODEL))
    agent.run_sync(message_history=history, deferred_tool_results=approval_results(journal, history))
"""


def test_a_call_that_ran_before_the_process_died_is_not_run_again(journal: Journal, tmp_path: Path) -> None:
    held = run(refund_agent(RunRecorder(journal, policy=POLICY)), QUESTION)
    saved = tmp_path / "history.json"
    saved.write_bytes(ModelMessagesTypeAdapter.dump_json(held.all_messages()))
    approve(journal, held.output.metadata["toolu_refund"]["agentjournal"]["approval_id"], by="alice", reason="ok")
    paths = [str(Path(__file__).parents[1])]
    script = _DIES_AFTER_THE_REFUND.format(paths=paths, url=journal.url, saved=str(saved))
    child = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert child.returncode == 3, child.stderr
    run_id = run_id_of(held.all_messages())
    assert Repository(journal, RunState).load(f"run-{run_id}").calls["toolu_refund"].status == "executed"

    history = held.all_messages()  # the history saved before, again: it lacks the refund's result
    agent = refund_agent(RunRecorder(journal, policy=POLICY))
    done = run(agent, message_history=history, deferred_tool_results=approval_results(journal, history))
    assert done.output == ANSWER and REFUNDS == []  # answered from the journal: not refunded a second time
    kinds = types(journal, run_id)
    assert (kinds.count("ToolClaimed"), kinds.count("ToolExecuted"), kinds[-1]) == (1, 2, "RunCompleted")


def test_an_approved_call_with_other_arguments_than_the_reviewer_saw_is_refused(journal: Journal) -> None:
    from pydantic_ai.tools import ToolApproved

    held = run(refund_agent(RunRecorder(journal, policy=POLICY)), QUESTION)
    approve(journal, held.output.metadata["toolu_refund"]["agentjournal"]["approval_id"], by="alice", reason="ok")
    changed = approval_results(journal, held.all_messages())
    changed.approvals["toolu_refund"] = ToolApproved(override_args={"order_id": "ORD-5521", "amount": 99.0})
    agent = refund_agent(RunRecorder(journal, policy=POLICY))
    done = run(agent, message_history=held.all_messages(), deferred_tool_results=changed)
    assert done.output == ANSWER and REFUNDS == []  # 99.0 is not what alice approved
    state = Repository(journal, RunState).load(f"run-{run_id_of(held.all_messages())}")
    assert state.calls["toolu_refund"].status == "refused"
    told = [e.data for e in journal.read_stream(state.stream_id) if e.type == "ObservationCaptured"][-1]
    assert (told["error_type"], told["error"]) == (
        "invalid_arguments",
        "The arguments differ from the ones a human approved",
    )


def test_arguments_that_fail_validation_are_a_refused_call_and_an_agent_that_cannot_wait_fails(
    journal: Journal,
) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses(messages) == 0:
            return ModelResponse(
                parts=[ToolCallPart("issue_refund", {"order_id": "ORD-5521", "amount": "lots"}, tool_call_id="bad")]
            )
        return ModelResponse(parts=[TextPart(ANSWER)])

    run(refund_agent(RunRecorder(journal, policy=POLICY), FunctionModel(model, model_name=MODEL)), QUESTION)
    events = _the_only_run(journal)
    refused = [e.data for e in events if e.type == "ObservationCaptured"]
    assert refused[0]["call_id"] == "bad" and refused[0]["error_type"] == "invalid_arguments"
    assert "amount" in refused[0]["error"] and REFUNDS == []
    assert events[-1].type == "RunCompleted"

    impatient = Agent(
        FunctionModel(refund_script(), model_name=MODEL),
        capabilities=[AgentJournal(RunRecorder(journal, policy=POLICY))],
    )

    @impatient.tool_plain
    def lookup_order(order_id: str) -> str:
        return "delivered"

    @impatient.tool_plain
    def delete_order(order_id: str) -> str:
        return "deleted"

    @impatient.tool_plain
    def issue_refund(order_id: str, amount: float) -> str:
        REFUNDS.append({"amount": amount})
        return "refunded"

    with pytest.raises(UserError, match="DeferredToolRequests"):
        run(impatient, QUESTION)
    aborted = [e for e in journal.read_all() if e.type == "RunAborted"]
    assert len(aborted) == 1 and "DeferredToolRequests" in aborted[0].data["reason"] and REFUNDS == []
