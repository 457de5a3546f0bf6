"""Seed 002's refund conversation as plain tool-use loops over the real SDK clients (not collected).

The loops are what a user writes without agentjournal, plus the three lines that record them: the
wrapped client, `recorder.start(...)`, and the `@journaled` tools. The local server
(`agents._fake_providers`) answers as the provider would, so the SDKs' own code paths run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from agentjournal.agents import Policy, approve
from agentjournal.forensics import causes, timeline
from agentjournal.integrations import (
    ApprovalRequired,
    RecordedRun,
    RunRecorder,
    ToolBlocked,
    current_run,
    journaled,
)
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState
from agents._fake_providers import (
    Reply,
    anthropic_reply,
    anthropic_tool_use,
    openai_reply,
    openai_tool_call,
)

from ._forensics import assert_forensics

QUESTION = "I want a refund for order ORD-5521"
ANSWER = "I have issued a partial refund of $44.99 for order ORD-5521 (refund REF-3301)."
SYSTEM = "You are the refund agent of an online shop. Use the tools; refunds follow the refund policy."
CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
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
    source="refund-policy",
)

ORDERS: dict[str, dict[str, Any]] = {"ORD-5521": {"status": "delivered", "amount": 89.99, "items": ["running shoes"]}}
REFUNDS: dict[str, dict[str, Any]] = {}
"""Refunds issued, by idempotency key (a retried call refunds once)."""


@journaled
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    if order_id not in ORDERS:
        raise KeyError(f"no order {order_id}")
    return {"order_id": order_id, **ORDERS[order_id]}


@journaled
def check_refund_policy(order_id: str, reason: str) -> dict[str, Any]:
    """What refund the policy allows for an order."""
    return {"eligible": True, "max_refund": round(ORDERS[order_id]["amount"] / 2, 2), "type": "partial"}


@journaled(side_effecting=True)
def issue_refund(order_id: str, amount: float, idempotency_key: str = "") -> dict[str, Any]:
    """Issue a refund (a side effect, de-duplicated by its idempotency key)."""
    refund = REFUNDS.setdefault(idempotency_key, {"refund_id": f"REF-{3301 + len(REFUNDS)}", "status": "processed"})
    return {**refund, "amount": amount}


@journaled
def delete_order(order_id: str) -> dict[str, Any]:
    """Delete an order (the policy never allows it)."""
    raise AssertionError("a denied tool must never run")


TOOLS = {tool.name: tool for tool in (lookup_order, check_refund_policy, issue_refund, delete_order)}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("lookup_order", {"order_id": "ORD-5521"}),
    ("check_refund_policy", {"order_id": "ORD-5521", "reason": "customer_request"}),
    ("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}),
]
OnHold = Callable[[ApprovalRequired], None]


def anthropic_script() -> list[Reply]:
    calls = [anthropic_tool_use(name, args, f"toolu_{i}") for i, (name, args) in enumerate(STEPS, start=1)]
    return [*calls, anthropic_reply([{"type": "text", "text": ANSWER}])]


def openai_script() -> list[Reply]:
    calls = [openai_tool_call(name, args, f"call_{i}") for i, (name, args) in enumerate(STEPS, start=1)]
    return [*calls, openai_reply({"content": ANSWER})]


def start(recorder: RunRecorder, model: str) -> RecordedRun:
    schemas = [tool.schema for tool in TOOLS.values()]
    return recorder.start(
        agent="refund-agent", input=QUESTION, model=model, instructions=SYSTEM, tools=schemas, user_id="u-7"
    )


def run_tool(name: str, arguments: dict[str, Any], on_hold: OnHold) -> tuple[str, bool]:
    """One tool call as the loop does it: (the content for the model, whether it is an error)."""
    run = current_run()
    assert run is not None
    while True:
        try:
            return json.dumps(TOOLS[name](**arguments)), False
        except ApprovalRequired as held:
            on_hold(held)  # e.g. tell a human; they approve from another process
            if run.wait_for_decision(held.call_id, timeout_s=5, poll_s=0.01).action == "require_human_approval":
                return str(held), True
        except ToolBlocked as blocked:
            return str(blocked), True
        except Exception as error:
            return f"{type(error).__name__}: {error}", True


async def arun_tool(name: str, arguments: dict[str, Any], on_hold: OnHold) -> tuple[str, bool]:
    run = current_run()
    assert run is not None
    while True:
        try:
            return json.dumps(TOOLS[name](**arguments)), False
        except ApprovalRequired as held:
            on_hold(held)
            decision = await run.wait_for_decision_async(held.call_id, timeout_s=5, poll_s=0.01)
            if decision.action == "require_human_approval":
                return str(held), True
        except ToolBlocked as blocked:
            return str(blocked), True


# ----- Anthropic: the Messages API ---------------------------------------------------------------------


def anthropic_loop(client: Any, recorder: RunRecorder, on_hold: OnHold = lambda held: None) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    tools = [tool.anthropic_tool for tool in TOOLS.values()]
    with start(recorder, CLAUDE) as run:
        while True:
            reply = client.messages.create(model=CLAUDE, max_tokens=1024, system=SYSTEM, tools=tools, messages=messages)
            messages.append({"role": "assistant", "content": reply.content})
            if reply.stop_reason != "tool_use":
                answer = "".join(block.text for block in reply.content if block.type == "text")
                run.complete(answer)
                return answer
            results = []
            for block in reply.content:
                if block.type == "tool_use":
                    content, failed = run_tool(block.name, block.input, on_hold)
                    results.append(
                        {"type": "tool_result", "tool_use_id": block.id, "content": content, "is_error": failed}
                    )
            messages.append({"role": "user", "content": results})


async def anthropic_aloop(client: Any, recorder: RunRecorder, on_hold: OnHold = lambda held: None) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    tools = [tool.anthropic_tool for tool in TOOLS.values()]
    with start(recorder, CLAUDE) as run:
        while True:
            reply = await client.messages.create(
                model=CLAUDE, max_tokens=1024, system=SYSTEM, tools=tools, messages=messages
            )
            messages.append({"role": "assistant", "content": reply.content})
            if reply.stop_reason != "tool_use":
                answer = "".join(block.text for block in reply.content if block.type == "text")
                run.complete(answer)
                return answer
            results = []
            for block in reply.content:
                if block.type == "tool_use":
                    content, failed = await arun_tool(block.name, block.input, on_hold)
                    results.append(
                        {"type": "tool_result", "tool_use_id": block.id, "content": content, "is_error": failed}
                    )
            messages.append({"role": "user", "content": results})


# ----- OpenAI: Chat Completions ------------------------------------------------------------------------


def openai_loop(client: Any, recorder: RunRecorder, on_hold: OnHold = lambda held: None) -> str:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    tools = [tool.openai_tool for tool in TOOLS.values()]
    with start(recorder, GPT) as run:
        while True:
            completion = client.chat.completions.create(model=GPT, messages=messages, tools=tools)
            message = completion.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                run.complete(message.content)
                return str(message.content)
            for call in message.tool_calls:
                content, _ = run_tool(call.function.name, json.loads(call.function.arguments), on_hold)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})


async def openai_aloop(client: Any, recorder: RunRecorder, on_hold: OnHold = lambda held: None) -> str:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    tools = [tool.openai_tool for tool in TOOLS.values()]
    with start(recorder, GPT) as run:
        while True:
            completion = await client.chat.completions.create(model=GPT, messages=messages, tools=tools)
            message = completion.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                run.complete(message.content)
                return str(message.content)
            for call in message.tool_calls:
                content, _ = await arun_tool(call.function.name, json.loads(call.function.arguments), on_hold)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})


# ----- what every integration must give ----------------------------------------------------------------


def check_forensics(journal: Journal, state: RunState, *, first: str, refund: str) -> None:
    """What every integration must give (the timeline, state at N, lineage, metrics, verify: assert_forensics),
    and what this loop's run must show in them."""
    assert_forensics(journal, state.run_id, question=QUESTION)
    events = journal.read_stream(state.stream_id)
    entries = timeline(journal, state.stream_id)
    text = " ".join(f"{entry.explanation.title} {entry.explanation.summary}" for entry in entries)
    assert "issue_refund" in text and "approved" in text.lower()
    lookup_done = next(e.version for e in events if e.type == "ToolExecuted" and e.data["tool"] == "lookup_order")
    then = Repository(journal, RunState).load_at_version(state.stream_id, lookup_done)
    assert then.calls[first].output["amount"] == 89.99 and refund not in then.calls
    final = next(e for e in events if e.type == "ResponseFinalized")
    chain = causes(journal, final.event_id)
    assert chain.root.type == "RunStarted" and chain.root.data["input"] == QUESTION
    assert [e.type for e in chain.events][:3] == ["ResponseFinalized", "ResponseDrafted", "ModelCalled"]
    assert "ObservationCaptured" in [e.type for e in chain.events]
    [row] = list_runs(journal)
    assert (row.run_id, row.status, row.user_id) == (state.run_id, "completed", "u-7")
    [group] = metrics(journal, by="model", since=datetime.now(UTC) - timedelta(hours=1))
    assert group.runs == 1


def approver(journal: Journal, seen: list[str]) -> Any:
    """The human: approves a held call from another thread, on a journal of its own (as another process,
    `agentjournal approvals approve`, would), while the loop waits for the decision."""

    def decide(approval_id: str) -> None:
        with Journal.open(journal.url) as theirs:
            approve(theirs, approval_id, by="alice", reason="within the policy's half-price refund")

    def on_hold(held: ApprovalRequired) -> None:
        seen.append(held.approval_id)
        threading.Thread(target=decide, args=(held.approval_id,)).start()

    return on_hold


def the_run(journal: Journal) -> RunState:
    [stream] = [info.stream_id for info in journal.streams("run-")]
    return Repository(journal, RunState).load(stream)
