"""The policy in front of every function tool, through the SDK's own hooks.

`guard(agent)` walks the agent and every agent it can hand off to, and gives each `FunctionTool`:

- `needs_approval`: the SDK asks it before it runs a call. It records the call (ToolProposed) and
  the policy's decision (PolicyEvaluated) and answers True for `require_human_approval`, so the SDK
  stops the run with an interruption that `AgentsJournal` turns into a durable approval. A tool's
  own `needs_approval` is kept: when it asks for a human, so does the record.
- a tool input guardrail, which runs just before the tool's body: a denied call is rejected (the
  model reads why, the body never runs), an approved call is claimed first (a second process
  resuming the run loses the claim and never runs it), a call that already ran is refused.
- a tool output guardrail, which records what the body returned (ToolExecuted, or ToolFailed when
  the SDK turned an exception into an error message for the model).

The hooks find the run in the ambient context: outside `AgentsJournal.run` / `resume` they step
aside (the tool's own `needs_approval` still applies), so guarding an agent once is harmless.
Guarding changes the tools and agents in place and is idempotent; models given as `Model` objects
are wrapped in a RecordingModel.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from typing import Any

import orjson
from agents.tool_guardrails import (
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
    ToolOutputGuardrail,
    ToolOutputGuardrailData,
)
from agents.tracing import get_current_span

from agentjournal.integrations.openai_agents._common import (
    current_recording,
    denied_message,
    error_text,
    parse_arguments,
)
from agentjournal.integrations.openai_agents._recording import plain_output
from agentjournal.integrations.openai_agents.models import RecordingModel
from agentjournal.integrations.recorder import RecorderError
from agentjournal.journal.envelope import canonical_json
from agents import Agent, FunctionTool, Handoff, ItemHelpers, Model, RunContextWrapper

__all__ = ["POLICY_GUARDRAIL", "RESULT_GUARDRAIL", "agents_of", "guard", "guard_tool"]


class PolicyApproval:
    """A function tool's `needs_approval`: the policy decides (and the tool's own setting still asks)."""

    def __init__(self, tool: str, original: Any) -> None:
        self.tool = tool
        self.original = original

    async def __call__(self, context: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
        wants = await _asks_for_approval(self.original, context, params, call_id)
        recording = current_recording()
        if recording is None:
            return wants
        recording.check()
        call = recording.propose(self.tool, dict(params), call_id, tool_wants_approval=wants)
        if not recording.owner.record_models:  # no RecordingModel writes at each reply: write the step here
            await recording.settle()
        return call.status == "waiting_approval"


async def _asks_for_approval(
    setting: Any, context: RunContextWrapper[Any], params: dict[str, Any], call_id: str
) -> bool:
    if isinstance(setting, bool):
        return setting
    answer = setting(context, params, call_id)
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


async def _check_policy(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    recording = current_recording()
    if recording is None:
        return ToolGuardrailFunctionOutput.allow()
    recording.check()
    context = data.context
    call = recording.state.calls.get(context.tool_call_id)
    if call is None:  # the SDK did not ask needs_approval (it held an approval of its own): decide now
        call = recording.propose(context.tool_name, parse_arguments(context.tool_arguments), context.tool_call_id)
    claimed = call.status == "approved" or (call.status == "proposed" and call.tool in recording.owner.side_effects)
    if claimed:  # written, with everything before it, before the tool runs: a second process loses here
        tool = next((t for t in data.agent.tools if getattr(t, "name", None) == call.tool), None)
        recording.claim(call, getattr(tool, "timeout_seconds", None))
        await recording.settle()
    if call.status in ("proposed", "approved"):
        recording.started[call.call_id] = time.perf_counter()
        return ToolGuardrailFunctionOutput.allow()
    if call.status == "rejected" or (call.status == "refused" and call.approval_id is not None):
        return ToolGuardrailFunctionOutput.reject_content(recording.rejected(call))
    if call.status == "refused":
        reason = recording.reasons.get(call.call_id, "denied")
        return ToolGuardrailFunctionOutput.reject_content(denied_message(call.tool, reason))
    if call.status == "waiting_approval":
        execution = context.run_config.tool_execution if context.run_config is not None else None
        if execution is not None and execution.pre_approval_tool_input_guardrails:
            return ToolGuardrailFunctionOutput.allow()  # checked before the SDK's approval step, which holds it
        why = f"agentjournal's policy holds {call.tool} for a human, but the SDK was about to run it"
        return ToolGuardrailFunctionOutput.raise_exception(output_info=why)
    why = f"call {call.call_id} of {call.tool} has already {call.status}; agentjournal does not run a call twice"
    return ToolGuardrailFunctionOutput.raise_exception(output_info=why)


async def _record_result(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
    recording = current_recording()
    if recording is None:
        return ToolGuardrailFunctionOutput.allow()
    recording.check()
    call = recording.state.calls.get(data.context.tool_call_id)
    if call is None or call.status not in ("proposed", "approved", "claimed"):
        return ToolGuardrailFunctionOutput.allow()
    began = recording.started.pop(call.call_id, None)
    latency_ms = (time.perf_counter() - began) * 1000 if began is not None else 0.0
    span = get_current_span()
    text = error_text(span.error if span is not None else None)
    if text is not None:
        recording.tool_result(call, data.output, error=text, latency_ms=latency_ms)
        return ToolGuardrailFunctionOutput.allow()
    model_output = None
    if not isinstance(data.output, str):  # a string reaches the model as it is stored
        tool = next((t for t in data.agent.tools if getattr(t, "name", None) == call.tool), None)
        schema = getattr(tool, "output_json_schema", None)
        shown = _shown(data.context.tool_call, data.output, schema)
        stored = orjson.loads(canonical_json(plain_output(data.output)))  # as a reader (a replay) gets it back
        again = _shown(data.context.tool_call, stored, schema)
        model_output = shown if shown is not None and shown != again else None
    recording.tool_result(call, data.output, latency_ms=latency_ms, model_output=model_output)
    return ToolGuardrailFunctionOutput.allow()


def _shown(tool_call: Any, output: Any, schema: dict[str, Any] | None) -> str | None:
    """The text the SDK sends the model for `output` (None when it is not text, or cannot be told)."""
    if tool_call is None:
        return None
    try:
        converted = ItemHelpers.tool_call_output_item(tool_call, output, output_json_schema=schema)["output"]
    except Exception:
        return None
    return converted if isinstance(converted, str) else None


POLICY_GUARDRAIL: ToolInputGuardrail[Any] = ToolInputGuardrail(_check_policy, name="agentjournal_policy")
RESULT_GUARDRAIL: ToolOutputGuardrail[Any] = ToolOutputGuardrail(_record_result, name="agentjournal_record")


def guard_tool(tool: FunctionTool) -> FunctionTool:
    """Put the policy in front of one function tool (in place; again is a no-op)."""
    if isinstance(tool.needs_approval, PolicyApproval):
        return tool
    tool.needs_approval = PolicyApproval(tool.name, tool.needs_approval)
    tool.tool_input_guardrails = [POLICY_GUARDRAIL, *(tool.tool_input_guardrails or [])]
    tool.tool_output_guardrails = [RESULT_GUARDRAIL, *(tool.tool_output_guardrails or [])]
    return tool


def agents_of(agent: Agent[Any]) -> dict[str, Agent[Any]]:
    """The agent and every agent reachable by handoffs, by name (names must be unique, as the SDK's RunState needs)."""
    found: dict[str, Agent[Any]] = {}
    queue: deque[Agent[Any]] = deque([agent])
    while queue:
        current = queue.popleft()
        known = found.get(current.name)
        if known is current:
            continue
        if known is not None:
            raise RecorderError(
                f"two different agents are named {current.name!r}: a run's record (and the SDK's RunState) "
                "tells agents apart by name; rename one"
            )
        found[current.name] = current
        for handoff in current.handoffs:
            if isinstance(handoff, Agent):
                queue.append(handoff)
                continue
            target = _handoff_target(handoff)
            if target is None:
                raise RecorderError(
                    f"agent {current.name!r}: agentjournal cannot reach the agent its handoff "
                    f"{handoff.tool_name!r} leads to, so that agent's tools would run outside the policy; "
                    "build the handoff with agents.handoff(agent) or list the agent itself"
                )
            queue.append(target)
    return found


def _handoff_target(handoff: Handoff[Any, Any]) -> Agent[Any] | None:
    ref = getattr(handoff, "_agent_ref", None)
    target = ref() if ref is not None else None
    return target if isinstance(target, Agent) else None


def guard(agent: Agent[Any], *, record_models: bool = True) -> dict[str, Agent[Any]]:
    """Guard every function tool of `agent` and of the agents it hands off to; wrap their `Model` objects
    in a RecordingModel (when `record_models`). Returns the agents by name."""
    agents = agents_of(agent)
    for each in agents.values():
        for tool in each.tools:
            if isinstance(tool, FunctionTool):
                guard_tool(tool)
        if record_models and isinstance(each.model, Model) and not isinstance(each.model, RecordingModel):
            each.model = RecordingModel(each.model)
    return agents
