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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import orjson
import typer
from rich.markup import escape
from rich.panel import Panel
from rich.pretty import Pretty
from rich.text import Text
from rich.tree import Tree

from agentjournal.cli import output
from agentjournal.cli.app import app, console, errors, open_journal, progress_bar
from agentjournal.cli.output import Col, JsonOption, event_ref, print_json
from agentjournal.cli.params import moment, one_of, parse_time

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
SinceOption = Annotated[
    str | None, typer.Option(help="From this time: ISO 8601 (UTC when no zone) or ago, e.g. 7d.", callback=moment)
]
UntilOption = Annotated[
    str | None, typer.Option(help="Up to this time, excluded: ISO 8601 or ago, e.g. 1h.", callback=moment)
]


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


def _explain(event: RecordedEvent) -> str:
    """The event's title and summary, in plain text."""
    from agentjournal.forensics import explainers

    explanation = explainers.explain(event)
    return f"{explanation.title}: {explanation.summary}" if explanation.summary else explanation.title


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
    at_time: Annotated[
        str | None, typer.Option("--at-time", help="Load the state as it was at this time.", callback=moment)
    ] = None,
    aggregate: AggregateOption = None,
    as_json: JsonOption = False,
    load: LoadOption = None,
) -> None:
    """What did the stream know at version N? Folds its aggregate and explains the events around it.

    --json prints one object: stream_id, version and state (the aggregate's snapshot state).

    Example: agentjournal state run-42 --at 17
    """
    from agentjournal.model import Repository

    _load(load)
    if at is not None and at_time is not None:
        raise typer.BadParameter("give --at or --at-time, not both", param_hint="'--at'")
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


EXPLAIN_COLUMNS = (
    Col("ver", "key", right=True),
    Col("time", drop=2),
    Col("actor", drop=3),
    Col("what happened", "text"),
    Col("tags", "text", drop=4),
)


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in tags.items())


@app.command("explain")
def explain_command(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    *,
    from_version: Annotated[int, typer.Option("--from", min=1, help="First version.")] = 1,
    to_version: Annotated[int | None, typer.Option("--to", min=1, help="Last version.")] = None,
    format: Annotated[
        str, typer.Option("--format", help="table, markdown or html.", callback=one_of("table", "markdown", "html"))
    ] = "table",
    output_path: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write the markdown or html to this file.")
    ] = None,
    as_json: JsonOption = False,
    load: LoadOption = None,
) -> None:
    """Read a stream in plain language: each event's title, summary and tags, in order.

    The table shows one line per event: its title and details, cut to fit (the tags, the actor
    and the time are left out first on a narrow terminal); --format markdown or html renders
    everything. --json prints one object per event: event_id, stream_id, version, position, type,
    recorded_at, actor, title, summary, tags.

    Example: agentjournal explain run-42 --from 10 --to 20
    """
    from agentjournal.forensics import render_html, render_markdown, timeline

    _load(load)
    if to_version is not None and to_version < from_version:
        raise typer.BadParameter(f"--to {to_version} is before --from {from_version}", param_hint="'--to'")
    if as_json and format != "table":
        raise typer.BadParameter("give --json or --format markdown/html, not both", param_hint="'--json'")
    if output_path is not None and format == "table":
        raise typer.BadParameter("writes markdown or html: add --format markdown or --format html", param_hint="'-o'")
    entries = timeline(open_journal(), stream, from_version=from_version, to_version=to_version)
    if as_json:
        print_json(
            {
                **event_ref(entry.event),
                "actor": entry.actor,
                "title": entry.explanation.title,
                "summary": entry.explanation.summary,
                "tags": entry.explanation.tags,
            }
            for entry in entries
        )
        return
    if format != "table":
        text = (
            render_markdown(entries, title=stream)
            if format == "markdown"
            else render_html(entries, title=stream, standalone=True)
        )
        if output_path:
            output_path.write_text(text, encoding="utf-8")
            console.print(f"wrote {len(entries)} events to {escape(str(output_path))}")
        else:
            typer.echo(text, nl=False)
        return
    time_format, caption = output.time_format((entry.recorded_at for entry in entries), console.width)
    output.print_table(
        EXPLAIN_COLUMNS,
        [
            (
                str(entry.version),
                entry.recorded_at.strftime(time_format),
                entry.actor or "",
                Text.assemble(
                    (entry.explanation.title, "bold"),
                    ": " + entry.explanation.summary if entry.explanation.summary else "",
                ),
                _tags(entry.explanation.tags),
            )
            for entry in entries
        ],
        title=stream,
        caption=caption,
    )


def _chain_tree(chain: Chain) -> Tree:
    tree = Tree(f"[bold]causes of[/bold] {_event_line(chain.events[0])}")
    node = tree
    for event in chain.events[1:]:
        node = node.add(f"caused by {_event_line(event)}")
    if chain.external_cause:
        node.add(f"caused by {escape(chain.external_cause)} (not an event in this journal)")
    return tree


def _effects_tree(root: EffectNode) -> Tree:
    """The effects as a tree that indents only where an event caused several.

    A run is a long causal chain (each step caused by the one before); nesting every link would
    push the text off an 80-column terminal, so an only effect follows its cause on the same
    level, marked ↳.
    """
    tree = Tree(f"[bold]effects of[/bold] {_event_line(root.event)}")
    stack = [(tree, child, "↳ " if len(root.children) == 1 else "") for child in reversed(root.children)]
    while stack:
        parent, node, mark = stack.pop()
        branch = parent.add(mark + _event_line(node.event))
        if len(node.children) == 1:
            stack.append((parent, node.children[0], "↳ "))
        else:
            stack.extend((branch, child, "") for child in reversed(node.children))
    return tree


def _bisect_json(result: BisectResult) -> dict[str, Any]:
    return {
        "invariant": result.invariant,
        "over": result.over,
        "unit": result.unit,
        "stream_id": result.stream_id,
        "start": result.start,
        "end": result.end,
        "holds": result.holds,
        "culprit": event_ref(result.culprit) if result.culprit else None,
        "outcome": None if result.outcome is None else str(result.outcome),
        "what_happened": _explain(result.culprit) if result.culprit else None,
        "last_held": result.last_held,
        "confirmed": result.confirmed,
        "evaluations": result.evaluations,
        "lineage": [event_ref(event) for event in result.lineage.events] if result.lineage else [],
        "transitions": [
            {
                "at": change.at,
                "event": event_ref(change.event),
                "before": str(change.before),
                "after": str(change.after),
            }
            for change in result.transitions
        ],
        "errors": [{"at": at, "message": message} for at, message in result.errors],
    }


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
        columns = [Col(result.unit, "key", right=True), Col("stream", "key"), Col("type", "key")]
        columns += [Col("before", "text", drop=2), Col("after", "text"), Col("what happened", "text", drop=1)]
        output.print_table(
            columns,
            [
                (
                    str(change.at),
                    change.event.stream_id,
                    change.event.type,
                    str(change.before),
                    str(change.after),
                    _explain(change.event),
                )
                for change in result.transitions
            ],
            title="every transition",
        )
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
    as_json: JsonOption = False,
    load: LoadOption = None,
) -> None:
    """Find the first event after which an invariant fails: over one stream, or over the journal.

    --json prints one object: invariant, over, unit, stream_id, start, end, holds, culprit (event_id,
    stream_id, version, position, type, recorded_at), outcome, what_happened, last_held, confirmed,
    evaluations, lineage, transitions (with --exhaustive) and errors.

    Example: agentjournal bisect --invariant prices-in-bounds --since 2026-11-01 --until 2026-11-08
    """
    from agentjournal.forensics import bisect

    _load(load)
    if stream is not None and (since or until):
        raise typer.BadParameter(
            "--since/--until search the journal; give them or --stream, not both", param_hint="'--stream'"
        )
    _check_range(since, until)
    rule = _invariant(invariant)
    journal = open_journal()
    with _progress(f"bisect {rule.name}") as progress:
        if stream is not None:
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
    if as_json:
        print_json([_bisect_json(result)])
        return
    _print_bisect(result)


def _check_range(since: str | None, until: str | None) -> None:
    """--until before --since would select nothing at all: say so instead of printing an empty answer."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter(
            f"--until {until} is not after --since {since}; nothing could be in between", param_hint="'--until'"
        )


@app.command("regrade")
def regrade_command(
    *,
    invariant: InvariantOption,
    since: SinceOption = None,
    until: UntilOption = None,
    prefix: Annotated[str, typer.Option(help="Grade the streams whose id starts with this.")] = "run-",
    aggregate: AggregateOption = None,
    as_json: JsonOption = False,
    load: LoadOption = None,
) -> None:
    """The rubric changed: judge every run of a range by an invariant; list which fail, since which event.

    --json prints one object per graded run, passed or failed: stream_id, holds, graded_version,
    failed_since, outcome, what_happened, event (the culprit's event_id, version, position, ...), evaluations.

    Example: agentjournal regrade --invariant no-tool-failure-loop --since 2026-11-01
    """
    from agentjournal.forensics import regrade

    _load(load)
    _check_range(since, until)
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
    if as_json:
        print_json(
            {
                "stream_id": grade.stream_id,
                "holds": grade.holds,
                "graded_version": grade.graded_version,
                "failed_since": grade.failed_since,
                "outcome": None if grade.outcome is None else str(grade.outcome),
                "what_happened": grade.explanation.title if grade.explanation else None,
                "event": event_ref(grade.event) if grade.event else None,
                "evaluations": grade.evaluations,
            }
            for grade in report.runs
        )
        return
    if report.failed:
        columns = (
            Col("run", "key"),
            Col("fails since", "key", right=True),
            Col("why it fails", "text"),
            Col("what happened", "text", drop=1),
        )
        output.print_table(
            columns,
            [
                (
                    grade.stream_id,
                    f"v{grade.failed_since}",
                    str(grade.outcome),
                    grade.explanation.title if grade.explanation else "",
                )
                for grade in report.failed
            ],
            title=f"{rule.name}: failing runs",
        )
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
    as_json: JsonOption = False,
) -> None:
    """Walk the causation chain back to the root input (or forward to every effect, with --effects).

    --json prints one object per event (event_id, stream_id, version, position, type, recorded_at,
    caused_by, depth): from the event back to the root, or with --effects the tree depth first.

    Example: agentjournal lineage 0193a6f2-7c1e-7b3a-9d4e-2f1a6b8c9d0e --effects
    """
    from agentjournal.forensics import causes, effects

    _load(load)
    journal = open_journal()
    if show_effects:
        tree = effects(journal, event_id)
        if as_json:
            print_json(
                {**event_ref(event), "caused_by": event.causation_id, "depth": depth} for depth, event in tree.walk()
            )
        else:
            console.print(_effects_tree(tree), highlight=False)
        return
    chain = causes(journal, event_id)
    if as_json:
        print_json(
            {**event_ref(event), "caused_by": event.causation_id, "depth": depth}
            for depth, event in enumerate(chain.events)
        )
    else:
        console.print(_chain_tree(chain), highlight=False)


def _new_event(spec: str, option: str) -> tuple[int, NewEvent]:
    """`VERSION=TYPE` or `VERSION=TYPE:{json data}` -> (version, NewEvent); a usage error otherwise."""
    from agentjournal.journal import NewEvent

    where, sep, rest = spec.partition("=")
    kind, _, data = rest.partition(":")
    if not sep or not where.strip().isdigit() or not kind:
        raise typer.BadParameter(f"{spec!r}: expected VERSION=TYPE or VERSION=TYPE:{{json data}}", param_hint=option)
    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"{spec!r}: the data is not JSON ({exc})", param_hint=option) from None
    if not isinstance(payload, dict):
        raise typer.BadParameter(f"{spec!r}: the data must be a JSON object", param_hint=option)
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
    upto: Annotated[int | None, typer.Option("--upto", min=1, help="Replay only up to this version.")] = None,
    aggregate: AggregateOption = None,
    as_json: JsonOption = False,
    load: LoadOption = None,
) -> None:
    """Replay a stream with events dropped, replaced or injected, in memory; the journal is never written.

    --json prints one object: stream_id, changes, verdicts (invariant, as_it_happened, what_if, changed),
    actual_version, hypothetical_version and changed_state (the state fields that differ, as they would be).

    Example: agentjournal whatif run-42 --drop 17 --invariant prices-in-bounds
    """
    from agentjournal.forensics import what_if

    _load(load)
    rules: list[Invariant[Any]] = [_invariant(name) for name in check or []]
    result = what_if(
        open_journal(),
        stream,
        drop=drop or [],
        replace=dict(_new_event(spec, "'--replace'") for spec in replace or []),
        inject=[_new_event(spec, "'--inject'") for spec in inject or []],
        invariants=rules,
        aggregate=_aggregate_type(aggregate),
        upto=upto,
    )
    before, after = result.actual.snapshot_state(), result.hypothetical.snapshot_state()
    changed = {key: after.get(key) for key in after if after.get(key) != before.get(key)}
    if as_json:
        verdicts = [
            {
                "invariant": name,
                "as_it_happened": str(actual),
                "what_if": str(hypothetical),
                "changed": type(actual) is not type(hypothetical),
            }
            for name, (actual, hypothetical) in result.verdicts.items()
        ]
        print_json(
            [
                {
                    "stream_id": result.stream_id,
                    "changes": result.changes,
                    "verdicts": verdicts,
                    "actual_version": result.actual.version,
                    "hypothetical_version": result.hypothetical.version,
                    "changed_state": changed,
                }
            ]
        )
        return
    for change in result.changes or ["no changes: the replay is the stream as it happened"]:
        console.print(f"- {escape(change)}", highlight=False)
    if result.verdicts:
        output.print_table(
            (Col("invariant", "key"), Col("as it happened", "text"), Col("what if", "text")),
            [
                (
                    name,
                    str(actual),
                    Text(str(hypothetical), style="" if type(actual) is type(hypothetical) else "bold"),
                )
                for name, (actual, hypothetical) in result.verdicts.items()
            ],
            title="verdicts",
        )
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
    format: Annotated[
        str, typer.Option("--format", help="One of jsonl, csv, html.", callback=one_of("jsonl", "csv", "html"))
    ] = "jsonl",
    output_path: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write the report to this file.")
    ] = None,
    load: LoadOption = None,
) -> None:
    """Every action for one user, tenant or actor between two dates, in order, with its justification
    and each stream's hash-chain verification.

    Example: agentjournal audit --correlation-id 0193a6f2-7c1e-7b3a-9d4e-2f1a6b8c9d0e --format html -o report.html
    """
    from agentjournal.forensics import audit
    from agentjournal.forensics.audit import Format

    _load(load)
    _check_range(since, until)
    chosen = cast(Format, format)  # checked by one_of
    report = audit(
        open_journal(),
        correlation_id=correlation_id,
        tenant_id=tenant,
        actor=actor,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    if output_path is None:
        typer.echo(report.render(chosen), nl=False)
        return
    report.write(output_path, chosen)
    broken = [status.stream_id for status in report.streams if not status.ok]
    console.print(
        f"wrote {len(report.entries)} actions from {len(report.streams)} stream(s) to {escape(str(output_path))}; "
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
def invariants_command(as_json: JsonOption = False, load: LoadOption = None) -> None:
    """List the registered invariants (use their names with bisect, regrade and whatif).

    --json prints one object per invariant: name, description, journal_wide.

    Example: agentjournal invariants
    """
    from agentjournal.forensics import invariants

    _load(load)
    rules = [invariants.resolve(name) for name in invariants.names()]
    if as_json:
        print_json(
            {"name": rule.name, "description": rule.description, "journal_wide": rule.journal_wide} for rule in rules
        )
        return
    if not rules:
        console.print("no invariant is registered; name one by path instead: --invariant package.module:attr")
        return
    output.print_table(
        (Col("name", "key"), Col("journal-wide"), Col("description", "text")),
        [(rule.name, "yes" if rule.journal_wide else "no", rule.description) for rule in rules],
        title="invariants",
    )
