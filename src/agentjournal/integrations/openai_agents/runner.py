"""`AgentsJournal`: an SDK run (`Runner.run`) as one contract run, under policy, with durable approvals.

    journaled = AgentsJournal(journal, policy=policy)
    agents.add_trace_processor(journaled.processor)        # once per process
    result = await journaled.run(triage, "I want a refund for ORD-5521", user_id="u-7")

`run` starts the contract run (RunStarted with the user's message), guards the agents' tools, puts
a RecordingModelProvider in front of the run's model provider, and calls the SDK's `Runner.run`
with the recording in the ambient context, where the processor, the guards and the models find it.
When the SDK stops for approval, the interruptions are decided: calls the policy allowed or
denied (the SDK held them without asking it) are approved or rejected in the SDK's state and the
run goes on at once; a call that waits for a human makes the run durable: the SDK's
`RunState.to_json()` is saved in the journal (stream `openai-agents-<run_id>`), then the
ApprovalRequested events are written, so a request never exists without the state to resume it.
`agentjournal approvals approve` decides it, from any process; `resume(agent, run_id)` in any
process loads the state (after checking its hash chain), applies the decisions and runs the rest.

A run that fails (the SDK raised, a guardrail tripped, the journal could not be written) ends
with RunAborted and the reason, and the error is raised; when the journal itself is unreachable
the abort cannot be written either, and the raised error says so. Nothing is kept in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Collection
from typing import Any

from agents.exceptions import (
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
    ToolInputGuardrailTripwireTriggered,
)
from agents.models import get_default_model

import agents
from agentjournal.agents.policy import Policy
from agentjournal.integrations.openai_agents._common import (
    ApprovalPending,
    RecordingFailed,
    RunMoved,
    answer_text,
    denied_message,
    input_text,
    parse_arguments,
    reset_recording,
    set_recording,
    sha256,
)
from agentjournal.integrations.openai_agents._recording import Recording
from agentjournal.integrations.openai_agents._request import tool_specs
from agentjournal.integrations.openai_agents.models import RecordingModel, RecordingModelProvider, model_name
from agentjournal.integrations.openai_agents.processor import JournalTracingProcessor
from agentjournal.integrations.openai_agents.replaying import ReplayResult, replay
from agentjournal.integrations.openai_agents.tool_guard import POLICY_GUARDRAIL, PolicyApproval, guard
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder
from agentjournal.journal import Journal, NewEvent
from agentjournal.journal.context import current_context
from agentjournal.journal.ids import uuid7
from agentjournal.journal.location import redact
from agentjournal.runs import RunState, ToolCall, run_stream
from agentjournal.runs import events as ev
from agents import Agent, FunctionTool, Model, RunConfig, Runner, RunResult, ToolApprovalItem
from agents import RunState as SDKRunState

__all__ = ["STATE_SAVED", "AgentsJournal", "state_stream"]

STATE_SAVED = "AgentsRunStateSaved"
"""The event that holds the SDK's RunState of an interrupted run, on `openai-agents-<run_id>`."""


def state_stream(run_id: str) -> str:
    return "openai-agents-" + run_id.removeprefix("run-")


class AgentsJournal:
    """Records OpenAI Agents SDK runs in a journal, under a policy; resumes and replays them."""

    def __init__(
        self,
        journal: Journal,
        *,
        policy: Policy | None = None,
        approval_ttl_s: float | None = 24 * 3600,
        side_effects: Collection[str] = (),
        record_models: bool = True,
        processor: JournalTracingProcessor | None = None,
        context_serializer: Callable[[Any], Any] | None = None,
        context_deserializer: Callable[[Any], Any] | None = None,
    ) -> None:
        self.journal = journal
        self.policy = policy
        self.approval_ttl_s = approval_ttl_s
        self.side_effects = frozenset(side_effects)
        """Tools that change the world: each call is claimed in the journal, with everything before it,
        before it runs (as is every call a human approved); other tools' calls are written with the
        model's next reply."""
        self.record_models = record_models
        """Wrap the run's models in RecordingModel (replies recorded with their SDK items, replayable);
        False records the generation/response spans instead."""
        self.processor = processor or JournalTracingProcessor()
        self.recorder = RunRecorder(journal, policy=policy, approval_ttl_s=approval_ttl_s)
        self.context_serializer = context_serializer
        self.context_deserializer = context_deserializer

    # ----- running -------------------------------------------------------------------------------

    async def run(
        self,
        agent: Agent[Any],
        input: str | list[Any],
        *,
        run_id: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        route: str | None = None,
        agent_version: str = "1",
        **options: Any,
    ) -> RunResult:
        """`Runner.run(agent, input, **options)` recorded as one run. Returns the SDK's result; when it has
        `interruptions`, the run waits for a human (`agentjournal approvals list`) and `resume` continues it."""
        agents_by_name = guard(agent, record_models=self.record_models)
        run_config = _run_config(options.get("run_config"))
        instructions = agent.instructions if isinstance(agent.instructions, str) else ""
        run_id = (run_id or uuid7()).removeprefix("run-")
        context = current_context()
        started = ev.RunStarted(
            run_id=run_id,
            agent=agent.name,
            agent_version=agent_version,
            model=model_name(run_config.model or agent.model or get_default_model()),
            prompt_version=hashlib.sha256(instructions.encode()).hexdigest(),
            tool_schemas={spec["name"]: sha256(spec) for spec in tool_specs(agent.tools)},
            input=input_text(input),
            policy_version=self.policy.version if self.policy else None,
            route=route,
            user_id=user_id,
        )
        recorded = RecordedRun(self.recorder, RunState(run_stream(run_id)), tenant_id=tenant_id or context.tenant_id)
        first = uuid7()
        recorded.correlation_id = context.correlation_id or first
        recording = Recording(self, recorded, agents_by_name)
        await recording.start(started, first)
        return await self._drive(recording, agent, input, options)

    async def resume(self, agent: Agent[Any], run_id: str, *, context: Any = None, **options: Any) -> RunResult:
        """Continue a run that waited for a human, in this process: its SDK state comes from the journal,
        the humans' decisions are applied (an approved call runs once: it is claimed first)."""
        agents_by_name = guard(agent, record_models=self.record_models)
        recorded = self.recorder.resume(run_id)
        saved = self.saved_state(recorded.run_id)
        if saved is None:
            raise RecorderError(
                f"run {recorded.run_id} has no saved SDK state in {redact(self.journal.url)}: agentjournal did not "
                "stop it for a human, or its process ended before saving the state"
            )
        state = await SDKRunState.from_json(
            agent, saved["state"], context_override=context, context_deserializer=self.context_deserializer
        )
        recording = Recording(self, recorded, agents_by_name, sent=int(saved.get("sent_items") or 0))
        waiting = self._decide(recording, state)
        if waiting:
            ids = recording.request_approvals([str(item.call_id) for item in waiting])
            await recording.settle()
            raise ApprovalPending(recording.run_id, ids)
        if context is not None:
            options["context"] = context
        return await self._drive(recording, agent, state, options)

    async def replay(self, agent: Agent[Any], run_id: str, **options: Any) -> ReplayResult:
        """`replaying.replay` on this journal: run `agent` again, answered from run `run_id`'s recording."""
        return await replay(self.journal, run_id, agent, **options)

    def saved_state(self, run_id: str) -> dict[str, Any] | None:
        """The SDK state saved when run `run_id` last stopped for a human (its stream's hash chain checked)."""
        stream = state_stream(run_id)
        events = self.journal.read_stream(stream, backwards=True, limit=1)
        if not events:
            return None
        report = self.journal.verify(stream)
        if not report.ok:
            raise RecorderError(
                f"the saved SDK state of run {run_id} does not verify ({report.first_broken}); not resumed"
            )
        return dict(events[0].data)

    async def _drive(self, recording: Recording, agent: Agent[Any], start: Any, options: dict[str, Any]) -> RunResult:
        options = dict(options)
        given = options.pop("run_config", None)
        run_config = self._recording_config(_run_config(given))
        token = set_recording(recording)
        recording.spans.enter()
        failure: BaseException | None = None
        try:
            current = start
            while True:
                result = await Runner.run(agent, current, run_config=run_config, **options)
                recording.check()
                if not result.interruptions:
                    recording.finish(answer_text(result.final_output))
                    await recording.settle()
                    return result
                state = result.to_state()
                waiting = self._decide(recording, state)
                if waiting:
                    await self._hold(recording, state, waiting)
                    return result
                current = state  # the policy decided every held call: go on at once
        except Exception as error:
            failure = error
            ours = await self._stop(recording, error)
            if ours is None or ours is error:
                raise
            raise ours from error
        finally:
            reset_recording(token)
            recording.spans.exit(failure)
            if given is None:  # the provider is ours (as the SDK's Runner closes the one it makes)
                await run_config.model_provider.aclose()

    def _recording_config(self, run_config: RunConfig) -> RunConfig:
        if not self.record_models:
            return run_config
        changes: dict[str, Any] = {}
        if isinstance(run_config.model, Model) and not isinstance(run_config.model, RecordingModel):
            changes["model"] = RecordingModel(run_config.model)
        if not isinstance(run_config.model_provider, RecordingModelProvider):
            changes["model_provider"] = RecordingModelProvider(run_config.model_provider)
        return dataclasses.replace(run_config, **changes) if changes else run_config

    # ----- interruptions -------------------------------------------------------------------------

    def _decide(self, recording: Recording, state: SDKRunState[Any, Any]) -> list[ToolApprovalItem]:
        """Apply the journal's decisions to the SDK's held calls; returns those that still wait for a human."""
        waiting: list[ToolApprovalItem] = []
        for item in state.get_interruptions():
            call_id = item.call_id
            if not call_id:
                raise RecorderError(f"run {recording.run_id}: the SDK holds a call with no call id ({item.tool_name})")
            call = recording.state.calls.get(call_id)
            if call is None:  # the SDK held it without asking the policy: decide it now
                tool = _function_tool(recording, str(item.tool_name))
                wants = not isinstance(tool, FunctionTool) or not (
                    isinstance(tool.needs_approval, PolicyApproval) and tool.needs_approval.original is False
                )
                arguments = parse_arguments(item.arguments)
                call = recording.propose(str(item.tool_name), arguments, call_id, tool_wants_approval=wants)
            if call.status == "waiting_approval":
                approval = recording.state.approvals.get(str(call.approval_id)) if call.approval_id else None
                if approval is not None and approval.expired():
                    recording.expire(call)
                    state.reject(item, rejection_message=recording.rejected(recording.state.calls[call_id]))
                else:
                    waiting.append(item)
            elif call.status in ("approved", "proposed"):
                state.approve(item)
            elif call.status == "rejected" or (call.status == "refused" and call.approval_id is not None):
                state.reject(item, rejection_message=recording.rejected(call))
            elif call.status == "refused":
                state.reject(item, rejection_message=denied_message(call.tool, self._why_denied(call)))
            else:
                where = f"run {recording.run_id}: the SDK holds call {call_id} of {call.tool}"
                raise RecorderError(f"{where}, which has already {call.status}")
        return waiting

    def _why_denied(self, call: ToolCall) -> str:
        if call.decided_id is None:
            return "denied"
        return str(self.journal.get_event(call.decided_id).data.get("reason") or "denied")

    async def _hold(self, recording: Recording, state: SDKRunState[Any, Any], waiting: list[ToolApprovalItem]) -> None:
        """Make the wait durable: the SDK's state first, then the approval requests that point at it."""
        await recording.settle()
        saved = {
            "run_id": recording.run_id,
            "state": state.to_json(context_serializer=self.context_serializer),
            "sent_items": recording.sent,
            "interruptions": [{"call_id": item.call_id, "tool": item.tool_name} for item in waiting],
            "sdk_version": agents.__version__,
        }
        event = NewEvent(
            STATE_SAVED,
            saved,
            actor="openai-agents",
            tenant_id=recording.run.tenant_id,
            correlation_id=recording.run.correlation_id,
            causation_id=recording.state.last_event_id,
        )
        try:
            self.journal.append(state_stream(recording.run_id), [event])
        except Exception as exc:
            raise recording.fail(
                RecordingFailed(
                    f"agentjournal could not save the SDK state of run {recording.run_id} "
                    f"({type(exc).__name__}: {exc}); the run cannot wait for a human"
                )
            ) from exc
        recording.request_approvals([str(item.call_id) for item in waiting])
        await recording.settle()

    # ----- failures ------------------------------------------------------------------------------

    async def _stop(self, recording: Recording, error: Exception) -> RecorderError | None:
        """End the run with RunAborted and the reason (unless another process owns it now); what to raise."""
        ours = _ours(error)
        if isinstance(ours, RunMoved) or recording.state.finished:
            return ours
        reason, kind = _why(error, ours)
        try:
            recording.abort(reason, kind)
            await recording.settle()
        except Exception as abort_error:
            failure = ours or RecordingFailed(f"run {recording.run_id} failed: {reason}")
            failure.add_note(f"agentjournal could not record that the run aborted either: {abort_error}")
            return failure
        return ours


def _run_config(value: Any) -> RunConfig:
    if value is None:
        return RunConfig()
    config = RunConfig(**value) if isinstance(value, dict) else value
    if not isinstance(config, RunConfig):
        raise TypeError(f"run_config must be an agents.RunConfig, got {type(value).__name__}")
    if config.tracing_disabled:
        raise RecorderError(
            "agentjournal records handoffs and guardrails from the SDK's trace spans: "
            "run with tracing on (RunConfig(tracing_disabled=False)); "
            "agents.set_trace_processors([journaled.processor]) keeps traces away from OpenAI"
        )
    return config


def _function_tool(recording: Recording, name: str) -> Any:
    for agent in recording.agents.values():
        for tool in agent.tools:
            if getattr(tool, "name", None) == name:
                return tool
    return None


def _ours(error: BaseException) -> RecorderError | None:
    """Our error inside an SDK error (the SDK wraps a tool hook's exception in UserError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, RecorderError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _why(error: Exception, ours: RecorderError | None) -> tuple[str, str]:
    if ours is not None:
        return str(ours), type(ours).__name__
    if isinstance(error, InputGuardrailTripwireTriggered):
        return f"input guardrail {error.guardrail_result.guardrail.get_name()} tripped on the user's message", type(
            error
        ).__name__
    if isinstance(error, OutputGuardrailTripwireTriggered):
        return f"output guardrail {error.guardrail_result.guardrail.get_name()} blocked the answer", type(
            error
        ).__name__
    if isinstance(error, ToolInputGuardrailTripwireTriggered):
        if error.guardrail is POLICY_GUARDRAIL:
            return str(error.output.output_info), "policy"
        return f"tool input guardrail {error.guardrail.get_name()} stopped the run", type(error).__name__
    if isinstance(error, MaxTurnsExceeded):
        return f"the SDK stopped the run: {error.message}", type(error).__name__
    return f"the SDK run failed: {type(error).__name__}: {error}", type(error).__name__
