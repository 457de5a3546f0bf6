"""Replay a recorded SDK run: the agents' code runs again, the model and the tools answer from the recording.

`replay(journal, run_id, agent)` runs the SDK's `Runner.run` on copies of the agents (their
instructions, guardrails and handoffs as they are now) with a ReplayModel, and with each function
tool answering its recorded output (a call that failed raises again, so the SDK tells the model
what it told it then); the policy's denials and the humans' decisions are replayed as recorded.
Nothing runs for real and nothing is written: tracing is off for the replay, and the journal is
only read. Each model request must be the recorded one, so a change to an agent (its
instructions, its tools, what it sends) raises DivergenceError at the first request it alters,
saying what changed.

What a replay cannot do: replay a streamed run, a reply recorded from a trace span (a model that
was not wrapped in a RecordingModel), or the inside of a tool (the tool's body does not run).
Handoff callbacks (`on_handoff`) and guardrail functions are the agents' code, and run again.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import Any

from agents.tool_context import ToolContext
from agents.tool_guardrails import ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolInputGuardrailData

from agentjournal.integrations.openai_agents._common import answer_text, denied_message, rejected_message
from agentjournal.integrations.openai_agents.models import ReplayModel
from agentjournal.integrations.openai_agents.tool_guard import POLICY_GUARDRAIL, RESULT_GUARDRAIL, agents_of
from agentjournal.integrations.recorder import RecorderError
from agentjournal.journal import Journal
from agentjournal.journal.errors import AgentJournalError
from agentjournal.runs import RunState, ToolCall, run_stream, upcast
from agents import Agent, FunctionTool, Handoff, RunConfig, Runner

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    run_id: str
    final_output: Any
    """What the replayed agents answered (None when the recording stops waiting for a human)."""
    recorded_answer: str | None
    model_calls: int
    tool_calls: int
    waiting: bool = False
    """The recording ends waiting for a human, and so does the replay."""

    @property
    def same_answer(self) -> bool:
        return self.final_output is not None and answer_text(self.final_output) == self.recorded_answer


class RecordedToolError(AgentJournalError):
    """A tool call that failed in the recording fails again in the replay (the SDK tells the model as it did)."""


class _Recorded:
    """What the recording says about each call: the run's state, the policy's reasons, what failures told."""

    def __init__(self, journal: Journal, run_id: str) -> None:
        events = [upcast(event) for event in journal.read_stream(run_stream(run_id))]
        if not events or events[0].type != "RunStarted":
            raise RecorderError(f"there is no run {run_id!r} in {journal.url}")
        self.run_id = run_id
        self.state = RunState(run_stream(run_id))
        for event in events:
            self.state.apply(event)
        self.model = ReplayModel(run_id, [event.data for event in events if event.type == "ModelCalled"])
        self.reasons = {e.data["call_id"]: str(e.data["reason"]) for e in events if e.type == "PolicyEvaluated"}
        self.failures = {e.data["call_id"]: str(e.data["error"]) for e in events if e.type == "ToolFailed"}
        self.shown = {
            e.data["call_id"]: e.data["model_output"]
            for e in events
            if e.type == "ToolExecuted" and isinstance(e.data.get("model_output"), str)
        }
        self.divergence: Exception | None = None
        self.tool_calls = 0

    def call(self, call_id: str, tool: str, arguments: Any) -> ToolCall:
        call = self.state.calls.get(call_id)
        if call is None or call.tool != tool:
            from agentjournal.agents.replay import DivergenceError

            error = DivergenceError(
                self.run_id,
                f"tool call {call_id}",
                None if call is None else {"tool": call.tool, "arguments": call.arguments},
                {"tool": tool, "arguments": arguments},
                ["the replayed model asked for a call the recording does not have"],
            )
            self.divergence = self.divergence or error
            raise error
        return call

    def rejection(self, call: ToolCall) -> str | None:
        """What the model was told instead of the call's output, when a human or the policy refused it."""
        approval = self.state.approvals.get(str(call.approval_id)) if call.approval_id else None
        if approval is not None and approval.status == "rejected":
            return rejected_message(call.tool, approval.by, approval.reason)
        if approval is None and call.decision == "deny":
            return denied_message(call.tool, self.reasons.get(call.call_id, "denied"))
        return None


async def replay(
    journal: Journal, run_id: str, agent: Agent[Any], *, input: Any = None, context: Any = None, max_turns: int = 10
) -> ReplayResult:
    """Run `agent` again against run `run_id`'s recording (the input is the run's, unless given)."""
    recorded = _Recorded(journal, run_id.removeprefix("run-"))
    root = _replay_agents(agent, recorded)[agent.name]
    config = RunConfig(model=recorded.model, tracing_disabled=True)
    try:
        result = await Runner.run(
            root,
            input if input is not None else recorded.state.input,
            run_config=config,
            context=context,
            max_turns=max_turns,
        )
        while result.interruptions:
            state = result.to_state()
            for item in state.get_interruptions():
                call = recorded.call(str(item.call_id), str(item.tool_name), item.arguments)
                message = recorded.rejection(call)
                if message is not None:
                    state.reject(item, rejection_message=message)
                elif call.status in ("waiting_approval", "rejected") or (
                    call.approval_id is not None and recorded.state.approvals[call.approval_id].status == "pending"
                ):
                    return _result(recorded, None, waiting=True)
                else:
                    state.approve(item)
            result = await Runner.run(root, state, run_config=config)
    except Exception:
        if recorded.divergence is not None:
            raise recorded.divergence from None
        raise
    if recorded.divergence is not None:
        raise recorded.divergence
    if recorded.model.remaining:
        from agentjournal.agents.replay import DivergenceError

        used = recorded.model.used
        raise DivergenceError(
            run_id,
            f"the end of the run (after model call {used})",
            {"model calls": len(recorded.model.calls)},
            {"model calls": used},
            [f"the replay answered after {used} model call(s); the recording has {len(recorded.model.calls)}"],
        )
    return _result(recorded, result.final_output)


def _result(recorded: _Recorded, final_output: Any, *, waiting: bool = False) -> ReplayResult:
    return ReplayResult(
        run_id=recorded.run_id,
        final_output=final_output,
        recorded_answer=recorded.state.final_response,
        model_calls=recorded.model.used,
        tool_calls=recorded.tool_calls,
        waiting=waiting,
    )


def _replay_agents(agent: Agent[Any], recorded: _Recorded) -> dict[str, Agent[Any]]:
    """Copies of the agents whose function tools answer from the recording, handing off to each other."""
    originals = agents_of(agent)
    clones = {
        name: each.clone(tools=[_replay_tool(t, recorded) if isinstance(t, FunctionTool) else t for t in each.tools])
        for name, each in originals.items()
    }
    for name, each in originals.items():
        clones[name].handoffs = [_replay_handoff(h, clones) for h in each.handoffs]
    return clones


def _replay_handoff(handoff: Agent[Any] | Handoff[Any, Any], clones: dict[str, Agent[Any]]) -> Any:
    if isinstance(handoff, Agent):
        return clones[handoff.name]
    original = handoff.on_invoke_handoff

    async def invoke(context: Any, arguments: str) -> Any:
        target = await original(context, arguments)
        return clones.get(target.name, target)

    copy = dataclasses.replace(handoff, on_invoke_handoff=invoke)
    target = clones.get(handoff.agent_name)
    if target is not None:
        copy._agent_ref = weakref.ref(target)
    return copy


def _replay_tool(tool: FunctionTool, recorded: _Recorded) -> FunctionTool:
    async def invoke(context: ToolContext[Any], arguments: str) -> Any:
        call = recorded.call(context.tool_call_id, tool.name, arguments)
        recorded.tool_calls += 1
        if call.status == "executed":
            return recorded.shown.get(call.call_id, call.output)
        if call.call_id in recorded.failures:
            raise RecordedToolError(recorded.failures[call.call_id])
        from agentjournal.agents.replay import DivergenceError

        error = DivergenceError(
            recorded.run_id,
            f"tool call {call.call_id}",
            {"tool": call.tool, "status": call.status},
            {"tool": tool.name, "status": "run"},
            [f"the recording never ran this call ({call.status}); the replay runs it"],
        )
        recorded.divergence = recorded.divergence or error
        raise error

    async def needs_approval(context: Any, params: dict[str, Any], call_id: str) -> bool:
        call = recorded.state.calls.get(call_id)
        return call is not None and call.approval_id is not None

    async def check(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        call = recorded.state.calls.get(data.context.tool_call_id)
        message = recorded.rejection(call) if call is not None else None
        if message is not None:
            return ToolGuardrailFunctionOutput.reject_content(message)
        return ToolGuardrailFunctionOutput.allow()

    theirs_in = [g for g in tool.tool_input_guardrails or () if g is not POLICY_GUARDRAIL]
    theirs_out = [g for g in tool.tool_output_guardrails or () if g is not RESULT_GUARDRAIL]
    return dataclasses.replace(
        tool,
        on_invoke_tool=invoke,
        needs_approval=needs_approval,
        tool_input_guardrails=[ToolInputGuardrail(check, name="agentjournal_replayed_policy"), *theirs_in],
        tool_output_guardrails=theirs_out,
    )
