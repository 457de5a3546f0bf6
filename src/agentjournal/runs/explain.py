"""The run contract's events in plain language.

An event whose data does not fit the contract (a user's own `RunStarted` on their own `run-`
stream, say) is not a run event, whatever its type is called: it gets the default explanation,
never a title full of `None`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agentjournal.journal import RecordedEvent
from agentjournal.model.explainers import Explainers, Explanation, brief, default_explanation
from agentjournal.runs import events as ev

__all__ = ["register_run_explainers"]

_VERBS = {"allow": "allowed", "deny": "denied", "require_human_approval": "sent to a human"}
_TAG_FIELDS = ("tool", "agent", "step", "stage", "rule", "action", "approval_id", "check", "outcome")


def _money(value: float) -> str:
    return f"${value:.4f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


def _run_started(e: ev.RunStarted) -> tuple[str, str]:
    who = f"user {e.user_id}" if e.user_id else "the user"
    on = f" on {e.model}" if e.model else ""  # a run of tool calls alone (an MCP server's) names no model
    return f"Run started: {e.agent} v{e.agent_version}{on}", f"{who} said: {brief(e.input, 100)}"


def _memory_recalled(e: ev.MemoryRecalled) -> tuple[str, str]:
    if not e.items:
        return "Recalled nothing from memory", f"nothing in the user's memory matched {brief(e.query, 60)}"
    texts = "; ".join(brief(item.get("text"), 40) for item in e.items[:3])
    return f"Recalled {len(e.items)} memory item(s)", texts


def _plan_generated(e: ev.PlanGenerated) -> tuple[str, str]:
    steps = e.plan.get("steps", [])
    return f"Planned {len(steps)} steps", " -> ".join(str(step.get("tool", "?")) for step in steps)


def _plan_rejected(e: ev.PlanRejected) -> tuple[str, str]:
    details = "; ".join(f"{'.'.join(map(str, x.get('loc', [])))}: {x.get('msg')}" for x in e.errors[:3])
    return f"Plan rejected ({len(e.errors)} errors); answered with the safe fallback", details


def _model_called(e: ev.ModelCalled) -> tuple[str, str]:
    calls = e.response.get("tool_calls") or []
    did = "asked to call " + ", ".join(str(c.get("name", "?")) for c in calls) if calls else "answered"
    if e.stage == "plan":
        did = "wrote a plan"
    usage = f"{e.input_tokens} tokens in, {e.output_tokens} out, {_money(e.cost_usd)}, {e.latency_ms:.0f} ms"
    text = e.response.get("text")
    if text and not calls and e.stage != "plan":
        usage = f"{brief(text, 80)} ({usage})"
    return f"Model {e.model} {did}", usage


def _policy(e: ev.PolicyEvaluated) -> tuple[str, str]:
    who = f"Policy {e.rule}" if e.rule else "Policy default"
    return f"{who} {_VERBS[e.action]} {e.tool}", e.reason


def _approval_requested(e: ev.ApprovalRequested) -> tuple[str, str]:
    expires = f", expires {e.expires_at}" if e.expires_at else ""
    return f"Asked a human to approve {e.tool}", f"approval {e.approval_id} for {brief(e.arguments, 80)}{expires}"


def _claimed(e: ev.ToolClaimed) -> tuple[str, str]:
    title = f"Claimed {e.tool} to run it" + (f" (attempt {e.attempt})" if e.attempt > 1 else "")
    if e.reclaimed_from:
        title = f"Claimed {e.tool} again: {e.reclaimed_from} stopped without a result"
    return title, f"by {e.worker}, until {e.expires_at[:19].replace('T', ' ')}"


def _executed(e: ev.ToolExecuted) -> tuple[str, str]:
    output = f"stored once as {e.output_ref[:17]}…" if e.output_ref else brief(e.output, 100)
    retry = f", attempt {e.attempt}" if e.attempt > 1 else ""
    return f"{e.tool} returned", f"{output} ({e.latency_ms:.0f} ms{retry})"


def _failed(e: ev.ToolFailed) -> tuple[str, str]:
    then = "will retry" if e.will_retry else "giving up"
    return f"{e.tool} failed ({e.error_type}), attempt {e.attempt}", f"{e.error}; {then}"


def _observation(e: ev.ObservationCaptured) -> tuple[str, str]:
    if e.ok:
        return f"Observed the result of {e.tool}", "the output goes back to the model"
    return f"Observed that {e.tool} did not run ({e.error_type})", e.error or ""


def _guardrail(e: ev.GuardrailTriggered) -> tuple[str, str]:
    return f"Guardrail {e.check} {e.outcome} the answer", e.reason


def _budget(e: ev.BudgetExceeded) -> tuple[str, str]:
    shown = _money if e.kind == "usd" else (lambda value: str(int(value)))
    return f"Budget exceeded ({e.kind})", f"spent {shown(e.spent)} of {shown(e.limit)}"


def _memory_stored(e: ev.MemoryStored) -> tuple[str, str]:
    return f"Remembered a note about {e.user_id}", brief(e.text, 100)


def _memory_tags(e: ev.MemoryStored) -> dict[str, str]:
    tags = {"user": e.user_id, "kept": "long-term" if e.long_term else f"until {e.expires_at}"}
    if e.redactions:
        tags["redacted"] = ", ".join(f"{entry['kind']} x{entry['count']}" for entry in e.redactions)
    return tags


_EXTRA_TAGS: dict[type[ev.RunEvent], Callable[[Any], dict[str, str]]] = {ev.MemoryStored: _memory_tags}
"""Types whose tags are not their data's usual fields."""


_TEXT: dict[type[ev.RunEvent], Callable[[Any], tuple[str, str]]] = {
    ev.RunStarted: _run_started,
    ev.MemoryRecalled: _memory_recalled,
    ev.PlanGenerated: _plan_generated,
    ev.PlanRejected: _plan_rejected,
    ev.ModelCalled: _model_called,
    ev.ToolProposed: lambda e: (f"Decided to call {e.tool}", brief(e.arguments, 100)),
    ev.PolicyEvaluated: _policy,
    ev.ApprovalRequested: _approval_requested,
    ev.ToolApproved: lambda e: (f"{e.by} approved {e.tool}", e.reason),
    ev.ToolRejected: lambda e: (f"{e.by} rejected {e.tool}", e.reason),
    ev.ToolClaimed: _claimed,
    ev.ToolExecuted: _executed,
    ev.ToolFailed: _failed,
    ev.ObservationCaptured: _observation,
    ev.HandoffInitiated: lambda e: (f"Handed off from {e.from_agent} to {e.to_agent}", e.reason),
    ev.ResponseDrafted: lambda e: (f"{e.agent} drafted a response", brief(e.text, 100)),
    ev.OutputChecked: lambda e: (f"Output check {e.check} passed the answer", e.reason or "unchanged"),
    ev.GuardrailTriggered: _guardrail,
    ev.ResponseFinalized: lambda e: ("Answered the user", brief(e.text, 100)),
    ev.RunCompleted: lambda e: ("Run completed", f"outcome: {e.outcome}"),
    ev.RunAborted: lambda e: ("Run aborted", e.reason),
    ev.RunCancelled: lambda e: ("Run cancelled", e.reason + (f" (by {e.by})" if e.by else "")),
    ev.BudgetExceeded: _budget,
    ev.BlobStored: lambda e: (f"Stored a large value once ({e.size} bytes)", f"sha256 {e.sha256}"),
    ev.MemoryStored: _memory_stored,
    ev.MemoryForgotten: lambda e: ("Forgot a memory item", f"item {e.item_id}: {e.reason or 'no reason given'}"),
}


def _explainer(model: type[ev.RunEvent], text: Callable[[Any], tuple[str, str]]) -> Callable[..., Explanation]:
    def explain(event: RecordedEvent) -> Explanation:
        event = ev.upcast(event)
        try:
            payload = model.model_validate(event.data)
        except ValidationError:
            return default_explanation(event)
        title, summary = text(payload)
        if model in _EXTRA_TAGS:
            return Explanation(title, summary, _EXTRA_TAGS[model](payload))
        tags = {"type": event.type}
        for key in _TAG_FIELDS:
            value = event.data.get(key)
            if value is not None:
                tags[key] = str(value)
        return Explanation(title, summary, tags)

    return explain


def register_run_explainers(registry: Explainers) -> Explainers:
    """Explain every contract event with `registry` (a user's later registration for a type wins)."""
    for model, text in _TEXT.items():
        registry.register(model.__name__, _explainer(model, text))
    return registry
