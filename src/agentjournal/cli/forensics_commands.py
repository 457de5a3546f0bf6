"""Forensics commands: state, explain, bisect, regrade, lineage, whatif, audit, invariants.

The seed's Tuesday workflows, one command each; every command calls one function of
`agentjournal.model` or `agentjournal.forensics` and only renders what it returns.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.tree import Tree

from agentjournal.cli.app import app, console, errors, open_journal, progress_bar

if TYPE_CHECKING:
    from agentjournal.forensics import BisectResult, Chain, EffectNode, Invariant
    from agentjournal.journal import NewEvent, RecordedEvent
    from agentjournal.model import Aggregate

InvariantOption = Annotated[
    str, typer.Option("--invariant", "-i", help="A registered invariant name, or package.module:attr.")
]
AggregateOption = Annotated[
    str | None,
    typer.Option(
        "--aggregate", help="Fold into this Aggregate (package.module:Class) instead of the stream's default."
    ),
]
SinceOption = Annotated[str | None, typer.Option(help="From this time: ISO 8601 (UTC when no zone) or ago, e.g. 7d.")]
UntilOption = Annotated[str | None, typer.Option(help="Up to this time, excluded: ISO 8601 or ago, e.g. 1h.")]


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time (UTC when no zone is given), or a duration ago: 90m, 24h, 7d, 2w."""
    from agentjournal.journal import InvalidEventError
    from agentjournal.projections.base import ProjectionError
    from agentjournal.projections.metrics import parse_duration

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(value)
        except ProjectionError:
            raise InvalidEventError(
                f"{option} {value!r} is neither an ISO 8601 time (2026-11-01, 2026-11-01T09:30Z) "
                "nor a duration ago (90m, 24h, 7d)"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


LoadOption = Annotated[
    list[str] | None,
    typer.Option(
        "--load", help="Import this module first (it may register explainers, invariants, aggregates); repeatable."
    ),
]


def _load(modules: list[str] | None) -> None:
    """Import the user's modules, so their registrations (explainers, invariants, aggregates) apply."""
    from agentjournal.journal import InvalidEventError

    _importable_cwd()
    for name in modules or []:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise InvalidEventError(f"--load {name}: cannot import it ({exc})") from None


def _importable_cwd() -> None:
    """Let `package.module:attr` name a module in the current directory, as `python -m` does."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _invariant(name_or_path: str) -> Invariant[Any]:
    from agentjournal.forensics import invariants

    _importable_cwd()
    return invariants.resolve(name_or_path)


def _aggregate_type(path: str | None) -> type[Aggregate] | None:
    from agentjournal.model import load_aggregate_type

    if path is None:
        return None
    _importable_cwd()
    return load_aggregate_type(path)


def _aggregate(path: str | None, stream: str) -> type[Aggregate]:
    from agentjournal.runs import aggregate_for

    return _aggregate_type(path) or aggregate_for(open_journal(), stream)


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr, fed by the library's (done, expected) callbacks."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, expected: int) -> None:
            bar.update(task, completed=done, total=max(expected, done))

        yield advance


def _event_line(event: RecordedEvent) -> str:
    from agentjournal.forensics import explainers

    explanation = explainers.explain(event)
    title, summary = escape(explanation.title), escape(explanation.summary)
    return f"{escape(event.stream_id)} v{event.version} [bold]{title}[/bold]: {summary}"


@app.command("state")
def state_command(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    *,
    at: Annotated[int | None, typer.Option("--at", help="The version to load (default: the latest).")] = None,
    at_time: Annotated[str | None, typer.Option("--at-time", help="Load the state as it was at this time.")] = None,
    aggregate: AggregateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
    load: LoadOption = None,
) -> None:
    """What did the stream know at version N? Folds its aggregate and explains the events around it.

    Example: agentjournal state run-42 --at 17
    """
    from agentjournal.journal import InvalidEventError
    from agentjournal.model import Repository

    _load(load)
    if at is not None and at_time is not None:
        raise InvalidEventError("give --at or --at-time, not both")
    journal = open_journal()
    repository = Repository(journal, _aggregate(aggregate, stream))
    moment = parse_time(at_time, "--at-time")
    if moment is not None:
        loaded = repository.load_at_time(stream, moment)
    elif at is not None:
        loaded = repository.load_at_version(stream, at)
    else:
        loaded = repository.load(stream)
    state = loaded.snapshot_state()
    if as_json:
        typer.echo(orjson.dumps({"stream_id": stream, "version": loaded.version, "state": state}).decode())
        return
    console.print(
        Panel(
            Pretty(state), title=f"{escape(stream)} at version {loaded.version} ({type(loaded).__name__})", expand=False
        )
    )
    around = journal.read_stream(stream, max(1, loaded.version - 1), loaded.version)
    for event in around:
        label = "this event" if event.version == loaded.version else "the event before"
        console.print(f"{label}: {_event_line(event)}", highlight=False)


@app.command("explain")
def explain_command(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    *,
    from_version: Annotated[int, typer.Option("--from", help="First version.")] = 1,
    to_version: Annotated[int | None, typer.Option("--to", help="Last version.")] = None,
    format: Annotated[str, typer.Option("--format", help="table, markdown or html.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    load: LoadOption = None,
) -> None:
    """Read a stream in plain language: each event's title, summary and tags, in order.

    Example: agentjournal explain run-42 --from 10 --to 20
    """
    from agentjournal.forensics import render_html, render_markdown, timeline
    from agentjournal.journal import InvalidEventError

    _load(load)
    if format not in ("table", "markdown", "html"):
        raise InvalidEventError(f"unknown format {format!r}; choose table, markdown or html")
    entries = timeline(open_journal(), stream, from_version=from_version, to_version=to_version)
    if format != "table":
        text = (
            render_markdown(entries, title=stream)
            if format == "markdown"
            else render_html(entries, title=stream, standalone=True)
        )
        if output:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {len(entries)} events to {escape(str(output))}")
        else:
            typer.echo(text, nl=False)
        return
    table = Table("ver", "time (UTC)", "actor", "what happened", "details", "tags", title=escape(stream))
    for entry in entries:
        explanation = entry.explanation
        table.add_row(
            str(entry.version),
            entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(entry.actor or ""),
            escape(explanation.title),
            escape(explanation.summary),
            escape(", ".join(f"{key}={value}" for key, value in explanation.tags.items())),
        )
    console.print(table)


def _chain_tree(chain: Chain) -> Tree:
    tree = Tree(f"[bold]causes of[/bold] {_event_line(chain.events[0])}")
    node = tree
    for event in chain.events[1:]:
        node = node.add(f"caused by {_event_line(event)}")
    if chain.external_cause:
        node.add(f"caused by {escape(chain.external_cause)} (not an event in this journal)")
    return tree


def _effects_tree(root: EffectNode) -> Tree:
    tree = Tree(f"[bold]effects of[/bold] {_event_line(root.event)}")
    stack = [(tree, child) for child in reversed(root.children)]
    while stack:
        parent, node = stack.pop()
        branch = parent.add(_event_line(node.event))
        stack.extend((branch, child) for child in reversed(node.children))
    return tree


def _print_bisect(result: BisectResult) -> None:
    scope = f"stream {escape(result.stream_id or '')}" if result.over == "stream" else "the journal"
    span = f"{result.unit}s {result.start + 1}..{result.end}"
    if result.holds and not result.transitions:
        console.print(
            f"[green]{escape(result.invariant)} holds[/green] over {scope} ({span}); "
            f"{result.evaluations} evaluation(s)",
            highlight=False,
        )
    elif result.culprit is not None:
        explanation = result.explanation
        at = result.culprit.position if result.over == "journal" else result.culprit.version
        lines = [
            f"[bold red]{escape(result.invariant)} fails from {result.unit} {at}[/bold red] of {scope}: "
            f"{escape(str(result.outcome))}",
            f"culprit: {_event_line(result.culprit)}",
            f"event id: {result.culprit.event_id}, recorded {result.culprit.recorded_at.isoformat()}",
            f"last {result.unit} that held: {result.last_held if result.last_held is not None else 'none'}"
            + ("" if result.confirmed else " (not confirmed)"),
            f"evaluations: {result.evaluations} over {span}",
        ]
        if explanation and explanation.tags:
            lines.append("tags: " + escape(", ".join(f"{key}={value}" for key, value in explanation.tags.items())))
        console.print(Panel("\n".join(lines), title="bisect", expand=False), highlight=False)
        if result.lineage is not None and len(result.lineage.events) > 1:
            console.print(_chain_tree(result.lineage))
    if result.transitions:
        table = Table(result.unit, "event", "before", "after", title="every transition")
        for change in result.transitions:
            table.add_row(
                str(change.at), _event_line(change.event), escape(str(change.before)), escape(str(change.after))
            )
        console.print(table)
    if result.errors:
        first_key, first_message = result.errors[0]
        errors.print(
            f"[yellow]the invariant raised at {len(result.errors)} {result.unit}(s); first at {first_key}: "
            f"{escape(first_message)}[/yellow]",
            highlight=False,
        )


@app.command("bisect")
def bisect_command(
    *,
    invariant: InvariantOption,
    stream: Annotated[str | None, typer.Option("--stream", "-s", help="Search this stream's versions.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    exhaustive: Annotated[bool, typer.Option(help="Check every event and list every transition.")] = False,
    aggregate: AggregateOption = None,
    load: LoadOption = None,
) -> None:
    """Find the first event after which an invariant fails: over one stream, or over the journal.

    Example: agentjournal bisect --invariant prices-in-bounds --since 2026-11-01 --until 2026-11-08
    """
    from agentjournal.forensics import bisect
    from agentjournal.journal import InvalidEventError

    _load(load)
    rule = _invariant(invariant)
    journal = open_journal()
    with _progress(f"bisect {rule.name}") as progress:
        if stream is not None:
            if since or until:
                raise InvalidEventError("--since/--until search the journal; give them or --stream, not both")
            kind = _aggregate_type(aggregate)
            result = bisect(journal, rule, stream=stream, exhaustive=exhaustive, aggregate=kind, progress=progress)
        else:
            result = bisect(
                journal,
                rule,
                over="journal",
                since=parse_time(since, "--since"),
                until=parse_time(until, "--until"),
                exhaustive=exhaustive,
                progress=progress,
            )
    _print_bisect(result)


@app.command("regrade")
def regrade_command(
    *,
    invariant: InvariantOption,
    since: SinceOption = None,
    until: UntilOption = None,
    prefix: Annotated[str, typer.Option(help="Grade the streams whose id starts with this.")] = "run-",
    aggregate: AggregateOption = None,
    load: LoadOption = None,
) -> None:
    """The rubric changed: judge every run of a range by an invariant; list which fail, since which event.

    Example: agentjournal regrade --invariant no-tool-failure-loop --since 2026-11-01
    """
    from agentjournal.forensics import regrade

    _load(load)
    rule = _invariant(invariant)
    kind = _aggregate_type(aggregate)
    with _progress(f"regrade {rule.name}") as progress:
        report = regrade(
            open_journal(),
            rule,
            streams=prefix,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            aggregate=kind,
            progress=progress,
        )
    table = Table("run", "fails since", "what happened", "why it fails", title=f"{escape(rule.name)}: failing runs")
    for grade in report.failed:
        table.add_row(
            escape(grade.stream_id),
            f"v{grade.failed_since}",
            escape(grade.explanation.title if grade.explanation else ""),
            escape(str(grade.outcome)),
        )
    if report.failed:
        console.print(table)
    console.print(
        f"{len(report.runs)} run(s) graded: {len(report.passed)} pass, {len(report.failed)} fail "
        f"({report.evaluations} evaluations)",
        highlight=False,
    )


@app.command("lineage")
def lineage_command(
    event_id: Annotated[str, typer.Argument(help="The event id (a UUID).")],
    show_effects: Annotated[bool, typer.Option("--effects", help="Show what the event caused, as a tree.")] = False,
    load: LoadOption = None,
) -> None:
    """Walk the causation chain back to the root input (or forward to every effect, with --effects).

    Example: agentjournal lineage 0193a6f2-7c1e-7b3a-9d4e-2f1a6b8c9d0e --effects
    """
    from agentjournal.forensics import causes, effects

    _load(load)
    journal = open_journal()
    if show_effects:
        console.print(_effects_tree(effects(journal, event_id)), highlight=False)
    else:
        console.print(_chain_tree(causes(journal, event_id)), highlight=False)


def _new_event(spec: str, option: str) -> tuple[int, NewEvent]:
    """`VERSION=TYPE` or `VERSION=TYPE:{json data}` -> (version, NewEvent)."""
    from agentjournal.journal import InvalidEventError, NewEvent

    where, sep, rest = spec.partition("=")
    kind, _, data = rest.partition(":")
    if not sep or not where.strip().isdigit() or not kind:
        raise InvalidEventError(f"{option} {spec!r}: expected VERSION=TYPE or VERSION=TYPE:{{json data}}")
    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"{option} {spec!r}: the data is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise InvalidEventError(f"{option} {spec!r}: the data must be a JSON object")
    return int(where), NewEvent(kind.strip(), payload)


@app.command("whatif")
def whatif_command(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    *,
    drop: Annotated[list[int] | None, typer.Option("--drop", help="Leave out this version (repeatable).")] = None,
    replace: Annotated[
        list[str] | None, typer.Option("--replace", help='VERSION=TYPE:{"json": "data"} (repeatable).')
    ] = None,
    inject: Annotated[
        list[str] | None, typer.Option("--inject", help='AFTER_VERSION=TYPE:{"json": "data"} (repeatable).')
    ] = None,
    check: Annotated[
        list[str] | None, typer.Option("--invariant", "-i", help="Judge both states by this invariant (repeatable).")
    ] = None,
    upto: Annotated[int | None, typer.Option("--upto", help="Replay only up to this version.")] = None,
    aggregate: AggregateOption = None,
    load: LoadOption = None,
) -> None:
    """Replay a stream with events dropped, replaced or injected, in memory; the journal is never written.

    Example: agentjournal whatif run-42 --drop 17 --invariant prices-in-bounds
    """
    from agentjournal.forensics import what_if

    _load(load)
    rules: list[Invariant[Any]] = [_invariant(name) for name in check or []]
    result = what_if(
        open_journal(),
        stream,
        drop=drop or [],
        replace=dict(_new_event(spec, "--replace") for spec in replace or []),
        inject=[_new_event(spec, "--inject") for spec in inject or []],
        invariants=rules,
        aggregate=_aggregate_type(aggregate),
        upto=upto,
    )
    for change in result.changes or ["no changes: the replay is the stream as it happened"]:
        console.print(f"- {escape(change)}", highlight=False)
    if result.verdicts:
        table = Table("invariant", "as it happened", "what if", title="verdicts")
        for name, (actual, hypothetical) in result.verdicts.items():
            style = "" if type(actual) is type(hypothetical) else "bold"
            table.add_row(escape(name), escape(str(actual)), escape(str(hypothetical)), style=style)
        console.print(table)
    before, after = result.actual.snapshot_state(), result.hypothetical.snapshot_state()
    changed = {key: after.get(key) for key in after if after.get(key) != before.get(key)}
    title = f"state fields that differ (version {result.actual.version} vs {result.hypothetical.version})"
    console.print(Panel(Pretty(changed), title=title, expand=False))


@app.command("audit")
def audit_command(
    *,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id", help="One logical request/session.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="One tenant.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="One actor, e.g. user:42 or agent:support.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    format: Annotated[str, typer.Option("--format", help="One of jsonl, csv, html.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    load: LoadOption = None,
) -> None:
    """Every action for one user, tenant or actor between two dates, in order, with its justification
    and each stream's hash-chain verification.

    Example: agentjournal audit --correlation-id 0193a6f2-7c1e-7b3a-9d4e-2f1a6b8c9d0e --format html -o report.html
    """
    from agentjournal.forensics import audit
    from agentjournal.forensics.audit import FORMATS
    from agentjournal.journal import InvalidEventError

    _load(load)
    if format not in FORMATS:
        raise InvalidEventError(f"unknown audit format {format!r}; choose one of {', '.join(FORMATS)}")
    report = audit(
        open_journal(),
        correlation_id=correlation_id,
        tenant_id=tenant,
        actor=actor,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    if output is None:
        typer.echo(report.render(format), nl=False)
        return
    report.write(output, format)
    broken = [status.stream_id for status in report.streams if not status.ok]
    console.print(
        f"wrote {len(report.entries)} actions from {len(report.streams)} stream(s) to {escape(str(output))}; "
        + (
            "every hash chain verifies"
            if not broken
            else f"[bold red]BROKEN hash chains: {escape(', '.join(broken))}[/bold red]"
        ),
        highlight=False,
    )
    if broken:
        raise typer.Exit(1)


@app.command("invariants")
def invariants_command(load: LoadOption = None) -> None:
    """List the registered invariants (use their names with bisect, regrade and whatif).

    Example: agentjournal invariants
    """
    from agentjournal.forensics import invariants

    _load(load)
    table = Table("name", "description", "journal-wide", title="invariants")
    for name in invariants.names():
        rule = invariants.resolve(name)
        table.add_row(escape(name), escape(rule.description), "yes" if rule.journal_wide else "no")
    console.print(table)
    if not invariants.names():
        console.print("none registered; name one by path instead: --invariant package.module:attr")
