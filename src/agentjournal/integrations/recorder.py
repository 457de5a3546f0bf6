"""The recorder: a run written by code that is not agentjournal's Runtime, in the run contract.

A loop you wrote yourself (Claude or OpenAI tool use), or a framework's hooks, tell a RecordedRun
what happened: a model was asked and answered, a tool was proposed (the policy decides it here),
a tool returned or failed, the run answered or gave up. Each becomes the contract's events on
`run-<id>`, so the forensics, the read models and the evaluator read the run as they read the
Runtime's. The events are folded into the run's state at once (every read through the recorder sees
them) and written in batches, one append (one transaction) at the version the recorder last wrote,
as the runtime's driver writes its runs: a loop of read-only calls takes one a step.

Written before their method returns, with everything buffered before them: a model's reply (so the
loop never acts on an unrecorded answer), the run's start and end, a call held for a human and a
decision on it, the claim of a call with a side effect (durable before the call runs) and that
call's result. What a step did with a read-only call (its proposal, the policy's decision, a denial,
the result) waits for the next of those, usually the model's next reply; in a run of tool calls
alone (no model call recorded) each call is written once it has its outcome. While a call waits for
a human every record is written at once, so a decision appended by another process meanwhile is
taken in first. `flush()`, `refresh()` and leaving `with run:` (by an exception too) write what is
buffered. A write that fails raises and keeps the events for the next write, so a run is never
silently incomplete; a process that dies mid-step loses only the read-only calls and denials since
the last reply, never a reply, a claim, a decision or a side effect's result.

    recorder = RunRecorder(journal, policy=policy)
    with recorder.start(agent="refunds", input="Refund ORD-1", model="claude-sonnet-4-5") as run:
        run.model_call(model="claude-sonnet-4-5", messages=[...], text=None, tool_calls=[...], ...)
        decision = run.tool_call("issue_refund", {"order_id": "ORD-1"}, call_id="toolu_1")
        if decision.action == "allow":
            run.tool_result("toolu_1", output={"refund_id": "REF-1"})
        run.complete("Refunded.")

Inside `with run:` (or `run.active()`), `current_run()` is that run: the client wrappers and
`@journaled` tools record into it without being handed it. A human's decision appended by another
process (`agentjournal approvals approve`) is picked up on the next record, or by `refresh()` and
`wait_for_decision()`. A recorder with a `replay` (`integrations.replay.Replay`) records a re-execution
of a recorded run, answering model calls, tool results and human decisions from the recording.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol

import orjson

from agentjournal.agents.decider import approval_id_for, arguments_hash
from agentjournal.agents.models.prices import cost_usd
from agentjournal.agents.policy import Decision, Policy
from agentjournal.agents.tools import idempotency_key
from agentjournal.journal import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidEventError,
    Journal,
    JournalError,
    NewEvent,
    RecordedEvent,
    StreamClosedError,
)
from agentjournal.journal.context import current_context
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.ids import uuid7
from agentjournal.model import Repository
from agentjournal.runs import RunState, new_event, run_stream, tracing
from agentjournal.runs import events as ev

__all__ = ["RecordedRun", "RecorderError", "ReplaySource", "RunRecorder", "ToolDecision", "current_run"]

_DECISIONS = frozenset({"ToolApproved", "ToolRejected"})
"""What another process may append to a run while its loop goes on: a human deciding a held call."""
_AT_ONCE = frozenset({"RunStarted", "ModelCalled", "ApprovalRequested", "ToolClaimed", *_DECISIONS, *ev.TERMINAL})
"""Written before the method recording them returns, with everything buffered before them: the run's start
and end, a model's reply (before the loop can act on it), and what a human or another process acts on (a
held call, a decision on it, a claim)."""

_active: contextvars.ContextVar[RecordedRun | None] = contextvars.ContextVar("agentjournal_recorded_run", default=None)


def current_run() -> RecordedRun | None:
    """The run being recorded in this context (inside `with run:`), or None."""
    return _active.get()


class RecorderError(JournalError):
    """A record that does not fit the run (an unknown call, a finished run, another writer moved it)."""


@dataclass(frozen=True)
class ToolDecision:
    """What the policy decided about a proposed call: run it, it was denied, or it waits for a human."""

    call_id: str
    action: Literal["allow", "deny", "require_human_approval"]
    reason: str
    rule: str | None = None
    approval_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.action == "allow"


class ReplaySource(Protocol):
    """What a replayed run answers from instead of the world (`agentjournal.integrations.replay.Replay`)."""

    run_id: str

    def check_start(self, started: ev.RunStarted) -> None:
        """Raise DivergenceError when the re-executed loop starts another run than the recorded one."""

    def model_reply(self, index: int, fingerprint: str, requested: dict[str, Any]) -> dict[str, Any]:
        """The recorded ModelCalled data of model call `index` (0-based), or DivergenceError."""

    def tool_outcome(self, call_id: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The recorded ToolExecuted or ToolFailed data of a call, or DivergenceError."""

    def human_decision(self, call_id: str, tool: str, arguments: dict[str, Any]) -> RecordedEvent | None:
        """The recorded ToolApproved or ToolRejected of a held call (None: nobody had decided)."""


class RunRecorder:
    """Starts and resumes recorded runs on one journal, under one (optional) policy.

    `replay` (set by `Replay`) makes it record a re-execution: the client wrappers and `@journaled`
    tools answer from that recording, and a held call gets the human decision it got then. `buffer=False`
    writes every record before its method returns (one transaction per record).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        policy: Policy | None = None,
        approval_ttl_s: float | None = 24 * 3600,
        replay: ReplaySource | None = None,
        buffer: bool = True,
    ):
        self.journal = journal
        self.policy = policy
        self.approval_ttl_s = approval_ttl_s
        self.replay = replay
        self.buffer = buffer
        self.repository: Repository[RunState] = Repository(journal, RunState)

    def start(
        self,
        *,
        agent: str,
        input: str,
        model: str = "",
        instructions: str = "",
        tools: Sequence[dict[str, Any]] = (),
        run_id: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        route: str | None = None,
        agent_version: str = "1",
    ) -> RecordedRun:
        """Record RunStarted and return the run. `tools` are the tool descriptions the model is offered
        (`{"name", "description", "parameters"}`), pinned by their schema hashes. The ambient context
        (`journal.context(correlation_id=..., tenant_id=...)`) gives the run its correlation id and,
        unless `tenant_id` is given, its tenant."""
        if not isinstance(input, str) or not input.strip():
            raise RecorderError(f"a run needs the user's input as non-empty text, got {input!r}")
        if run_id is None and self.replay is not None:
            run_id = self.replay.run_id
        run_id = (run_id or uuid7()).removeprefix("run-")
        context = current_context()
        started = ev.RunStarted(
            run_id=run_id,
            agent=agent,
            agent_version=agent_version,
            model=model,
            prompt_version=hashlib.sha256(instructions.encode()).hexdigest(),
            tool_schemas={str(spec["name"]): hashlib.sha256(canonical_json(spec)).hexdigest() for spec in tools},
            input=input,
            policy_version=self.policy.version if self.policy else None,
            route=route,
            user_id=user_id,
        )
        if self.replay is not None:
            self.replay.check_start(started)
        run = RecordedRun(self, RunState(run_stream(run_id)), tenant_id=tenant_id or context.tenant_id)
        first = uuid7()
        run.correlation_id = context.correlation_id or first
        try:
            run.record(started, "orchestrator", None, event_id=first)
        except RecorderError:
            raise RecorderError(f"run {run_id} already exists in {self.journal.url}") from None
        return run

    def resume(self, run_id: str) -> RecordedRun:
        """An existing run, to record more of it (after a restart, or once a human decided)."""
        state = self.repository.load(run_stream(run_id))
        if state.finished:
            raise RecorderError(f"run {state.run_id} has already {state.status}; nothing more can be recorded")
        run = RecordedRun(self, state, tenant_id=state.tenant_id)
        run.correlation_id = state.correlation_id
        return run


class RecordedRun:
    """One run being recorded: its state (with what is buffered), and the events not written yet."""

    def __init__(self, recorder: RunRecorder, state: RunState, *, tenant_id: str | None) -> None:
        self.recorder = recorder
        self.journal = recorder.journal
        self.state = state
        self.tenant_id = tenant_id
        self.correlation_id: str | None = None
        self._sent = 0
        """How many request messages earlier model calls sent (the rest are new)."""
        self._pending: list[tuple[ev.RunEvent, NewEvent]] = []
        """Events folded into the state and not written yet, oldest first."""
        self._token: contextvars.Token[RecordedRun | None] | None = None
        self._spans = tracing.recording_spans(self)  # OpenTelemetry, when a tracer provider is configured

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @property
    def stream_id(self) -> str:
        return self.state.stream_id

    # ----- writing --------------------------------------------------------------------------------

    def record(self, payload: ev.RunEvent, actor: str, caused_by: str | None, *, event_id: str | None = None) -> str:
        """Record one contract event (see `record_all`); returns its event id."""
        return self.record_all([(payload, actor, caused_by, event_id or uuid7())])[-1]

    def record_all(
        self, drafts: Sequence[tuple[ev.RunEvent, str, str | None, str]], *, durable: bool = False
    ) -> list[str]:
        """Record events that happened together (`(payload, actor, caused by, event id)`, a later one may
        name an earlier one as its cause): folded into the state at once, written all or none, now when they
        must be durable (`durable`, or by their kind: see the module's docstring), else with the step's
        other events. Returns their event ids."""
        if self.state.finished:
            raise RecorderError(f"run {self.run_id} has already {self.state.status}; nothing more can be recorded")
        self.journal._check_open()  # a closed journal could never take what is buffered: refused at once
        events = [
            self._spans.stamped(
                payload,
                new_event(
                    payload,
                    actor=actor,
                    tenant_id=self.tenant_id,
                    correlation_id=self.correlation_id,
                    causation_id=caused_by,
                    event_id=event_id,
                ),
            )
            for payload, actor, caused_by, event_id in drafts
        ]
        state, redact = self.state, self.journal.redact
        for (payload, *_), event in zip(drafts, events, strict=True):
            self._pending.append((payload, state.apply_unwritten(event, redact)))
        if durable or self._must_write(drafts):
            self.flush()
        return [event_id for *_, event_id in drafts]

    def _must_write(self, drafts: Sequence[tuple[ev.RunEvent, str, str | None, str]]) -> bool:
        """Whether what is buffered is written now: at a durable point, while a call waits for a human (whose
        decision, appended by another process, is then taken in at once), or at the end of a step that no
        model reply will carry (a run of tool calls alone)."""
        if not self.recorder.buffer or any(type(payload).__name__ in _AT_ONCE for payload, *_ in drafts):
            return True
        state = self.state
        if any(approval.status == "pending" for approval in state.approvals.values()):
            return True
        return state.metrics.model_calls == 0 and not state.open_call_ids

    def flush(self) -> None:
        """Write what is buffered now, in one append at the version this recorder last wrote. Raises what the
        journal raises, keeping the events for the next write; RecorderError when another writer moved the
        run (what was buffered is then dropped, and the state is the run as this recorder last wrote it)."""
        if not self._pending:
            return
        batch = self._pending
        events = [event for _, event in batch]
        try:
            try:
                self.journal.append(self.stream_id, events, expected_version=self._written)
            except ConcurrencyError:
                if not self._absorb_decisions():
                    raise
                self.journal.append(self.stream_id, events, expected_version=self._written)
        except ConcurrencyError as exc:
            self._rewind()
            raise RecorderError(
                f"run {self.run_id}: another writer moved it ({exc}); not written: {_names(events)}; resume it to go on"
            ) from None
        except StreamClosedError:
            self._rewind()
            raise RecorderError(
                f"run {self.run_id} has already finished; nothing more can be recorded (not written: {_names(events)})"
            ) from None
        except (InvalidEventError, DuplicateEventError) as exc:  # never writable: dropped, not kept
            self._rewind()
            exc.add_note(f"run {self.run_id}: not written: {_names(events)}; the run stays as last written")
            raise
        self._pending = []
        for payload, _ in batch:
            self._spans.recorded(payload)

    @property
    def _written(self) -> int:
        """The run's version in the journal, as this recorder last wrote or read it."""
        return self.state.version - len(self._pending)

    def refresh(self) -> RunState:
        """Write what is buffered, then catch up with what other processes appended to the run (a human's
        decision); returns the state."""
        self.flush()
        for stored in self.journal.read_stream(self.stream_id, self.state.version + 1):
            self.state.apply(stored)
        return self.state

    def _absorb_decisions(self) -> bool:
        """After a version conflict: take in what others appended if it is only human decisions (then what is
        buffered still fits the run, and is appended after them); False when another writer moved the run."""
        written = self._written
        newer = self.journal.read_stream(self.stream_id, written + 1)
        if not newer or any(event.type not in _DECISIONS for event in newer):
            return False
        state = self._stored_state(written)
        for stored in newer:
            state.apply(stored)
        for _, event in self._pending:  # already redacted
            state.apply_unwritten(event)
        self.state = state
        return True

    def _rewind(self) -> None:
        """Drop what is buffered: the state becomes the run as this recorder last wrote it."""
        written = self._written
        self._pending = []
        self.state = self._stored_state(written)

    def _stored_state(self, version: int) -> RunState:
        if version == 0:
            return RunState(self.stream_id)
        return self.recorder.repository.load_at_version(self.stream_id, version)

    # ----- what happened --------------------------------------------------------------------------

    def model_call(
        self,
        *,
        model: str,
        messages: Sequence[dict[str, Any]] = (),
        text: str | None = None,
        tool_calls: Sequence[dict[str, Any]] = (),
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float | None = None,
        latency_ms: float = 0.0,
        request: Any = None,
        stage: ev.Stage = "act",
        agent: str | None = None,
        new_messages: Sequence[dict[str, Any]] | None = None,
        fingerprint: str | None = None,
        **fields: Any,
    ) -> str:
        """A model was asked (`messages`: the whole conversation sent, or `request`: the provider's
        request as sent, for its fingerprint) and answered `text` and/or `tool_calls`
        (`{"id", "name", "arguments"}`). Cost comes from the price table unless given.

        Only the messages not sent before are recorded, and the user's first one is the run's input
        (already in RunStarted); `new_messages` says which are new when the request does not resend
        the conversation (the Responses API's `previous_response_id`). `fingerprint` is the request's,
        when the caller has it already; `fields` are more ModelCalled fields (`prompt_hash`, ...).
        """
        if new_messages is not None:
            new = [dict(message) for message in new_messages]
        else:
            new = self.unsent(messages)
            self._sent = max(self._sent, len(messages))
        if fingerprint is None:
            fingerprint = hashlib.sha256(canonical_json(request if request is not None else list(messages))).hexdigest()
        calls = [
            {"id": str(c["id"]), "name": str(c["name"]), "arguments": dict(c.get("arguments") or {})}
            for c in tool_calls
        ]
        response: dict[str, Any] = {"text": text}
        if calls:
            response["tool_calls"] = calls
        called = ev.ModelCalled(
            model=model,
            stage=stage,
            request_fingerprint=fingerprint,
            new_messages=new,
            response=response,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost if cost is not None else cost_usd(model, input_tokens, output_tokens),
            latency_ms=latency_ms,
            step=self.state.step + 1,
            agent=agent or self.state.agent,
            **fields,
        )
        return self.record(called, f"model:{model}", self.state.last_event_id)

    def unsent(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages of a conversation that no earlier model call of this run sent (what `model_call`
        records as new); on the first call, without the user's first message (the run's input)."""
        new = [dict(message) for message in messages[self._sent :]]
        if self._sent == 0:
            first = next((i for i, message in enumerate(new) if message.get("role") == "user"), None)
            if first is not None:
                del new[first]
        return new

    def tool_call(self, name: str, arguments: dict[str, Any], *, call_id: str | None = None) -> ToolDecision:
        """A tool call was proposed: recorded, and decided by the policy (when the recorder has one), in one
        append. The policy sees the run's counters as they were before this call."""
        proposed, call_id = self._proposal(name, arguments, call_id)
        policy = self.recorder.policy
        if policy is None:
            self.record_all([proposed])
            return ToolDecision(call_id, "allow", "no policy")
        decision: Decision = policy.evaluate(name, arguments, self.state.run_metrics())
        evaluated = ev.PolicyEvaluated(
            tool=name, rule=decision.rule, action=decision.action, reason=decision.reason, call_id=call_id
        )
        evaluated_id = uuid7()
        drafts = [proposed, (evaluated, "policy_guard", proposed[3], evaluated_id)]
        if decision.action == "deny":
            told = ev.ObservationCaptured(
                tool=name, call_id=call_id, ok=False, error_type="policy_denied", error=decision.reason
            )
            self.record_all([*drafts, (told, "orchestrator", evaluated_id, uuid7())])
            return ToolDecision(call_id, "deny", decision.reason, decision.rule)
        if decision.action == "require_human_approval":
            ttl = self.recorder.approval_ttl_s
            expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat(timespec="microseconds") if ttl else None
            approval_id = approval_id_for(self.run_id, call_id)
            requested = ev.ApprovalRequested(
                approval_id=approval_id,
                tool=name,
                arguments=arguments,
                arguments_hash=arguments_hash(arguments),
                expires_at=expires,
                call_id=call_id,
            )
            requested_id = self.record_all([*drafts, (requested, "policy_guard", evaluated_id, uuid7())])[-1]
            replay = self.recorder.replay
            recorded = replay.human_decision(call_id, name, arguments) if replay is not None else None
            if recorded is not None:  # a replay: the human decides as they did then
                kind = ev.ToolApproved if recorded.type == "ToolApproved" else ev.ToolRejected
                payload = kind.model_validate({**recorded.data, "approval_id": approval_id})
                self.record(payload, recorded.actor or "human", requested_id)
            return ToolDecision(call_id, "require_human_approval", decision.reason, decision.rule, approval_id)
        self.record_all(drafts)
        return ToolDecision(call_id, "allow", decision.reason, decision.rule)

    def refuse_call(
        self, name: str, arguments: dict[str, Any], *, error_type: str, error: str, call_id: str | None = None
    ) -> str:
        """A proposed call that never runs (`invalid_arguments`, `unknown_tool`): ToolProposed and the
        failed observation the model is told; returns the call id."""
        proposed, call_id = self._proposal(name, arguments, call_id)
        told = ev.ObservationCaptured(tool=name, call_id=call_id, ok=False, error_type=error_type, error=error)
        self.record_all([proposed, (told, "orchestrator", proposed[3], uuid7())])
        return call_id

    def observe_refusal(self, call_id: str, *, error_type: str, error: str) -> str:
        """Tell the model a proposed call will not run (`rejected_by_human`, `policy_denied`, ...)."""
        call = self._call(call_id)
        told = ev.ObservationCaptured(tool=call.tool, call_id=call_id, ok=False, error_type=error_type, error=error)
        return self.record(told, "orchestrator", call.decided_id or call.proposed_id)

    def _proposal(
        self, name: str, arguments: dict[str, Any], call_id: str | None
    ) -> tuple[tuple[ev.RunEvent, str, str | None, str], str]:
        """The ToolProposed of a call, ready for `record_all`, and the call's id."""
        call_id = call_id or self.matching_call(name, arguments) or f"call-{uuid7()[-12:]}"
        if call_id in self.state.calls:
            raise RecorderError(f"run {self.run_id}: tool call {call_id!r} was already proposed")
        agent = self.state.agent
        proposed = ev.ToolProposed(tool=name, arguments=arguments, step=self.state.step, call_id=call_id, agent=agent)
        return (proposed, agent, self._proposing_message(), uuid7()), call_id

    def decision(self, call_id: str) -> ToolDecision:
        """Where a proposed call stands now (a human may have decided since, in another process)."""
        call = self._call(call_id)
        approval = self.state.approvals.get(call.approval_id) if call.approval_id else None
        said = f" {approval.by}: {approval.reason}" if approval is not None and approval.by else " a human"
        if call.status == "approved":
            return ToolDecision(call_id, "allow", f"approved by{said}", call.rule, call.approval_id)
        if call.status == "rejected" or (call.status == "refused" and call.approval_id):
            return ToolDecision(call_id, "deny", f"rejected by{said}", call.rule, call.approval_id)
        if call.status == "waiting_approval":
            return ToolDecision(call_id, "require_human_approval", "waiting for a human", call.rule, call.approval_id)
        if call.status == "refused":
            return ToolDecision(call_id, "deny", call.error or "refused", call.rule)
        return ToolDecision(call_id, "allow", "allowed", call.rule)

    def wait_for_decision(self, call_id: str, *, timeout_s: float = 3600.0, poll_s: float = 0.5) -> ToolDecision:
        """Block until a human decided a held call (in any process) or `timeout_s` passed; the decision then."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.recorder.replay is None:
                self.refresh()
            decision = self.decision(call_id)
            if decision.action != "require_human_approval" or self.recorder.replay is not None:
                return decision
            if time.monotonic() >= deadline:
                return decision
            time.sleep(poll_s)

    async def wait_for_decision_async(
        self, call_id: str, *, timeout_s: float = 3600.0, poll_s: float = 0.5
    ) -> ToolDecision:
        """`wait_for_decision` for an async loop: it sleeps without blocking the event loop."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.recorder.replay is None:
                self.refresh()
            decision = self.decision(call_id)
            if decision.action != "require_human_approval" or self.recorder.replay is not None:
                return decision
            if time.monotonic() >= deadline:
                return decision
            await asyncio.sleep(poll_s)

    def claim(self, call_id: str, *, timeout_s: float = 30.0, worker: str = "recorder") -> str:
        """Claim a side-effecting call before running it: a second process claiming it too fails here."""
        call = self._call(call_id)
        attempt = call.attempts + 1
        claimed = ev.ToolClaimed(
            call_id=call_id,
            tool=call.tool,
            attempt=attempt,
            worker=worker,
            expires_at=(datetime.now(UTC) + timedelta(seconds=timeout_s)).isoformat(timespec="microseconds"),
            idempotency_key=idempotency_key(self.run_id, f"{call.step}.{call.index}", call.tool),
        )
        self.record(claimed, "tool_executor", call.decided_id or call.proposed_id)
        return claimed.idempotency_key

    def tool_result(
        self,
        call_id: str,
        output: Any = None,
        *,
        error: str | None = None,
        error_type: str | None = None,
        latency_ms: float = 0.0,
        cost: float = 0.0,
    ) -> str:
        """A tool returned `output`, or failed with `error` (`error_type`: the exception's class name)."""
        call = self._call(call_id)
        claimed = call.claim is not None  # what a side effect did is written at once, as its claim was
        caused_by = call.claim.event_id if claimed else (call.decided_id or call.proposed_id)
        attempt = call.attempts + 1
        if error is None:
            as_sent = _in_its_own_order(output)
            done = ev.ToolExecuted(
                tool=call.tool,
                output=output,
                latency_ms=latency_ms,
                attempt=attempt,
                call_id=call_id,
                cost_usd=cost,
                **({} if as_sent is None else {"output_json": as_sent}),
            )
            executed = uuid7()
            observed = ev.ObservationCaptured(tool=call.tool, call_id=call_id, ok=True)
            drafts = [(done, "tool_executor", caused_by, executed), (observed, "orchestrator", executed, uuid7())]
            return self.record_all(drafts, durable=claimed)[-1]
        kind = error_type or "error"
        failed = ev.ToolFailed(
            tool=call.tool,
            error_type=kind,
            error=error,
            attempt=attempt,
            will_retry=False,
            call_id=call_id,
            latency_ms=latency_ms,
        )
        failed_id = uuid7()
        told = ev.ObservationCaptured(tool=call.tool, call_id=call_id, ok=False, error_type=kind, error=error)
        return self.record_all(
            [(failed, "tool_executor", caused_by, failed_id), (told, "orchestrator", failed_id, uuid7())],
            durable=claimed,
        )[-1]

    def handoff(self, to_agent: str, reason: str = "", *, call_id: str | None = None) -> str:
        """The conversation moved to another agent."""
        call_id = call_id or f"handoff-{uuid7()[-12:]}"
        handed = ev.HandoffInitiated(from_agent=self.state.agent, to_agent=to_agent, reason=reason, call_id=call_id)
        handoff_id = uuid7()
        observed = ev.ObservationCaptured(tool=f"transfer_to_{to_agent}", call_id=call_id, ok=True)
        drafts = [
            (handed, "orchestrator", self.state.last_event_id, handoff_id),
            (observed, "orchestrator", handoff_id, uuid7()),
        ]
        return self.record_all(drafts)[-1]

    def complete(self, answer: str, *, outcome: Literal["answered", "fallback"] = "answered") -> str:
        """The run answered the user: ResponseDrafted, ResponseFinalized, RunCompleted."""
        drafted, final = uuid7(), uuid7()
        return self.record_all(
            [
                (
                    ev.ResponseDrafted(text=answer, agent=self.state.agent),
                    self.state.agent,
                    self.state.last_event_id,
                    drafted,
                ),
                (ev.ResponseFinalized(text=answer), "orchestrator", drafted, final),
                (ev.RunCompleted(outcome=outcome), "orchestrator", final, uuid7()),
            ]
        )[-1]

    def abort(self, reason: str, *, error_type: str | None = None) -> str:
        return self.record(
            ev.RunAborted(reason=reason, error_type=error_type), "orchestrator", self.state.last_event_id
        )

    # ----- the ambient run -------------------------------------------------------------------------

    def __enter__(self) -> RecordedRun:
        self._token = _active.set(self)
        self._spans.enter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        """The block ended: what is buffered is written; an exception also ends the run with RunAborted."""
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        try:
            if error is not None and not self.state.finished and isinstance(error, Exception):
                self.abort(f"the loop failed: {type(error).__name__}: {error}", error_type=type(error).__name__)
            else:
                self.flush()
        except Exception as failed:
            if error is None:
                raise
            # the journal is down too: the loop's own error is the one to see
            what = "as aborted" if isinstance(error, Exception) else "(its buffered events)"
            error.add_note(f"run {self.run_id} could not be recorded {what}: {type(failed).__name__}: {failed}")
        finally:
            self._spans.exit(error)

    @contextmanager
    def active(self) -> Iterator[RecordedRun]:
        """This run as `current_run()` inside the block, without ending it when the block ends (what is
        buffered goes with the run's next write; `flush()` writes it now)."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    # ----- helpers ---------------------------------------------------------------------------------

    def _call(self, call_id: str) -> Any:
        call = self.state.calls.get(call_id)
        if call is None:
            raise RecorderError(f"run {self.run_id} has no tool call {call_id!r}; record it with tool_call first")
        return call

    def matching_call(self, name: str, arguments: dict[str, Any]) -> str | None:
        """The id the last model reply gave this call, when it asked for exactly this tool and these arguments."""
        for message in reversed(self.state.messages):
            if message.role != "assistant":
                continue
            for call in message.tool_calls:
                if call["name"] == name and call["arguments"] == arguments and call["id"] not in self.state.calls:
                    return str(call["id"])
            return None
        return None

    def _proposing_message(self) -> str | None:
        for message in reversed(self.state.messages):
            if message.role == "assistant":
                return message.event_id
        return self.state.last_event_id


def _names(events: Sequence[NewEvent]) -> str:
    return ", ".join(event.type for event in events)


def _in_its_own_order(output: Any) -> str | None:
    """The output's JSON text when its keys are not in sorted order (the journal stores JSON sorted), so a
    replay hands the loop the same object, and the loop's own `json.dumps` sends the model the same text."""
    if not isinstance(output, dict | list):
        return None
    try:
        text = orjson.dumps(output)
    except TypeError:
        return None  # the append says what is wrong with it
    return None if text == orjson.dumps(output, option=orjson.OPT_SORT_KEYS) else text.decode()
