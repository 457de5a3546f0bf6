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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import TaskID
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import (
    EvalDbOption,
    app,
    console,
    errors,
    evaluations_url,
    open_evaluations,
    open_journal,
    progress_bar,
)
from agentjournal.cli.output import Col, JsonOption, print_json
from agentjournal.cli.params import duration, one_of
from agentjournal.projections.metrics import EVAL_GROUPS, GROUPS, METRICS

projections_app = typer.Typer(
    no_args_is_help=True, help="Read models: status, rebuild, read-your-writes waits, parked events."
)
app.add_typer(projections_app, name="projections")

if TYPE_CHECKING:
    from agentjournal.journal import Journal, RecordedEvent


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _number(value: float | None, digits: int = 1, prefix: str = "") -> str:
    return "—" if value is None else f"{prefix}{value:,.{digits}f}"


def _up_to_date(journal: Journal, *names: str) -> None:
    """Bring the read models a command reads up to date first, unless a worker runs them; say which.

    On a journal whose projections never ran, an empty table would otherwise pass for the answer.
    """
    from agentjournal.projections import bring_up_to_date

    with progress_bar("bringing {task.fields[model]} up to date") as bar:
        tasks: dict[str, TaskID] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task("", total=total, model=name)
            bar.update(tasks[name], completed=done)

        found = bring_up_to_date(journal, names, progress=advance)
    for model in found:
        if model.applied:
            errors.print(
                f"note: brought the {model.name} read model up to date ({model.applied:,} events applied)",
                highlight=False,
            )
        if model.behind and model.worker:
            errors.print(
                f"note: the {model.name} read model is {model.behind:,} events behind the journal; "
                f"node {model.worker} is applying them",
                highlight=False,
            )


@projections_app.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Each projection's checkpoint, its lag behind the journal (events and seconds) and the node running it.

    The checkpoint and head are positions, shown whole (what `projections wait --position` takes).
    --json prints one object per projection: name, position (the checkpoint), head, lag_events,
    lag_seconds, owner, lease_expires_at, updated_at, dead_letters.

    Example: agentjournal projections status
    """
    from agentjournal.projections import projection_status

    rows = projection_status(open_journal())
    if as_json:
        print_json(rows)
        return
    columns = (
        Col("projection", "key"),
        Col("checkpoint", "key", right=True),
        Col("head", "key", right=True),
        Col("lag (events)", right=True),
        Col("lag (s)", right=True, drop=2),
        Col("parked", "key", right=True),
        Col("owner node", drop=3),
        Col("lease until", drop=4),
    )
    output.print_table(
        columns,
        [
            (
                row.name,
                str(row.position),
                str(row.head),
                f"{row.lag_events:,}",
                f"{row.lag_seconds:,.1f}",
                Text(str(row.dead_letters), style="red" if row.dead_letters else ""),
                Text(row.owner or "none", style="" if row.owner else "dim"),
                _time(row.lease_expires_at),
            )
            for row in rows
        ],
    )


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="The projection to rebuild, e.g. runs")],
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction")] = 5000,
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
    position: Annotated[int, typer.Option("--position", "-p", min=0, help="The journal position to wait for")],
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait before giving up")] = 10.0,
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
    as_json: JsonOption = False,
) -> None:
    """Events a projection could not apply after its retries, with the error: they were parked, not lost.

    The error is cut to one line on a narrow terminal. --json prints one object per parked event,
    the error whole: projection, position, event_id, stream_id, event_type, error, attempts, parked_at.

    Example: agentjournal projections dead-letters runs
    """
    from agentjournal.projections import ProjectionError, dead_letters, projection_status

    journal = open_journal()
    if name is not None:
        known = [row.name for row in projection_status(journal)]
        if name not in known:
            raise ProjectionError(f"no projection named {name!r}; known: {', '.join(known)}")
    parked = dead_letters(journal, name)
    if as_json:
        print_json(parked)
        return
    if not parked:
        console.print("no parked events")
        return
    columns = (
        Col("projection", "key"),
        Col("position", "key", right=True),
        Col("stream", "key"),
        Col("type", "key"),
        Col("attempts", right=True, drop=2),
        Col("parked at", drop=3),
        Col("error", "text", drop=1),
    )
    output.print_table(
        columns,
        [
            (
                letter.projection,
                str(letter.position),
                letter.stream_id,
                letter.event_type,
                str(letter.attempts),
                _time(letter.parked_at),
                letter.error,
            )
            for letter in parked
        ],
    )


@app.command("search")
def search_command(
    text: Annotated[str, typer.Argument(help="Words to find in event payloads, matched as a phrase")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many events")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Full-text search over event payloads (SQLite FTS5, PostgreSQL tsvector, MariaDB FULLTEXT).

    One line per event, newest first: position, stream, version and type whole, the matched text
    cut to fit. --json prints one object per event: position, stream_id, version, type, recorded_at, text.

    Example: agentjournal search "ORD-5521"
    """
    from agentjournal.projections.metrics import search

    journal = open_journal()
    _up_to_date(journal, "search")
    hits = search(journal, text, limit=limit)
    if as_json:
        print_json(hits)
    else:
        time_format, caption = output.time_format((hit.recorded_at for hit in hits), console.width)
        columns = (
            Col("pos", "key", right=True),
            Col("stream", "key"),
            Col("ver", "key", right=True),
            Col("type", "key"),
            Col("time", drop=2),
            Col("text", "text", drop=1),
        )
        output.print_table(
            columns,
            [
                (
                    str(hit.position),
                    hit.stream_id,
                    str(hit.version),
                    hit.type,
                    hit.recorded_at.strftime(time_format),
                    hit.text,
                )
                for hit in hits
            ],
            title=f"{len(hits)} events matching {text!r}",
            caption=caption,
        )


@app.command("metrics")
def metrics_command(
    *,
    evals: Annotated[
        bool, typer.Option("--evals", help="The replay deltas of offline evaluations instead (in --eval-db)")
    ] = False,
    eval_db: EvalDbOption = None,
    by: Annotated[
        str,
        typer.Option(
            help=f"Group by: {', '.join(GROUPS)}; with --evals: {', '.join(EVAL_GROUPS)}",
            callback=one_of(*dict.fromkeys([*GROUPS, *EVAL_GROUPS])),
        ),
    ] = "model",
    since: Annotated[
        str,
        typer.Option(
            help="Window: runs started (with --evals: evaluations last scored) this long ago, e.g. 24h, 7d",
            callback=duration,
        ),
    ] = "7d",
    plot: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also draw --metric over time to this .png or .svg")
    ] = None,
    metric: Annotated[
        str, typer.Option(help=f"The metric to plot: {', '.join(METRICS)}", callback=one_of(*METRICS))
    ] = "success_rate",
    bucket: Annotated[str, typer.Option(help="Plot bucket width, e.g. 1h, 1d", callback=duration)] = "1d",
    as_json: JsonOption = False,
) -> None:
    """Seed 001's daily metrics per route, model or tenant: success rate, policy violations per 100 runs,
    cost per successful run, time to first action p50/p95.

    With --evals, in the evaluation journal: seed 001's replay delta, each candidate against its
    recorded baseline on the same items (quality, relative cost and latency, calls decided
    stricter or looser), per model (`baseline → candidate`), route, tenant, candidate or evaluation.

    --json prints one object per group: group, runs, finished, successes, violations, cost_usd,
    tokens, success_rate, violations_per_100_runs, cost_per_successful_run,
    time_to_first_action_p50_ms, time_to_first_action_p95_ms; with --evals: group, evaluations,
    items, quality_baseline, quality_candidate, quality_delta, cost_baseline_usd,
    cost_candidate_usd, cost_delta, latency_baseline_ms, latency_candidate_ms, latency_delta,
    policy_stricter, policy_looser, policy_regressions.

    Example: agentjournal metrics --by model --since 7d --plot cost.png --metric cost_per_successful_run
    """
    from agentjournal.projections.metrics import metric_series, metrics, parse_duration
    from agentjournal.projections.plot import plot_series

    if evals and by not in EVAL_GROUPS:
        raise typer.BadParameter(f"{by!r} is not one of: {', '.join(EVAL_GROUPS)} (with --evals)", param_hint="--by")
    if not evals and by not in GROUPS:
        raise typer.BadParameter(f"{by!r} is not one of: {', '.join(GROUPS)} (add --evals for {by})", param_hint="--by")
    if evals and plot is not None:
        raise typer.BadParameter("--plot draws the run metrics over time, not the replay deltas", param_hint="--evals")
    until = datetime.now(UTC)
    start = until - parse_duration(since)
    if evals:
        with open_evaluations(eval_db) as evaluations:
            _replay_deltas(evaluations, by=by, since=start, until=until, window=since, as_json=as_json)
        return
    journal = open_journal()
    _up_to_date(journal, "runs")
    rows = metrics(journal, by=by, since=start, until=until)
    if as_json:
        print_json(rows)
    else:
        columns = (
            Col(by, "key"),
            Col("runs", right=True),
            Col("success rate", right=True),
            Col("violations /100 runs", right=True, drop=3),
            Col("cost / successful run", right=True, drop=2),
            Col("first action p50 (ms)", right=True, drop=4),
            Col("p95 (ms)", right=True, drop=5),
            Col("tokens", right=True, drop=1),
        )
        output.print_table(
            columns,
            [
                (
                    row.group,
                    f"{row.runs:,}",
                    "—" if row.success_rate is None else f"{row.success_rate:.1%}",
                    _number(row.violations_per_100_runs),
                    _number(row.cost_per_successful_run, 4, "$"),
                    _number(row.time_to_first_action_p50_ms, 0),
                    _number(row.time_to_first_action_p95_ms, 0),
                    f"{row.tokens:,}",
                )
                for row in rows
            ],
            title=f"runs started in the last {since} (until {_time(until)} UTC)",
        )
    if plot is not None:
        series = metric_series(journal, metric, by=by, since=start, until=until, bucket=parse_duration(bucket))
        written = plot_series(series, metric=metric, by=by, path=plot)
        errors.print(f"wrote {metric} by {by} per {bucket} to {written}", highlight=False)


def _replay_deltas(journal: Journal, *, by: str, since: datetime, until: datetime, window: str, as_json: bool) -> None:
    """`metrics --evals`: the evaluations read model, brought up to date, as replay deltas."""
    from agentjournal.projections.metrics import replay_deltas

    _up_to_date(journal, "evaluations")
    rows = replay_deltas(journal, by=by, since=since, until=until)
    if as_json:
        print_json(rows)
        return
    columns = (
        Col(by, "key"),
        Col("evals", right=True, drop=3),
        Col("items", right=True, drop=2),
        Col("quality", right=True),
        Col("Δ quality", right=True),
        Col("Δ cost", right=True),
        Col("Δ latency", right=True, drop=1),
        Col("stricter / looser", right=True),
    )
    output.print_table(
        columns,
        [
            (
                row.group,
                f"{row.evaluations:,}",
                f"{row.items:,}",
                "—"
                if row.quality_baseline is None or row.quality_candidate is None
                else f"{row.quality_baseline:.3f} → {row.quality_candidate:.3f}",
                "—" if row.quality_delta is None else f"{row.quality_delta:+.3f}",
                "—" if row.cost_delta is None else f"{row.cost_delta:+.1%}",
                "—" if row.latency_delta is None else f"{row.latency_delta:+.1%}",
                f"{row.policy_stricter:,} / {row.policy_looser:,}",
            )
            for row in rows
        ],
        title=f"replay deltas of the evaluations scored in the last {window}",
        caption=None if rows else "no evaluation was scored in this window: agentjournal eval score",
    )


@app.command("tool-usage")
def tool_usage_command(
    since: Annotated[str | None, typer.Option(help="Only calls in this window, e.g. 24h", callback=duration)] = None,
    as_json: JsonOption = False,
) -> None:
    """Calls, failures and latency p50/p95 per tool.

    --json prints one object per tool: tool, calls, failures, latency_p50_ms, latency_p95_ms.

    Example: agentjournal tool-usage --since 7d
    """
    from agentjournal.projections.metrics import parse_duration, tool_usage

    start = datetime.now(UTC) - parse_duration(since) if since else None
    journal = open_journal()
    _up_to_date(journal, "tool_usage")
    rows = tool_usage(journal, since=start)
    if as_json:
        print_json(rows)
        return
    columns = (
        Col("tool", "key"),
        Col("calls", right=True),
        Col("failures", right=True),
        Col("latency p50 (ms)", right=True, drop=2),
        Col("p95 (ms)", right=True, drop=1),
    )
    output.print_table(
        columns,
        [
            (
                row.tool,
                f"{row.calls:,}",
                f"{row.failures:,}",
                _number(row.latency_p50_ms, 0),
                _number(row.latency_p95_ms, 0),
            )
            for row in rows
        ],
    )


@app.command("policy-decisions")
def policy_decisions_command(as_json: JsonOption = False) -> None:
    """How often each policy rule allowed, denied or sent a tool call to a human.

    --json prints one object per rule and action: rule, action, decisions, last_at.

    Example: agentjournal policy-decisions
    """
    from agentjournal.projections.metrics import policy_decisions

    journal = open_journal()
    _up_to_date(journal, "policy_decisions")
    rows = policy_decisions(journal)
    if as_json:
        print_json(rows)
        return
    columns = (Col("rule", "key"), Col("action", "key"), Col("decisions", right=True), Col("last (UTC)", drop=1))
    output.print_table(columns, [(row.rule, row.action, f"{row.decisions:,}", _time(row.last_at)) for row in rows])


@app.command("agent-metrics")
def agent_metrics_command(
    since: Annotated[
        str, typer.Option(help="Window: conversations started this long ago, e.g. 24h, 7d", callback=duration)
    ] = "7d",
    as_json: JsonOption = False,
) -> None:
    """Seed 002's agent dashboard: per active agent, conversations, average duration, tools per conversation,
    handoffs (the runs read model, brought up to date first).

    --json prints one object per agent: agent, conversations, avg_duration_ms, avg_tools_per_conversation, handoffs.

    Example: agentjournal agent-metrics --since 24h
    """
    from agentjournal.projections.metrics import parse_duration
    from agentjournal.projections.queries import agent_metrics

    until = datetime.now(UTC)
    rows = agent_metrics(open_journal(), since=until - parse_duration(since), until=until)
    if as_json:
        print_json(rows)
        return
    columns = (
        Col("agent", "key"),
        Col("conversations", right=True),
        Col("avg duration (ms)", right=True),
        Col("tools / conversation", right=True),
        Col("handoffs", right=True),
    )
    output.print_table(
        columns,
        [
            (
                row.agent,
                f"{row.conversations:,}",
                _number(row.avg_duration_ms, 0),
                _number(row.avg_tools_per_conversation, 2),
                f"{row.handoffs:,}",
            )
            for row in rows
        ],
    )


def _evaluations_if_any(eval_db: str | None) -> Journal | None:
    """The evaluation journal, or None where there is none (the replay-delta rule then reads --db)."""
    from agentjournal.evals import EvaluationError
    from agentjournal.journal import JournalNotFoundError
    from agentjournal.journal.urls import open_journal as open_url

    try:
        return open_url(evaluations_url(eval_db))
    except (JournalNotFoundError, EvaluationError):
        return None


def _fire_alerts(journal: Journal, eval_db: str | None, catch_up: Callable[[Journal], object]) -> list[RecordedEvent]:
    """The alert rules into `journal`'s alerts stream; the replay-delta rule reads the evaluation journal
    when there is one (after `catch_up` brings its evaluations read model up to date)."""
    from agentjournal.projections.alerts import fire_alerts

    evaluations = _evaluations_if_any(eval_db)
    try:
        catch_up(evaluations or journal)
        return fire_alerts(journal, evaluations=evaluations)
    finally:
        if evaluations is not None:
            evaluations.close()


@app.command("alerts")
def alerts_command(
    check: Annotated[bool, typer.Option("--check", help="Evaluate the rules now and fire new alerts first")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many")] = 50,
    eval_db: EvalDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fired alerts (events on the `alerts` stream): page on 3x policy violations, warn on +30% cost,
    page on a replay delta of quality below -0.05 (an evaluation's candidate against its baseline,
    read in the evaluation journal, --eval-db).

    --json prints one object per fired alert: event_id, version (on the alerts stream), recorded_at
    and the alert's data (rule, severity, dimension, group, value, baseline, message, ...).

    Example: agentjournal alerts --check
    """
    from agentjournal.projections.alerts import fired_alerts

    journal = open_journal()
    if check:
        _up_to_date(journal, "runs")
        fired = _fire_alerts(journal, eval_db, lambda evaluations: _up_to_date(evaluations, "evaluations"))
        errors.print(f"evaluated the alert rules: {len(fired)} new alert(s)", highlight=False)
    found = fired_alerts(journal, limit=limit)
    if as_json:
        print_json(
            {"event_id": event.event_id, "version": event.version, "recorded_at": event.recorded_at, **event.data}
            for event in found
        )
        return
    columns = (
        Col("fired at (UTC)", "value"),
        Col("severity", "key"),
        Col("rule", "key"),
        Col("group", "key"),
        Col("value", right=True, drop=2),
        Col("baseline", right=True, drop=3),
        Col("message", "text", drop=1),
    )
    rows = []
    for event in found:
        data = event.data
        severity = str(data.get("severity", ""))
        rows.append(
            (
                _time(event.recorded_at),
                Text(severity, style="bold red" if severity == "page" else "yellow"),
                str(data.get("rule", "")),
                f"{data.get('dimension', '')}={data.get('group', '')}",
                str(data.get("value", "")),
                str(data.get("baseline", "")),
                str(data.get("message", "")),
            )
        )
    output.print_table(columns, rows)


@app.command("worker")
def worker_command(
    *,
    node: Annotated[str | None, typer.Option(help="This node's name in the lease registry (default host:pid)")] = None,
    ttl: Annotated[float | None, typer.Option(min=0.01, help="Lease time-to-live in seconds (default 15)")] = None,
    projection: Annotated[
        list[str] | None, typer.Option("--projection", "-p", help="Run only these projections (repeatable)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction")] = 1000,
    alerts_every: Annotated[
        float, typer.Option(min=0, help="Evaluate the alert rules every N seconds (0: never)")
    ] = 60.0,
    eval_db: EvalDbOption = None,
    messaging: Annotated[
        list[str] | None,
        typer.Option(
            "--messaging",
            "-m",
            help="package.module:attr naming outbox relays and process managers to run too (repeatable)",
        ),
    ] = None,
    sagas: Annotated[
        str | None,
        typer.Option("--sagas", help="package.module:attr naming saga definitions: resume their unfinished sagas"),
    ] = None,
    sagas_every: Annotated[
        float, typer.Option(min=0.1, help="With --sagas, resume unfinished sagas every N seconds")
    ] = 5.0,
) -> None:
    """Run every projection, outbox relay and process manager (and the alert rules) this node
    can lease, until Ctrl-C or SIGTERM; with --sagas, resume sagas whose worker died.

    Start one per node against the same database: each runs on exactly one of them, and when a
    node stops the others take its work over within the lease TTL.

    Example: agentjournal --db postgresql://localhost/agents worker --node node-a -m myapp.outbox:relays
    """
    from agentjournal.messaging.leases import DEFAULT_TTL
    from agentjournal.messaging.process_managers import ProcessManager
    from agentjournal.messaging.relays import Relay, load_messaging
    from agentjournal.projections import PeriodicJob, Worker, bring_up_to_date, builtin_projection, builtin_projections

    workloads = [item for path in messaging or [] for item in load_messaging(path)]
    journal = open_journal(create=True)
    chosen = [builtin_projection(name) for name in projection] if projection else builtin_projections()
    probe = _evaluations_if_any(eval_db)  # a wrong --eval-db fails now, not at the first alert check
    if probe is not None:
        probe.close()

    def alerts() -> object:
        return _fire_alerts(journal, eval_db, lambda evaluations: bring_up_to_date(evaluations, ["evaluations"]))

    jobs = [PeriodicJob("alerts", alerts_every, alerts)] if alerts_every > 0 else []
    if sagas:
        from agentjournal.messaging.sagas import SagaRunner, load_sagas

        saga_runner = SagaRunner(journal, load_sagas(sagas))
        jobs.append(PeriodicJob("sagas", sagas_every, saga_runner.resume_unfinished))
    ttl = DEFAULT_TTL if ttl is None else ttl
    worker = Worker(
        journal,
        chosen,
        node=node,
        ttl=ttl,
        batch_size=batch_size,
        jobs=jobs,
        relays=[item for item in workloads if isinstance(item, Relay)],
        process_managers=[item for item in workloads if isinstance(item, ProcessManager)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in (
        "agentjournal.worker",
        "agentjournal.projections",
        "agentjournal.relays",
        "agentjournal.process_managers",
    ):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    errors.print(
        f"worker {worker.node}: {len(chosen)} projection(s), {len(workloads)} relay(s) and process manager(s), "
        f"lease TTL {ttl:g}s; Ctrl-C stops",
        highlight=False,
    )
    worker.run(stopping.is_set, idle_timeout=0.5)
    errors.print(f"worker {worker.node}: stopped, leases released", highlight=False)


@app.command("leases")
def leases_command(as_json: JsonOption = False) -> None:
    """Who runs what: every lease with its owner node, fencing token and expiry.

    --json prints one object per lease: name, owner, token, expires_at, acquired_at, renewed_at, held.

    Example: agentjournal leases
    """
    from agentjournal.messaging.leases import LeaseRegistry

    found = LeaseRegistry(open_journal()).leases()
    if as_json:
        print_json(found)
        return
    columns = (
        Col("lease", "key"),
        Col("owner node", "key"),
        Col("token", "key", right=True),
        Col("state", "key"),
        Col("expires (UTC)", drop=1),
        Col("acquired (UTC)", drop=3),
        Col("renewed (UTC)", drop=2),
    )
    output.print_table(
        columns,
        [
            (
                info.name,
                info.owner or "",
                str(info.token),
                Text("held", style="green") if info.held else Text("free", style="dim"),
                _time(info.expires_at),
                _time(info.acquired_at),
                _time(info.renewed_at),
            )
            for info in found
        ],
    )
