"""Journal commands: migrate, streams, events, tail, verify, export, import, quickstart.

Each command opens the journal named by --db and calls one public function of the library;
this module only parses options and renders results (Rich tables, progress bars).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agentjournal.cli.app import app, console, errors, fail, open_journal, progress_bar, settings
from agentjournal.cli.output import JsonOption, print_json
from agentjournal.journal.errors import InvalidEventError, StreamNotFoundError
from agentjournal.journal.urls import connect

if TYPE_CHECKING:
    from agentjournal.journal import RecordedEvent

PREVIEW_CHARS = 60


def _preview(event: RecordedEvent, width: int = PREVIEW_CHARS) -> str:
    text = event.data_json.decode() if isinstance(event.data_json, bytes) else str(event.data_json)
    return text if len(text) <= width else text[: width - 1] + "…"


def events_table(events: Sequence[RecordedEvent], title: str | None = None) -> Table:
    """Events as a Rich table: version, position, time, type, actor, cause and a short data preview.

    One line per event: the data preview gets whatever width the other columns leave on the
    terminal; on a narrow one the position goes and the time loses its date when all events share
    one. The cause is shown as `v<N>` when it is an event of the same table, else as a short id.
    """
    version_of = {event.event_id: event.version for event in events}
    narrow = console.width < 110
    dates = {event.recorded_at.date() for event in events}
    short_time = narrow and len(dates) == 1
    time_format = "%H:%M:%S" if short_time else "%Y-%m-%d %H:%M:%S"
    cells: dict[str, Callable[[RecordedEvent], str]] = {
        "ver": lambda event: str(event.version),
        "pos": lambda event: str(event.position),
        "time": lambda event: event.recorded_at.strftime(time_format),
        "type": lambda event: event.type,
        "actor": lambda event: event.actor or "",
        "cause": lambda event: (
            f"v{version_of[event.causation_id]}" if event.causation_id in version_of else (event.causation_id or "")[:8]
        ),
    }
    if narrow:
        del cells["pos"]
    rows = [[cell(event) for cell in cells.values()] for event in events]
    # Each column takes its widest cell plus 3 (padding and separator); the table edges take 3.
    used = sum(max(len(row[column]) for row in [list(cells), *rows]) + 3 for column in range(len(cells)))
    preview_width = min(PREVIEW_CHARS, max(16, console.width - used - 3))
    caption = f"times in UTC, on {dates.pop():%Y-%m-%d}" if short_time else "times in UTC"
    table = Table(*cells, "data", title=title, box=box.SIMPLE_HEAD, caption=caption)
    for column in table.columns:
        column.no_wrap = True
        column.justify = "right" if column.header in ("ver", "pos") else "left"
        column.style = "bold" if column.header == "type" else ""
    for event, row in zip(events, rows, strict=True):
        # Text, not str: stored data is shown as it is, never read as Rich markup.
        table.add_row(*map(Text, row), Text(_preview(event, preview_width)))
    return table


MIGRATED_COMPONENTS = (
    ("journal", "agentjournal.journal.backends"),
    ("snapshots", "agentjournal.model"),
    ("projections", "agentjournal.projections"),
    ("messaging", "agentjournal.messaging"),
)
"""Every component that keeps tables in the journal's database: (component, package with migrations/).

Each applies its own migrations when first used; `agentjournal migrate` applies them all up front.
"""


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; list pending migrations and exit 1 if there are any.")
    ] = False,
) -> None:
    """Apply the pending schema migrations of the journal and of every component that keeps tables in its database.

    Example: agentjournal --db postgresql://app@db:5432/app migrate --check
    """
    # Connect without migrating (Journal.open would migrate, or refuse a behind schema), so the
    # pending migrations can be listed before, or instead of, applying them.
    with connect(settings.db_url) as journal:
        pending = [name for component in MIGRATED_COMPONENTS for name in journal.pending_migrations(*component)]
        if not pending:
            console.print(f"{journal.url}: the schema is up to date")
            return
        if check:
            console.print(f"{journal.url}: {len(pending)} migration(s) pending:")
            for name in pending:
                console.print(f"  {name}")
            raise typer.Exit(1)
        for component in MIGRATED_COMPONENTS:
            for name in journal.migrate(*component):
                console.print(f"applied {name}")


@app.command()
def streams(
    prefix: Annotated[str, typer.Option(help="Only streams whose id starts with this.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many streams.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List streams in id order with their current version.

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
    table = Table("stream", "version", "created (UTC)", "updated (UTC)")
    for info in found:
        table.add_row(
            info.stream_id,
            str(info.version),
            info.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            info.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
    console.print(f"{len(found)} stream(s)" + (f" starting with {prefix!r}" if prefix else ""))


@app.command()
def events(
    stream: Annotated[str, typer.Argument(help="The stream id, e.g. run-42.")],
    from_version: Annotated[int, typer.Option("--from", min=1, help="First version to show.")] = 1,
    to_version: Annotated[int | None, typer.Option("--to", min=1, help="Last version to show.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the events of one stream as a table.

    Example: agentjournal events conv-8842 --from 2 --to 4
    """
    found = open_journal().read_stream(stream, from_version, to_version)
    if not found:
        raise StreamNotFoundError(f"stream {stream!r} has no events in versions {from_version}..{to_version or 'end'}")
    if as_json:
        for event in found:
            print_json([event.to_dict()])
        return
    console.print(events_table(found, title=stream))


def _tail_line(event: RecordedEvent) -> Text:
    return Text.assemble(
        f"{event.position:>8}  {event.recorded_at:%H:%M:%S.%f}  {event.stream_id}@{event.version}  ",
        (event.type, "bold"),
        f"  {event.actor or '-'}  {_preview(event)}",
    )


@app.command()
def tail(
    after: Annotated[int, typer.Option(min=0, help="Start after this global position.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events until Ctrl-C.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    interval: Annotated[float, typer.Option(min=0.01, help="Seconds between polls with --follow.")] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Print every event after a position in global order, one line each; --follow waits for new ones.

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
    with progress_bar() as progress:
        task = progress.add_task("verifying", total=journal.head_position() if stream is None else None)
        report = journal.verify(stream, progress=lambda checked: progress.update(task, completed=checked))
        progress.update(task, completed=report.events_checked, total=report.events_checked)
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

    Example: agentjournal --db sqlite:///runs.db export -o runs.jsonl
    """
    journal = open_journal()
    total = journal.head_position()
    try:
        sink: BinaryIO = output.open("wb") if output else typer.get_binary_stream("stdout")
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
    finally:
        if output:
            sink.close()
        else:
            sink.flush()
    errors.print(f"exported {count} event(s)" + (f" to {output}" if output else ""))


def _read_export(path: Path) -> Iterator[dict[str, object]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidEventError(f"{path}:{number}: not a JSON line ({exc})") from None
            if not isinstance(record, dict):
                raise InvalidEventError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield record


@app.command(name="import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="A JSON Lines file written by export."),
    ],
) -> None:
    """Store the events of an export file in this journal, keeping ids, times and hashes.

    Example: agentjournal --db postgresql://app@db:5432/app import runs.jsonl
    """
    journal = open_journal()
    with file.open("rb") as lines:
        total = sum(1 for line in lines if line.strip())
    with progress_bar() as progress:
        task = progress.add_task("importing", total=total)
        count = journal.import_events(_read_export(file), progress=lambda done: progress.update(task, completed=done))
    console.print(f"imported {count} event(s) into {journal.url}")


@app.command()
def quickstart() -> None:
    """Write the refund conversation of seed 002 (stream conv-8842) as events, show it, verify it.

    Example: agentjournal --db sqlite:///quickstart.db quickstart
    """
    journal = open_journal()
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
