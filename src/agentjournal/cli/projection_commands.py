"""Read-side commands: projections, search, metrics, alerts, the worker and its leases.

Each command opens the journal named by --db and calls one function of
`agentjournal.projections` (or the lease registry); this module parses and renders.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from agentjournal.cli.app import app, console, errors, open_journal, progress_bar
from agentjournal.cli.output import JsonOption, print_json
from agentjournal.projections.metrics import GROUPS, METRICS

projections_app = typer.Typer(
    no_args_is_help=True, help="Read models: status, rebuild, read-your-writes waits, parked events."
)
app.add_typer(projections_app, name="projections")

if TYPE_CHECKING:
    from agentjournal.journal import Journal


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _number(value: float | None, digits: int = 1, prefix: str = "") -> str:
    return "—" if value is None else f"{prefix}{value:,.{digits}f}"


def _note_lag(journal: Journal, name: str) -> None:
    """Say so when a read model is behind the journal, so a short answer is not taken as complete."""
    from agentjournal.projections import checkpoint

    behind = journal.head_position() - checkpoint(journal, name)
    if behind > 0:
        errors.print(
            f"note: the {name} read model is {behind:,} events behind the journal; is `agentjournal worker` running?",
            highlight=False,
        )


def _table(*headers: str, title: str | None = None) -> Table:
    table = Table(*headers, title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.columns[0].no_wrap = True
    return table


@projections_app.command("status")
def projections_status() -> None:
    """Each projection's checkpoint, its lag behind the journal (events and seconds) and the node running it.

    Example: agentjournal projections status
    """
    from agentjournal.projections import projection_status

    rows = projection_status(open_journal())
    table = _table("projection", "checkpoint", "head", "lag (events)", "lag (s)", "owner node", "lease until", "parked")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.position:,}",
            f"{row.head:,}",
            f"{row.lag_events:,}",
            f"{row.lag_seconds:,.1f}",
            row.owner or "[dim]none[/dim]",
            _time(row.lease_expires_at),
            f"[red]{row.dead_letters}[/red]" if row.dead_letters else "0",
        )
    console.print(table)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="The projection to rebuild, e.g. runs")],
    batch_size: Annotated[int, typer.Option(help="Events per transaction")] = 5000,
) -> None:
    """Empty a read model, reset its checkpoint to 0 and replay the whole journal into it.

    It takes the projection's lease for the duration, so no worker applies it meanwhile.

    Example: agentjournal projections rebuild runs
    """
    from agentjournal.messaging.leases import LeaseRegistry, default_node
    from agentjournal.projections import ProjectionError, ProjectionRunner, builtin_projection
    from agentjournal.projections.runner import lease_name

    journal = open_journal()
    projection = builtin_projection(name)
    leases = LeaseRegistry(journal)
    node = f"rebuild@{default_node()}"
    lease = leases.acquire(lease_name(name), node)
    if lease is None:
        owner = next((info for info in leases.leases() if info.name == lease_name(name)), None)
        raise ProjectionError(
            f"projection {name!r} is running on node {owner.owner if owner else '?'} (lease until "
            f"{_time(owner.expires_at) if owner else '?'} UTC); stop that worker, then rebuild"
        )
    try:
        runner = ProjectionRunner(journal, projection, batch_size=batch_size, leases=leases, lease=lease)
        head = journal.head_position()
        started = time.perf_counter()
        with progress_bar(f"rebuilding {name}") as progress:
            task = progress.add_task(name, total=head)
            moved = runner.rebuild(lambda position: progress.update(task, completed=min(position, head)))
        elapsed = time.perf_counter() - started
        rate = moved / elapsed if elapsed > 0 else 0.0
        console.print(f"rebuilt [bold]{name}[/bold]: {moved:,} events in {elapsed:.1f}s ({rate:,.0f} events/s)")
    finally:
        leases.release(lease)  # renewals keep the token, so this releases the renewed lease too


@projections_app.command("wait")
def projections_wait(
    name: Annotated[str, typer.Argument(help="The projection, e.g. runs")],
    position: Annotated[int, typer.Option("--position", "-p", help="The journal position to wait for")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait before giving up")] = 10.0,
) -> None:
    """Wait until a projection has applied a position (read-your-writes after an append).

    Example: agentjournal projections wait runs --position 1042
    """
    from agentjournal.projections import wait_for

    reached = wait_for(open_journal(), name, position, timeout=timeout)
    console.print(f"{name} is at position {reached:,} (>= {position:,})")


@projections_app.command("dead-letters")
def projections_dead_letters(
    name: Annotated[str | None, typer.Argument(help="Only this projection")] = None,
) -> None:
    """Events a projection could not apply after its retries, with the error: they were parked, not lost.

    Example: agentjournal projections dead-letters runs
    """
    from agentjournal.projections import dead_letters

    parked = dead_letters(open_journal(), name)
    if not parked:
        console.print("no parked events")
        return
    table = _table("projection", "position", "stream", "type", "attempts", "parked at", "error")
    for letter in parked:
        table.add_row(
            letter.projection,
            str(letter.position),
            letter.stream_id,
            letter.event_type,
            str(letter.attempts),
            _time(letter.parked_at),
            letter.error,
        )
    console.print(table)


@app.command("search")
def search_command(
    text: Annotated[str, typer.Argument(help="Words to find in event payloads, matched as a phrase")],
    limit: Annotated[int, typer.Option(help="At most this many events")] = 20,
) -> None:
    """Full-text search over event payloads (SQLite FTS5, PostgreSQL tsvector, MariaDB FULLTEXT).

    Example: agentjournal search "ORD-5521"
    """
    from agentjournal.projections.metrics import search

    journal = open_journal()
    hits = search(journal, text, limit=limit)
    table = _table("pos", "time", "stream", "ver", "type", "text", title=f"{len(hits)} events matching {text!r}")
    for hit in hits:
        table.add_row(
            str(hit.position), _time(hit.recorded_at), hit.stream_id, str(hit.version), hit.type, hit.text[:80]
        )
    console.print(table)
    _note_lag(journal, "search")


@app.command("metrics")
def metrics_command(
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(GROUPS)}")] = "model",
    since: Annotated[str, typer.Option(help="Window: runs started this long ago, e.g. 24h, 7d")] = "7d",
    plot: Annotated[Path | None, typer.Option(help="Also draw --metric over time to this .png or .svg")] = None,
    metric: Annotated[str, typer.Option(help=f"The metric to plot: {', '.join(METRICS)}")] = "success_rate",
    bucket: Annotated[str, typer.Option(help="Plot bucket width, e.g. 1h, 1d")] = "1d",
) -> None:
    """Seed 001's daily metrics per route, model or tenant: success rate, policy violations per 100 runs,
    cost per successful run, time to first action p50/p95.

    Example: agentjournal metrics --by model --since 7d --plot cost.png --metric cost_per_successful_run
    """
    from agentjournal.projections.metrics import metric_series, metrics, parse_duration
    from agentjournal.projections.plot import plot_series

    journal = open_journal()
    until = datetime.now(UTC)
    start = until - parse_duration(since)
    rows = metrics(journal, by=by, since=start, until=until)
    table = _table(
        by,
        "runs",
        "success rate",
        "violations /100 runs",
        "cost / successful run",
        "first action p50 (ms)",
        "p95 (ms)",
        "tokens",
        title=f"runs started in the last {since} (until {_time(until)} UTC)",
    )
    for row in rows:
        table.add_row(
            row.group,
            f"{row.runs:,}",
            "—" if row.success_rate is None else f"{row.success_rate:.1%}",
            _number(row.violations_per_100_runs),
            _number(row.cost_per_successful_run, 4, "$"),
            _number(row.time_to_first_action_p50_ms, 0),
            _number(row.time_to_first_action_p95_ms, 0),
            f"{row.tokens:,}",
        )
    console.print(table)
    _note_lag(journal, "runs")
    if plot is not None:
        series = metric_series(journal, metric, by=by, since=start, until=until, bucket=parse_duration(bucket))
        written = plot_series(series, metric=metric, by=by, path=plot)
        console.print(f"wrote {metric} by {by} per {bucket} to {written}")


@app.command("tool-usage")
def tool_usage_command(
    since: Annotated[str | None, typer.Option(help="Only calls in this window, e.g. 24h")] = None,
) -> None:
    """Calls, failures and latency p50/p95 per tool.

    Example: agentjournal tool-usage --since 7d
    """
    from agentjournal.projections.metrics import parse_duration, tool_usage

    start = datetime.now(UTC) - parse_duration(since) if since else None
    table = _table("tool", "calls", "failures", "latency p50 (ms)", "p95 (ms)")
    for row in tool_usage(open_journal(), since=start):
        table.add_row(
            row.tool,
            f"{row.calls:,}",
            f"{row.failures:,}",
            _number(row.latency_p50_ms, 0),
            _number(row.latency_p95_ms, 0),
        )
    console.print(table)


@app.command("policy-decisions")
def policy_decisions_command() -> None:
    """How often each policy rule allowed, denied or sent a tool call to a human.

    Example: agentjournal policy-decisions
    """
    from agentjournal.projections.metrics import policy_decisions

    table = _table("rule", "action", "decisions", "last")
    for row in policy_decisions(open_journal()):
        table.add_row(row.rule, row.action, f"{row.decisions:,}", _time(row.last_at))
    console.print(table)


@app.command("agent-metrics")
def agent_metrics_command(
    since: Annotated[str, typer.Option(help="Window: conversations started this long ago, e.g. 24h, 7d")] = "7d",
    as_json: JsonOption = False,
) -> None:
    """Seed 002's agent dashboard: per active agent, conversations, average duration, tools per conversation,
    handoffs (the runs read model, brought up to date first).

    Example: agentjournal agent-metrics --since 24h
    """
    from agentjournal.projections.metrics import parse_duration
    from agentjournal.projections.queries import agent_metrics

    until = datetime.now(UTC)
    rows = agent_metrics(open_journal(), since=until - parse_duration(since), until=until)
    if as_json:
        print_json(rows)
        return
    table = _table("agent", "conversations", "avg duration (ms)", "tools / conversation", "handoffs")
    for row in rows:
        table.add_row(
            row.agent,
            f"{row.conversations:,}",
            _number(row.avg_duration_ms, 0),
            _number(row.avg_tools_per_conversation, 2),
            f"{row.handoffs:,}",
        )
    console.print(table)


@app.command("alerts")
def alerts_command(
    check: Annotated[bool, typer.Option("--check", help="Evaluate the rules now and fire new alerts first")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many")] = 50,
) -> None:
    """Fired alerts (events on the `alerts` stream): page on 3x policy violations, warn on +30% cost.

    Example: agentjournal alerts --check
    """
    from agentjournal.projections.alerts import fire_alerts, fired_alerts

    journal = open_journal()
    if check:
        fired = fire_alerts(journal)
        console.print(f"evaluated the alert rules: {len(fired)} new alert(s)")
    table = _table("fired at", "severity", "rule", "group", "value", "baseline", "message")
    for event in fired_alerts(journal, limit=limit):
        data = event.data
        severity = str(data.get("severity", ""))
        table.add_row(
            _time(event.recorded_at),
            f"[bold red]{severity}[/bold red]" if severity == "page" else f"[yellow]{severity}[/yellow]",
            str(data.get("rule", "")),
            f"{data.get('dimension', '')}={data.get('group', '')}",
            str(data.get("value", "")),
            str(data.get("baseline", "")),
            str(data.get("message", "")),
        )
    console.print(table)


@app.command("worker")
def worker_command(
    node: Annotated[str | None, typer.Option(help="This node's name in the lease registry (default host:pid)")] = None,
    ttl: Annotated[float | None, typer.Option(help="Lease time-to-live in seconds (default 15)")] = None,
    projection: Annotated[
        list[str] | None, typer.Option("--projection", "-p", help="Run only these projections (repeatable)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Events per transaction")] = 1000,
    alerts_every: Annotated[float, typer.Option(help="Evaluate the alert rules every N seconds (0: never)")] = 60.0,
) -> None:
    """Run every projection (and the alert rules) this node can lease, until Ctrl-C or SIGTERM.

    Start one per node against the same database: each projection runs on exactly one of them,
    and when a node stops the others take its work over within the lease TTL.

    Example: agentjournal --db postgresql://localhost/agents worker --node node-a
    """
    from agentjournal.messaging.leases import DEFAULT_TTL
    from agentjournal.projections import PeriodicJob, Worker, builtin_projection, builtin_projections
    from agentjournal.projections.alerts import fire_alerts

    journal = open_journal()
    chosen = [builtin_projection(name) for name in projection] if projection else builtin_projections()
    jobs = [PeriodicJob("alerts", alerts_every, lambda: fire_alerts(journal))] if alerts_every > 0 else []
    ttl = DEFAULT_TTL if ttl is None else ttl
    worker = Worker(journal, chosen, node=node, ttl=ttl, batch_size=batch_size, jobs=jobs)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("agentjournal.worker", "agentjournal.projections"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    errors.print(
        f"worker {worker.node}: {len(chosen)} projection(s), lease TTL {ttl:g}s; Ctrl-C stops", highlight=False
    )
    worker.run(stopping.is_set, idle_timeout=0.5)
    errors.print(f"worker {worker.node}: stopped, leases released", highlight=False)


@app.command("leases")
def leases_command() -> None:
    """Who runs what: every lease with its owner node, fencing token and expiry.

    Example: agentjournal leases
    """
    from agentjournal.messaging.leases import LeaseRegistry

    table = _table("lease", "owner node", "token", "state", "expires", "acquired", "renewed")
    for info in LeaseRegistry(open_journal()).leases():
        table.add_row(
            info.name,
            info.owner or "",
            str(info.token),
            "[green]held[/green]" if info.held else "[dim]free[/dim]",
            _time(info.expires_at),
            _time(info.acquired_at),
            _time(info.renewed_at),
        )
    console.print(table)
