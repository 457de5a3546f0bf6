"""The forensics benchmark: time travel with and without snapshots, and bisect against a linear scan.

- `load_at_version` at random versions of a 10,000- and a 100,000-event stream, folding from
  scratch (no snapshots) and from the nearest snapshot (StreamSummary, a snapshot every 500
  events; the snapshots are taken by one full load first, timed separately).
- bisect over a 1,000,000-event journal of agent runs (RunStarted, then steps of ModelCalled,
  ToolProposed, ToolApproved, ToolExecuted, ObservationCaptured, then RunCompleted), where
  one `price_lookup` result deep in the journal is out of bounds. The invariant folds only
  ToolExecuted events (it declares `types`), so the journal reads one event in five. The
  linear scan is what you would write without bisect: fold and evaluate after every
  ToolExecuted event until the first failure.

    .venv/bin/python benchmarks/forensics.py            # the full sizes (generating takes minutes)
    .venv/bin/python benchmarks/forensics.py --quick    # small sizes, seconds
    .venv/bin/python benchmarks/forensics.py --quick --url 'postgresql://postgres@127.0.0.1/test?schema=bench'
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentjournal import Journal, NewEvent, RecordedEvent
from agentjournal.forensics import Fails, Holds, Invariant, bisect_journal
from agentjournal.model import Repository, StreamSummary

console = Console()
if not console.is_terminal:
    console.width = 150

BATCH = 1000
STEP_TYPES = ("ModelCalled", "ToolProposed", "ToolApproved", "ToolExecuted", "ObservationCaptured")
TOOLS = ("price_lookup", "search", "read_file")
BAD_PRICE = -1.0


@dataclass(frozen=True)
class Sizes:
    streams: tuple[int, ...]
    journal: int
    probes: int


FULL = Sizes(streams=(10_000, 100_000), journal=1_000_000, probes=20)
QUICK = Sizes(streams=(1_000, 5_000), journal=20_000, probes=5)


class PricesInBounds(Invariant[list[int]]):
    """Cumulative: no price_lookup result so far was out of bounds (folds every ToolExecuted event)."""

    name: ClassVar[str] = "prices-in-bounds"
    description: ClassVar[str] = "Every price_lookup result has a price between 0 and 10,000."
    types: ClassVar[tuple[str, ...] | None] = ("ToolExecuted",)

    def initial(self) -> list[int]:
        return [0, 0]  # [price_lookup results seen, out of bounds]

    def fold(self, state: list[int], event: RecordedEvent) -> list[int]:
        data = event.data
        if data.get("tool") == "price_lookup":
            state[0] += 1
            if not 0 <= data["result"]["price"] <= 10_000:
                state[1] += 1
        return state

    def copy(self, state: list[int]) -> list[int]:
        return list(state)

    def evaluate(self, state: list[int]) -> Holds | Fails:
        return Fails(f"{state[1]} price(s) out of bounds") if state[1] else Holds()


class LatestPriceInBounds(Invariant[list[float]]):
    """The seed's "a tool started returning bad data": the tool's latest answer is within bounds.

    A rule about recent behaviour (`window = 1`): bisect rebuilds each probe from a short
    backward read, so its cost does not grow with the journal.
    """

    name: ClassVar[str] = "latest-price-in-bounds"
    description: ClassVar[str] = "price_lookup's latest price is between 0 and 10,000."
    types: ClassVar[tuple[str, ...] | None] = ("ToolExecuted",)
    window: ClassVar[int | None] = 1

    def relevant(self, event: RecordedEvent) -> bool:
        return bool(event.data.get("tool") == "price_lookup")

    def initial(self) -> list[float]:
        return []

    def fold(self, state: list[float], event: RecordedEvent) -> list[float]:
        return [*state, event.data["result"]["price"]]

    def evaluate(self, state: list[float]) -> Holds | Fails:
        return Fails(f"price {state[-1]} is out of bounds") if state and not 0 <= state[-1] <= 10_000 else Holds()


def _step(rnd: random.Random, kind: str, step: int, bad: bool) -> NewEvent:
    tool = TOOLS[step % len(TOOLS)]
    if kind == "ToolExecuted":
        price = BAD_PRICE if bad else round(rnd.uniform(1, 500), 2)
        result: dict[str, Any] = {"price": price} if tool == "price_lookup" else {"hits": rnd.randint(0, 9)}
        return NewEvent(kind, {"tool": tool, "result": result, "latency_ms": rnd.randint(5, 900)})
    if kind == "ModelCalled":
        return NewEvent(kind, {"model": "scripted", "input_tokens": rnd.randint(200, 4000), "output_tokens": 120})
    if kind == "ObservationCaptured":
        return NewEvent(kind, {"tool": tool, "summary": f"step {step} observed"})
    return NewEvent(kind, {"tool": tool, "step": step})


def run_events(rnd: random.Random, run: int, count: int, bad_from: int | None) -> list[NewEvent]:
    """One agent run of `count` events; from index `bad_from` on, price_lookup answers out of bounds."""
    events = [NewEvent("RunStarted", {"run_id": f"{run:07d}", "agent": "pricing", "input": "quote 3 items"})]
    step = 0
    while len(events) < count - 1:
        for kind in STEP_TYPES:
            if len(events) == count - 1:
                break
            events.append(_step(rnd, kind, step, bad_from is not None and len(events) >= bad_from))
        step += 1
    events.append(NewEvent("RunCompleted", {"steps": step}))
    return events


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def fill_journal(journal: Journal, total: int, plant_at: int, seed: int = 7) -> None:
    """`total` events in runs of BATCH events, one append each; the price tool goes bad at `plant_at`."""
    rnd = random.Random(seed)
    with _progress() as bar:
        task = bar.add_task(f"generating a {total:,}-event journal", total=total)
        for run in range(total // BATCH):
            start = run * BATCH
            bad_from = max(plant_at - start, 0) if plant_at < start + BATCH else None
            journal.append(f"run-{run:07d}", run_events(rnd, run, BATCH, bad_from), expected_version=0)
            bar.advance(task, BATCH)


def fill_stream(journal: Journal, stream: str, total: int) -> None:
    rnd = random.Random(11)
    with _progress() as bar:
        task = bar.add_task(f"generating a {total:,}-event stream", total=total)
        for start in range(0, total, BATCH):
            journal.append(stream, run_events(rnd, start, BATCH, None))
            bar.advance(task, BATCH)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _timed(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def bench_load_at_version(journal: Journal, sizes: Sizes, table: Table) -> dict[str, float]:
    figures: dict[str, float] = {}
    rnd = random.Random(3)
    for size in sizes.streams:
        stream = f"long-{size}"
        if journal.stream_version(stream) == 0:
            fill_stream(journal, stream, size)
        versions = [rnd.randint(1, size) for _ in range(sizes.probes)]
        scratch = Repository(journal, StreamSummary, snapshots=False)
        cold = [_timed(partial(scratch.load_at_version, stream, version)) for version in versions[:5]]
        snapshotted = Repository(journal, StreamSummary)
        first = _timed(partial(snapshotted.load, stream))  # folds everything once, storing a snapshot every 500
        warm = [_timed(partial(snapshotted.load_at_version, stream, version)) for version in versions]
        table.add_row(
            f"load_at_version, {size:,}-event stream",
            f"no snapshots: median {_ms(statistics.median(cold))} ms, max {_ms(max(cold))} ms",
            f"snapshots: median {_ms(statistics.median(warm))} ms, max {_ms(max(warm))} ms "
            f"(first full load {_ms(first)} ms)",
        )
        figures[f"load_{size}_scratch_max_ms"] = max(cold) * 1000
        figures[f"load_{size}_snapshot_max_ms"] = max(warm) * 1000
    return figures


def linear_scan(journal: Journal, invariant: PricesInBounds) -> tuple[int | None, int]:
    """Fold and evaluate after every ToolExecuted event until the first failure: (position, evaluations)."""
    state = invariant.initial()
    evaluations = 0
    for event in journal.iter_all(types=invariant.types, batch_size=10_000):
        state = invariant.fold(state, event)
        evaluations += 1
        if not isinstance(invariant.evaluate(state), Holds):
            return event.position, evaluations
    return None, evaluations


def bench_bisect(journal: Journal, sizes: Sizes, table: Table) -> dict[str, float]:
    began = time.perf_counter()
    position, scanned = linear_scan(journal, PricesInBounds())
    scan_seconds = time.perf_counter() - began
    figures: dict[str, float] = {"scan_s": scan_seconds, "scan_evaluations": scanned}
    for rule in (LatestPriceInBounds(), PricesInBounds()):
        began = time.perf_counter()
        result = bisect_journal(journal, rule)
        seconds = time.perf_counter() - began
        if result.culprit is None or result.culprit.position != position:
            raise SystemExit(f"{rule.name}: bisect found {result.culprit!r}, the linear scan position {position}")
        table.add_row(
            f"bisect {rule.name}, {sizes.journal:,}-event journal (culprit at position {position:,})",
            f"linear scan: {scanned:,} evaluations, {scan_seconds:.2f} s",
            f"bisect: {result.evaluations} evaluations, {seconds:.2f} s",
        )
        figures[f"{rule.name}_evaluations"] = result.evaluations
        figures[f"{rule.name}_s"] = seconds
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, for the smoke test)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="reuse this SQLite file (generated on first use), e.g. /tmp/forensics.db")
    where.add_argument("--url", help="another journal, e.g. postgresql://…?schema=bench (generated when empty)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.db) if args.db else Path(folder) / "forensics.db"
        # synchronous=OFF only speeds up generating the data; reads are what is measured.
        journal = Journal.open(args.url or f"sqlite:///{path}?synchronous=OFF", create=True)
        try:
            if journal.head_position() == 0:
                fill_journal(journal, sizes.journal, plant_at=int(sizes.journal * 0.61))
            title = f"forensics benchmark ({journal.backend_name}{', quick' if args.quick else ''})"
            table = Table(title=title)
            table.add_column("what")
            table.add_column("without")
            table.add_column("with")
            figures = bench_bisect(journal, sizes, table)
            figures.update(bench_load_at_version(journal, sizes, table))
        finally:
            journal.close()
    console.print(table)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
