"""The read-side commands, run in process with Typer's runner on a real SQLite journal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from agentjournal.cli import main  # noqa: F401  (registers every command module)
from agentjournal.journal import Journal
from agentjournal.messaging import LeaseRegistry

from .projection_helpers import catch_up_all, record, refund_script, store

Invoke = Callable[..., Result]


@pytest.fixture
def url(sqlite_url: str) -> str:
    """A journal with two runs from an hour ago, one waiting for approval, projected."""
    now = datetime.now(UTC)
    with Journal.open(sqlite_url) as journal:
        store(journal, record("done", refund_script(order="ORD-5521")), at=now - timedelta(hours=1))
        waiting = record("waiting", refund_script(order="ORD-7000"), decide=None, input="Refund ORD-7000 please")
        store(journal, waiting, at=now - timedelta(minutes=30))
        catch_up_all(journal)
    return sqlite_url


def test_status_rebuild_and_wait(invoke: Invoke, url: str) -> None:
    status = invoke(url, "projections", "status")
    assert status.exit_code == 0, status.output
    assert "runs" in status.output and "search" in status.output and "28" in status.output
    rebuilt = invoke(url, "projections", "rebuild", "runs")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt runs: 28 events" in rebuilt.output
    waited = invoke(url, "projections", "wait", "runs", "--position", "28")
    assert waited.exit_code == 0 and "runs is at position 28" in waited.output
    late = invoke(url, "projections", "wait", "runs", "--position", "99", "--timeout", "0.1")
    assert late.exit_code == 1 and "reached position 28, not 99" in late.output
    assert "no parked events" in invoke(url, "projections", "dead-letters").output


def test_rebuild_refuses_a_projection_a_worker_is_running(invoke: Invoke, url: str) -> None:
    with Journal.open(url) as journal:
        assert LeaseRegistry(journal).acquire("projection:runs", "node-7") is not None
    refused = invoke(url, "projections", "rebuild", "runs")
    assert refused.exit_code == 1
    assert "projection 'runs' is running on node node-7" in refused.output
    unknown = invoke(url, "projections", "rebuild", "nope")
    assert unknown.exit_code == 1 and "no projection named 'nope'; known: runs" in unknown.output
    leases = invoke(url, "leases")
    assert "projection:runs" in leases.output and "node-7" in leases.output and "held" in leases.output


@pytest.fixture
def unprojected_url(sqlite_url: str) -> str:
    """A journal with runs whose read models never ran (no worker, no rebuild)."""
    with Journal.open(sqlite_url) as journal:
        store(journal, record("done", refund_script(order="ORD-5521")), at=datetime.now(UTC) - timedelta(hours=1))
    return sqlite_url


@pytest.mark.parametrize(
    ("args", "model", "answer"),
    [
        (("search", "ORD-5521"), "search", "events matching 'ORD-5521'"),
        (("metrics", "--json"), "runs", '"runs":1'),
        (("tool-usage", "--json"), "tool_usage", '"tool":"lookup_order"'),
        (("policy-decisions", "--json"), "policy_decisions", '"decisions":'),
    ],
)
def test_a_read_model_that_never_ran_is_brought_up_to_date_first(
    invoke: Invoke, unprojected_url: str, args: tuple[str, ...], model: str, answer: str
) -> None:
    result = invoke(unprojected_url, *args)
    assert result.exit_code == 0, result.output
    assert answer in result.output
    assert f"note: brought the {model} read model up to date (" in result.output
    again = invoke(unprojected_url, *args)
    assert "brought" not in again.output  # nothing left to apply


def test_a_read_model_a_worker_runs_is_left_to_it_and_its_lag_said(invoke: Invoke, unprojected_url: str) -> None:
    with Journal.open(unprojected_url) as journal:
        assert LeaseRegistry(journal).acquire("projection:runs", "node-7") is not None
        head = journal.head_position()
    result = invoke(unprojected_url, "metrics")
    assert result.exit_code == 0, result.output
    assert f"the runs read model is {head:,} events behind the journal; node node-7 is applying them" in " ".join(
        result.output.split()
    )
    assert "brought" not in result.output


def test_search_metrics_and_the_other_read_models(invoke: Invoke, url: str, tmp_path: Path) -> None:
    found = invoke(url, "search", "ORD-5521")
    assert found.exit_code == 0 and "run-done" in found.output and "run-waiting" not in found.output
    plot = tmp_path / "success.svg"
    shown = invoke(url, "metrics", "--by", "model", "--since", "7d", "--plot", str(plot))
    assert shown.exit_code == 0, shown.output
    assert "gpt-4.1-mini" in shown.output and "100.0%" in shown.output and plot.read_text().startswith("<?xml")
    assert "issue_refund" in invoke(url, "tool-usage").output
    assert "refunds-over-limit" in invoke(url, "policy-decisions").output
    queue = invoke(url, "approvals", "list").output
    assert "waiting" in queue and "issue_refund" in queue and "ORD-7000" in queue
    agents = invoke(url, "agent-metrics", "--since", "1d")
    assert agents.exit_code == 0 and "refund-agent" in agents.output
    alerts = invoke(url, "alerts", "--check")
    assert alerts.exit_code == 0 and "0 new alert(s)" in alerts.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("metrics", "--since", "7x"), "not a duration: '7x'"),
        (("metrics", "--by", "colour"), "'colour' is not one of"),
        (("metrics", "--plot", "chart.jpg"), "must end in .png or .svg"),
        (("search", " "), "give some text"),
    ],
)
def test_bad_input_is_one_clear_line(invoke: Invoke, url: str, args: tuple[str, ...], message: str) -> None:
    result = invoke(url, *args)
    assert result.exit_code in (1, 2)  # 2: a usage error, reported by Typer with the option's name
    assert message in result.output and "Traceback" not in result.output


def test_the_memory_backend_is_refused_clearly(invoke: Invoke) -> None:
    result = invoke("memory://", "projections", "status")
    assert result.exit_code == 1 and "the memory backend has none" in result.output


def test_every_read_side_command_has_help_with_an_example(invoke: Invoke, sqlite_url: str) -> None:
    for command in (
        ("projections", "status"),
        ("projections", "rebuild"),
        ("projections", "wait"),
        ("projections", "dead-letters"),
        ("search",),
        ("metrics",),
        ("tool-usage",),
        ("policy-decisions",),
        ("agent-metrics",),
        ("alerts",),
        ("worker",),
        ("leases",),
    ):
        result = invoke(sqlite_url, *command, "--help")
        assert result.exit_code == 0 and "Example: agentjournal" in result.output, command
