"""The built-in read models on SQLite, PostgreSQL and MariaDB, checked against hand-computed values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentjournal.journal import Journal, NewEvent
from agentjournal.projections import ProjectionError, dead_letters
from agentjournal.projections.metrics import (
    approvals_queue,
    metric_series,
    metrics,
    parse_duration,
    percentile,
    policy_decisions,
    search,
    tool_usage,
)
from agentjournal.projections.plot import plot_series

from .projection_helpers import NOW, catch_up_all, refund_run, store_run


def test_runs_row_has_every_figure_of_the_run(journal: Journal) -> None:
    store_run(journal, "r1", refund_run(cost=0.01), at=NOW - timedelta(hours=1), tenant="acme")
    catch_up_all(journal)
    [row] = journal.query(
        "SELECT run_id, tenant_id, agent, model, route, status, steps, model_calls, tool_calls, tool_failures, "
        "input_tokens, output_tokens, cost_usd, time_to_first_action_ms, duration_ms, policy_denials, "
        "policy_escalations, approvals FROM aj_rm_runs"
    )
    assert row[:12] == (
        "r1",
        "acme",
        "refund-agent",
        "gpt-4.1-mini",
        "support/refund",
        "completed",
        11,
        1,
        2,
        0,
        1000,
        200,
    )
    assert row[12] == pytest.approx(0.012)  # model cost + tool cost
    assert row[13] == pytest.approx(2000, abs=1)  # RunStarted -> the first allowed tool call
    assert row[14] == pytest.approx(12000, abs=1)
    assert row[15:] == (0, 1, 1)


def test_approvals_queue_holds_a_call_until_a_human_decides(journal: Journal) -> None:
    waiting = refund_run()[:7]  # stops at the require_human_approval decision
    store_run(journal, "r2", waiting, at=NOW - timedelta(hours=1))
    catch_up_all(journal)
    [pending] = approvals_queue(journal)
    assert (pending.run_id, pending.tool, pending.rule, pending.agent) == (
        "r2",
        "issue_refund",
        "refunds-over-limit",
        "refund-agent",
    )
    assert '"ORD-5521"' in pending.arguments
    assert journal.query("SELECT status FROM aj_rm_runs") == [("waiting_approval",)]
    journal.append("run-r2", [NewEvent("ToolRejected", {"rejected_by": "ops", "reason": "too large"})])
    catch_up_all(journal)
    assert approvals_queue(journal) == []
    assert journal.query("SELECT status, decided_by FROM aj_rm_tool_decisions WHERE tool = 'issue_refund'") == [
        ("rejected", "ops")
    ]


def test_approvals_follow_the_agents_events_by_approval_id(journal: Journal) -> None:
    """The agents layer's shapes: ApprovalRequested(approval_id, call_id), ToolApproved(approval_id, by)."""

    def proposal(call: str, approval: str, at: float) -> list[tuple[str, dict[str, object], float]]:
        return [
            ("ToolProposed", {"tool": "issue_refund", "arguments": {"call": call}, "call_id": call}, at),
            ("PolicyEvaluated", {"rule": "refunds", "action": "require_human_approval", "call_id": call}, at),
            ("ApprovalRequested", {"approval_id": approval, "call_id": call, "tool": "issue_refund"}, at),
        ]

    events = [("RunStarted", {"agent": "refund-agent"}, 0), *proposal("c1", "ap-1", 1), *proposal("c2", "ap-2", 2)]
    events.append(("ToolApproved", {"approval_id": "ap-1", "by": "ops@example.com", "reason": "ok"}, 3))
    store_run(journal, "two", events, at=NOW)
    catch_up_all(journal)
    [pending] = approvals_queue(journal)
    assert (pending.approval_id, pending.arguments) == ("ap-2", '{"call":"c2"}')
    decided = journal.query("SELECT approval_id, status, decided_by FROM aj_rm_tool_decisions ORDER BY version")
    assert [tuple(row) for row in decided] == [("ap-1", "approved", "ops@example.com"), ("ap-2", "pending", None)]


def test_tool_usage_and_policy_decisions(journal: Journal) -> None:
    store_run(journal, "r1", refund_run(), at=NOW - timedelta(hours=2))
    failing = [
        *refund_run()[:4],
        ("ToolFailed", {"tool": "lookup_order", "error": "timeout"}, 3),
        ("RunAborted", {}, 4),
    ]
    store_run(journal, "r2", failing, at=NOW - timedelta(hours=1))
    catch_up_all(journal)
    usage = {row.tool: row for row in tool_usage(journal)}
    assert (usage["lookup_order"].calls, usage["lookup_order"].failures) == (2, 1)
    assert usage["lookup_order"].latency_p50_ms == 100  # failures have no latency
    assert (usage["issue_refund"].calls, usage["issue_refund"].latency_p95_ms) == (1, 300)
    decisions = {(row.rule, row.action): row.decisions for row in policy_decisions(journal)}
    assert decisions == {("read-only-tools", "allow"): 2, ("refunds-over-limit", "require_human_approval"): 1}


def test_search_finds_the_order_and_not_its_neighbours(journal: Journal) -> None:
    store_run(journal, "r1", refund_run(order="ORD-5521"), at=NOW - timedelta(hours=2))
    store_run(journal, "r2", refund_run(order="ORD-5522"), at=NOW - timedelta(hours=1))
    catch_up_all(journal)
    hits = search(journal, "ORD-5521")
    assert hits and {hit.stream_id for hit in hits} == {"run-r1"}
    assert hits[0].position > hits[-1].position  # newest first
    assert {hit.type for hit in hits} >= {"RunStarted", "ToolProposed", "ResponseFinalized"}
    assert search(journal, "refund-agent")  # a value of the payload, not only free text
    with pytest.raises(ProjectionError, match="give some text"):
        search(journal, "  ")


def test_metrics_by_model(journal: Journal) -> None:
    at = NOW - timedelta(hours=3)
    store_run(journal, "a1", refund_run("model-a", cost=0.01), at=at)
    denied = ("PolicyEvaluated", {"rule": "external-email", "action": "deny"}, 11.5)
    a2 = refund_run("model-a", cost=0.03)
    store_run(journal, "a2", [*a2[:-1], denied, a2[-1]], at=at + timedelta(minutes=1))
    takeover = [*refund_run("model-b")[:5], ("HandoffInitiated", {"from_agent": "x", "to_agent": "human"}, 6)]
    store_run(journal, "b1", [*takeover, ("RunCompleted", {}, 7)], at=at)
    store_run(journal, "old", refund_run("model-a"), at=NOW - timedelta(days=9))
    catch_up_all(journal)
    rows = {row.group: row for row in metrics(journal, by="model", since=NOW - timedelta(days=7), until=NOW)}
    assert set(rows) == {"model-a", "model-b"}
    a, b = rows["model-a"], rows["model-b"]
    assert (a.runs, a.successes, a.success_rate) == (2, 2, 1.0)
    assert a.violations_per_100_runs == 150.0  # two escalations and one denial in two runs
    assert a.cost_per_successful_run == pytest.approx((0.012 + 0.032) / 2)
    assert a.time_to_first_action_p50_ms == pytest.approx(2000, abs=1)
    assert (b.runs, b.successes, b.success_rate, b.cost_per_successful_run) == (1, 0, 0.0, None)
    by_tenant = metrics(journal, by="tenant", since=NOW - timedelta(days=30), until=NOW)
    assert [(row.group, row.runs) for row in by_tenant] == [("acme", 4)]
    with pytest.raises(ProjectionError, match="cannot group by 'colour'"):
        metrics(journal, by="colour", since=NOW - timedelta(days=1))


def test_metric_series_and_plots(journal: Journal, tmp_path: Path) -> None:
    for day in range(3):
        store_run(journal, f"d{day}", refund_run(cost=0.01 * (day + 1)), at=NOW - timedelta(days=day, hours=1))
    catch_up_all(journal)
    series = metric_series(journal, "cost_per_successful_run", by="model", since=NOW - timedelta(days=3), until=NOW)
    values = [value for _, value in series["gpt-4.1-mini"]]
    assert values == pytest.approx([0.032, 0.022, 0.012])
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml")):
        written = plot_series(series, metric="cost_per_successful_run", by="model", path=tmp_path / f"cost{suffix}")
        assert written.read_bytes().startswith(magic)
    with pytest.raises(ProjectionError, match=r"must end in \.png or \.svg"):
        plot_series(series, metric="x", by="model", path=tmp_path / "cost.jpg")


def test_durations_and_percentiles() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    with pytest.raises(ProjectionError, match="not a duration: '7 days'"):
        parse_duration("7 days")
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 95) == 10.0


def test_a_huge_payload_is_indexed_up_to_the_limit(journal: Journal) -> None:
    words = " ".join(f"word{n}" for n in range(100_000))  # 988,889 characters: a 1.4 MB tsvector, over the limit
    journal.append("run-big", [NewEvent("ObservationCaptured", {"text": f"ORD-9999 {words}"})])
    catch_up_all(journal)
    assert [hit.stream_id for hit in search(journal, "ORD-9999")] == ["run-big"]
    assert dead_letters(journal) == []
