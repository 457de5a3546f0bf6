"""The counters of a run, folded once from its events: RunState, the policy and the runs read model use this fold.

The policy's `run_metrics:` conditions read them by name (seed 001's `tickets_created_gt: 3`);
RunState keeps them up to date as events fold in; the runs read model stores them per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from agentjournal.journal import RecordedEvent

__all__ = ["METRIC_EVENT_TYPES", "RunMetrics"]

METRIC_EVENT_TYPES = (
    "ModelCalled",
    "ToolProposed",
    "PolicyEvaluated",
    "ToolApproved",
    "ToolRejected",
    "ToolExecuted",
    "ToolFailed",
    "HandoffInitiated",
    "GuardrailTriggered",
    "BudgetExceeded",
)
"""The run events the counters read (and `Policy.reevaluate` needs); filter a journal read with them."""


@dataclass
class RunMetrics:
    """Counters derived from a run's events.

    Names: tickets_created, tool_calls (executed), tool_failures (failed attempts), denials,
    approvals_required, approvals, rejections, model_calls, input_tokens, output_tokens,
    tokens, cost_usd (model and tool costs), handoffs, guardrails_triggered, and calls_<tool>
    for any tool (e.g. calls_send_email).
    """

    tickets_created: int = 0
    tool_calls: int = 0
    tool_failures: int = 0
    calls_by_tool: dict[str, int] = field(default_factory=dict)
    denials: int = 0
    approvals_required: int = 0
    approvals: int = 0
    rejections: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    handoffs: int = 0
    guardrails_triggered: int = 0
    budget_exceeded: int = 0

    NAMES: ClassVar[tuple[str, ...]] = (
        "tickets_created",
        "tool_calls",
        "tool_failures",
        "denials",
        "approvals_required",
        "approvals",
        "rejections",
        "model_calls",
        "input_tokens",
        "output_tokens",
        "tokens",
        "cost_usd",
        "handoffs",
        "guardrails_triggered",
    )
    TICKET_TOOL: ClassVar[str] = "create_ticket"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_events(cls, events: Iterable[RecordedEvent]) -> RunMetrics:
        metrics = cls()
        for event in events:
            metrics.apply(event.type, event.data)
        return metrics

    def apply(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Fold one event in; types that count nothing are ignored."""
        if event_type == "ToolExecuted":
            tool = str(data.get("tool", ""))
            self.tool_calls += 1
            self.calls_by_tool[tool] = self.calls_by_tool.get(tool, 0) + 1
            if tool == self.TICKET_TOOL:
                self.tickets_created += 1
            self.cost_usd += _number(data.get("cost_usd"))
        elif event_type == "ToolFailed":
            self.tool_failures += 1
        elif event_type == "PolicyEvaluated":
            if data.get("action") == "deny":
                self.denials += 1
            elif data.get("action") == "require_human_approval":
                self.approvals_required += 1
        elif event_type == "ToolApproved":
            self.approvals += 1
        elif event_type == "ToolRejected":
            self.rejections += 1
        elif event_type == "ModelCalled":
            self.model_calls += 1
            self.cost_usd += _number(data.get("cost_usd"))
            self.input_tokens += int(_number(data.get("input_tokens")))
            self.output_tokens += int(_number(data.get("output_tokens")))
        elif event_type == "HandoffInitiated":
            self.handoffs += 1
        elif event_type == "GuardrailTriggered":
            self.guardrails_triggered += 1
        elif event_type == "BudgetExceeded":
            self.budget_exceeded = 1

    def get(self, name: str) -> float:
        if name in self.NAMES:
            return float(getattr(self, name))
        if name.startswith("calls_") and len(name) > len("calls_"):
            return float(self.calls_by_tool.get(name[len("calls_") :], 0))
        raise KeyError(f"unknown run metric {name!r}; known: {', '.join(self.NAMES)}, calls_<tool>")

    @classmethod
    def is_known(cls, name: str) -> bool:
        return name in cls.NAMES or (name.startswith("calls_") and len(name) > len("calls_"))

    def copy(self) -> RunMetrics:
        """An independent copy (safe to hand to a policy or to keep as a snapshot)."""
        copied = RunMetrics(**{f.name: getattr(self, f.name) for f in fields(self)})
        copied.calls_by_tool = dict(self.calls_by_tool)
        return copied

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"calls_by_tool": dict(self.calls_by_tool)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetrics:
        known = {f.name for f in fields(cls)}
        metrics = cls(**{key: value for key, value in data.items() if key in known})
        metrics.calls_by_tool = dict(metrics.calls_by_tool)
        return metrics


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
