"""The projection runner: exactly once, poison events parked, fenced checkpoints, read-your-writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import ClassVar

import pytest

from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.messaging import LeaseLostError, LeaseRegistry
from agentjournal.projections import (
    ExternalProjection,
    Projection,
    ProjectionError,
    ProjectionRunner,
    RunsProjection,
    Tx,
    Worker,
    dead_letters,
    projection_status,
    wait_for,
)
from agentjournal.testing.synthetic import append_runs, synthetic_runs

from .projection_helpers import NOW, record, refund_script, store


def _runs_table(journal: Journal) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in journal.query(
            "SELECT run_id, status, steps, tool_calls, input_tokens, cost_usd, last_position FROM aj_rm_runs "
            "ORDER BY run_id"
        )
    ]


def test_every_event_is_applied_once_whatever_the_batch_size(journal: Journal) -> None:
    append_runs(journal, synthetic_runs(40, seed=3))
    small = ProjectionRunner(journal, RunsProjection(), batch_size=7)
    assert small.catch_up() == journal.head_position()
    by_small_batches = _runs_table(journal)
    assert small.rebuild() == journal.head_position()
    ProjectionRunner(journal, RunsProjection(), batch_size=5000).rebuild()
    assert _runs_table(journal) == by_small_batches
    # steps of each run = the events of its stream: nothing skipped, nothing applied twice
    for run_id, _, steps, *_ in by_small_batches:
        assert steps == journal.stream_version(f"run-{run_id}")
    assert small.step() == 0  # caught up: nothing to do, the checkpoint stays


def test_live_appends_are_picked_up_and_the_checkpoint_never_goes_back(journal: Journal) -> None:
    runner = ProjectionRunner(journal, RunsProjection(), batch_size=50)
    positions = [runner.position()]
    for seed in range(3):
        append_runs(journal, synthetic_runs(5, seed=seed))
        runner.catch_up(progress=positions.append)
    assert positions == sorted(positions)
    assert positions[-1] == journal.head_position()
    assert journal.query("SELECT count(*) FROM aj_rm_runs")[0][0] == 15


class Flaky(Projection):
    """Fails on events of type Boom always, and on the first attempt at Glitch (a transient error)."""

    name: ClassVar[str] = "flaky"
    tables: ClassVar[tuple[str, ...]] = ()
    attempts: ClassVar[dict[str, int]] = {}

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            seen = self.attempts[event.event_id] = self.attempts.get(event.event_id, 0) + 1
            if event.type == "Boom" or (event.type == "Glitch" and seen == 1):
                raise ValueError(f"cannot apply {event.type} {event.data}")
            tx.execute(
                "INSERT INTO aj_projection_dead_letters (projection, position, event_id, stream_id, event_type, "
                "error, attempts, parked_at) VALUES ('applied', ?, ?, ?, ?, '', 0, 0)",
                (event.position, event.event_id, event.stream_id, event.type),
            )


def test_a_poison_event_is_retried_then_parked_and_the_rest_applied(journal: Journal) -> None:
    journal.append("s", [NewEvent("Ok"), NewEvent("Boom", {"n": 1}), NewEvent("Glitch"), NewEvent("Ok")])
    runner = ProjectionRunner(journal, Flaky(), batch_size=100, max_attempts=3, retry_delay=0.001)
    assert runner.catch_up() == 4
    [parked] = dead_letters(journal, "flaky")
    assert (parked.position, parked.event_type, parked.attempts) == (2, "Boom", 3)
    assert "ValueError: cannot apply Boom {'n': 1}" in parked.error
    applied = journal.query("SELECT position FROM aj_projection_dead_letters WHERE projection = 'applied' ORDER BY 1")
    assert [row[0] for row in applied] == [1, 3, 4]  # the transient Glitch was retried, not parked
    [status] = [row for row in projection_status(journal) if row.name == "flaky"]
    assert (status.position, status.lag_events, status.dead_letters) == (4, 0, 1)


def test_a_writer_that_lost_its_lease_cannot_move_the_checkpoint(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=0.3)
    lease = leases.acquire("projection:runs", "node-a")
    assert lease is not None
    runner = ProjectionRunner(journal, RunsProjection(), leases=leases, lease=lease)
    store(journal, record("r1", refund_script()), at=NOW)
    time.sleep(0.45)
    assert leases.acquire("projection:runs", "node-b") is not None
    with pytest.raises(LeaseLostError, match="node-a lost token 1"):
        runner.step()
    assert runner.position() == 0
    assert journal.query("SELECT count(*) FROM aj_rm_runs")[0][0] == 0


def test_the_fence_refuses_a_write_that_was_already_under_way(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=0.3)
    lease = leases.acquire("projection:runs", "node-a")
    assert lease is not None

    class Paused(RunsProjection):
        def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
            super().apply(tx, events)
            time.sleep(0.45)  # a GC pause or SIGSTOP in the middle of the batch: the lease expires

    runner = ProjectionRunner(journal, Paused(), leases=leases, lease=lease)
    store(journal, record("r1", refund_script()), at=NOW)
    with pytest.raises(LeaseLostError, match="the write was refused"):
        runner.step()
    assert runner.position() == 0
    assert journal.query("SELECT count(*) FROM aj_rm_runs")[0][0] == 0


def test_external_projection_gets_at_least_once_delivery(journal: Journal) -> None:
    class Collect(ExternalProjection):
        name: ClassVar[str] = "collect"
        event_types: ClassVar[tuple[str, ...]] = ("Ok",)
        seen: ClassVar[list[int]] = []

        def handle(self, events: Sequence[RecordedEvent]) -> None:
            self.seen.extend(event.position for event in events)

        def clear(self) -> None:
            self.seen.clear()

    journal.append("s", [NewEvent("Ok"), NewEvent("Other"), NewEvent("Ok")])
    runner = ProjectionRunner(journal, Collect())
    assert runner.catch_up() == 3
    assert Collect.seen == [1, 3]
    runner.rebuild()
    assert Collect.seen == [1, 3]


def test_wait_for_gives_read_your_writes_or_a_clear_timeout(journal: Journal) -> None:
    runner = ProjectionRunner(journal, RunsProjection())
    result = journal.append("run-w", [NewEvent("RunStarted", {"agent": "a"})])  # not a run of the contract
    with pytest.raises(ProjectionError, match=r"reached position 0, not 1, within 0.2s"):
        wait_for(journal, "runs", result.last_position, timeout=0.2)
    runner.catch_up()
    assert wait_for(journal, "runs", result.last_position, timeout=1) == 1
    with pytest.raises(ProjectionError, match="'nope' has no checkpoint"):
        wait_for(journal, "nope", 1)


def test_bad_runner_arguments_and_the_memory_backend_are_refused(journal: Journal) -> None:
    with pytest.raises(ProjectionError, match="batch_size and max_attempts must be at least 1"):
        ProjectionRunner(journal, RunsProjection(), batch_size=0)
    with pytest.raises(ProjectionError, match="the memory backend has none"):
        ProjectionRunner(Journal.open("memory://"), RunsProjection())


class Outage(RunsProjection):
    """The database is 'locked' for the first two batches (a transient error, not a poison event)."""

    name: ClassVar[str] = "runs"
    failures: ClassVar[list[int]] = [2]

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        if self.failures[0] > 0:
            self.failures[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        super().apply(tx, events)


def test_an_outage_is_retried_later_and_never_parks_an_event(journal: Journal) -> None:
    Outage.failures[0] = 1
    store(journal, record("r1", refund_script()), at=NOW)
    runner = ProjectionRunner(journal, Outage(), max_attempts=1)
    with pytest.raises(sqlite3.OperationalError):
        runner.step()
    assert (runner.position(), dead_letters(journal)) == (0, [])
    Outage.failures[0] = 2
    worker = Worker(journal, [Outage()], node="n", ttl=3)
    worker.run(lambda: runner.position() == journal.head_position(), idle_timeout=0.01)
    assert journal.query("SELECT steps FROM aj_rm_runs") == [(18,)]
    assert dead_letters(journal) == []


def test_a_follower_misses_nothing_while_writers_append_concurrently(journal: Journal) -> None:
    runner = ProjectionRunner(journal, RunsProjection(), batch_size=25)
    done = threading.Event()
    follower = threading.Thread(target=runner.follow, kwargs={"stop": done.is_set, "idle_timeout": 0.05})
    follower.start()
    try:
        writers = [
            threading.Thread(target=append_runs, args=(journal, synthetic_runs(15, seed=seed))) for seed in range(4)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        head = journal.head_position()
        assert wait_for(journal, "runs", head, timeout=20) == head
    finally:
        done.set()
        follower.join()
    rows = dict(journal.query("SELECT stream_id, steps FROM aj_rm_runs"))
    assert len(rows) == 60
    assert all(steps == journal.stream_version(stream) for stream, steps in rows.items())
