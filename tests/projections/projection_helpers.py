"""Hand-written runs and catch-up for the read-side tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agentjournal.journal import Journal
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.synthetic import SyntheticRun, import_runs


def catch_up_all(journal: Journal, batch_size: int = 1000) -> None:
    for projection in builtin_projections():
        ProjectionRunner(journal, projection, batch_size=batch_size).catch_up()


def store_run(
    journal: Journal,
    run_id: str,
    events: list[tuple[str, dict[str, Any], float]],
    *,
    at: datetime,
    tenant: str = "acme",
) -> None:
    """A hand-written run, stored as history starting at `at` (event offsets in seconds)."""
    import_runs(journal, [SyntheticRun(f"run-{run_id}", tenant, events)], start=at, spacing=timedelta(0))


def refund_run(model: str = "gpt-4.1-mini", *, order: str = "ORD-5521", cost: float = 0.01) -> list[Any]:
    """A successful refund run: one model call, a lookup allowed by policy, a refund a human approves."""
    return [
        (
            "RunStarted",
            {"agent": "refund-agent", "model": model, "route": "support/refund", "input": f"refund {order}"},
            0,
        ),
        ("ModelCalled", {"model": model, "input_tokens": 1000, "output_tokens": 200, "cost_usd": cost}, 1.0),
        ("ToolProposed", {"tool": "lookup_order", "arguments": {"order_id": order}, "call_id": "c1"}, 1.5),
        ("PolicyEvaluated", {"rule": "read-only-tools", "action": "allow", "call_id": "c1"}, 2.0),
        ("ToolExecuted", {"tool": "lookup_order", "latency_ms": 100, "call_id": "c1"}, 2.1),
        (
            "ToolProposed",
            {"tool": "issue_refund", "arguments": {"order_id": order, "amount": 44.99}, "call_id": "c2"},
            3,
        ),
        ("PolicyEvaluated", {"rule": "refunds-over-limit", "action": "require_human_approval", "call_id": "c2"}, 3),
        ("ToolApproved", {"approved_by": "ops@example.com", "call_id": "c2"}, 10),
        ("ToolExecuted", {"tool": "issue_refund", "latency_ms": 300, "cost_usd": 0.002, "call_id": "c2"}, 10.3),
        ("ResponseFinalized", {"text": f"Refunded {order}"}, 11),
        ("RunCompleted", {}, 12),
    ]


NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
