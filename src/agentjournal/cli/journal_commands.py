"""Journal commands: migrate, streams, events, tail, verify, export, import, quickstart.

Each command opens the journal named by --db and calls one public function of the library;
this module only parses options and renders results (Rich tables, progress bars).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import orjson
import typer
from rich.console import RenderableType
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import app, console, errors, fail, open_journal, progress_bar, settings
from agentjournal.cli.output import Col, JsonOption, print_json
from agentjournal.journal.errors import DamagedDatabaseError, JournalNotFoundError, StreamNotFoundError
from agentjournal.journal.imports import ExportFile
from agentjournal.journal.location import redact
from agentjournal.journal.urls import connect

if TYPE_CHECKING:
    from agentjournal.journal import RecordedEvent

PREVIEW_CHARS = 60


def _preview(event: RecordedEvent, width: int = PREVIEW_CHARS) -> str:
    text = event.data_json.decode() if isinstance(event.data_json, bytes) else str(event.data_json)
    return text if len(text) <= width else text[: width - 1] + "…"


EVENT_COLUMNS = (
    Col("ver", "key", right=True),
    Col("pos", "key", right=True),
    Col("time", "value", drop=2),
    Col("type", "key"),
    Col("actor", "value", drop=4),
    Col("cause", "value", drop=3),
    Col("data", "text", drop=1),
)


def events_table(events: Sequence[RecordedEvent], title: str | None = None) -> RenderableType:
    """Events as a table, one line each: version, position, time, type, actor, cause and a data preview.

    The version, position and type are always whole; on a narrow terminal the time loses its
    date when all events share one, and the actor, the cause, the time and the preview are left
    out in that order when they do not fit. The cause is `v<N>` when it is an event of the same
    table, else the causing event's (or request's) id.
    """
    version_of = {event.event_id: event.version for event in events}
    time_format, caption = output.time_format((event.recorded_at for event in events), console.width)
    rows = [
        (
            str(event.version),
            str(event.position),
            event.recorded_at.strftime(time_format),
            Text(event.type, style="bold"),
            event.actor or "",
            f"v{version_of[event.causation_id]}" if event.causation_id in version_of else event.causation_id or "",
            _preview(event, 4 * console.width),
        )
        for event in events
    ]
    return output.fitted_table(EVENT_COLUMNS, rows, width=console.width, title=title, caption=caption)


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; list pending migrations and exit 1 if there are any.")
    ] = False,
    allow_other_tables: Annotated[
        bool,
        typer.Option(
            "--allow-other-tables",
            help="Create the journal even beside another application's tables (in the same SQLite file, "
            "PostgreSQL schema or MySQL database).",
        ),
    ] = False,
) -> None:
    """Create the journal where there is none, and apply the pending schema migrations of the journal and of
    every component that keeps tables in its database.

    A journal is never created beside another application's tables unless --allow-other-tables is
    given; on PostgreSQL, give it a schema of its own instead (?schema=agentjournal in the URL).

    Example: agentjournal --db postgresql://app@db:5432/app migrate --check
    """
    # Connect without migrating (Journal.open would migrate, or refuse a behind schema), so the
    # pending migrations can be listed before, or instead of, applying them. With --check nothing
    # is created: a missing SQLite file is "no journal at …".
    with connect(settings.db_url, create=not check, allow_other_tables=allow_other_tables) as journal:
        from agentjournal import schema

        pending = schema.pending(journal)
        if not pending:
            console.print(f"{redact(journal.url)}: the schema is up to date", soft_wrap=True, highlight=False)
            return
        if check:
            none_yet = "" if journal.location().has_journal else " (no journal yet)"
            console.print(
                f"{redact(journal.url)}: {len(pending)} migration(s) pending{none_yet}:",
                soft_wrap=True,
                highlight=False,
            )
            for name in pending:
                console.print(f"  {name}")
            raise typer.Exit(1)
        for name in schema.migrate(journal):
            console.print(f"applied {name}")


@app.command()
def streams(
    prefix: Annotated[str, typer.Option(help="Only streams whose id starts with this.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many streams.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List streams in id order with their current version.

    --json prints one object per stream: stream_id, version, created_at, updated_at.

    Example: agentjournal streams --prefix run-
    """
    from agentjournal.journal.envelope import format_time

    found = open_journal().streams(prefix, limit=limit)
    if as_json:
        print_json(
            {
                "stream_id": info.stream_id,
                "version": info.version,
                "created_at": format_time(info.created_at),
                "updated_at": format_time(info.updated_at),
            }
            for info in found
        )
        return
    columns = (
        Col("stream", "key"),
        Col("version", "key", right=True),
        Col("created (UTC)", drop=2),
        Col("updated (UTC)", drop=1),
    )
    output.print_table(
        columns,
        [
            (
                info.stream_id,
                str(info.version),
                info.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                info.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for info in found
        ],
    )
    console.print(f"{len(found)} stream(s)" + (f" starting with {prefix!r}" if prefix else ""))


@app.command()
def events(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    from_version: Annotated[int, typer.Option("--from", min=1, help="First version to show.")] = 1,
    to_version: Annotated[int | None, typer.Option("--to", min=1, help="Last version to show.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the events of one stream as a table, one line per event.

    --json prints each event's whole envelope, as `export` writes it, one per line.

    Example: agentjournal events conv-8842 --from 2 --to 4
    """
    if to_version is not None and to_version < from_version:
        raise typer.BadParameter(f"--to {to_version} is before --from {from_version}", param_hint="'--to'")
    journal = open_journal()
    if journal.stream_version(stream) == 0:
        raise StreamNotFoundError(f"no stream {stream!r} in {journal.url}")
    found = journal.read_stream(stream, from_version, to_version)
    if not found:
        raise StreamNotFoundError(f"stream {stream!r} has no events in versions {from_version}..{to_version or 'end'}")
    if as_json:
        for event in found:
            print_json([event.to_dict()])
        return
    console.print(events_table(found, title=stream))


def _tail_line(event: RecordedEvent) -> Text:
    """Position, time, stream@version and type, whole; then the actor and as much of the data as fit."""
    line = Text.assemble(
        f"{event.position:>7}  {event.recorded_at:%H:%M:%S.%f}"[:-3] + f"  {event.stream_id}@{event.version}  ",
        (event.type, "bold"),
    )
    if event.actor and line.cell_len + 2 + len(event.actor) <= console.width:
        line.append(f"  {event.actor}")
    room = console.width - line.cell_len - 2
    if room >= 12:
        line.append(f"  {_preview(event, min(PREVIEW_CHARS, room))}")
    return line


@app.command()
def tail(
    after: Annotated[int, typer.Option(min=0, help="Start after this global position.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events until Ctrl-C.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    interval: Annotated[float, typer.Option(min=0.01, help="Seconds between polls with --follow.")] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Print every event after a position in global order, one line each; --follow waits for new ones.

    --json prints each event's whole envelope, as `export` writes it, one per line.

    Example: agentjournal tail --after 100 --follow
    """
    journal = open_journal()
    shown = 0
    try:
        while True:
            page = journal.read_all(after, 1000 if limit is None else min(1000, limit - shown))
            for event in page:
                if as_json:
                    print_json([event.to_dict()])
                else:
                    console.print(_tail_line(event), highlight=False, soft_wrap=True)
                after = event.position
                shown += 1
            if limit is not None and shown >= limit:
                return
            if not page:
                if not follow:
                    return
                time.sleep(interval)
    except KeyboardInterrupt:
        errors.print(f"stopped after position {after}")


@app.command()
def verify(
    stream: Annotated[str | None, typer.Option(help="Check only this stream.")] = None,
) -> None:
    """Recompute every hash chain; print ok, or the first broken link and exit 1.

    Example: agentjournal --db sqlite:///runs.db verify
    """
    journal = open_journal()
    if stream is not None and journal.stream_version(stream) == 0:
        raise StreamNotFoundError(f"stream {stream!r} does not exist")
    total = None
    if stream is None:
        with contextlib.suppress(DamagedDatabaseError):  # verify says what it can read, and where it fails
            total = journal.head_position()
    with progress_bar() as progress:
        task = progress.add_task("verifying", total=total)
        report = journal.verify(stream, progress=lambda checked: progress.update(task, completed=checked))
        progress.update(task, completed=report.events_checked, total=report.events_checked)
    if report.damage is not None:
        fail(report.damage)
    if report.first_broken is not None:
        fail(f"broken hash chain at {report.first_broken}")
    console.print(
        f"ok: {report.events_checked} event(s) in {report.streams_checked} stream(s), every hash chain intact"
    )


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write every event as JSON Lines (one exported envelope per line) in global position order.

    With -o the file appears only when the export is complete (it is written beside it, then
    renamed), so an interrupted export never leaves a truncated file under that name.

    Example: agentjournal --db sqlite:///runs.db export -o runs.jsonl
    """
    journal = open_journal()
    total = journal.head_position()
    partial = None
    try:
        if output is None:
            sink: BinaryIO = typer.get_binary_stream("stdout")
        else:
            if output.is_dir():
                fail(f"cannot write {output}: it is a folder; give a file name, e.g. {output / 'journal.jsonl'}")
            partial = output.with_name(f".{output.name}.partial")
            sink = partial.open("wb")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    count = 0
    try:
        with progress_bar() as progress:
            task = progress.add_task("exporting", total=total)
            for event in journal.iter_all(0, batch_size=5000):
                sink.write(orjson.dumps(event.to_dict()) + b"\n")
                count += 1
                if count % 1000 == 0:
                    progress.update(task, completed=count)
            progress.update(task, completed=count, total=count)
        if partial is not None and output is not None:
            sink.close()
            partial.replace(output)
            partial = None
    finally:
        if partial is not None:
            sink.close()
            partial.unlink(missing_ok=True)
        elif output is None:
            sink.flush()
    errors.print(f"exported {count} event(s)" + (f" to {output}" if output else ""))


@app.command(name="import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="A JSON Lines file written by export."),
    ],
) -> None:
    """Store the events of an export file in this journal, keeping ids, times and hashes.

    The whole file is checked first: a bad line, or a stream that does not fit the one stored
    under its name, is reported (file, line, problem) and nothing is imported. What is already
    stored is skipped, so importing a file twice changes nothing, and an import that was stopped
    (even with kill -9) is finished by running it again. Creates the journal if there is none.

    Example: agentjournal --db postgresql://app@db:5432/app import runs.jsonl
    """
    source = ExportFile(file)
    try:
        journal = open_journal()
    except JournalNotFoundError:
        source.check()  # a file that cannot be imported creates no journal either
        journal = open_journal(create=True)
    total = source.count()
    with progress_bar() as progress:
        task = progress.add_task("importing", total=total)
        report = journal.import_events(source, progress=lambda done: progress.update(task, completed=done))
    where = redact(journal.url)
    if not report.total:
        console.print(f"nothing to import: {file} holds no events", soft_wrap=True, highlight=False)
    elif not report.changed:
        console.print(
            f"already imported: {report.total} event(s), nothing changed in {where}", soft_wrap=True, highlight=False
        )
    elif report.already_present:
        console.print(
            f"imported {report.imported} event(s) into {where}; the other {report.already_present} "
            "were already stored (an earlier import of this file, finished now)",
            soft_wrap=True,
            highlight=False,
        )
    else:
        console.print(f"imported {report.imported} event(s) into {where}", soft_wrap=True, highlight=False)


@app.command()
def quickstart() -> None:
    """Write the refund conversation of seed 002 (stream conv-8842) as events, show it, verify it.

    Example: agentjournal --db sqlite:///quickstart.db quickstart
    """
    journal = open_journal(create=True)
    from agentjournal.quickstart import write_refund_conversation

    stored = write_refund_conversation(journal)
    console.print(events_table(stored, title=f"{stored[0].stream_id}: a refund handled by two agents"))
    report = journal.verify(stored[0].stream_id)
    if report.first_broken is not None:
        fail(f"broken hash chain at {report.first_broken}")
    console.print(
        f"verified: {report.events_checked} events, hash chain intact, in {journal.url}\n"
        f"next: agentjournal events {stored[0].stream_id} · agentjournal tail · agentjournal verify"
    )
