"""The shared `--json` option: tables for people, JSON Lines for scripts (`| jq`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import orjson
import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON Lines (one object per line) instead of a table.")]


def print_json(records: Iterable[Any]) -> None:
    """One JSON object per line on stdout: dicts, dataclasses, datetimes as ISO 8601."""
    stream = typer.get_binary_stream("stdout")
    for record in records:
        stream.write(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    stream.flush()
