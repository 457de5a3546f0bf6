"""Output for people and for scripts: tables that fit the terminal, and the shared `--json` option.

A table is declared as columns of three kinds. A `key` is what a user copies into the next
command (an id, a hash, a status, a version, a position): it is always shown whole. A `value`
(a number, a time, a short name) is shown whole too, but a column with `drop` set may be left
out when the terminal is narrow. A `text` column (a summary, a preview, an error) is cut to
one line with an ellipsis to fit, and left out (when it may be) rather than cut to a stub.
Columns with the highest `drop` go first, and a note under the table names what is not shown.
When the keys alone do not fit, each row is printed as a block of `header  value` lines instead.

At 80 columns (a pipe, CI, ssh) every row is therefore one line, and `--json` prints
everything, whole, as JSON Lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer
from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agentjournal.cli.app import console

if TYPE_CHECKING:
    from agentjournal.journal import RecordedEvent

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON Lines instead of a table: one JSON object per line (see above)."),
]

Kind = Literal["key", "value", "text"]
GAP = 2
"""Spaces between two columns (a right padding of 1 and the box's blank separator)."""
TEXT_MIN = 12
"""The narrowest a text column is cut to, when nothing else can be left out."""
TEXT_ROOM = 24
"""A text column is left out (when it may be) rather than cut shorter than this."""


def print_json(records: Iterable[Any]) -> None:
    """One JSON object per line on stdout: dicts, dataclasses, datetimes as ISO 8601."""
    stream = typer.get_binary_stream("stdout")
    for record in records:
        stream.write(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    stream.flush()


def event_ref(event: RecordedEvent) -> dict[str, Any]:
    """What names an event in JSON output: its id, stream, version, position, type and time."""
    return {
        "event_id": event.event_id,
        "stream_id": event.stream_id,
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "recorded_at": event.recorded_at,
    }


def time_format(moments: Iterable[datetime | None], width: int, wide: int = 110) -> tuple[str, str]:
    """`(strftime format, caption)`: the time alone when the terminal is narrow and every moment
    falls on one day (the caption then names the day), else the date and the time."""
    days = {moment.date() for moment in moments if moment is not None}
    if width < wide and len(days) == 1:
        return "%H:%M:%S", f"times in UTC, on {days.pop():%Y-%m-%d}"
    return "%Y-%m-%d %H:%M:%S", "times in UTC"


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a fitted table; see the module's docstring for the kinds."""

    header: str
    kind: Kind = "value"
    drop: int = 0
    """0: always shown; otherwise the column may be left out, the highest number first."""
    right: bool = False


Cell = str | Text


def _cell(value: Cell, column: Col) -> Text:
    text = value.copy() if isinstance(value, Text) else Text(value)
    if any(char in text.plain for char in "\n\r\t"):  # one line per row: line breaks become spaces
        text = Text(" ".join(text.plain.split()), style=text.style)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _share(widths: dict[int, int], ideal: list[int], group: list[int], spare: int) -> int:
    """Widen the columns of `group` towards their ideal width, evenly, out of `spare`; returns what is left."""
    wanting = [index for index in group if widths[index] < ideal[index]]
    while spare > 0 and wanting:
        each = max(1, spare // len(wanting))
        for index in list(wanting):
            give = min(each, ideal[index] - widths[index], spare)
            widths[index] += give
            spare -= give
            if widths[index] >= ideal[index]:
                wanting.remove(index)
            if spare == 0:
                break
    return spare


def fitted_table(
    columns: Sequence[Col],
    rows: Iterable[Sequence[Cell]],
    *,
    width: int,
    title: str | None = None,
    caption: str | None = None,
) -> RenderableType:
    """The rows as a table at most `width` cells wide, one line per row, keys whole (see the module)."""
    cells = [[_cell(value, column) for value, column in zip(row, columns, strict=True)] for row in rows]
    count = len(columns)
    content = [max((row[index].cell_len for row in cells), default=0) for index in range(count)]
    header_word = [max((cell_len(word) for word in column.header.split()), default=0) for column in columns]
    ideal = [max(content[index], cell_len(column.header)) for index, column in enumerate(columns)]
    least = [
        max(header_word[index], min(content[index], TEXT_MIN) if column.kind == "text" else content[index])
        for index, column in enumerate(columns)
    ]
    room = [
        max(least[index], min(ideal[index], TEXT_ROOM)) if column.kind == "text" else least[index]
        for index, column in enumerate(columns)
    ]
    # A column that may go and is empty in every row goes without a word.
    empty = {index for index in range(count) if cells and not content[index] and columns[index].drop}
    shown = [index for index in range(count) if index not in empty]

    def needed(indices: list[int], widths: list[int] = room) -> int:
        return sum(widths[index] for index in indices) + GAP * (len(indices) - 1)

    # Leave out columns, the highest `drop` first, until every text column shown has some room.
    while needed(shown) > width:
        droppable = [index for index in shown if columns[index].drop > 0 and columns[index].kind != "key"]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda index: (columns[index].drop, index)))
    if needed(shown, least) > width:
        return _records(columns, cells, title=title, caption=caption)
    # Then take back, most wanted first, any left-out column that fits in what is left.
    for index in sorted(set(range(count)) - set(shown) - empty, key=lambda index: (columns[index].drop, index)):
        if needed(sorted([*shown, index])) <= width:
            shown = sorted([*shown, index])
    floor = room if needed(shown) <= width else least
    widths = {index: floor[index] for index in shown}
    spare = width - needed(shown, floor)
    # The text that is never left out first, then the other text, then headers on one line.
    for kinds, drops in ((("text",), False), (("text",), True), (("key", "value", "text"), True)):
        group = [index for index in shown if columns[index].kind in kinds and (drops or not columns[index].drop)]
        spare = _share(widths, ideal, group, spare)
    left_out = [columns[index].header for index in range(count) if index not in shown and index not in empty]
    notes = [part for part in (caption, left_out and f"not shown at this width: {', '.join(left_out)}") if part]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for index in shown:
        column = columns[index]
        table.add_column(column.header, width=widths[index], justify="right" if column.right else "left")
    for row in cells:
        table.add_row(*(row[index] for index in shown))
    # The title and the notes take the terminal's width, not the table's.
    return Group(
        *([Text(title, style="bold")] if title else []),
        table,
        *([Text("; ".join(notes), style="dim")] if notes else []),
    )


def _records(columns: Sequence[Col], cells: list[list[Text]], *, title: str | None, caption: str | None) -> Group:
    """Each row as a block of `header  value` lines: for a terminal too narrow for the keys side by side."""
    label = max(cell_len(column.header) for column in columns)
    lines: list[Text] = [Text(title, style="bold")] if title else []
    for row in cells:
        for column, cell in zip(columns, row, strict=True):
            value = cell.copy()
            value.no_wrap, value.overflow = False, "fold"
            lines.append(Text.assemble((column.header.ljust(label), "dim"), "  ", value))
        lines.append(Text(""))
    if caption:
        lines.append(Text(caption, style="dim"))
    return Group(*lines)


def print_table(
    columns: Sequence[Col],
    rows: Iterable[Sequence[Cell]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print a fitted table on the command's console (stdout), as wide as the terminal."""
    console.print(fitted_table(columns, rows, width=console.width, title=title, caption=caption))
