"""RunState: a run folded from its events, the aggregate behind `agentjournal state run-…`.

It holds what the orchestrator needs to continue a run in any process (the conversation,
open tool calls, approvals, usage) and what a person asks afterwards (which agent was
active, what was called, what the agent knew at step N). Folding does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from agentjournal.agents.events import TERMINAL
from agentjournal.agents.policy import RunMetrics
from agentjournal.journal import RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.model import Aggregate, aggregate_types

OPEN = "open"
"""Status of a call that is proposed but not yet resolved by an observation."""


class RunState(Aggregate):
    snapshot_every: ClassVar[int | None] = 200
    state_version: ClassVar[int] = 3

    run_id: str
    status: str
    """new | running | waiting_approval | completed | aborted | cancelled"""
    root_agent: str
    agent: str
    """The active agent (it changes on a handoff)."""
    agent_version: str
    model: str
    prompt_version: str
    tool_schemas: dict[str, str]
    policy_version: str | None
    user_id: str | None
    tenant_id: str | None
    input: str
    limits: dict[str, Any]
    step: int
    """Model calls (or plan steps) so far."""
    messages: list[dict[str, Any]]
    """The conversation; each message carries `_v`, the version of the event that holds it."""
    calls: dict[str, dict[str, Any]]
    """Tool calls by call id: tool, arguments, step, status, attempts, output, approval."""
    open_call_ids: list[str]
    """Calls not yet observed, oldest first (kept so each step costs the same however long the run)."""
    approvals: dict[str, dict[str, Any]]
    plan: dict[str, Any] | None
    plan_errors: list[dict[str, Any]]
    handoffs: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    metrics: RunMetrics
    """Counters the policy's `run_metrics:` conditions read, kept up to date as events fold in."""
    draft: str | None
    final_response: str | None
    outcome: str | None
    reason: str | None
    correlation_id: str | None

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.run_id = stream_id.removeprefix("run-")
        self.status = "new"
        self.root_agent = self.agent = self.agent_version = self.model = self.prompt_version = self.input = ""
        self.tool_schemas = {}
        self.policy_version = self.user_id = self.tenant_id = None
        self.limits = {}
        self.step = 0
        self.messages = []
        self.calls = {}
        self.open_call_ids = []
        self.approvals = {}
        self.plan = None
        self.plan_errors = []
        self.handoffs = []
        self.input_tokens = self.output_tokens = 0
        self.cost_usd = 0.0
        self.metrics = RunMetrics()
        self.draft = self.final_response = self.outcome = self.reason = self.correlation_id = None

    def restore_state(self, state: dict[str, Any]) -> None:
        """A snapshot is plain JSON already: assign it as is (no per-value validation), but the metrics."""
        for name, value in state.items():
            setattr(self, name, value)
        self.metrics = RunMetrics(**state["metrics"])

    # ----- questions ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "aborted", "cancelled")

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def open_calls(self) -> list[dict[str, Any]]:
        """Calls proposed but not yet observed, in the order they were proposed."""
        return [self.calls[call_id] for call_id in self.open_call_ids]

    def run_metrics(self) -> RunMetrics:
        """A copy of the counters, safe to hand to a policy."""
        return dataclasses.replace(self.metrics, calls_by_tool=dict(self.metrics.calls_by_tool))

    def render(self, message: dict[str, Any], blob: Callable[[str], Any]) -> dict[str, Any]:
        """A message as the model sees it: bookkeeping keys dropped, a tool's output filled in from its call."""
        wire = {key: value for key, value in message.items() if not key.startswith("_")}
        if wire["role"] == "tool" and "content" not in wire:
            call = self.calls[wire["tool_call_id"]]
            output = blob(call["output_ref"]) if call.get("output_ref") else call.get("output")
            wire["content"] = canonical_json(output).decode()
        return wire

    def pending_approvals(self) -> list[dict[str, Any]]:
        return [approval for approval in self.approvals.values() if approval["status"] == "pending"]

    # ----- folding -----------------------------------------------------------------------

    def when(self, event: RecordedEvent) -> None:
        handler = getattr(self, "_on_" + event.type, None)
        if handler is not None:
            handler(event, event.data)
        if event.type in _METRIC_EVENTS:
            self.metrics.apply(event.type, event.data)
        if event.type in TERMINAL:
            self.status = _TERMINAL_STATUS[event.type]

    def _on_RunStarted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.status = "running"
        self.root_agent = self.agent = d["agent"]
        self.agent_version = d["agent_version"]
        self.model = d["model"]
        self.prompt_version = d["prompt_version"]
        self.tool_schemas = dict(d["tool_schemas"])
        self.policy_version = d.get("policy_version")
        self.user_id = d.get("user_id")
        self.tenant_id = event.tenant_id
        self.input = d["input"]
        self.limits = dict(d.get("limits") or {})
        self.correlation_id = event.correlation_id
        self.messages.append({"role": "user", "content": d["input"], "_v": event.version})

    def _on_PlanGenerated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        """The plan becomes the planning reply's tool calls, so each step's result answers one of them."""
        self.plan = d["plan"]
        calls = [{"id": "plan-" + s["id"], "name": s["tool"], "arguments": s["input"]} for s in d["plan"]["steps"]]
        for message in reversed(self.messages):
            if message["role"] == "assistant":
                message["tool_calls"] = calls
                break

    def _on_PlanRejected(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.plan_errors = list(d["errors"])

    def _on_ModelCalled(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.step = d["step"]
        self.input_tokens += d["input_tokens"]
        self.output_tokens += d["output_tokens"]
        self.cost_usd += d["cost_usd"]
        response = d["response"]
        message: dict[str, Any] = {"role": "assistant", "content": response.get("text"), "_v": event.version}
        if response.get("tool_calls"):
            message["tool_calls"] = response["tool_calls"]
        self.messages.append(message)

    def _on_ToolProposed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.step = max(self.step, d["step"])
        self.calls[d["call_id"]] = {
            "call_id": d["call_id"],
            "tool": d["tool"],
            "arguments": d["arguments"],
            "step": d["step"],
            "index": self._index_in_step(d["step"]),
            "agent": d["agent"],
            "status": OPEN,
            "decision": None,
            "approval_id": None,
            "attempts": 0,
            "output": None,
            "output_ref": None,
            "executed_v": None,
        }
        self.open_call_ids.append(d["call_id"])

    def _index_in_step(self, step: int) -> int:
        """How many calls of `step` came before (they are proposed one after another)."""
        index = 0
        for call_id in reversed(self.calls):
            if self.calls[call_id]["step"] != step:
                break
            index += 1
        return index

    def _on_PolicyEvaluated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        call = self.calls[d["call_id"]]
        call["decision"] = d["action"]
        call["rule"] = d.get("rule")
        if d["action"] == "require_human_approval":
            self.status = "waiting_approval"

    def _on_ApprovalRequested(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.status = "waiting_approval"
        self.calls[d["call_id"]]["approval_id"] = d["approval_id"]
        self.approvals[d["approval_id"]] = {
            "approval_id": d["approval_id"],
            "call_id": d["call_id"],
            "tool": d["tool"],
            "arguments": d["arguments"],
            "arguments_hash": d["arguments_hash"],
            "expires_at": d.get("expires_at"),
            "requested_at": event.recorded_at.isoformat(),
            "status": "pending",
            "by": None,
            "reason": None,
            "used": False,
        }

    def _decide(self, d: dict[str, Any], status: str) -> None:
        approval = self.approvals[d["approval_id"]]
        approval.update(status=status, by=d["by"], reason=d["reason"], approved_hash=d.get("arguments_hash"))
        if not self.pending_approvals():
            self.status = "running"

    def _on_ToolApproved(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._decide(d, "approved")

    def _on_ToolRejected(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self._decide(d, "rejected")

    def _on_ToolExecuted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        call = self.calls[d["call_id"]]
        call.update(attempts=d["attempt"], output=d.get("output"), output_ref=d.get("output_ref"))
        call["executed_v"] = event.version
        call["status"] = "executed"
        if call["approval_id"]:
            self.approvals[call["approval_id"]]["used"] = True
        self.cost_usd += d.get("cost_usd", 0.0)

    def _on_ToolFailed(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        call = self.calls[d["call_id"]]
        call["attempts"] = d["attempt"]
        call["error_type"], call["error"] = d["error_type"], d["error"]
        if not d["will_retry"]:
            call["status"] = "failed"
            if call["approval_id"]:
                self.approvals[call["approval_id"]]["used"] = True

    def _on_ObservationCaptured(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        call = self.calls[d["call_id"]]
        call["status"] = "observed"
        self.open_call_ids.remove(d["call_id"])
        message: dict[str, Any] = {"role": "tool", "tool_call_id": d["call_id"], "name": d["tool"]}
        if d["ok"]:  # the content is the call's output, rendered when sent (not kept twice)
            message["_v"] = call["executed_v"]
        else:
            message["content"] = canonical_json({"error": d.get("error_type"), "message": d.get("error")}).decode()
            message["_v"] = event.version
        self.messages.append(message)

    def _on_HandoffInitiated(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.handoffs.append({"from_agent": d["from_agent"], "to_agent": d["to_agent"], "reason": d["reason"]})
        self.agent = d["to_agent"]
        self.calls[d["call_id"]] = {
            "call_id": d["call_id"],
            "tool": "transfer_to_" + d["to_agent"],
            "arguments": {"reason": d["reason"]},
            "step": self.step,
            "index": 0,
            "agent": d["from_agent"],
            "status": "executed",
            "decision": None,
            "approval_id": None,
            "attempts": 1,
            "output": {"assistant": d["to_agent"]},
            "output_ref": None,
            "executed_v": event.version,
        }
        self.open_call_ids.append(d["call_id"])

    def _on_ResponseDrafted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.draft = d["text"]

    def _on_ResponseFinalized(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.final_response = d["text"]

    def _on_RunCompleted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.outcome = d.get("outcome", "answered")

    def _on_RunAborted(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.reason = d["reason"]

    def _on_RunCancelled(self, event: RecordedEvent, d: dict[str, Any]) -> None:
        self.reason = d["reason"]


_TERMINAL_STATUS = {"RunCompleted": "completed", "RunAborted": "aborted", "RunCancelled": "cancelled"}
_METRIC_EVENTS = frozenset({"ToolExecuted", "ToolFailed", "PolicyEvaluated", "ToolApproved", "ModelCalled"})


aggregate_types.register("run-", RunState)
