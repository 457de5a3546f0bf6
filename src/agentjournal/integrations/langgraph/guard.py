"""The policy in front of every tool call a LangGraph ToolNode runs: `ToolNode(tools, wrap_tool_call=saver.guard)`.

For each call the guard records the model's reply (if the run view has not yet: the checkpoint that holds it
may still be on its way) and the proposal, asks the saver's policy, and records its decision in the run:

- allow: the tool runs;
- deny: the tool does not run; the model gets an error ToolMessage naming the rule;
- require_human_approval: a durable approval (`agentjournal approvals approve <id>` decides it, from any
  process) and a LangGraph `interrupt()`, so the graph stops and its state is saved. Resume it with
  `graph.invoke(Command(resume=True), config)` once a human decided: an approved call is claimed and runs,
  a rejected one does not; still undecided, the graph stops again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, ToolMessage
from langgraph.types import interrupt

from agentjournal.agents.decider import approval_id_for, arguments_hash
from agentjournal.integrations.recorder import RecordedRun, RecorderError, ToolDecision
from agentjournal.runs import events as ev

if TYPE_CHECKING:
    from agentjournal.integrations.langgraph.runs import RunView
    from agentjournal.integrations.langgraph.saver import JournalSaver

__all__ = ["aguard_tool_call", "guard_tool_call"]


def guard_tool_call(saver: JournalSaver, request: Any, execute: Any) -> Any:
    call = request.tool_call
    while True:
        decision = decide(saver, request)
        if decision.action == "allow":
            return execute(request)
        if decision.action == "deny":
            return _refusal(call, decision)
        _wait_for_human(call, decision)


async def aguard_tool_call(saver: JournalSaver, request: Any, execute: Any) -> Any:
    call = request.tool_call
    while True:
        decision = await asyncio.to_thread(decide, saver, request)
        if decision.action == "allow":
            return await execute(request)
        if decision.action == "deny":
            return _refusal(call, decision)
        _wait_for_human(call, decision)


def _wait_for_human(call: dict[str, Any], decision: ToolDecision) -> None:
    """Stop the graph (its state is saved) until the application resumes it; then decide again."""
    interrupt(
        {
            "approval_id": decision.approval_id,
            "tool": call["name"],
            "arguments": call.get("args") or {},
            "reason": decision.reason,
            "resume": "decide with `agentjournal approvals approve|reject <approval_id>`, then "
            "graph.invoke(Command(resume=True), config)",
        }
    )


def _refusal(call: dict[str, Any], decision: ToolDecision) -> ToolMessage:
    rule = f" ({decision.rule})" if decision.rule else ""
    return ToolMessage(
        content=f"The call to {call['name']} was refused{rule}: {decision.reason}",
        tool_call_id=call["id"],
        name=call["name"],
        status="error",
    )


def decide(saver: JournalSaver, request: Any) -> ToolDecision:
    """The policy's decision about the request's call, recorded in the thread's open run (once per call)."""
    policy = saver.policy
    if policy is None:
        raise ValueError("saver.guard needs a policy: JournalSaver(journal, policy=Policy.load(...))")
    if not saver.runs:
        raise ValueError("saver.guard records decisions in the graph's run: JournalSaver(journal, runs=True)")
    call = request.tool_call
    call_id, name, arguments = str(call["id"]), str(call["name"]), dict(call.get("args") or {})
    runtime = getattr(request, "runtime", None)
    config = getattr(runtime, "config", None) or {}
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if thread_id is None:
        raise ValueError(f"the policy guard got tool call {call_id!r} without a thread (config['configurable'])")
    deadline = time.monotonic() + saver.run_wait_s
    while True:
        with saver._open(thread_id) as thread:
            view = saver._view(thread, thread_id)
            assert view is not None
            run = view.current(fresh=True)
            if run is not None:
                _record_state(view, run, request.state)
                return _decision(saver, view, run, call_id=call_id, name=name, arguments=arguments)
        if time.monotonic() > deadline:
            raise RecorderError(
                f"thread {thread_id!r}: the policy guard found no open run to record tool call {call_id!r} in "
                f"after {saver.run_wait_s:g} s; the checkpointer must save the graph's steps "
                "(durability 'sync' or 'async', not 'exit')"
            )
        time.sleep(0.005)  # the run's first checkpoint is still being saved (durability "async")


def _record_state(view: RunView, run: RecordedRun, state: Any) -> None:
    """The AI and tool messages of the state the tool node sees, recorded in order (each once)."""
    values = state if isinstance(state, dict) else getattr(state, "__dict__", {})
    for value in values.values():
        if not isinstance(value, list):
            continue
        for position, message in enumerate(value):
            if not isinstance(message, BaseMessage):
                continue
            if message.type == "ai":
                view.model_reply(run, message, None, None, conversation=value[:position])
            elif message.type == "tool":
                view.tool_reply(run, message)


def _decision(
    saver: JournalSaver, view: RunView, run: RecordedRun, *, call_id: str, name: str, arguments: dict[str, Any]
) -> ToolDecision:
    if call_id not in run.state.calls:
        run.tool_call(name, arguments, call_id=call_id)
    call = run.state.calls[call_id]
    if call.decided_id is None:
        return _evaluate(saver, run, call_id=call_id, name=name, arguments=arguments, proposed_id=call.proposed_id)
    decision = run.decision(call_id)
    if call.approval_id and decision.action == "deny" and not call.observed:
        told = ev.ObservationCaptured(
            tool=name, call_id=call_id, ok=False, error_type="rejected_by_human", error=decision.reason
        )
        run.record(told, "orchestrator", call.decided_id)
    elif decision.action == "allow" and call.status == "approved":
        run.claim(call_id, worker=f"langgraph:{view.thread_id}")
    return decision


def _evaluate(
    saver: JournalSaver, run: RecordedRun, *, call_id: str, name: str, arguments: dict[str, Any], proposed_id: str
) -> ToolDecision:
    """As RunRecorder.tool_call decides a call it just proposed (here the model's reply proposed it)."""
    assert saver.policy is not None
    decision = saver.policy.evaluate(name, arguments, run.state.run_metrics())
    evaluated = ev.PolicyEvaluated(
        tool=name, rule=decision.rule, action=decision.action, reason=decision.reason, call_id=call_id
    )
    evaluated_id = run.record(evaluated, "policy_guard", proposed_id)
    if decision.action == "deny":
        told = ev.ObservationCaptured(
            tool=name, call_id=call_id, ok=False, error_type="policy_denied", error=decision.reason
        )
        run.record(told, "orchestrator", evaluated_id)
        return ToolDecision(call_id, "deny", decision.reason, decision.rule)
    if decision.action == "require_human_approval":
        ttl = run.recorder.approval_ttl_s
        expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat(timespec="microseconds") if ttl else None
        approval_id = approval_id_for(run.run_id, call_id)
        requested = ev.ApprovalRequested(
            approval_id=approval_id,
            tool=name,
            arguments=arguments,
            arguments_hash=arguments_hash(arguments),
            expires_at=expires,
            call_id=call_id,
        )
        run.record(requested, "policy_guard", evaluated_id)
        return ToolDecision(call_id, "require_human_approval", decision.reason, decision.rule, approval_id)
    return ToolDecision(call_id, "allow", decision.reason, decision.rule)
