"""The messaging benchmark: the outbox from the producer's append to the receiver's commit.

Each message is one `append_with_outbox` (an order and its message, one transaction), delivered
by a relay (run as the worker runs it: a step, then a wait on the journal's wake-up) to a
`Receiver` that loads the receiving aggregate, drops repeats and commits the effect. Two
transports, on SQLite (the default: WAL, synchronous=NORMAL) and on PostgreSQL:

- in-process: the relay calls the receiver (`HandlerTransport`);
- NATS: the relay publishes to JetStream (`NatsTransport`, waiting for each PubAck) and a
  `NatsConsumer` on another thread receives, commits and then acknowledges.

The floor is plain NATS JetStream in the same run: publish each message and wait for its PubAck,
a pull consumer acknowledging each: what moving the messages costs with no journal at all.

Two figures per path, medians over `--repeat` rounds: throughput (messages/s, `--messages`
appended as fast as one producer can, until the last is received) and latency p50/p95 (from the
append to the receiver's commit) with the producer paced at `--rate` messages/s. Targets: at
least 0.5x the floor's throughput; p95 under 50 ms at 500 messages/s.

    .venv/bin/python benchmarks/messaging.py
    .venv/bin/python benchmarks/messaging.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.messaging import (
    Dispatch,
    HandlerTransport,
    Message,
    Received,
    Receiver,
    Receiving,
    Relay,
    append_with_outbox,
)
from agentjournal.messaging.nats import NatsConsumer, NatsTransport
from agentjournal.model import Repository
from agentjournal.projections.waiting import waiter_for
from agentjournal.testing import databases

console = Console()
if not console.is_terminal:
    console.width = 150

NATS_URL = "nats://127.0.0.1:4222"
DOORS = 50
"""Receiving aggregates the messages are spread over (each keeps its own dedupe ring)."""
THROUGHPUT_TARGET = 0.5
P95_TARGET_MS = 50.0


class Door(Receiving):
    snapshot_every = 100
    rings: int = 0

    def when(self, event: RecordedEvent) -> None:
        if event.type == "BellRang":
            self.rings += 1


def ring(door: Door, dispatch: Dispatch) -> None:
    door.record(NewEvent("BellRang", {"n": dispatch.payload["n"]}))


class Timings:
    """Receiver-side clock: when each message was committed, and its latency from the append."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.latencies: list[float] = []
        self.last = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def received(self, sent_at: float) -> None:
        now = time.time()
        with self._lock:
            self.latencies.append(now - sent_at)
            self.last = now
            if len(self.latencies) >= self.expected:
                self.done.set()


def timed_receiver(journal: Journal, timings: Timings) -> Callable[[Dispatch], None]:
    receive = Receiver(Repository(journal, Door), ring)

    def handle(dispatch: Dispatch) -> None:
        if receive(dispatch) is Received.HANDLED:
            timings.received(dispatch.payload["t"])

    return handle


def produce(journal: Journal, count: int, rate: float | None, first: int) -> float:
    """Append `count` orders with their message; paced at `rate`/s when given. Returns the start time."""
    started = time.time()
    for index in range(count):
        if rate:
            delay = started + index / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        n = first + index
        append_with_outbox(
            journal,
            f"order-{n}",
            [NewEvent("OrderPlaced", {"n": n})],
            expected_version=0,
            messages=[Message("doorbell", "RingBell", {"stream": f"door-{n % DOORS}", "n": n, "t": time.time()})],
        )
    return started


def relay_loop(url: str, relay: Relay, stop: threading.Event) -> None:
    """The relay as the worker runs it: a step, and when idle a wait on the journal's wake-up."""
    with Journal.open(url) as journal:
        runner = relay.runner(journal)
        waiter = waiter_for(journal)
        try:
            while not stop.is_set():
                moved = runner.step()
                waiter.woke(moved > 0)
                if not moved:
                    waiter.wait(0.05)
        finally:
            waiter.close()


@contextmanager
def pipeline(url: str, transport: str, timings: Timings) -> Iterator[None]:
    """The relay (and for NATS the consumer) running on their own threads, with their own journals."""
    stop = threading.Event()
    threads = []
    receiving = Journal.open(url)
    closers: list[Callable[[], None]] = [receiving.close]
    if transport == "in-process":
        relay = Relay("bench", HandlerTransport({"doorbell": timed_receiver(receiving, timings)}))
    else:
        stream = f"AJBENCH{uuid.uuid4().hex[:8].upper()}"
        prefix = f"{stream.lower()}."
        nats = NatsTransport(NATS_URL, stream=stream, subject_prefix=prefix)
        closers.insert(0, nats.close)
        relay = Relay("bench", nats)
        consumer = NatsConsumer(
            NATS_URL,
            stream=stream,
            durable="bench",
            receive=timed_receiver(receiving, timings),
            subjects=[f"{prefix}>"],
            fetch_timeout=0.05,
            batch=64,
        )
        closers.insert(0, consumer.close)
        closers.append(lambda: asyncio.run(_delete_stream(stream)))
        threads.append(threading.Thread(target=_consume, args=(consumer, stop), daemon=True))
    threads.append(threading.Thread(target=relay_loop, args=(url, relay, stop), daemon=True))
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for close in closers:
            close()


def _consume(consumer: NatsConsumer, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            consumer.step()
        except Exception:  # the stream is created by the relay's first publish
            time.sleep(0.01)


async def _delete_stream(stream: str) -> None:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def measure_outbox(url: str, transport: str, count: int, rate: float | None) -> dict[str, float]:
    timings = Timings(count)
    with Journal.open(url, create=True) as journal, pipeline(url, transport, timings):
        started = produce(journal, count, rate, first=journal.head_position())
        if not timings.done.wait(120):
            raise SystemExit(f"{transport} on {url}: {len(timings.latencies)} of {count} received within 120 s")
    return _figures(timings, started, count)


def measure_floor(count: int, rate: float | None) -> dict[str, float]:
    return asyncio.run(_floor(count, rate))


async def _floor(count: int, rate: float | None) -> dict[str, float]:
    import nats

    stream = f"AJFLOOR{uuid.uuid4().hex[:8].upper()}"
    subject = f"{stream.lower()}.doorbell"
    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"], duplicate_window=120.0)
    timings = Timings(count)
    subscription = await js.pull_subscribe(subject, durable="floor")

    async def consume() -> None:
        while len(timings.latencies) < count:
            try:
                messages = await subscription.fetch(64, timeout=0.05)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                timings.received(orjson.loads(message.data)["t"])
                await message.ack_sync()

    consumer = asyncio.create_task(consume())
    started = time.time()
    try:
        for index in range(count):
            if rate:
                delay = started + index / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = orjson.dumps({"n": index, "t": time.time()})
            await js.publish(subject, body, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await asyncio.wait_for(consumer, 120)
    finally:
        await js.delete_stream(stream)
        await client.close()
    return _figures(timings, started, count)


def _figures(timings: Timings, started: float, count: int) -> dict[str, float]:
    latencies = sorted(timings.latencies)
    return {
        "throughput": count / (timings.last - started),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)],
    }


def one_round(count: int, rate: float, backends: dict[str, str]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    floor_fast, floor_paced = measure_floor(count, None), measure_floor(count, rate)
    figures["floor"] = {"throughput": floor_fast["throughput"], **_latency(floor_paced)}
    for backend, make_url in backends.items():
        for transport in ("in-process", "nats"):
            with _fresh(make_url) as url:
                fast = measure_outbox(url, transport, count, None)
            with _fresh(make_url) as url:
                paced = measure_outbox(url, transport, count, rate)
            figures[f"{transport}, {backend}"] = {"throughput": fast["throughput"], **_latency(paced)}
    return figures


def _latency(figures: dict[str, float]) -> dict[str, float]:
    return {"p50_ms": figures["p50_ms"], "p95_ms": figures["p95_ms"]}


@contextmanager
def _fresh(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
    else:
        with databases.postgres_schema() as url:
            yield url


def report(rounds: list[dict[str, dict[str, float]]]) -> tuple[Table, dict[str, dict[str, float]]]:
    medians = {
        path: {key: statistics.median(r[path][key] for r in rounds) for key in rounds[0][path]} for path in rounds[0]
    }
    floor = medians["floor"]["throughput"]
    table = Table("path", "messages/s", "vs floor", "p50 ms", "p95 ms")
    for path, figures in medians.items():
        table.add_row(
            path,
            f"{figures['throughput']:,.0f}",
            f"{figures['throughput'] / floor:.2f}x",
            f"{figures['p50_ms']:.1f}",
            f"{figures['p95_ms']:.1f}",
        )
    return table, medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 300 messages: a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--messages", type=int, default=2000, help="messages per measurement (default 2000)")
    parser.add_argument("--rate", type=float, default=500.0, help="paced rate for the latency figures (default 500)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    count = 300 if args.quick else args.messages
    backends = {"SQLite": "sqlite"} if args.no_postgres else {"SQLite": "sqlite", "PostgreSQL": "postgres"}
    rounds = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("rounds", total=repeat)
        for _ in range(repeat):
            rounds.append(one_round(count, args.rate, backends))
            progress.advance(task)
    table, medians = report(rounds)
    console.print(table)
    floor = medians["floor"]["throughput"]
    verdicts = []
    met_all = True
    for path, figures in medians.items():
        if path == "floor":
            continue
        ratio = figures["throughput"] / floor
        met = ratio >= THROUGHPUT_TARGET and figures["p95_ms"] < P95_TARGET_MS
        met_all &= met
        verdicts.append(f"{path}: {ratio:.2f}x, p95 {figures['p95_ms']:.1f} ms ({'met' if met else 'missed'})")
    console.print(
        f"Medians of {repeat} round(s) of {count} messages; latency at {args.rate:g} messages/s. Targets: at least "
        f"{THROUGHPUT_TARGET}x the floor's throughput and p95 under {P95_TARGET_MS:g} ms. " + "; ".join(verdicts)
    )
    if args.json:
        args.json.write_text(json.dumps({"repeat": repeat, "messages": count, "medians": medians, "rounds": rounds}))
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
