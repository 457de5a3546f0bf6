"""The refund agent of seed 002 written for pydantic-ai, and what every integration's run must give the readers.

Not collected (no test_ prefix): test_pydantic_ai*.py and the process-restart script import it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from agentjournal.agents import Policy
from agentjournal.forensics import causes, timeline
from agentjournal.integrations import RunRecorder
from agentjournal.integrations.pydantic_ai import AgentJournal, idempotency_key
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState

from ._forensics import assert_forensics

POLICY_TEXT = """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
"""
POLICY = Policy.from_yaml(POLICY_TEXT, source="pydantic-ai-policy")
QUESTION = "I want a refund for ORD-5521, it arrived broken"
INSTRUCTIONS = "You are the refunds agent. Look the order up before you refund it."
MODEL = "claude-sonnet-4-5"
ANSWER = "I have refunded 44.99 for ORD-5521; it reaches your card in 3 to 5 days."

REFUNDS: list[dict[str, Any]] = []
"""Every refund issue_refund really made (the side effect a denied or duplicated call must never cause)."""
DELETED: list[str] = []


def responses(messages: list[ModelMessage]) -> int:
    return sum(isinstance(message, ModelResponse) for message in messages)


def tool_returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [part for message in messages for part in message.parts if isinstance(part, ToolReturnPart)]


def refund_script(amount: float = 44.99) -> Callable[[list[ModelMessage], AgentInfo], ModelResponse]:
    """The model: look the order up, then refund it (and, the first time, try to delete it), then answer."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        step = responses(messages)
        if step == 0:
            call = ToolCallPart("lookup_order", {"order_id": "ORD-5521"}, tool_call_id="toolu_lookup")
            return ModelResponse(parts=[call], usage=RequestUsage(input_tokens=120, output_tokens=30))
        if step == 1:
            refund = {"order_id": "ORD-5521", "amount": amount}
            calls = [
                ToolCallPart("delete_order", {"order_id": "ORD-5521"}, tool_call_id="toolu_delete"),
                ToolCallPart("issue_refund", refund, tool_call_id="toolu_refund"),
            ]
            return ModelResponse(parts=calls, usage=RequestUsage(input_tokens=180, output_tokens=40))
        return ModelResponse(parts=[TextPart(ANSWER)], usage=RequestUsage(input_tokens=240, output_tokens=25))

    return model


def refund_agent(
    recorder: RunRecorder | None,
    model: Any = None,
    *,
    instructions: str = INSTRUCTIONS,
    refund_doc: str = "Refund an order.",
    lookup_result: dict[str, Any] | None = None,
) -> Agent[None, str | DeferredToolRequests]:
    """The agent: the application's own code, the same in the first process, the one that resumes, the replay."""
    capabilities = [AgentJournal(recorder, user_id="u-7", route="refunds")] if recorder is not None else []
    agent: Agent[None, str | DeferredToolRequests] = Agent(
        model if model is not None else FunctionModel(refund_script(), model_name=MODEL),
        name="refunds",
        instructions=instructions,
        output_type=[str, DeferredToolRequests],
        capabilities=capabilities,
    )
    looked_up = lookup_result or {"order_id": "ORD-5521", "status": "delivered", "amount": 89.99}

    @agent.tool_plain
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look an order up."""
        return dict(looked_up)

    @agent.tool_plain
    def delete_order(order_id: str) -> str:
        """Delete an order."""
        DELETED.append(order_id)
        return "deleted"

    @agent.tool_plain(metadata={"side_effect": True}, description=refund_doc)
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        REFUNDS.append({"order_id": order_id, "amount": amount, "key": idempotency_key()})
        return {"refund_id": f"REF-{len(REFUNDS)}", "amount": amount}

    return agent


def check_forensics(journal: Journal, run_id: str, *, answer: str = ANSWER) -> RunState:
    """What every integration must give (the timeline in plain words, state at N, lineage from the answer to
    the user's message, the metrics and the runs read model, a journal that verifies: assert_forensics), and
    what this agent's run must show in them."""
    assert_forensics(journal, run_id, question=QUESTION)
    stream = f"run-{run_id}"
    events = journal.read_stream(stream)
    entries = timeline(journal, stream)
    words = " ".join(f"{entry.explanation.title} {entry.explanation.summary}" for entry in entries)
    assert "lookup_order" in words and "issue_refund" in words
    looked_up = next(e.version for e in events if e.type == "ToolExecuted" and e.data["tool"] == "lookup_order")
    then = Repository(journal, RunState).load_at_version(stream, looked_up)
    assert then.calls["toolu_lookup"].output["amount"] == 89.99 and "toolu_refund" not in then.calls
    final = next(e for e in events if e.type == "ResponseFinalized")
    chain = causes(journal, final.event_id)
    assert chain.root.type == "RunStarted" and chain.root.data["input"] == QUESTION
    kinds = [event.type for event in chain.events]
    assert kinds[:3] == ["ResponseFinalized", "ResponseDrafted", "ModelCalled"] and "ObservationCaptured" in kinds
    [row] = [row for row in list_runs(journal) if row.run_id == run_id]
    assert (row.status, row.user_id) == ("completed", "u-7")
    [group] = metrics(journal, by="model", since=datetime.now(UTC) - timedelta(hours=1))
    assert group.runs >= 1 and group.tokens > 0
    state = Repository(journal, RunState).load(stream)
    assert state.final_response == answer
    return state
