"""One SDK run being recorded: its contract run, what the model last asked for, and the writers.

Each writer turns one SDK moment into the contract's events and folds them into the run's state at
once (the hooks decide from that state). Writing them is one append per step: what a step did with
read-only tools waits in memory until the model's next reply, and goes with it. Before anything
leaves the process it is written first, with everything before it: the claim of a call to a tool
with a side effect (or of a call a human approved) before the tool runs, the hold for a human, the
end of the run. So a process that dies mid-step loses at most the read-only calls of that step, and
never an effect. A write that fails raises; the failure is kept (a tracing processor's exceptions
are swallowed by the SDK) and every later hook raises it again, which stops the SDK run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from agentjournal.agents.decider import approval_id_for, arguments_hash
from agentjournal.agents.driver import worker_name
from agentjournal.agents.models.prices import cost_usd
from agentjournal.agents.policy import Decision
from agentjournal.agents.tools import idempotency_key, jsonable_output
from agentjournal.integrations.openai_agents._common import (
    RecordingFailed,
    Reply,
    RunMoved,
    rejected_message,
    reply_of,
    sha256,
    text_of,
)
from agentjournal.integrations.openai_agents._request import RequestHasher, tool_specs
from agentjournal.integrations.recorder import RecordedRun, RecorderError
from agentjournal.journal import ConcurrencyError, NewEvent, StreamClosedError
from agentjournal.journal.ids import uuid7
from agentjournal.journal.location import redact
from agentjournal.runs import RunState, ToolCall, new_event, tracing
from agentjournal.runs import events as ev
from agents import FunctionTool

if TYPE_CHECKING:
    from agentjournal.integrations.openai_agents.runner import AgentsJournal
    from agents import Agent

__all__ = ["Recording"]

CLAIM_GRACE_S = 300.0
"""How long a claim outlives its tool's time-out (or stands alone, for a tool without one)."""


class Recording:
    """The SDK run in progress: which contract run it is, and what the SDK's hooks have told it so far."""

    def __init__(
        self, owner: AgentsJournal, run: RecordedRun, agents: Mapping[str, Agent[Any]], *, sent: int = 0
    ) -> None:
        self.owner = owner
        self.run = run
        self.agents = dict(agents)
        self.hasher = RequestHasher()
        self.sent = sent
        """How many input items earlier model requests sent (the rest of a request is new)."""
        self.last_calls: list[dict[str, Any]] = []
        """The tool calls (handoffs included) of the model's last reply."""
        self.handoff_tools: dict[str, str] = {}
        """Handoff tool name -> agent, as the last request offered them."""
        self.last_text: str | None = None
        self.drafted = False
        self.failure: RecorderError | None = None
        self.processor: object | None = None
        """The tracing processor that records this run's spans (a second one registered stays out)."""
        self.spans_seen = False
        self.started: dict[str, float] = {}
        """Call id -> when the policy let it run (perf_counter), for its latency."""
        self.reasons: dict[str, str] = {}
        """Call id -> why the policy denied it (what the model reads)."""
        self.worker = worker_name()
        self.journal = owner.journal
        self.spans = tracing.recording_spans(self)
        """OpenTelemetry: the run's span, a chat span per reply, an execute_tool span per result (when on)."""
        self._pending: list[tuple[ev.RunEvent, NewEvent]] = []
        """Events folded into the state and not yet written (see `settle`)."""
        self._written = run.state.version
        """The run's version in the journal (the state's is ahead by what is pending)."""
        self._local = owner.journal.url.startswith(("sqlite:", "memory:"))
        self._settling = asyncio.Lock()
        self._asked_by: dict[str, str] = {}
        """Call id -> the ModelCalled that asked for it."""
        self.guarded_tools = {
            tool.name
            for agent in self.agents.values()
            for tool in agent.tools
            if isinstance(tool, FunctionTool)
            and any(g.get_name() == "agentjournal_policy" for g in tool.tool_input_guardrails or ())
        }
        """Function tools whose hooks record their calls (a trace span of theirs adds nothing)."""
        self.input_guardrails = {g.get_name() for a in self.agents.values() for g in a.input_guardrails}
        self.output_guardrails = {g.get_name() for a in self.agents.values() for g in a.output_guardrails}

    @property
    def state(self) -> RunState:
        return self.run.state

    @state.setter
    def state(self, state: RunState) -> None:
        self.run.state = state

    @property
    def run_id(self) -> str:
        return self.run.run_id

    # ----- failures --------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise the failure that stopped the recording, if any; refuse to go on without the trace spans."""
        if self.failure is not None:
            raise self.failure
        if not self.spans_seen:
            self.failure = RecorderError(
                f"run {self.run_id}: no trace span of the SDK reached agentjournal, so handoffs and guardrails "
                "would go unrecorded. Tracing is off (RunConfig(tracing_disabled=True), set_tracing_disabled, "
                "OPENAI_AGENTS_DISABLE_TRACING) or the processor is not registered: "
                "agents.add_trace_processor(journaled.processor)"
            )
            raise self.failure

    def fail(self, error: BaseException) -> RecorderError:
        """Keep the first failure (every later hook raises it again); returns `error` as agentjournal's error."""
        failure = (
            error
            if isinstance(error, RecorderError)
            else RecordingFailed(f"run {self.run_id}: recording failed: {type(error).__name__}: {error}")
        )
        if self.failure is None:
            self.failure = failure
        return failure

    # ----- writing ---------------------------------------------------------------------------------

    def batch(self) -> _Batch:
        return _Batch(self)

    def stage(self, drafts: list[tuple[ev.RunEvent, NewEvent]]) -> None:
        """Fold events into the run's state now (stamped with their OpenTelemetry span, when tracing is on);
        they are written with the next `flush`."""
        state = self.state
        if state.finished:
            raise RecorderError(f"run {self.run_id} has already {state.status}; nothing more can be recorded")
        for payload, draft in drafts:
            event = state.apply_unwritten(self.spans.stamped(payload, draft))
            self._pending.append((payload, event))

    def flush(self) -> None:
        """Write what is staged now, from this thread, in one append at the version last written."""
        batch, self._pending = self._pending, []
        if batch:
            self._write(batch)

    async def settle(self) -> None:
        """Write what is staged before going on: on SQLite (and in memory) from the event loop's thread (a
        local append costs less than a hop to a thread), on a database server from a worker thread, so the
        loop never waits on the network. Writes keep their order."""
        if self._local:
            self.flush()
            return
        async with self._settling:
            batch, self._pending = self._pending, []
            if batch:
                await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[tuple[ev.RunEvent, NewEvent]]) -> None:
        events = [event for _, event in batch]
        try:
            self.owner.journal.append(self.run.stream_id, events, expected_version=self._written)
        except Exception as exc:
            self._pending[:0] = batch  # kept: a later write (the run's abort) tries them again
            if isinstance(exc, ConcurrencyError):
                moved = RunMoved(f"run {self.run_id}: another process appended to it ({exc}); this one stops")
                raise self.fail(moved) from None
            if isinstance(exc, StreamClosedError):
                raise self.fail(
                    RunMoved(f"run {self.run_id} was finished by another process; this one stops")
                ) from None
            where = redact(self.owner.journal.url)
            unwritten = ", ".join(event.type for event in events)
            raise self.fail(
                RecordingFailed(
                    f"agentjournal could not record run {self.run_id} in {where} ({type(exc).__name__}: {exc}); "
                    f"not written: {unwritten}. The SDK run is stopped so that nothing happens unrecorded"
                )
            ) from exc
        self._written += len(events)
        for payload, _ in batch:
            self.spans.recorded(payload)

    async def start(self, started: ev.RunStarted, event_id: str) -> None:
        """The run's first event, written at once (a run of that id already there: RecorderError)."""
        batch = self.batch()
        batch.add(started, "orchestrator", None, event_id=event_id)
        batch.commit()
        try:
            await self.settle()
        except RunMoved:
            raise RecorderError(f"run {self.run_id} already exists in {redact(self.journal.url)}") from None

    # ----- model replies ---------------------------------------------------------------------------

    def model_called(
        self,
        model: str,
        *,
        instructions: str | None,
        input: str | list[Any],
        tools: Sequence[Any],
        handoffs: Sequence[Any],
        output_schema: Any,
        output: Sequence[Any],
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        response_id: str | None = None,
        replayable: bool = True,
    ) -> Reply:
        """A model answered: one ModelCalled with the reply, the tokens and what was new in the request."""
        state = self.state
        digest = self.hasher.digest(instructions, input, tools, handoffs, output_schema)
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        reply = reply_of(output)
        extra: dict[str, Any] = {"input_hash": digest.input_hash, "input_items": digest.items}
        if replayable:
            extra["sdk_output"] = reply.items
            extra["response_id"] = response_id
        called = ev.ModelCalled(
            model=model,
            stage="act" if reply.tool_calls else "respond",
            request_fingerprint=digest.fingerprint,
            new_messages=self._new_messages(items),
            response={"text": reply.text, "tool_calls": reply.tool_calls},
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
            latency_ms=latency_ms,
            step=state.step + 1,
            agent=state.agent,
            prompt_hash=digest.prompt_hash,
            tools_hash=digest.tools_hash,
            **extra,
        )
        batch = self.batch()
        called_id = batch.add(called, f"model:{model}", state.last_event_id)
        batch.commit()
        self.sent = digest.items
        self.last_calls = reply.tool_calls
        self.handoff_tools = {handoff.tool_name: handoff.agent_name for handoff in handoffs}
        self.last_text = reply.text
        for call in reply.tool_calls:
            self._asked_by[call["id"]] = called_id
        return reply

    def _new_messages(self, items: list[Any]) -> list[dict[str, Any]]:
        """The request's items the model had not been sent, as the contract's `{role, ref}` messages."""
        state = self.state
        messages: list[dict[str, Any]] = []
        for index in range(self.sent, len(items)):
            item = items[index]
            data: dict[str, Any] = item if isinstance(item, dict) else {"type": getattr(item, "type", None)}
            role, kind = data.get("role"), data.get("type")
            if kind in ("function_call", "function_call_output"):
                call_id = str(data.get("call_id"))
                message: dict[str, Any] = {"role": "assistant" if kind == "function_call" else "tool"}
                message["tool_call_id"] = call_id
                version = self._version_of(call_id, kind == "function_call_output")
                if version is not None:
                    message["ref"] = version
            elif role in ("user", "system", "developer"):
                text = text_of(data.get("content"))
                if index == 0 and role == "user" and text == state.input:
                    continue  # the run's input: RunStarted holds it
                message = {"role": role, "content": text}
            elif role == "assistant":
                message = {"role": "assistant"}
                last = self._last_reply_version()
                if last is not None:
                    message["ref"] = last
            else:
                message = {"role": "other", "type": kind}
            messages.append(message)
        return messages

    def _version_of(self, call_id: str, output: bool) -> int | None:
        call = self.state.calls.get(call_id)
        if output:
            return call.executed_version if call is not None else None
        for message in reversed(self.state.messages):
            if message.role == "assistant" and any(c.get("id") == call_id for c in message.tool_calls):
                return message.version
        return None

    def _last_reply_version(self) -> int | None:
        for message in reversed(self.state.messages):
            if message.role == "assistant":
                return message.version
        return None

    def _asking(self, call_id: str) -> str | None:
        """The event that asked for a call: the model reply naming it, else the run's last event."""
        asked = self._asked_by.get(call_id)
        if asked is not None:
            return asked
        for message in reversed(self.state.messages):
            if message.role == "assistant" and any(c.get("id") == call_id for c in message.tool_calls):
                return message.event_id
        return self.state.last_event_id

    # ----- tool calls ------------------------------------------------------------------------------

    def propose(
        self, tool: str, arguments: dict[str, Any], call_id: str, *, tool_wants_approval: bool = False
    ) -> ToolCall:
        """A call the model asked for, decided before it can run: ToolProposed and the policy's decision."""
        state = self.state
        if call_id in state.calls:
            return state.calls[call_id]
        policy = self.owner.policy
        batch = self.batch()
        proposed = ev.ToolProposed(tool=tool, arguments=arguments, step=state.step, call_id=call_id, agent=state.agent)
        proposed_id = batch.add(proposed, state.agent or "agent", self._asking(call_id))
        if policy is not None or tool_wants_approval:
            decision = (
                policy.evaluate(tool, arguments, state.run_metrics())
                if policy is not None
                else Decision("allow", None, "no policy")
            )
            action, rule, reason = decision.action, decision.rule, decision.reason
            if action == "allow" and tool_wants_approval:
                action, rule, reason = "require_human_approval", "needs_approval", "the tool asks for a human"
            evaluated = ev.PolicyEvaluated(tool=tool, rule=rule, action=action, reason=reason, call_id=call_id)
            evaluated_id = batch.add(evaluated, "policy_guard", proposed_id)
            if action == "deny":
                self.reasons[call_id] = reason
                refused = ev.ObservationCaptured(
                    tool=tool, call_id=call_id, ok=False, error_type="policy_denied", error=reason
                )
                batch.add(refused, "orchestrator", evaluated_id)
        batch.commit()
        return state.calls[call_id]

    def request_approvals(self, call_ids: Sequence[str]) -> list[str]:
        """ApprovalRequested for the held calls that have none yet (written once the SDK's state is saved)."""
        state = self.state
        ttl = self.owner.approval_ttl_s
        batch = self.batch()
        ids = []
        for call_id in call_ids:
            call = state.calls[call_id]
            if call.approval_id is not None:
                ids.append(call.approval_id)
                continue
            expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat(timespec="microseconds") if ttl else None
            approval_id = approval_id_for(self.run_id, call_id)
            requested = ev.ApprovalRequested(
                approval_id=approval_id,
                tool=call.tool,
                arguments=call.arguments,
                arguments_hash=arguments_hash(call.arguments),
                expires_at=expires,
                call_id=call_id,
            )
            batch.add(requested, "policy_guard", call.decided_id or call.proposed_id)
            ids.append(approval_id)
        batch.commit()
        return ids

    def expire(self, call: ToolCall) -> None:
        """An approval nobody decided in time: rejected by the system (the contract's expiry), and observed."""
        approval = self.state.approvals[str(call.approval_id)]
        reason = f"the approval expired at {approval.expires_at} with no decision"
        batch = self.batch()
        rejected = ev.ToolRejected(approval_id=approval.approval_id, by="system", reason=reason, tool=call.tool)
        rejected_id = batch.add(rejected, "system", approval.requested_id)
        told = ev.ObservationCaptured(
            tool=call.tool, call_id=call.call_id, ok=False, error_type="rejected_by_human", error=reason
        )
        batch.add(told, "orchestrator", rejected_id)
        batch.commit()

    def rejected(self, call: ToolCall) -> str:
        """A call a human rejected is observed as such; returns what the model is told."""
        approval = self.state.approvals.get(str(call.approval_id))
        by, reason = (approval.by, approval.reason) if approval is not None else (None, None)
        if not call.observed:
            told = ev.ObservationCaptured(
                tool=call.tool, call_id=call.call_id, ok=False, error_type="rejected_by_human", error=reason
            )
            batch = self.batch()
            batch.add(told, "orchestrator", call.decided_id)
            batch.commit()
        return rejected_message(call.tool, by, reason)

    def claim(self, call: ToolCall, timeout_s: float | None) -> None:
        """Take a call a human approved before it runs: a second process resuming the run loses here."""
        claimed = ev.ToolClaimed(
            call_id=call.call_id,
            tool=call.tool,
            attempt=call.attempts + 1,
            worker=self.worker,
            expires_at=(datetime.now(UTC) + timedelta(seconds=(timeout_s or 0) + CLAIM_GRACE_S)).isoformat(
                timespec="microseconds"
            ),
            idempotency_key=idempotency_key(self.run_id, f"{call.step}.{call.index}", call.tool),
        )
        batch = self.batch()
        batch.add(claimed, "tool_executor", call.decided_id or call.proposed_id)
        batch.commit()

    def tool_result(
        self,
        call: ToolCall,
        output: Any = None,
        *,
        error: str | None = None,
        latency_ms: float = 0.0,
        model_output: str | None = None,
        batch: _Batch | None = None,
    ) -> None:
        """The tool returned `output`, or failed with `error` (`output` is then what the model was told).

        `model_output`: the text the SDK sent the model, when the output stored as JSON would not render
        to the same text again (a dict's key order: the journal stores JSON with sorted keys); a replay
        hands the model that text."""
        own = batch is None
        batch = batch or self.batch()
        caused_by = call.claim.event_id if call.claim is not None else (call.decided_id or call.proposed_id)
        attempt = call.attempts + 1
        if error is None:
            fields: dict[str, Any] = {
                "tool": call.tool,
                "output": plain_output(output),
                "latency_ms": latency_ms,
                "attempt": attempt,
                "call_id": call.call_id,
            }
            if model_output is not None:
                fields["model_output"] = model_output
            done = ev.ToolExecuted.model_validate(fields)
            executed_id = batch.add(done, "tool_executor", caused_by)
            batch.add(
                ev.ObservationCaptured(tool=call.tool, call_id=call.call_id, ok=True), "orchestrator", executed_id
            )
        else:
            failed = ev.ToolFailed.model_validate(
                {
                    "tool": call.tool,
                    "error_type": "tool_error",
                    "error": error,
                    "attempt": attempt,
                    "will_retry": False,
                    "call_id": call.call_id,
                    "latency_ms": latency_ms,
                    "told_model": None if output is None else str(output),
                }
            )
            failed_id = batch.add(failed, "tool_executor", caused_by)
            told = ev.ObservationCaptured(
                tool=call.tool, call_id=call.call_id, ok=False, error_type="tool_error", error=error
            )
            batch.add(told, "orchestrator", failed_id)
        if own:
            batch.commit()

    def unguarded_call(
        self, tool: str, arguments: dict[str, Any], call_id: str, *, output: Any, error: str | None, latency_ms: float
    ) -> None:
        """A call of a tool agentjournal's policy could not stand in front of (seen only in its trace span)."""
        state = self.state
        batch = self.batch()
        proposed = ev.ToolProposed.model_validate(
            {"tool": tool, "arguments": arguments, "step": state.step, "call_id": call_id, "agent": state.agent}
            | {"guarded": False}
        )
        proposed_id = batch.add(proposed, state.agent or "agent", self._asking(call_id))
        call = ToolCall(call_id, tool, arguments, state.step, 0, state.agent, "proposed", proposed_id)
        self.tool_result(call, output, error=error, latency_ms=latency_ms, batch=batch)
        batch.commit()

    # ----- handoffs, checks, the end ---------------------------------------------------------------

    def handoff(self, to_agent: str, call_id: str | None, reason: str) -> None:
        state = self.state
        call_id = call_id or f"handoff-{uuid7()[-12:]}"
        target = self.agents.get(to_agent)
        pins: dict[str, Any] = {}
        if target is not None:
            instructions = target.instructions if isinstance(target.instructions, str) else ""
            pins["prompt_version"] = hashlib.sha256(instructions.encode()).hexdigest()
            pins["tool_schemas"] = {spec["name"]: sha256(spec) for spec in tool_specs(target.tools)}
        handed = ev.HandoffInitiated(from_agent=state.agent, to_agent=to_agent, reason=reason, call_id=call_id, **pins)
        batch = self.batch()
        handed_id = batch.add(handed, "orchestrator", self._asking(call_id))
        batch.add(
            ev.ObservationCaptured(tool=f"transfer_to_{to_agent}", call_id=call_id, ok=True), "orchestrator", handed_id
        )
        batch.commit()

    def guardrail(self, name: str, triggered: bool, kind: Literal["input", "output"]) -> None:
        """An agent's input or output guardrail ran (its trace span): the contract's checks."""
        state = self.state
        batch = self.batch()
        before = state.last_event_id
        if kind == "input":
            if not triggered:
                return  # a passed input check changes nothing the contract records
            check: ev.RunEvent = ev.GuardrailTriggered(
                check=f"input guardrail {name}",
                outcome="blocked",
                reason="it tripped on the user's message; the SDK stops the run",
            )
        else:
            if not self.drafted:
                draft = ev.ResponseDrafted(text=self.last_text or "", agent=state.agent)
                before = batch.add(draft, state.agent or "agent", before)
                self.drafted = True
            check = (
                ev.GuardrailTriggered(check=name, outcome="blocked", reason="the SDK's output guardrail tripped")
                if triggered
                else ev.OutputChecked(check=name, outcome="passed", reason="the SDK's output guardrail passed it")
            )
        batch.add(check, "guardrail", before)
        batch.commit()

    def finish(self, answer: str) -> None:
        state = self.state
        batch = self.batch()
        before = state.last_event_id
        if not self.drafted:
            before = batch.add(ev.ResponseDrafted(text=answer, agent=state.agent), state.agent or "agent", before)
        final = batch.add(ev.ResponseFinalized(text=answer), "orchestrator", before)
        batch.add(ev.RunCompleted(outcome="answered"), "orchestrator", final)
        batch.commit()

    def abort(self, reason: str, error_type: str | None) -> None:
        batch = self.batch()
        batch.add(ev.RunAborted(reason=reason, error_type=error_type), "orchestrator", self.state.last_event_id)
        batch.commit()


class _Batch:
    """Events that go in one append; ids are given up front, so one can name another as its cause."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.drafts: list[tuple[ev.RunEvent, NewEvent]] = []

    def add(self, payload: ev.RunEvent, actor: str, caused_by: str | None, *, event_id: str | None = None) -> str:
        run = self.recording.run
        event_id = event_id or uuid7()
        draft = new_event(
            payload,
            actor=actor,
            tenant_id=run.tenant_id,
            correlation_id=run.correlation_id,
            causation_id=caused_by,
            event_id=event_id,
        )
        self.drafts.append((payload, draft))
        return event_id

    def commit(self) -> None:
        """Fold the events into the run's state; they are written at the run's next `settle`."""
        if self.drafts:
            self.recording.stage(self.drafts)
            self.drafts = []


def plain_output(output: Any) -> Any:
    """A tool's output as JSON data (as the journal stores it); what is not JSON becomes its repr."""
    try:
        return jsonable_output(output)
    except TypeError:
        return repr(output)
