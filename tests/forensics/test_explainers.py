"""Explainers: registered per type, a useful default for unknown types, never an error."""

from __future__ import annotations

from agentjournal.forensics import Explainers, Explanation, humanize
from agentjournal.journal import Journal, NewEvent, RecordedEvent


def _event(type: str, data: dict[str, object], actor: str | None = None) -> RecordedEvent:
    journal = Journal.open("memory://")
    return journal.append("run-1", NewEvent(type, data, actor=actor)).events[0]


def test_registered_explainer_is_used() -> None:
    registry = Explainers()

    @registry.explainer("ToolProposed")
    def proposed(event: RecordedEvent) -> Explanation:
        return Explanation(f"Decided to call {event.data['tool']}", event.data["reason"], {"tool": event.data["tool"]})

    explanation = registry.explain(_event("ToolProposed", {"tool": "issue_refund", "reason": "the order was late"}))
    assert explanation == Explanation("Decided to call issue_refund", "the order was late", {"tool": "issue_refund"})
    assert registry.registered() == ["ToolProposed"]


def test_unknown_type_gets_a_default_from_type_name_and_data() -> None:
    explanation = Explainers().explain(
        _event("ToolFailed", {"tool": "search", "status": 404, "message": "x" * 200, "a": 1, "b": 2}, actor="agent")
    )
    assert explanation.title == "Tool failed"
    assert explanation.summary.startswith("tool: search; status: 404; message: xxx")
    assert "…" in explanation.summary and explanation.summary.endswith("(+1 more)")
    assert explanation.tags == {"type": "ToolFailed", "actor": "agent"}
    assert Explainers().explain(_event("ping", {})).summary == "no data"


def test_a_failing_explainer_falls_back_to_the_default_and_says_why() -> None:
    registry = Explainers()
    registry.register("ToolExecuted", lambda event: Explanation("ok", event.data["missing"], {}))
    explanation = registry.explain(_event("ToolExecuted", {"tool": "search"}))
    assert explanation.title == "Tool executed"
    assert explanation.tags["explainer_error"] == "KeyError: 'missing'"


def test_humanize() -> None:
    assert humanize("ToolExecuted") == "Tool executed"
    assert humanize("tool_executed") == "Tool executed"
    assert humanize("agent.run.started") == "Agent run started"
    assert humanize("HTTPCallFailed") == "HTTP call failed"
