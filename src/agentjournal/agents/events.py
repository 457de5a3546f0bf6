"""The events of an agent run (stream `run-<id>`), and how each reads in plain language.

Field names are part of the contract: projections, policies (RunMetrics) and the evaluator
read them. Every model registers in `RUN_EVENTS` (call `register_run_events(journal.registry)`)
and every type has an explainer on the forensics `explainers`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentjournal.forensics.explainers import Explanation, brief, explainers
from agentjournal.journal import EventRegistry, RecordedEvent

RUN_PREFIX = "run-"
BLOB_PREFIX = "blob-"


def run_stream(run_id: str) -> str:
    return run_id if run_id.startswith(RUN_PREFIX) else RUN_PREFIX + run_id


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunStarted(_Event):
    run_id: str
    agent: str
    agent_version: str
    model: str
    prompt_version: str
    """SHA-256 of the agent's system prompt."""
    tool_schemas: dict[str, str]
    """Tool name -> SHA-256 of its JSON schema."""
    policy_version: str | None = None
    route: str | None = None
    input: str
    user_id: str | None = None
    limits: dict[str, Any] = Field(default_factory=dict)


class PlanGenerated(_Event):
    plan: dict[str, Any]


class PlanRejected(_Event):
    errors: list[dict[str, Any]]
    fallback: str


class ModelCalled(_Event):
    model: str
    request_fingerprint: str
    new_messages: list[dict[str, Any]]
    """Messages added since the previous call; those already in the journal as `{"ref": version}`."""
    response: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    step: int
    agent: str
    purpose: Literal["act", "plan"] = "act"
    """`plan` for the call that asked for seed 001's JSON plan."""


class ToolProposed(_Event):
    tool: str
    arguments: dict[str, Any]
    step: int
    call_id: str
    agent: str


class PolicyEvaluated(_Event):
    tool: str
    rule: str | None
    action: Literal["allow", "deny", "require_human_approval"]
    reason: str
    call_id: str


class ApprovalRequested(_Event):
    approval_id: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    expires_at: str | None
    call_id: str


class ToolApproved(_Event):
    approval_id: str
    by: str
    reason: str
    tool: str
    arguments_hash: str


class ToolRejected(_Event):
    approval_id: str
    by: str
    reason: str
    tool: str


class ToolExecuted(_Event):
    tool: str
    output: Any = None
    output_ref: str | None = None
    """`blob-<sha256>` when the output was large and stored once by content hash."""
    latency_ms: float
    attempt: int
    call_id: str
    cost_usd: float = 0.0


class ToolFailed(_Event):
    tool: str
    error_type: str
    error: str
    attempt: int
    will_retry: bool
    call_id: str
    latency_ms: float = 0.0


class ObservationCaptured(_Event):
    """What the model is told about a call: its output (by reference to ToolExecuted) or why it has none."""

    tool: str
    call_id: str
    ok: bool
    error_type: str | None = None
    error: str | None = None


class HandoffInitiated(_Event):
    from_agent: str
    to_agent: str
    reason: str
    call_id: str


class ResponseDrafted(_Event):
    text: str
    agent: str


class ResponseFinalized(_Event):
    text: str


class RunCompleted(_Event):
    outcome: Literal["answered", "fallback"] = "answered"


class RunAborted(_Event):
    reason: str


class RunCancelled(_Event):
    reason: str
    by: str | None = None


class BudgetExceeded(_Event):
    kind: Literal["usd", "tokens"]
    limit: float
    spent: float


class BlobStored(_Event):
    """A large value stored once on `blob-<sha256>`; events refer to it by that stream id."""

    sha256: str
    size: int
    content: Any


RUN_EVENTS: tuple[type[_Event], ...] = (
    RunStarted,
    PlanGenerated,
    PlanRejected,
    ModelCalled,
    ToolProposed,
    PolicyEvaluated,
    ApprovalRequested,
    ToolApproved,
    ToolRejected,
    ToolExecuted,
    ToolFailed,
    ObservationCaptured,
    HandoffInitiated,
    ResponseDrafted,
    ResponseFinalized,
    RunCompleted,
    RunAborted,
    RunCancelled,
    BudgetExceeded,
    BlobStored,
)
TERMINAL = frozenset({"RunCompleted", "RunAborted", "RunCancelled"})


def register_run_events(registry: EventRegistry) -> EventRegistry:
    """Register every run event model on `registry` (idempotent)."""
    for model in RUN_EVENTS:
        registry.register(model)
    return registry


# ----- explainers --------------------------------------------------------------------------

_VERBS = {"allow": "allowed", "deny": "denied", "require_human_approval": "sent to a human"}


def _money(value: Any) -> str:
    amount = float(value or 0)
    return f"${amount:.4f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def _explain(event: RecordedEvent) -> Explanation:
    d = event.data
    tags = {"type": event.type}
    for key in ("tool", "agent", "step", "rule", "action", "approval_id"):
        if d.get(key) is not None:
            tags[key] = str(d[key])
    title, summary = _TEXT[event.type](d)
    return Explanation(title, summary, tags)


def _model_called(d: dict[str, Any]) -> tuple[str, str]:
    calls = d.get("response", {}).get("tool_calls") or []
    did = "asked to call " + ", ".join(c.get("name", "?") for c in calls) if calls else "answered"
    if d.get("purpose") == "plan":
        did = "wrote a plan"
    text = d.get("response", {}).get("text")
    summary = (
        f"{d.get('input_tokens', 0)} tokens in, {d.get('output_tokens', 0)} out, {_money(d.get('cost_usd'))}, "
        f"{float(d.get('latency_ms', 0)):.0f} ms"
    )
    if text and not calls and d.get("purpose") != "plan":
        summary = f"{brief(text, 80)} ({summary})"
    return f"Model {d.get('model')} {did}", summary


def _policy(d: dict[str, Any]) -> tuple[str, str]:
    who = f"Policy {d['rule']}" if d.get("rule") else "Policy default"
    return f"{who} {_VERBS.get(d.get('action', ''), d.get('action'))} {d.get('tool')}", str(d.get("reason", ""))


def _executed(d: dict[str, Any]) -> tuple[str, str]:
    output = f"stored once as {d['output_ref'][:17]}…" if d.get("output_ref") else brief(d.get("output"), 100)
    retry = f", attempt {d['attempt']}" if d.get("attempt", 1) > 1 else ""
    return f"{d.get('tool')} returned", f"{output} ({float(d.get('latency_ms', 0)):.0f} ms{retry})"


def _failed(d: dict[str, Any]) -> tuple[str, str]:
    then = "will retry" if d.get("will_retry") else "giving up"
    return f"{d.get('tool')} failed ({d.get('error_type')}), attempt {d.get('attempt')}", f"{d.get('error')}; {then}"


def _observation(d: dict[str, Any]) -> tuple[str, str]:
    if d.get("ok"):
        return f"Observed the result of {d.get('tool')}", "the output goes back to the model"
    return f"Observed that {d.get('tool')} did not run ({d.get('error_type')})", str(d.get("error", ""))


_TEXT: dict[str, Any] = {
    "RunStarted": lambda d: (
        f"Run started: {d.get('agent')} v{d.get('agent_version')} on {d.get('model')}",
        f"{'user ' + d['user_id'] if d.get('user_id') else 'the user'} said: {brief(d.get('input'), 100)}",
    ),
    "PlanGenerated": lambda d: (
        f"Planned {len(d['plan'].get('steps', []))} steps",
        " -> ".join(step.get("tool", "?") for step in d["plan"].get("steps", [])),
    ),
    "PlanRejected": lambda d: (
        f"Plan rejected ({len(d.get('errors', []))} errors); answered with the safe fallback",
        "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in d.get("errors", [])[:3]),
    ),
    "ModelCalled": _model_called,
    "ToolProposed": lambda d: (f"Decided to call {d.get('tool')}", brief(d.get("arguments"), 100)),
    "PolicyEvaluated": _policy,
    "ApprovalRequested": lambda d: (
        f"Asked a human to approve {d.get('tool')}",
        f"approval {d.get('approval_id')} for {brief(d.get('arguments'), 80)}"
        + (f", expires {d['expires_at']}" if d.get("expires_at") else ""),
    ),
    "ToolApproved": lambda d: (f"{d.get('by')} approved {d.get('tool')}", str(d.get("reason", ""))),
    "ToolRejected": lambda d: (f"{d.get('by')} rejected {d.get('tool')}", str(d.get("reason", ""))),
    "ToolExecuted": _executed,
    "ToolFailed": _failed,
    "ObservationCaptured": _observation,
    "HandoffInitiated": lambda d: (
        f"Handed off from {d.get('from_agent')} to {d.get('to_agent')}",
        str(d.get("reason", "")),
    ),
    "ResponseDrafted": lambda d: (f"{d.get('agent')} drafted a response", brief(d.get("text"), 100)),
    "ResponseFinalized": lambda d: ("Answered the user", brief(d.get("text"), 100)),
    "RunCompleted": lambda d: ("Run completed", f"outcome: {d.get('outcome', 'answered')}"),
    "RunAborted": lambda d: ("Run aborted", str(d.get("reason", ""))),
    "RunCancelled": lambda d: (
        "Run cancelled",
        f"{d.get('reason', '')}" + (f" (by {d['by']})" if d.get("by") else ""),
    ),
    "BudgetExceeded": lambda d: (
        f"Budget exceeded ({d.get('kind')})",
        f"spent {_money(d['spent']) if d.get('kind') == 'usd' else int(d.get('spent', 0))} "
        f"of {_money(d['limit']) if d.get('kind') == 'usd' else int(d.get('limit', 0))}",
    ),
    "BlobStored": lambda d: (f"Stored a large value once ({d.get('size')} bytes)", f"sha256 {d.get('sha256')}"),
}

for _type in _TEXT:
    explainers.register(_type, _explain)
