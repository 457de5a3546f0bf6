"""What a run did, as the evaluator compares it: its tool calls, model calls, outcome and usage.

One fold serves both sides of every comparison: the recorded run a dataset item holds (the
baseline) and the run a candidate produced in the evaluation journal. Both are folded from
run-contract events by the same code, so a difference in a score is a difference in the runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agentjournal.journal import RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.runs import RunState, upcast
from agentjournal.runs.events import Action

__all__ = ["ModelStep", "Outcome", "ToolStep", "Trajectory", "Usage", "arguments_key"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolStep(_Record):
    """One tool call: what was asked, what the policy and a human decided, what came back."""

    call_id: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    decision: Action | None = None
    """The policy's action (None: the run had no policy)."""
    rule: str | None = None
    approval: Literal["approved", "rejected", "pending"] | None = None
    status: str
    ok: bool
    output: Any = None
    error: str | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0


class ModelStep(_Record):
    """One model call: which model answered which stage, and what it answered."""

    step: int
    agent: str
    stage: str
    model: str
    fingerprint: str
    text: str | None = None
    tool_calls: list[str] = []
    """The names of the tools the reply called."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


class Outcome(_Record):
    status: str
    response: str | None = None
    reason: str | None = None


class Usage(_Record):
    """The run's usage as its events record it: cost, tokens, latency and policy counters."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    """Model and tool latency summed, as recorded (reused results keep their recorded latency)."""
    model_calls: int = 0
    tool_calls: int = 0
    policy_denials: int = 0
    policy_escalations: int = 0


class Trajectory(_Record):
    tools: list[ToolStep]
    models: list[ModelStep]
    outcome: Outcome
    usage: Usage

    @property
    def tool_names(self) -> list[str]:
        return [step.tool for step in self.tools]

    @classmethod
    def of(cls, events: Sequence[RecordedEvent]) -> Trajectory:
        """Fold a run's events (any contract version) into its trajectory."""
        upcast_events = [upcast(event) for event in events]
        state = RunState(upcast_events[0].stream_id if upcast_events else "run-")
        latencies: dict[str, float] = {}
        costs: dict[str, float] = {}
        models: list[ModelStep] = []
        for event in upcast_events:
            state.apply(event)
            data = event.data
            if event.type == "ModelCalled":
                response = data.get("response") or {}
                models.append(
                    ModelStep(
                        step=int(data.get("step", 0)),
                        agent=str(data.get("agent", "")),
                        stage=str(data.get("stage", "act")),
                        model=str(data.get("model", "")),
                        fingerprint=str(data.get("request_fingerprint", "")),
                        text=response.get("text"),
                        tool_calls=[str(call.get("name")) for call in response.get("tool_calls") or ()],
                        input_tokens=int(data.get("input_tokens", 0)),
                        output_tokens=int(data.get("output_tokens", 0)),
                        cost_usd=float(data.get("cost_usd", 0.0)),
                        latency_ms=float(data.get("latency_ms", 0.0)),
                    )
                )
            elif event.type in ("ToolExecuted", "ToolFailed"):
                call_id = str(data.get("call_id"))
                latencies[call_id] = latencies.get(call_id, 0.0) + float(data.get("latency_ms") or 0.0)
                costs[call_id] = costs.get(call_id, 0.0) + float(data.get("cost_usd") or 0.0)
        tools = []
        for call in state.calls.values():
            if call.tool.startswith("transfer_to_"):
                continue
            approval = state.approvals.get(call.approval_id or "")
            tools.append(
                ToolStep(
                    call_id=call.call_id,
                    agent=call.agent,
                    tool=call.tool,
                    arguments=call.arguments,
                    decision=call.decision,
                    rule=call.rule,
                    approval=None if approval is None else _approval_status(approval.status),
                    status=call.status,
                    ok=call.status == "executed",
                    output=call.output,
                    error=call.error,
                    latency_ms=latencies.get(call.call_id, 0.0),
                    cost_usd=costs.get(call.call_id, 0.0),
                )
            )
        metrics = state.metrics
        usage = Usage(
            cost_usd=round(metrics.cost_usd, 9),
            input_tokens=metrics.input_tokens,
            output_tokens=metrics.output_tokens,
            latency_ms=round(sum(step.latency_ms for step in models) + sum(latencies.values()), 3),
            model_calls=metrics.model_calls,
            tool_calls=metrics.tool_calls,
            policy_denials=metrics.denials,
            policy_escalations=metrics.approvals_required,
        )
        outcome = Outcome(status=state.status, response=state.final_response, reason=state.reason)
        return cls(tools=tools, models=models, outcome=outcome, usage=usage)


def _approval_status(status: str) -> Literal["approved", "rejected", "pending"]:
    return "approved" if status == "approved" else "rejected" if status == "rejected" else "pending"


def arguments_key(tool: str, arguments: dict[str, Any]) -> tuple[str, bytes]:
    """What makes two calls the same call: the tool and its arguments as canonical JSON."""
    return tool, canonical_json(arguments)
