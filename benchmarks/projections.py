"""The projections benchmark: rebuild throughput and end-to-end lag, on SQLite, PostgreSQL and MariaDB.

- rebuild: the runs projection replays a journal of synthetic agent runs (about 14 events
  per run, seed 001/002's support agent) from position 0, in batches of 5,000 events, each
  batch and its checkpoint in one transaction; events/s over the whole journal.
- lag: a subscriber follows the journal live (LISTEN/NOTIFY on PostgreSQL, back-off polling
  elsewhere) while a steady load appends one event at a time; the lag of an event is the
  time from its `recorded_at` (stamped just before its append commits) until the runs read
  model holding it has committed. p50 and p95 in milliseconds.

Each backend gets a fresh throwaway database (a temp file, a PostgreSQL schema, a MariaDB
database). The journal is filled through the public append API, which takes a few minutes
for 1,000,000 events; only the rebuild itself is timed.

    .venv/bin/python benchmarks/projections.py                  # 1,000,000 events, every backend
    .venv/bin/python benchmarks/projections.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentjournal.journal import Journal, RecordedEvent
from agentjournal.projections import ProjectionRunner, RunsProjection, Tx
from agentjournal.projections.metrics import percentile
from agentjournal.projections.waiting import waiter_for
from agentjournal.testing import databases
from agentjournal.testing.synthetic import append_runs, copy_of, synthetic_runs

console = Console()
if not console.is_terminal:
    console.width = 150

BACKENDS = ("sqlite", "postgres", "mysql")
TARGETS = {"sqlite": 50_000, "postgres": 20_000}


@dataclass(frozen=True)
class Sizes:
    events: int
    lag_seconds: float
    lag_rate: float
    """appends per second during the lag measurement"""


FULL = Sizes(events=1_000_000, lag_seconds=20.0, lag_rate=200.0)
QUICK = Sizes(events=20_000, lag_seconds=3.0, lag_rate=100.0)


@contextmanager
def fresh_journal(backend: str, folder: Path) -> Iterator[Journal]:
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        with Journal.open(url, create=True) as journal:
            yield journal
        return
    reason = databases.unreachable("PostgreSQL" if backend == "postgres" else "MariaDB", _server_url(backend))
    if reason:
        raise SystemExit(f"cannot benchmark {backend}: {reason}")
    throwaway = databases.postgres_schema() if backend == "postgres" else databases.mysql_database()
    with throwaway as url, Journal.open(url, create=True) as journal:
        yield journal


def _server_url(backend: str) -> str:
    return databases.POSTGRES_URL if backend == "postgres" else databases.MYSQL_URL


def fill(journal: Journal, events: int, label: str) -> int:
    """Append synthetic runs until the journal holds at least `events` events."""
    stored = 0
    batch = 500
    with _progress() as progress:
        task = progress.add_task(f"{label}: appending runs", total=events)
        first = 0
        while stored < events:
            stored += append_runs(journal, synthetic_runs(batch, seed=1, first=first))
            first += batch
            progress.update(task, completed=min(stored, events))
    return journal.head_position()


def rebuild(journal: Journal, label: str) -> float:
    """events/s of a full rebuild of the runs projection."""
    runner = ProjectionRunner(journal, RunsProjection(), batch_size=5000)
    head = journal.head_position()
    with _progress() as progress:
        task = progress.add_task(f"{label}: rebuilding runs", total=head)
        began = time.perf_counter()
        moved = runner.rebuild(lambda position: progress.update(task, completed=position))
        elapsed = time.perf_counter() - began
    runs = journal.query("SELECT count(*) FROM aj_rm_runs")[0][0]
    if moved != head or runs == 0:
        raise SystemExit(f"{label}: the rebuild applied {moved} of {head} events ({runs} runs); refusing to report")
    return head / elapsed


class LagProbe(RunsProjection):
    """The runs projection, noting the events of the batch being applied."""

    name: ClassVar[str] = "runs_lag_probe"

    def __init__(self) -> None:
        self.batch: list[float] = []

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        super().apply(tx, events)
        self.batch.extend(event.recorded_at.timestamp() for event in events)


def lag(journal: Journal, sizes: Sizes, label: str) -> tuple[float, float, int]:
    """p50 and p95 lag (ms) from append to committed read model, and how many events were measured."""
    probe = LagProbe()
    runner = ProjectionRunner(journal, probe, batch_size=1000)
    runner.catch_up()
    probe.batch.clear()  # the journal's history is not part of the live load
    lags: list[float] = []
    stop = threading.Event()

    def follow() -> None:
        waiter = waiter_for(journal)
        try:
            while not stop.is_set():
                moved = runner.step()
                committed = time.time()
                lags.extend((committed - recorded) * 1000 for recorded in probe.batch)
                probe.batch.clear()
                waiter.woke(moved > 0)
                if not moved:
                    waiter.wait(0.2)
        finally:
            waiter.close()

    follower = threading.Thread(target=follow, name="follower")
    follower.start()
    runs = synthetic_runs(int(sizes.lag_rate * sizes.lag_seconds) + 1, seed=99)
    pending = iter(())  # events of the run being appended
    stream = ""
    interval = 1 / sizes.lag_rate
    began = time.perf_counter()
    appended = 0
    try:
        with _progress() as progress:
            task = progress.add_task(f"{label}: steady appends", total=int(sizes.lag_rate * sizes.lag_seconds))
            while appended < sizes.lag_rate * sizes.lag_seconds:
                event = next(pending, None)
                if event is None:
                    run = next(runs)
                    stream, pending = run.stream_id, iter(run.events)
                    continue
                journal.append(stream, [copy_of(event)])
                appended += 1
                progress.update(task, completed=appended)
                time.sleep(max(0.0, began + appended * interval - time.perf_counter()))
        deadline = time.monotonic() + 10
        while runner.position() < journal.head_position() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        follower.join()
    if len(lags) < appended:
        raise SystemExit(f"{label}: the follower saw {len(lags)} of {appended} events; refusing to report")
    return percentile(lags, 50) or 0.0, percentile(lags, 95) or 0.0, len(lags)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (20,000 events)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgres,mysql")
    parser.add_argument("--events", type=int, help="journal size for the rebuild (default 1,000,000)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    backends = [name.strip() for name in options.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        parser.error(f"unknown backend(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}")
    sizes = QUICK if options.quick else FULL
    if options.events:
        if options.events < 1000:
            parser.error(f"--events must be at least 1000, got {options.events}")
        sizes = Sizes(options.events, sizes.lag_seconds, sizes.lag_rate)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            with fresh_journal(backend, Path(folder)) as journal:
                events = fill(journal, sizes.events, backend)
                eps = rebuild(journal, backend)
                p50, p95, measured = lag(journal, sizes, backend)
            figures[backend] = {
                "events": events,
                "rebuild_eps": eps,
                "lag_p50_ms": p50,
                "lag_p95_ms": p95,
                "lag_events": measured,
            }
            console.print(
                f"{backend}: {events:,} events rebuilt at {eps:,.0f} events/s; lag p50 {p50:.1f} ms, p95 {p95:.1f} ms"
            )
    table = Table(title=f"projections benchmark ({'quick' if options.quick else 'full'})")
    for header in ("backend", "events", "rebuild (events/s)", "target", "lag p50 (ms)", "lag p95 (ms)", "wake-up"):
        table.add_column(header, justify="left" if header in ("backend", "wake-up") else "right")
    for backend, values in figures.items():
        table.add_row(
            backend,
            f"{values['events']:,.0f}",
            f"{values['rebuild_eps']:,.0f}",
            f"{TARGETS[backend]:,}" if backend in TARGETS else "",
            f"{values['lag_p50_ms']:.1f}",
            f"{values['lag_p95_ms']:.1f}",
            "LISTEN/NOTIFY" if backend == "postgres" else "polling with back-off",
        )
    console.print(table)
    if options.json:
        options.json.write_bytes(
            orjson.dumps({"sizes": sizes.__dict__, "figures": figures}, option=orjson.OPT_INDENT_2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
