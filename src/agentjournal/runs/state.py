"""RunState: a run folded from its events, as typed records.

It holds what a worker needs to continue a run in any process (the conversation, open tool
calls, claims, approvals, spend) and what a person asks afterwards (which agent was active,
what was called, what the agent knew at step N). Every record keeps the id of the event that
made it, so causation links are derived from the state, with no look-ups. Folding does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from agentjournal.journal import NewEvent, RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.model import Aggregate
from agentjournal.runs.events import run_id_of, upcast
from agentjournal.runs.metrics import RunMetrics
from agentjournal.runs.summary import RunStatus, RunSummary

__all__ = ["Approval", "CallStatus", "Claim", "Handoff", "Message", "RunState", "ToolCall"]

CallStatus = Literal[
    "proposed",  # to be executed (allowed, or no policy)
    "waiting_approval",  # sent to a human
    "approved",
    "rejected",
    "claimed",  # a worker took it and has not recorded a result
    "retrying",  # an attempt failed and another one is due
    "executed",
    "failed",  # the last attempt failed
    "refused",  # never run: unknown tool, invalid arguments, denied by policy
]
ApprovalStatus = Literal["pending", "approved", "rejected", "closed"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the conversation; `version` and `event_id` are those of the event holding it."""

    role: Literal["user", "assistant", "tool"]
    version: int
    event_id: str
    content: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    output_of: str | None = None
    """For a tool result: the call whose output is the content (filled in when sent, not kept twice)."""


@dataclass(frozen=True, slots=True)
class Claim:
    worker: str
    attempt: int
    expires_at: str
    idempotency_key: str
    event_id: str

    def expired(self, now: datetime) -> bool:
        return datetime.fromisoformat(self.expires_at) <= now


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A proposed tool call and everything that happened to it."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    step: int
    index: int
    """Its position among the calls of its step (part of the idempotency key)."""
    agent: str
    status: CallStatus
    proposed_id: str
    observed: bool = False
    decision: Literal["allow", "deny", "require_human_approval"] | None = None
    rule: str | None = None
    decided_id: str | None = None
    """The event that last authorised or refused it: the policy's decision or the human's."""
    approval_id: str | None = None
    attempts: int = 0
    claim: Claim | None = None
    output: Any = None
    output_ref: str | None = None
    executed_version: int | None = None
    error_type: str | None = None
    error: str | None = None
    result_id: str | None = None
    """The last ToolExecuted or ToolFailed."""


@dataclass(frozen=True, slots=True)
class Approval:
    approval_id: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    expires_at: str | None
    requested_at: str
    requested_id: str
    status: ApprovalStatus = "pending"
    by: str | None = None
    reason: str | None = None
    approved_hash: str | None = None
    decision_id: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= (now or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Handoff:
    from_agent: str
    to_agent: str
    reason: str
    call_id: str


class RunState(Aggregate):
    snapshot_every: ClassVar[int | None] = 200
    state_version: ClassVar[int] = 4

    summary: RunSummary
    input: str
    tool_schemas: dict[str, str]
    limits: dict[str, Any]
    planner_model: str | None
    correlation_id: str | None
    started_id: str | None
    last_event_id: str | None
    messages: list[Message]
    calls: dict[str, ToolCall]
    open_call_ids: list[str]
    """Calls not yet observed, oldest first (kept so each step costs the same however long the run)."""
    approvals: dict[str, Approval]
    plan: dict[str, Any] | None
    plan_id: str | None
    plan_errors: list[dict[str, Any]]
    handoffs: list[Handoff]
    recalled: list[dict[str, Any]] | None
    """What memory gave the agent before its first call (None: no recall happened)."""
    draft: str | None
    final_response: str | None
    latency_ms: float

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.summary = RunSummary(run_id=run_id_of(stream_id))
        self.input = ""
        self.tool_schemas = {}
        self.limits = {}
        self.planner_model = self.correlation_id = self.started_id = self.last_event_id = None
        self.messages = []
        self.calls = {}
        self.open_call_ids = []
        self.approvals = {}
        self.plan = self.plan_id = None
        self.plan_errors = []
        self.handoffs = []
        self.recalled = None
        self.draft = self.final_response = None
        self.latency_ms = 0.0

    # ----- questions ---------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def status(self) -> RunStatus:
        return self.summary.status

    @property
    def finished(self) -> bool:
        return self.summary.finished

    @property
    def agent(self) -> str:
        """The active agent (it changes on a handoff)."""
        return self.summary.agent or ""

    @property
    def root_agent(self) -> str:
        return self.summary.root_agent or ""

    @property
    def model(self) -> str:
        return self.summary.model or ""

    @property
    def agent_version(self) -> str:
        return self.summary.agent_version or ""

    @property
    def user_id(self) -> str | None:
        return self.summary.user_id

    @property
    def tenant_id(self) -> str | None:
        return self.summary.tenant_id

    @property
    def step(self) -> int:
        """Model calls (or plan steps) so far."""
        return self.summary.step

    @property
    def metrics(self) -> RunMetrics:
        return self.summary.metrics

    @property
    def cost_usd(self) -> float:
        return self.summary.metrics.cost_usd

    @property
    def tokens(self) -> int:
        return self.summary.metrics.tokens

    @property
    def outcome(self) -> str | None:
        return self.summary.outcome

    @property
    def reason(self) -> str | None:
        return self.summary.end_reason

    def open_calls(self) -> list[ToolCall]:
        """Calls proposed but not yet observed, in the order they were proposed."""
        return [self.calls[call_id] for call_id in self.open_call_ids]

    def run_metrics(self) -> RunMetrics:
        """A copy of the counters, safe to hand to a policy."""
        return self.summary.metrics.copy()

    def pending_approvals(self) -> list[Approval]:
        return [approval for approval in self.approvals.values() if approval.status == "pending"]

    def wire(self, message: Message, blob: Callable[[str], Any]) -> dict[str, Any]:
        """A message as the model sees it; a tool result's content comes from its call's output."""
        wire: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            wire["tool_calls"] = [dict(call) for call in message.tool_calls]
        if message.role == "tool":
            wire["tool_call_id"] = message.tool_call_id
            wire["name"] = message.name
            if message.output_of is not None:
                call = self.calls[message.output_of]
                output = blob(call.output_ref) if call.output_ref else call.output
                wire["content"] = canonical_json(output).decode()
        return wire

    def blob_refs(self) -> list[str]:
        """The blobs the conversation needs to be sent (tool outputs stored once by content hash)."""
        refs = []
        for message in self.messages:
            if message.output_of is not None:
                ref = self.calls[message.output_of].output_ref
                if ref is not None:
                    refs.append(ref)
        return refs

    # ----- folding -----------------------------------------------------------------------

    def apply_unwritten(
        self, event: NewEvent, redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> NewEvent:
        """Fold an event before it is appended, as the journal will store it at the next version, and return
        it as it is to be appended. A writer that batches its appends (the runtime's driver, the recorder)
        reads its own writes this way; `redact` is the journal's, so the state holds what the journal will."""
        data = event.data if isinstance(event.data, dict) else event.data.model_dump(mode="json")
        if redact is not None:
            data = redact(data)
        if data is not event.data:
            event = replace(event, data=data)
        self.apply(
            RecordedEvent(
                event_id=str(event.event_id),
                stream_id=self.stream_id,
                version=self.version + 1,
                position=0,
                type=event.type,
                schema_version=event.schema_version or 1,
                recorded_at=datetime.now(UTC),
                actor=event.actor,
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                traceparent=event.traceparent,
                data_json=b"",
                metadata_json=b"{}",
                prev_hash="",
                hash="",
                data=data,
            )
        )
        return event

    def when(self, event: RecordedEvent) -> None:
        event = upcast(event)
        self.summary.apply(event)
        self.last_event_id = event.event_id
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, event.data)

    def _update(self, call_id: str, **changes: Any) -> ToolCall:
        call = self.calls[call_id] = replace(self.calls[call_id], **changes)
        return call

    def _on_run_started(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.input = d["input"]
        self.tool_schemas = dict(d["tool_schemas"])
        self.limits = dict(d.get("limits") or {})
        self.planner_model = d.get("planner_model")
        self.correlation_id = event.correlation_id
        self.started_id = event.event_id
        self.messages.append(Message("user", event.version, event.event_id, d["input"]))

    def _on_memory_recalled(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.recalled = list(d["items"])
        if self.recalled:
            notes = "\n".join(f"- {item['text']}" for item in self.recalled)
            text = f"What you remember about this user from earlier conversations:\n{notes}"
            self.messages.append(Message("user", event.version, event.event_id, text))

    def _on_plan_generated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        """The plan becomes the planning reply's tool calls, so each step's result answers one of them."""
        self.plan = d["plan"]
        self.plan_id = event.event_id
        calls = tuple({"id": "plan-" + s["id"], "name": s["tool"], "arguments": s["input"]} for s in d["plan"]["steps"])
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].role == "assistant":
                self.messages[index] = replace(self.messages[index], tool_calls=calls)
                break

    def _on_plan_rejected(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.plan_errors = list(d["errors"])

    def _on_model_called(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.latency_ms += float(d.get("latency_ms") or 0.0)
        for sent in d["new_messages"]:  # a recorded loop's later user turns: no other event holds them
            if "ref" not in sent and sent.get("role") == "user" and isinstance(sent.get("content"), str):
                self.messages.append(Message("user", event.version, event.event_id, sent["content"]))
        response = d["response"]
        calls = tuple(response.get("tool_calls") or ())
        self.messages.append(Message("assistant", event.version, event.event_id, response.get("text"), calls))

    def _on_tool_proposed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.calls[d["call_id"]] = ToolCall(
            call_id=d["call_id"],
            tool=d["tool"],
            arguments=d["arguments"],
            step=d["step"],
            index=self._index_in_step(d["step"]),
            agent=d["agent"],
            status="proposed",
            proposed_id=event.event_id,
        )
        self.open_call_ids.append(d["call_id"])

    def _index_in_step(self, step: int) -> int:
        """How many calls of `step` came before (they are proposed one after another)."""
        index = 0
        for call_id in reversed(self.calls):
            if self.calls[call_id].step != step:
                break
            index += 1
        return index

    def _on_policy_evaluated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        status: CallStatus = "waiting_approval" if d["action"] == "require_human_approval" else "proposed"
        self._update(d["call_id"], decision=d["action"], rule=d.get("rule"), decided_id=event.event_id, status=status)

    def _on_approval_requested(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._update(d["call_id"], approval_id=d["approval_id"], status="waiting_approval")
        self.approvals[d["approval_id"]] = Approval(
            approval_id=d["approval_id"],
            call_id=d["call_id"],
            tool=d["tool"],
            arguments=d["arguments"],
            arguments_hash=d["arguments_hash"],
            expires_at=d.get("expires_at"),
            requested_at=event.recorded_at.isoformat(),
            requested_id=event.event_id,
        )

    def _decide(self, event: RecordedEvent, d: dict[str, Any], status: Literal["approved", "rejected"]) -> None:
        approval = self.approvals[d["approval_id"]] = replace(
            self.approvals[d["approval_id"]],
            status=status,
            by=d["by"],
            reason=d["reason"],
            approved_hash=d.get("arguments_hash"),
            decision_id=event.event_id,
        )
        self._update(approval.call_id, status=status, decided_id=event.event_id)

    def _on_tool_approved(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._decide(event, d, "approved")

    def _on_tool_rejected(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._decide(event, d, "rejected")

    def _on_tool_claimed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        claim = Claim(d["worker"], d["attempt"], d["expires_at"], d["idempotency_key"], event.event_id)
        self._update(d["call_id"], status="claimed", claim=claim)

    def _on_tool_executed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._update(
            d["call_id"],
            status="executed",
            attempts=d["attempt"],
            output=d.get("output"),
            output_ref=d.get("output_ref"),
            executed_version=event.version,
            result_id=event.event_id,
            claim=None,
        )

    def _on_tool_failed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._update(
            d["call_id"],
            status="retrying" if d["will_retry"] else "failed",
            attempts=d["attempt"],
            error_type=d["error_type"],
            error=d["error"],
            result_id=event.event_id,
            claim=None,
        )

    def _on_observation_captured(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        call = self.calls[d["call_id"]]
        refused = call.status in ("proposed", "waiting_approval", "approved", "rejected")
        self._update(d["call_id"], observed=True, status="refused" if refused and not d["ok"] else call.status)
        self.open_call_ids.remove(d["call_id"])
        if d["ok"]:  # the content is the call's output, rendered when sent (not kept twice)
            version = call.executed_version if call.executed_version is not None else event.version
            message = Message("tool", version, event.event_id, tool_call_id=d["call_id"], name=d["tool"])
            message = replace(message, output_of=d["call_id"])
        else:
            content = canonical_json({"error": d.get("error_type"), "message": d.get("error")}).decode()
            message = Message("tool", event.version, event.event_id, content, tool_call_id=d["call_id"], name=d["tool"])
        self.messages.append(message)

    def _on_handoff_initiated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.handoffs.append(Handoff(d["from_agent"], d["to_agent"], d["reason"], d["call_id"]))
        self.calls[d["call_id"]] = ToolCall(
            call_id=d["call_id"],
            tool="transfer_to_" + d["to_agent"],
            arguments={"reason": d["reason"]},
            step=self.step,
            index=0,
            agent=d["from_agent"],
            status="executed",
            proposed_id=event.event_id,
            attempts=1,
            output={"assistant": d["to_agent"]},
            executed_version=event.version,
            result_id=event.event_id,
        )
        self.open_call_ids.append(d["call_id"])

    def _on_response_drafted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.draft = d["text"]

    def _on_response_finalized(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.final_response = d["text"]

    def _on_finished(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        """A finished run closes what was still pending."""
        for approval_id, approval in list(self.approvals.items()):
            if approval.status == "pending":
                self.approvals[approval_id] = replace(approval, status="closed", reason=f"the run {self.status}")


_HANDLERS: dict[str, Callable[[RunState, RecordedEvent, dict[str, Any]], None]] = {
    "RunStarted": RunState._on_run_started,
    "MemoryRecalled": RunState._on_memory_recalled,
    "PlanGenerated": RunState._on_plan_generated,
    "PlanRejected": RunState._on_plan_rejected,
    "ModelCalled": RunState._on_model_called,
    "ToolProposed": RunState._on_tool_proposed,
    "PolicyEvaluated": RunState._on_policy_evaluated,
    "ApprovalRequested": RunState._on_approval_requested,
    "ToolApproved": RunState._on_tool_approved,
    "ToolRejected": RunState._on_tool_rejected,
    "ToolClaimed": RunState._on_tool_claimed,
    "ToolExecuted": RunState._on_tool_executed,
    "ToolFailed": RunState._on_tool_failed,
    "ObservationCaptured": RunState._on_observation_captured,
    "HandoffInitiated": RunState._on_handoff_initiated,
    "ResponseDrafted": RunState._on_response_drafted,
    "ResponseFinalized": RunState._on_response_finalized,
    "RunCompleted": RunState._on_finished,
    "RunAborted": RunState._on_finished,
    "RunCancelled": RunState._on_finished,
}
