"""The runs read model: one row per agent run, folded from the run's events.

Tolerant by design: a field an event does not carry leaves the row as it was, and an event
type it does not know still counts as a step. Field names follow the agents layer
(seed 001/002): RunStarted(agent, agent_version, model, prompt_version, route,
policy_version), ModelCalled(model, input_tokens, output_tokens, cost_usd),
PolicyEvaluated(rule, action), ToolExecuted / ToolFailed(tool, latency_ms, cost_usd), ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from agentjournal.journal import RecordedEvent
from agentjournal.projections.base import Projection, Tx

RUN_PREFIX = "run-"


COLUMNS = (
    "run_id",
    "stream_id",
    "tenant_id",
    "agent",
    "agent_version",
    "model",
    "prompt_version",
    "route",
    "policy_version",
    "status",
    "end_reason",
    "started_at",
    "ended_at",
    "duration_ms",
    "steps",
    "model_calls",
    "tool_calls",
    "tool_failures",
    "handoffs",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "first_action_at",
    "time_to_first_action_ms",
    "policy_denials",
    "policy_escalations",
    "approvals",
    "rejections",
    "fallback",
    "human_takeover",
    "budget_exceeded",
    "last_position",
)
_STARTED_FIELDS = ("agent", "agent_version", "model", "prompt_version", "route", "policy_version")
_ENDINGS = {"RunCompleted": "completed", "RunAborted": "aborted", "RunCancelled": "cancelled", "RunFailed": "failed"}
HUMAN_AGENTS = frozenset({"human", "human-agent", "operator", "support-human"})
"""A handoff to one of these is a human takeover: the run does not count as a success."""


def run_id_of(stream_id: str) -> str:
    return stream_id.removeprefix(RUN_PREFIX)


def new_run(stream_id: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, 0)
    for column in ("tenant_id", "end_reason", "started_at", "ended_at", "duration_ms", "first_action_at"):
        row[column] = None
    for column in (*_STARTED_FIELDS, "time_to_first_action_ms"):
        row[column] = None
    row.update(run_id=run_id_of(stream_id), stream_id=stream_id, status="running", cost_usd=0.0)
    return row


def fold(row: dict[str, Any], event: RecordedEvent) -> None:
    """Apply one event of the run's stream to its row."""
    data: Mapping[str, Any] = event.data
    kind = event.type
    at = event.recorded_at.timestamp()
    row["steps"] += 1
    row["last_position"] = event.position
    if row["tenant_id"] is None:
        row["tenant_id"] = event.tenant_id or _text(data.get("tenant_id"))
    if kind == "RunStarted":
        row["started_at"] = at
        for column in _STARTED_FIELDS:
            value = _text(data.get(column))
            if value is not None:
                row[column] = value
    elif kind == "ModelCalled":
        row["model_calls"] += 1
        usage: Mapping[str, Any] = data["usage"] if isinstance(data.get("usage"), Mapping) else {}
        row["input_tokens"] += int(_number(data.get("input_tokens", usage.get("input_tokens"))))
        row["output_tokens"] += int(_number(data.get("output_tokens", usage.get("output_tokens"))))
        row["cost_usd"] += _number(data.get("cost_usd"))
        if row["model"] is None:
            row["model"] = _text(data.get("model"))
    elif kind == "PolicyEvaluated":
        action = data.get("action")
        if action == "deny":
            row["policy_denials"] += 1
        elif action == "require_human_approval":
            row["policy_escalations"] += 1
            row["status"] = "waiting_approval"
        elif action == "allow":
            _first_action(row, at)
    elif kind == "ApprovalRequested":
        row["status"] = "waiting_approval"
    elif kind == "ToolApproved":
        row["approvals"] += 1
        row["status"] = "running"
        _first_action(row, at)
    elif kind == "ToolRejected":
        row["rejections"] += 1
        row["status"] = "running"
    elif kind in ("ToolExecuted", "ToolFailed"):
        row["tool_calls"] += 1
        row["tool_failures"] += kind == "ToolFailed"
        row["cost_usd"] += _number(data.get("cost_usd"))
        _first_action(row, at)
    elif kind == "HandoffInitiated":
        row["handoffs"] += 1
        if str(data.get("to_agent", "")).lower() in HUMAN_AGENTS or data.get("human") is True:
            row["human_takeover"] = 1
    elif kind == "HumanTakeover":
        row["human_takeover"] = 1
    elif kind == "FallbackUsed":
        row["fallback"] = 1
    elif kind == "BudgetExceeded":
        row["budget_exceeded"] = 1
    elif kind in _ENDINGS:
        row["status"] = _ENDINGS[kind]
        row["ended_at"] = at
        row["end_reason"] = _text(data.get("reason"))
        if data.get("fallback") is True or data.get("outcome") == "fallback":
            row["fallback"] = 1
        if data.get("human_takeover") is True:
            row["human_takeover"] = 1
        if row["started_at"] is not None:
            row["duration_ms"] = (at - row["started_at"]) * 1000.0


def _first_action(row: dict[str, Any], at: float) -> None:
    """Time to first action: from RunStarted to the first approved (or allowed, or run) tool call."""
    if row["first_action_at"] is None:
        row["first_action_at"] = at
        if row["started_at"] is not None:
            row["time_to_first_action_ms"] = (at - row["started_at"]) * 1000.0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


class RunsProjection(Projection):
    """aj_rm_runs: agent, model, tenant, route, status, times, steps, tools, tokens, cost, policy counts."""

    name: ClassVar[str] = "runs"
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_runs",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        """Every event of a `run-` stream counts as a step, so the projection reads them all."""
        first_version: dict[str, int] = {}
        for event in events:
            if event.stream_id.startswith(RUN_PREFIX):
                first_version.setdefault(event.stream_id, event.version)
        # A run whose first event here is version 1 has no row yet: only the others are looked up.
        known = sorted(run_id_of(stream) for stream, version in first_version.items() if version > 1)
        rows: dict[str, dict[str, Any]] = {
            row[1]: dict(zip(COLUMNS, row, strict=True))
            for row in tx.select_in(f"SELECT {', '.join(COLUMNS)} FROM aj_rm_runs WHERE run_id IN ({{}})", known)
        }
        for event in events:
            if event.stream_id in first_version:
                row = rows.get(event.stream_id)
                if row is None:
                    row = rows[event.stream_id] = new_run(event.stream_id)
                fold(row, event)
        tx.upsert("aj_rm_runs", COLUMNS, ("run_id",), [tuple(row[c] for c in COLUMNS) for row in rows.values()])
