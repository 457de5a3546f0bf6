"""The sandbox benchmark: what running a tool call in the sandbox adds to the same call in-process.

The tool is `echo` (returns its integer argument), so almost all that is timed is the machinery.
Each figure is the median wall time of one call, per round; the table shows the median over
`--repeat` rounds, and every ratio is against the floor measured in the same run:

- sandboxed call: `execute` of the sandboxed tool, its template already running and its module
  imported (the steady state of an agent that calls tools);
- in-process call: `execute` of the same function as an ordinary tool (a worker thread);
- overhead: sandboxed minus in-process, what the sandbox costs a call (target: under 60 ms);
- floor: a bare `python -I -c pass`, the least any process-per-call design could cost;
- fresh interpreter importing the tool: `python -I -c "...; import benchmarks.sandbox"`, about what a
  call cost before the template (every call started an interpreter that imported the package,
  pydantic and the tool's module);
- first call: a sandboxed call that has to start the template and import the tool's module.

    .venv/bin/python benchmarks/sandbox.py
    .venv/bin/python benchmarks/sandbox.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the template imports the tool as `benchmarks.sandbox`
    sys.path.insert(0, str(ROOT))

from agentjournal.agents import sandbox  # noqa: E402
from agentjournal.agents.tools import Tool, execute, tool  # noqa: E402

console = Console()
if not console.is_terminal:
    console.width = 150

TARGET_MS = 60.0


def echo(value: int) -> int:
    """Returns its argument: a call that does nothing, so what is timed is the sandbox."""
    return value


def _tools() -> tuple[Tool, Tool]:
    """`echo` sandboxed and in-process, taken from `benchmarks.sandbox` (run as a script, this file is `__main__`)."""
    function = importlib.import_module("benchmarks.sandbox").echo
    return tool(sandboxed=True, timeout_s=30)(function), tool(name="echo_in_process")(function)


async def _call(chosen: Tool, value: int) -> None:
    observation = await execute(chosen, {"value": value}, idempotency_key="bench")
    if not observation.ok or observation.output != value:
        raise RuntimeError(f"{chosen.name} failed: {observation}")


async def _timed_calls(chosen: Tool, calls: int) -> list[float]:
    samples = []
    for value in range(calls):
        started = time.perf_counter()
        await _call(chosen, value)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _timed_processes(command: list[str], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _first_call(chosen: Tool) -> float:
    sandbox._shutdown()  # the next call starts a new template and imports the tool's module
    started = time.perf_counter()
    await _call(chosen, 0)
    return (time.perf_counter() - started) * 1000


def one_round(calls: int, processes: int) -> dict[str, float]:
    """The median of each measurement in one round; the kinds take turns, so noise hits them alike."""
    sandboxed, in_process = _tools()
    first = asyncio.run(_first_call(sandboxed))
    asyncio.run(_timed_calls(sandboxed, calls))  # warm: the template's caches, the worker thread
    sandboxed_ms = asyncio.run(_timed_calls(sandboxed, calls))
    in_process_ms = asyncio.run(_timed_calls(in_process, calls))
    floor_ms = _timed_processes([sys.executable, "-I", "-c", "pass"], processes)
    fresh_import = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import benchmarks.sandbox"
    fresh_ms = _timed_processes([sys.executable, "-I", "-c", fresh_import], processes)
    figures = {
        "sandboxed_ms": statistics.median(sandboxed_ms),
        "in_process_ms": statistics.median(in_process_ms),
        "floor_ms": statistics.median(floor_ms),
        "fresh_import_ms": statistics.median(fresh_ms),
        "first_call_ms": first,
    }
    figures["overhead_ms"] = figures["sandboxed_ms"] - figures["in_process_ms"]
    return figures


ROWS = (
    ("sandboxed_ms", "sandboxed call (template running)"),
    ("in_process_ms", "in-process call"),
    ("overhead_ms", "overhead: sandboxed - in-process"),
    ("floor_ms", "floor: python -I -c pass"),
    ("fresh_import_ms", "fresh interpreter importing the tool"),
    ("first_call_ms", "first call (starts the template)"),
)


def report(rounds: list[dict[str, float]]) -> tuple[Table, dict[str, float]]:
    medians = {key: statistics.median(r[key] for r in rounds) for key, _ in ROWS}
    table = Table("measurement", "median ms", "vs floor")
    for key, title in ROWS:
        table.add_row(title, f"{medians[key]:.2f}", f"{medians[key] / medians['floor_ms']:.2f}x")
    return table, medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 30 calls: a smoke run")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each kind per round (default 200)")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    calls = 30 if args.quick else args.calls
    processes = max(5, calls // 10)
    rounds = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("rounds", total=repeat)
        for _ in range(repeat):
            rounds.append(one_round(calls, processes))
            progress.advance(task)
    table, medians = report(rounds)
    console.print(table)
    met = "met" if medians["overhead_ms"] < TARGET_MS else "[bold]missed[/bold]"
    console.print(
        f"Medians of {repeat} round(s) of {calls} calls ({processes} processes for the floor and the fresh "
        f"interpreter). Target: overhead under {TARGET_MS:g} ms: {met}. A sandboxed call costs "
        f"{medians['sandboxed_ms'] / medians['floor_ms']:.2f}x a bare interpreter start and "
        f"{medians['fresh_import_ms'] / medians['sandboxed_ms']:.0f}x less than a fresh interpreter importing the tool."
    )
    if args.json:
        args.json.write_text(json.dumps({"repeat": repeat, "calls": calls, "medians": medians, "rounds": rounds}))
    return 0 if medians["overhead_ms"] < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
