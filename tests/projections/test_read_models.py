"""The built-in read models on SQLite, PostgreSQL and MariaDB, over runs the runtime wrote, checked by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentjournal.agents import RunOptions, Runtime
from agentjournal.agents.approvals import record_decision
from agentjournal.journal import Journal, NewEvent
from agentjournal.projections import ProjectionError, dead_letters
from agentjournal.projections.metrics import (
    metric_series,
    metrics,
    parse_duration,
    percentile,
    policy_decisions,
    search,
    tool_usage,
)
from agentjournal.projections.plot import plot_series
from agentjournal.projections.queries import agent_metrics, approvals, list_runs, runs_to_resume

from .projection_helpers import NOW, catch_up_all, offset_of, record, refund_script, reply, store


def test_runs_row_has_every_figure_of_the_run(journal: Journal) -> None:
    run = store(journal, record("r1", refund_script(cost=0.01)), at=NOW - timedelta(hours=1))
    catch_up_all(journal)
    [row] = journal.query(
        "SELECT run_id, tenant_id, agent, model, route, status, steps, model_calls, tool_calls, tool_failures, "
        "input_tokens, output_tokens, cost_usd, time_to_first_action_ms, duration_ms, policy_denials, "
        "policy_escalations, approvals, user_id, active_agent, waiting_for FROM aj_rm_runs"
    )
    assert row[:12] == (
        "r1",
        "acme",
        "refund-agent",
        "gpt-4.1-mini",
        "support/refund",
        "completed",
        18,  # every event of the run
        3,
        2,
        0,
        3000,
        600,
    )
    assert row[12] == pytest.approx(0.012)  # model cost + the refund tool's cost
    assert row[13] == pytest.approx(offset_of(run, "PolicyEvaluated") * 1000)  # to the first allowed call
    assert row[14] == pytest.approx(17000)
    assert row[15:] == (0, 1, 1, "user-1", "refund-agent", None)


def test_a_stream_that_is_not_a_run_of_the_contract_is_left_out(journal: Journal) -> None:
    journal.append("run-mine", [NewEvent("RunStarted", {"prompt": "hi", "model": "x"}), NewEvent("ToolFailed", {})])
    store(journal, record("real", refund_script()), at=NOW)
    catch_up_all(journal)
    assert [row[0] for row in journal.query("SELECT run_id FROM aj_rm_runs")] == ["real"]
    assert dead_letters(journal) == []


def test_approvals_queue_holds_a_call_until_a_human_decides(journal: Journal) -> None:
    store(journal, record("r2", refund_script(), decide=None), at=NOW - timedelta(hours=1))
    [pending] = approvals(journal)
    assert (pending.run_id, pending.tool, pending.agent, pending.user_id, pending.status) == (
        "r2",
        "issue_refund",
        "refund-agent",
        "user-1",
        "pending",
    )
    assert pending.arguments == {"order_id": "ORD-5521", "amount": 44.99}
    assert journal.query("SELECT status, waiting_for FROM aj_rm_runs") == [("waiting_approval", "approval")]
    assert runs_to_resume(journal) == []
    record_decision(journal, "r2", pending.approval_id, by="ops", reason="too large", approved=False)
    assert approvals(journal) == []
    assert runs_to_resume(journal) == ["r2"]  # a human decided: a worker must tell the agent
    assert journal.query("SELECT status, decided_by FROM aj_rm_tool_decisions WHERE tool = 'issue_refund'") == [
        ("rejected", "ops")
    ]
    assert journal.query("SELECT waiting_for FROM aj_rm_runs") == [("worker",)]


def test_approvals_follow_the_runs_events_by_approval_id(journal: Journal) -> None:
    two = reply(
        ("issue_refund", {"order_id": "ORD-1", "amount": 50.0}), ("issue_refund", {"order_id": "ORD-2", "amount": 60.0})
    )
    run = store(journal, record("two", [two, reply(text="done")], decide=None), at=NOW)
    first, second = (event.data["approval_id"] for event in run.events if event.type == "ApprovalRequested")
    record_decision(journal, "two", first, by="ops@example.com", reason="ok", approved=True)
    [pending] = approvals(journal)
    assert (pending.approval_id, pending.arguments) == (second, {"order_id": "ORD-2", "amount": 60.0})
    decided = journal.query("SELECT approval_id, status, decided_by FROM aj_rm_tool_decisions ORDER BY version")
    assert [tuple(row) for row in decided] == [(first, "approved", "ops@example.com"), (second, "pending", None)]
    assert [a.status for a in approvals(journal, status=None)] == ["approved", "pending"]


def test_cancelling_a_run_closes_its_approvals_in_every_queue(journal: Journal) -> None:
    store(journal, record("held", refund_script(), decide=None), at=NOW)
    assert len(approvals(journal)) == 1
    assert Runtime(journal).cancel("held", "duplicate", by="alice")
    assert approvals(journal) == []
    assert [(a.status, a.reason) for a in approvals(journal, status=None)] == [
        ("closed", "the run was cancelled: duplicate")
    ]
    assert (
        Runtime(journal).load("held").approvals[next(iter(Runtime(journal).load("held").approvals))].status == "closed"
    )
    [row] = list_runs(journal)
    assert (row.status, row.waiting_for) == ("cancelled", None)


def test_tool_usage_and_policy_decisions(journal: Journal) -> None:
    store(journal, record("r1", refund_script()), at=NOW - timedelta(hours=2))
    failing = [reply(("check_refund_policy", {"order_id": "ORD-1-DOWN", "reason": "x"})), reply(text="sorry")]
    store(journal, record("r2", failing), at=NOW - timedelta(hours=1))
    catch_up_all(journal)
    usage = {row.tool: row for row in tool_usage(journal)}
    assert (usage["lookup_order"].calls, usage["lookup_order"].failures) == (1, 0)
    assert (usage["check_refund_policy"].calls, usage["check_refund_policy"].failures) == (1, 1)
    assert usage["check_refund_policy"].latency_p50_ms is None  # failures have no latency
    assert (usage["issue_refund"].calls, usage["issue_refund"].failures) == (1, 0)
    assert usage["issue_refund"].latency_p95_ms is not None
    decisions = {(row.rule, row.action): row.decisions for row in policy_decisions(journal)}
    assert decisions == {("read-only-tools", "allow"): 2, ("refunds-over-limit", "require_human_approval"): 1}


def test_search_finds_the_order_and_not_its_neighbours(journal: Journal) -> None:
    for run_id, order in (("r1", "ORD-5521"), ("r2", "ORD-5522")):
        run = record(run_id, refund_script(order=order), input=f"I want a refund for {order}")
        store(journal, run, at=NOW - timedelta(hours=1))
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
    store(journal, record("a1", refund_script(cost=0.01), model="model-a"), at=at)
    denied = reply(("send_email", {"to": "someone@partner.io", "template": "t"}))
    a2 = refund_script(cost=0.03)
    store(journal, record("a2", [*a2[:2], denied, a2[2]], model="model-a"), at=at + timedelta(minutes=1))
    takeover = [
        reply(("lookup_order", {"order_id": "ORD-1"})),
        reply(("transfer_to_human", {"reason": "angry"})),
        reply(text="A person will help you."),
    ]
    store(journal, record("b1", takeover, model="model-b", handoffs=["human"]), at=at)
    store(journal, record("old", refund_script(), model="model-a"), at=NOW - timedelta(days=9))
    catch_up_all(journal)
    rows = {row.group: row for row in metrics(journal, by="model", since=NOW - timedelta(days=7), until=NOW)}
    assert set(rows) == {"model-a", "model-b"}
    a, b = rows["model-a"], rows["model-b"]
    assert (a.runs, a.successes, a.success_rate) == (2, 2, 1.0)
    assert a.violations_per_100_runs == 150.0  # two escalations and one denial in two runs
    assert a.cost_per_successful_run == pytest.approx((0.012 + 0.032) / 2)
    assert a.time_to_first_action_p50_ms == pytest.approx(3000, abs=1)
    assert (b.runs, b.successes, b.success_rate, b.cost_per_successful_run) == (1, 0, 0.0, None)
    by_tenant = metrics(journal, by="tenant", since=NOW - timedelta(days=30), until=NOW)
    assert [(row.group, row.runs) for row in by_tenant] == [("acme", 4)]
    with pytest.raises(ProjectionError, match="cannot group by 'colour'"):
        metrics(journal, by="colour", since=NOW - timedelta(days=1))


def test_seed_002_agent_metrics(journal: Journal) -> None:
    store(journal, record("r1", refund_script()), at=NOW - timedelta(hours=2))
    store(journal, record("r2", refund_script()), at=NOW - timedelta(hours=1))
    handed = [
        reply(("lookup_order", {"order_id": "ORD-1"})),
        reply(("transfer_to_billing-agent", {"reason": "billing"})),
        reply(text="ok"),
    ]
    store(journal, record("r3", handed, agent="triage-agent", handoffs=["billing-agent"]), at=NOW - timedelta(hours=1))
    store(journal, record("old", refund_script()), at=NOW - timedelta(days=9))
    rows = {row.agent: row for row in agent_metrics(journal, since=NOW - timedelta(days=1), until=NOW)}
    assert set(rows) == {"refund-agent", "billing-agent"}  # grouped by the agent that finished the run
    refund, billing = rows["refund-agent"], rows["billing-agent"]
    assert (refund.conversations, refund.avg_duration_ms, refund.avg_tools_per_conversation, refund.handoffs) == (
        2,
        17000.0,
        2.0,
        0,
    )
    assert (billing.conversations, billing.avg_tools_per_conversation, billing.handoffs) == (1, 1.0, 1)


def test_aborted_and_stalled_runs(journal: Journal) -> None:
    store(journal, record("broke", refund_script(cost=0.5), options=RunOptions(budget_usd=0.1)), at=NOW)
    [row] = list_runs(journal)
    assert (row.run_id, row.status) == ("broke", "aborted")
    assert row.end_reason is not None and row.end_reason.startswith("budget exceeded")
    assert journal.query("SELECT budget_exceeded FROM aj_rm_runs") == [(1,)]
    assert runs_to_resume(journal, stalled_after=0) == []  # a finished run never stalls
    crashed = record("stuck", refund_script())
    crashed.events, crashed.offsets = crashed.events[:6], crashed.offsets[:6]  # a worker died after the lookup
    store(journal, crashed, at=NOW)
    assert [(row.run_id, row.status) for row in list_runs(journal, status="running")] == [("stuck", "running")]
    assert runs_to_resume(journal) == []
    assert runs_to_resume(journal, stalled_after=3600) == ["stuck"]  # NOW is long ago
    with pytest.raises(ProjectionError, match="0 or more seconds"):
        runs_to_resume(journal, stalled_after=-1)


def test_metric_series_and_plots(journal: Journal, tmp_path: Path) -> None:
    for day in range(3):
        store(journal, record(f"d{day}", refund_script(cost=0.01 * (day + 1))), at=NOW - timedelta(days=day, hours=1))
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
