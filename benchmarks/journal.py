"""The journal benchmark: agentjournal against the `eventsourcing` library and the raw driver.

On SQLite, PostgreSQL and MariaDB, side by side in one run, each system on its own fresh
throwaway database, with the same ~1 KB payload:

- single-event appends, one transaction each (p50 and p99 µs);
- batch appends (events/s), one stream;
- reading that stream back (read and decode; ms);
- read_all over the whole journal (decoded envelopes/s).

The raw driver is the floor: it inserts prepared rows into a table of the journal's own shape
(`aj_events`, created by the journal's migration) and fetches rows without decoding them.
Within a run the systems take turns, append by append and batch by batch, so noise from
other work on the machine hits them alike; figures are medians over `--repeat` runs.

    .venv/bin/python benchmarks/journal.py            # make bench
    .venv/bin/python benchmarks/journal.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentjournal import Journal, NewEvent
from agentjournal.journal.backends.postgres import PostgresJournal
from agentjournal.journal.backends.sql import COLUMNS
from agentjournal.journal.envelope import canonical_json, format_time
from agentjournal.testing import databases

console = Console()
if not console.is_terminal:
    console.width = 150  # a table piped into a file keeps one line per row

BACKENDS = ("sqlite", "postgres", "mysql")
SYSTEMS = ("agentjournal", "eventsourcing", "raw")
SINGLE_STREAM = "bench-single"
BATCH_STREAM = "bench-batch"
EVENT_TYPE = "ToolExecuted"


@dataclass(frozen=True)
class Sizes:
    warmup: int  # untimed single appends first, so connection set-up is not measured
    singles: int
    batch_size: int
    batches: int  # batches * batch_size events on one stream, read back as "the 10,000-event stream"
    page: int  # read_all page size

    @property
    def stream_events(self) -> int:
        return self.batch_size * self.batches

    @property
    def all_events(self) -> int:
        return self.warmup + self.singles + self.stream_events


FULL = Sizes(warmup=20, singles=1000, batch_size=1000, batches=10, page=1000)
QUICK = Sizes(warmup=5, singles=50, batch_size=100, batches=5, page=100)


def make_payload() -> dict[str, Any]:
    """A tool call with its result, about 1 KB of canonical JSON, as an agent would record it."""
    payload: dict[str, Any] = {
        "tool": "search_orders",
        "call_id": "call_7f3a9c2e",
        "input": {"customer_id": "CUST-00042", "status": ["delivered", "shipped"], "limit": 5},
        "output": {
            "orders": [
                {"order_id": f"ORD-55{n:02d}", "amount": 89.99 + n, "currency": "EUR", "items": n + 1} for n in range(5)
            ]
        },
        "duration_ms": 182,
        "model": "scripted",
    }
    size = len(canonical_json(payload))
    payload["note"] = "x" * max(0, 1024 - size - len(',"note":""'))
    return payload


PAYLOAD = make_payload()
PAYLOAD_JSON = canonical_json(PAYLOAD).decode()
assert len(PAYLOAD_JSON) == 1024


# ----- the systems under test -------------------------------------------------------------


class Subject(ABC):
    """One system on one fresh database. Versions are 1-based; the harness times each call."""

    @abstractmethod
    def append_one(self, version: int) -> None: ...

    @abstractmethod
    def append_batch(self, index: int) -> None: ...

    @abstractmethod
    def read_stream(self) -> int:
        """Read and decode the batch stream; returns the number of events."""

    @abstractmethod
    def read_all(self) -> int:
        """Read and decode every event in global order, page by page; returns the count."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class AgentJournalSubject(Subject):
    def __init__(self, url: str, sizes: Sizes) -> None:
        self.journal = Journal.open(url, create=True)
        self.sizes = sizes

    def append_one(self, version: int) -> None:
        self.journal.append(SINGLE_STREAM, [NewEvent(EVENT_TYPE, PAYLOAD)], expected_version=version - 1)

    def append_batch(self, index: int) -> None:
        batch = [NewEvent(EVENT_TYPE, PAYLOAD) for _ in range(self.sizes.batch_size)]
        self.journal.append(BATCH_STREAM, batch, expected_version=index * self.sizes.batch_size)

    def read_stream(self) -> int:
        return sum(1 for event in self.journal.read_stream(BATCH_STREAM) if event.data)

    def read_all(self) -> int:
        return sum(1 for event in self.journal.iter_all(0, batch_size=self.sizes.page) if event.data)

    def close(self) -> None:
        self.journal.close()


class EventsourcingSubject(Subject):
    """The `eventsourcing` library's event store (mapper + recorder), as its applications use it."""

    def __init__(self, env: dict[str, str], sizes: Sizes) -> None:
        self.app: Any = Application(env={"IS_SNAPSHOTTING_ENABLED": "no", **env})
        self.sizes = sizes
        self.single_id = uuid.uuid4()
        self.batch_id = uuid.uuid4()

    def _event(self, originator_id: uuid.UUID, version: int) -> Any:
        return Happened(
            originator_id=originator_id,
            originator_version=version,
            timestamp=Happened.create_timestamp(),
            data=PAYLOAD,
        )

    def append_one(self, version: int) -> None:
        self.app.events.put([self._event(self.single_id, version)])

    def append_batch(self, index: int) -> None:
        first = index * self.sizes.batch_size + 1
        self.app.events.put([self._event(self.batch_id, first + n) for n in range(self.sizes.batch_size)])

    def read_stream(self) -> int:
        return sum(1 for event in self.app.events.get(self.batch_id) if event.data)

    def read_all(self) -> int:
        count, start = 0, 1
        while True:
            page = self.app.recorder.select_notifications(start, self.sizes.page)
            count += sum(1 for notification in page if self.app.mapper.to_domain_event(notification).data)
            if len(page) < self.sizes.page:
                return count
            start = page[-1].id + 1

    def close(self) -> None:
        self.app.close()


@dataclass(frozen=True)
class Happened(DomainEvent):
    """The library's domain event with the same payload (its metaclass makes it a frozen dataclass)."""

    data: dict[str, Any]


class RawSubject(Subject):
    """The floor: prepared rows inserted into the journal's own table shape by the bare driver."""

    def __init__(self, connection: Any, dialect: str, sizes: Sizes) -> None:
        self.conn = connection
        self.dialect = dialect
        self.sizes = sizes
        mark = "?" if dialect == "sqlite" else "%s"
        self.insert = f"INSERT INTO aj_events ({COLUMNS}) VALUES ({', '.join([mark] * 16)})"
        self.select_stream = f"SELECT {COLUMNS} FROM aj_events WHERE stream_id = {mark} ORDER BY version"
        self.select_page = f"SELECT {COLUMNS} FROM aj_events WHERE position > {mark} ORDER BY position LIMIT {mark}"
        self.position = 0
        self.singles = [self._row(SINGLE_STREAM, version) for version in range(1, sizes.warmup + sizes.singles + 1)]
        self.position = len(self.singles)
        self.batches = [
            [self._row(BATCH_STREAM, index * sizes.batch_size + n) for n in range(1, sizes.batch_size + 1)]
            for index in range(sizes.batches)
        ]

    def _row(self, stream_id: str, version: int) -> tuple[Any, ...]:
        self.position += 1
        now = datetime.now(UTC)
        recorded_at: Any = format_time(now) if self.dialect == "sqlite" else now
        if self.dialect == "mysql":
            recorded_at = now.replace(tzinfo=None)
        digest = hashlib.sha256(f"{stream_id}/{version}".encode()).hexdigest()
        return (
            self.position,
            str(uuid.uuid4()),
            stream_id,
            version,
            EVENT_TYPE,
            1,
            recorded_at,
            None,
            None,
            None,
            None,
            None,
            PAYLOAD_JSON,
            "{}",
            digest,
            digest,
        )

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def append_one(self, version: int) -> None:
        cursor = self.conn.cursor()
        try:
            cursor.execute(self.insert, self.singles[version - 1])  # autocommit: one transaction
        finally:
            cursor.close()

    def append_batch(self, index: int) -> None:
        rows = self.batches[index]
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN")
            self.conn.executemany(self.insert, rows)
            self.conn.execute("COMMIT")
        elif self.dialect == "postgres":
            with self.conn.transaction(), self.conn.cursor() as cursor:
                cursor.executemany(self.insert, rows)
        else:
            self.conn.begin()
            with self.conn.cursor() as cursor:
                cursor.executemany(self.insert, rows)
            self.conn.commit()

    def read_stream(self) -> int:
        return len(self._execute(self.select_stream, (BATCH_STREAM,)))

    def read_all(self) -> int:
        count, after = 0, 0
        while True:
            page = self._execute(self.select_page, (after, self.sizes.page))
            count += len(page)
            if len(page) < self.sizes.page:
                return count
            after = page[-1][0]

    def close(self) -> None:
        self.conn.close()


class RawCopySubject(RawSubject):
    """PostgreSQL's bulk path: the same rows through COPY, for batch appends only."""

    def append_batch(self, index: int) -> None:
        with (
            self.conn.transaction(),
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY aj_events ({COLUMNS}) FROM STDIN") as copy,
        ):
            for row in self.batches[index]:
                copy.write_row(row)


# ----- fresh databases ---------------------------------------------------------------------


@contextmanager
def open_subject(system: str, backend: str, sizes: Sizes, folder: Path) -> Iterator[Subject | None]:
    """`system` on a new, empty database of `backend` (None where the system has no such backend)."""
    with ExitStack() as stack:
        if backend == "sqlite":
            path = folder / f"{system}-{uuid.uuid4().hex[:8]}.db"
            url = f"sqlite:///{path}"
        elif backend == "postgres":
            url = stack.enter_context(databases.postgres_schema())
        else:
            url = stack.enter_context(databases.mysql_database())
        subject = _subject(system, backend, url, sizes)
        if subject is None:
            yield None
            return
        try:
            yield subject
        finally:
            subject.close()


def _subject(system: str, backend: str, url: str, sizes: Sizes) -> Subject | None:
    if system == "agentjournal":
        return AgentJournalSubject(url, sizes)
    if system == "eventsourcing":
        if backend == "sqlite":
            return EventsourcingSubject(
                {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": url.removeprefix("sqlite:///")}, sizes
            )
        if backend == "postgres":
            return EventsourcingSubject(_eventsourcing_postgres_env(url), sizes)
        return None  # the library has no MySQL persistence module
    # raw and raw-copy: the journal's migration creates the table, then the bare driver takes over
    with Journal.open(url, create=True) as journal:
        conninfo = journal.conninfo if isinstance(journal, PostgresJournal) else ""
    if backend == "sqlite":
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # what SQLiteJournal uses
    elif backend == "postgres":
        import psycopg
        from psycopg.types.string import TextLoader

        conn = psycopg.connect(conninfo, autocommit=True)
        for name in ("json", "uuid"):  # fetched as text, undecoded: the floor
            conn.adapters.register_loader(name, TextLoader)
    else:
        import pymysql

        parts = urlsplit(url)
        conn = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
            charset="utf8mb4",
            autocommit=True,
        )
    return (RawCopySubject if system == "raw-copy" else RawSubject)(conn, backend, sizes)


def _eventsourcing_postgres_env(url: str) -> dict[str, str]:
    import psycopg

    parts = urlsplit(url)
    schema = dict(parse_qsl(parts.query))["schema"]
    base = url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # the library expects it to exist
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_SCHEMA": schema,
    }


# ----- measuring ----------------------------------------------------------------------------


def measure(subjects: dict[str, Subject], sizes: Sizes, shift: int) -> dict[str, dict[str, float]]:
    """One run of every workload on every subject, interleaved: the systems take turns append by
    append and batch by batch, so a burst of noise on this shared machine hits them all alike.

    `shift` rotates who goes first. Timed with perf_counter, with the garbage collector off.
    """
    names = list(subjects)
    order = names[shift % len(names) :] + names[: shift % len(names)]
    appenders = [name for name in order if name != "raw-copy"]
    latencies: dict[str, list[float]] = {name: [] for name in appenders}
    batch_seconds = dict.fromkeys(order, 0.0)
    figures: dict[str, dict[str, float]] = {name: {} for name in order}
    gc.collect()
    gc.disable()
    try:
        for version in range(1, sizes.warmup + sizes.singles + 1):
            for name in appenders:
                start = time.perf_counter()
                subjects[name].append_one(version)
                latencies[name].append(time.perf_counter() - start)
        for index in range(sizes.batches):
            for name in order:
                start = time.perf_counter()
                subjects[name].append_batch(index)
                batch_seconds[name] += time.perf_counter() - start
        for name in appenders:
            start = time.perf_counter()
            read = subjects[name].read_stream()
            figures[name]["stream_ms"] = (time.perf_counter() - start) * 1e3
            assert read == sizes.stream_events, f"{name} read {read} events of the stream, not {sizes.stream_events}"
        for name in appenders:
            start = time.perf_counter()
            read = subjects[name].read_all()
            figures[name]["read_all_eps"] = read / (time.perf_counter() - start)
            assert read == sizes.all_events, f"{name}: read_all gave {read} events, not {sizes.all_events}"
    finally:
        gc.enable()
    for name in order:
        figures[name]["batch_eps"] = sizes.stream_events / batch_seconds[name]
    for name, values in latencies.items():
        ordered = sorted(values[sizes.warmup :])
        figures[name]["single_p50_us"] = _percentile(ordered, 50) * 1e6
        figures[name]["single_p99_us"] = _percentile(ordered, 99) * 1e6
    return figures


def _percentile(ordered: list[float], percent: float) -> float:
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


Results = dict[str, dict[str, dict[str, list[float]]]]
"""backend -> system -> figure -> one value per repetition."""


def run(backends: list[str], sizes: Sizes, repeat: int, on_step: Callable[[str], None] | None = None) -> Results:
    """Every system on every backend, `repeat` times, each time on fresh databases; `on_step` hears
    what runs next."""
    results: Results = {backend: {} for backend in backends}
    with tempfile.TemporaryDirectory(prefix="aj-bench-") as folder:
        for repetition in range(repeat):
            for backend in backends:
                if on_step:
                    on_step(f"{backend} · run {repetition + 1}/{repeat}")
                systems = [*SYSTEMS, "raw-copy"] if backend == "postgres" else list(SYSTEMS)
                with ExitStack() as stack:
                    subjects = {
                        system: subject
                        for system in systems
                        if (subject := stack.enter_context(open_subject(system, backend, sizes, Path(folder))))
                    }
                    figures = measure(subjects, sizes, shift=repetition)
                for system, values in figures.items():
                    for name, value in values.items():
                        results[backend].setdefault(system, {}).setdefault(name, []).append(value)
    return results


def profile(backend: str, sizes: Sizes, folder: Path, top: int = 8) -> list[Table]:
    """Where agentjournal's time goes: each workload once under cProfile, its busiest functions."""

    def singles(subject: Subject) -> None:
        for version in range(1, sizes.singles + 1):
            subject.append_one(version)

    def batches(subject: Subject) -> None:
        for index in range(sizes.batches):
            subject.append_batch(index)

    workloads: list[tuple[str, Callable[[Subject], object]]] = [
        ("single appends", singles),
        ("batch appends", batches),
        ("read the stream", lambda subject: subject.read_stream()),
        ("read_all", lambda subject: subject.read_all()),
    ]
    tables = []
    with open_subject("agentjournal", backend, sizes, folder) as subject:
        assert subject is not None
        for label, workload in workloads:
            profiler = cProfile.Profile()
            profiler.runcall(workload, subject)
            entries = profiler.getstats()  # own time is `inlinetime`, in seconds
            total = max(1e-9, sum(entry.inlinetime for entry in entries))
            table = Table(
                "function",
                "calls",
                "own time (ms)",
                "share",
                title=f"{backend} · {label} · {total * 1e3:,.0f} ms profiled",
            )
            for entry in sorted(entries, key=lambda entry: entry.inlinetime, reverse=True)[:top]:
                code = entry.code
                name = (
                    code
                    if isinstance(code, str)
                    else f"{code.co_name} ({Path(code.co_filename).name}:{code.co_firstlineno})"
                )
                table.add_row(
                    name, f"{entry.callcount:,}", f"{entry.inlinetime * 1e3:,.1f}", f"{entry.inlinetime / total:.0%}"
                )
            tables.append(table)
    return tables


# ----- reporting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: str
    label: str
    higher_is_better: bool
    targets: dict[str, float]  # backend -> the aj/raw target ratio
    floor: str = "raw"


ROWS = [
    Row("single_p50_us", "single append p50 (µs)", False, {"sqlite": 3.0, "postgres": 1.3, "mysql": 1.3}),
    Row("single_p99_us", "single append p99 (µs)", False, {}),
    Row("batch_eps", "batch append (events/s)", True, {"sqlite": 0.7, "postgres": 0.7, "mysql": 0.7}),
    Row("batch_eps", "batch append vs COPY (events/s)", True, {}, floor="raw-copy"),
    Row("stream_ms", "read 10k-event stream (ms)", False, {"sqlite": 2.5, "postgres": 2.5, "mysql": 2.5}),
    Row("read_all_eps", "read_all (events/s)", True, {"sqlite": 0.5, "postgres": 0.5, "mysql": 0.5}),
]


def medians(results: Results) -> dict[str, dict[str, dict[str, float]]]:
    return {
        backend: {
            system: {name: statistics.median(values) for name, values in figures.items()}
            for system, figures in by_system.items()
        }
        for backend, by_system in results.items()
    }


def report(results: Results, sizes: Sizes, repeat: int) -> tuple[Table, list[str]]:
    """The table of medians and ratios, and the targets that were missed."""
    middle = medians(results)
    table = Table(
        title=f"agentjournal vs eventsourcing vs raw driver · medians of {repeat} run(s) · "
        f"{sizes.singles} single appends, {sizes.batches} batches of {sizes.batch_size}, 1 KB payload",
        caption="ratios divide agentjournal's figure by the other's: for µs and ms lower is better, "
        "for events/s higher is better",
    )
    for header in (
        "backend",
        "workload",
        "agentjournal",
        "eventsourcing",
        "raw floor",
        "aj / raw",
        "aj / es",
        "target",
    ):
        table.add_column(header, justify="left" if header in ("backend", "workload", "target") else "right")
    missed = []
    for backend, by_system in middle.items():
        for row in ROWS:
            floor = by_system.get(row.floor, {}).get(row.figure)
            if floor is None:
                continue
            aj = by_system["agentjournal"][row.figure]
            es = None if row.floor == "raw-copy" else by_system.get("eventsourcing", {}).get(row.figure)
            vs_raw = aj / floor
            target = row.targets.get(backend)
            verdict = ""
            if target is not None:
                met = vs_raw >= target if row.higher_is_better else vs_raw <= target
                verdict = f"{'≥' if row.higher_is_better else '≤'} {target}x " + (
                    "[green]met[/green]" if met else "[red]missed[/red]"
                )
                if not met:
                    missed.append(
                        f"{backend}: {row.label}: aj/raw {vs_raw:.2f}x, target {verdict.split(' ')[0]} {target}x"
                    )
            table.add_row(
                backend,
                row.label,
                _number(aj),
                "n/a" if es is None else _number(es),
                _number(floor) + (" (COPY)" if row.floor == "raw-copy" else ""),
                f"{vs_raw:.2f}x",
                "n/a" if es is None else f"{aj / es:.2f}x",
                verdict,
            )
        table.add_section()
    return table, missed


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per system and backend; medians are reported")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgres,mysql")
    parser.add_argument("--json", type=Path, help="also write every figure of every run to this file")
    parser.add_argument("--profile", action="store_true", help="then profile agentjournal's workloads on each backend")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or args.repeat < 1:
        parser.error(f"unknown backend(s) {unknown}; choose from {BACKENDS}" if unknown else "--repeat must be >= 1")
    for backend, (name, url) in {
        "postgres": ("PostgreSQL", databases.POSTGRES_URL),
        "mysql": ("MariaDB", databases.MYSQL_URL),
    }.items():
        if backend in backends and (reason := databases.unreachable(name, url)):
            console.print(f"[red]error:[/red] {reason}", highlight=False)
            return 1
    sizes = QUICK if args.quick else FULL
    steps = args.repeat * len(backends)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=steps)
        started: list[str] = []

        def step(description: str) -> None:
            progress.update(task, description=description, completed=len(started))
            started.append(description)

        results = run(backends, sizes, args.repeat, on_step=step)
    table, missed = report(results, sizes, args.repeat)
    console.print(table)
    python = sys.version.split()[0]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    console.print(
        f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · python {python} · {os.cpu_count()} cores, "
        f"load average {load} · payload {len(PAYLOAD_JSON)} bytes"
    )
    for line in missed:
        console.print(f"[yellow]target missed[/yellow] {line}", highlight=False)
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="aj-profile-") as folder:
            for backend in backends:
                for table in profile(backend, sizes, Path(folder)):
                    console.print(table)
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {
                    "sizes": asdict(sizes),
                    "repeat": args.repeat,
                    "runs": results,
                    "medians": medians(results),
                    "missed": missed,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
