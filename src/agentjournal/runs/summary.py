"""RunSummary: where a run stands, folded once from its events.

Status, what it waits for, who it is for, when it started and last moved, and its counters
(RunMetrics). RunState embeds it; the runs read model stores it per run (as JSON beside its
columns) and keeps folding it batch by batch, so both answer "where is this run" the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agentjournal.journal import RecordedEvent
from agentjournal.runs.events import TERMINAL, run_id_of
from agentjournal.runs.metrics import RunMetrics

__all__ = ["FINISHED", "HUMAN_AGENTS", "RunStatus", "RunSummary", "WaitingFor"]

RunStatus = Literal["new", "running", "waiting_approval", "completed", "aborted", "cancelled"]
WaitingFor = Literal["approval", "worker", "claim"]
"""approval: a human must decide; worker: a human decided and a worker must resume the run;
claim: a worker claimed a call and has not recorded its result (running it, or crashed)."""

FINISHED: frozenset[str] = frozenset({"completed", "aborted", "cancelled"})
HUMAN_AGENTS: frozenset[str] = frozenset({"human", "human-agent", "operator", "support-human"})
"""A handoff to one of these is a human takeover: the run does not count as a success."""
_ENDINGS: dict[str, RunStatus] = {"RunCompleted": "completed", "RunAborted": "aborted", "RunCancelled": "cancelled"}
_STARTED_FIELDS = ("agent_version", "model", "prompt_version", "route", "policy_version", "user_id")


@dataclass
class RunSummary:
    run_id: str = ""
    status: RunStatus = "new"
    agent: str | None = None
    """The active agent (it changes on a handoff)."""
    root_agent: str | None = None
    agent_version: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    route: str | None = None
    policy_version: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    contract_version: int | None = None
    outcome: str | None = None
    end_reason: str | None = None
    started_at: float | None = None
    last_event_at: float | None = None
    ended_at: float | None = None
    first_action_at: float | None = None
    """The first tool call allowed, approved or run (seed 001's time to first action)."""
    human_takeover: bool = False
    last_type: str | None = None
    events: int = 0
    step: int = 0
    pending_approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    """approval id -> {call_id, tool, expires_at}."""
    decided_calls: list[str] = field(default_factory=list)
    """Calls a human decided on that no worker has acted on yet."""
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    """call id -> {worker, expires_at} of calls claimed and not finished."""
    metrics: RunMetrics = field(default_factory=RunMetrics)

    # ----- questions -------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def waiting_for(self) -> WaitingFor | None:
        if self.finished:
            return None
        if self.pending_approvals:
            return "approval"
        if self.claims:
            return "claim"
        if self.decided_calls:
            return "worker"
        return None

    # ----- folding ---------------------------------------------------------------------------

    def apply(self, event: RecordedEvent) -> None:
        """Fold one event of the run (already upcast to the contract's current schema)."""
        data = event.data
        kind = event.type
        at = event.recorded_at.timestamp()
        self.events += 1
        self.last_event_at = at
        self.last_type = kind
        if self.tenant_id is None:
            self.tenant_id = event.tenant_id
        self.metrics.apply(kind, data)
        if kind == "RunStarted":
            self.run_id = str(data.get("run_id") or run_id_of(event.stream_id))
            self.status = "running"
            self.agent = self.root_agent = data.get("agent")
            for name in _STARTED_FIELDS:
                setattr(self, name, data.get(name))
            self.contract_version = data.get("contract_version")
            self.started_at = at
        elif kind in ("ModelCalled", "ToolProposed"):
            self.step = max(self.step, int(data.get("step", 0)))
        elif kind == "PolicyEvaluated":
            if data.get("action") == "allow":
                self._acted(at)
        elif kind == "ApprovalRequested":
            self.pending_approvals[str(data["approval_id"])] = {
                "call_id": data.get("call_id"),
                "tool": data.get("tool"),
                "expires_at": data.get("expires_at"),
            }
            self.status = "waiting_approval"
        elif kind in ("ToolApproved", "ToolRejected"):
            decided = self.pending_approvals.pop(str(data.get("approval_id")), None)
            if decided is not None and decided.get("call_id") is not None:
                self.decided_calls.append(str(decided["call_id"]))
            if kind == "ToolApproved":
                self._acted(at)
            if not self.pending_approvals:
                self.status = "running"
        elif kind == "ToolClaimed":
            self.claims[str(data["call_id"])] = {"worker": data.get("worker"), "expires_at": data.get("expires_at")}
        elif kind == "ToolExecuted" or (kind == "ToolFailed" and not data.get("will_retry")):
            self.claims.pop(str(data.get("call_id")), None)
            self._acted(at)
        elif kind == "ToolFailed":
            self.claims.pop(str(data.get("call_id")), None)
        elif kind == "ObservationCaptured":
            call_id = str(data.get("call_id"))
            if call_id in self.decided_calls:
                self.decided_calls.remove(call_id)
        elif kind == "HandoffInitiated":
            self.agent = data.get("to_agent")
            if str(self.agent or "").lower() in HUMAN_AGENTS or data.get("human") is True:
                self.human_takeover = True
        elif kind in TERMINAL:
            self.status = _ENDINGS[kind]
            self.ended_at = at
            self.end_reason = data.get("reason")
            self.outcome = data.get("outcome") if kind == "RunCompleted" else kind.removeprefix("Run").lower()
            self.pending_approvals.clear()  # a finished run closes its approvals in every queue
            self.decided_calls.clear()
            self.claims.clear()

    def _acted(self, at: float) -> None:
        if self.first_action_at is None:
            self.first_action_at = at

    # ----- storage (the runs read model keeps it as JSON) ----------------------------------------

    def to_dict(self) -> dict[str, Any]:
        state = dict(vars(self))
        state["metrics"] = self.metrics.to_dict()
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RunSummary:
        summary = cls(**{key: value for key, value in state.items() if key != "metrics"})
        summary.metrics = RunMetrics.from_dict(state.get("metrics") or {})
        return summary
