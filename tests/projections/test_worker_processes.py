"""Workers as real, separate processes: SIGKILL mid-batch, two nodes sharing work, a node frozen with SIGSTOP.

Each test checks the runs read model against the journal at the end: every run's `steps`
equals its stream's version, so no event was skipped or applied twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentjournal.journal import Journal
from agentjournal.messaging import LeaseRegistry
from agentjournal.projections import builtin_projections
from agentjournal.testing.synthetic import append_runs, synthetic_runs

AGENTJOURNAL = str(Path(sys.executable).with_name("agentjournal"))
SLOW_WORKER = str(Path(__file__).with_name("slow_worker.py"))
TTL = 2.0

pytestmark = pytest.mark.slow


class Processes:
    """Started processes, each logging to its own file; all are killed at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.started.append((process, log))
        return process

    def worker(self, url: str, node: str, *args: str) -> subprocess.Popen[bytes]:
        return self.start(
            node,
            [AGENTJOURNAL, "--db", url, "worker", "--node", node, "--ttl", str(TTL), "--alerts-every", "0", *args],
        )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str] = str) -> float:
    """Poll `condition`; returns the seconds it took, fails the test (with the logs) after `timeout`."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            pytest.fail(f"not within {timeout}s: {what}\n{logs()}")
        time.sleep(0.01)
    return time.monotonic() - began


def checkpoint(journal: Journal, name: str = "runs") -> int:
    journal.migrate(component="projections", package="agentjournal.projections")
    rows = journal.query(f"SELECT position FROM aj_projections WHERE name = {journal.param}", [name])
    return int(rows[0][0]) if rows else 0


def assert_applied_exactly_once(journal: Journal) -> None:
    rows = journal.query("SELECT stream_id, steps FROM aj_rm_runs")
    runs = list(journal.streams("run-", limit=100_000))
    assert len(rows) == len(runs)
    versions = {info.stream_id: info.version for info in runs}
    assert {stream: int(steps) for stream, steps in rows} == versions


def owners(journal: Journal) -> dict[str, str]:
    return {
        info.name.removeprefix("projection:"): info.owner
        for info in LeaseRegistry(journal).leases()
        if info.held and info.name.startswith("projection:")
    }


def _database_then_processes(request: pytest.FixtureRequest, backend: str) -> tuple[str, Processes]:
    """The backend's database, then the processes: fixtures are torn down in reverse, so every
    process is killed before the database is dropped (a frozen one would hold its locks)."""
    url = str(request.getfixturevalue(f"{backend}_url"))
    return url, request.getfixturevalue("processes")


def test_a_worker_killed_mid_batch_resumes_exactly_once(sql_journal_url: str, processes: Processes) -> None:
    with Journal.open(sql_journal_url) as journal:
        append_runs(journal, synthetic_runs(400, seed=11))
        head = journal.head_position()
        first = processes.worker(sql_journal_url, "node-a", "-p", "runs", "--batch-size", "10")
        wait_until(
            lambda: checkpoint(journal) > head // 4,
            60,
            "the first worker applies a quarter",
            lambda: processes.log("node-a"),
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        stopped_at = checkpoint(journal)
        assert 0 < stopped_at < head, "the kill must land while the worker is still catching up"
        processes.worker(sql_journal_url, "node-b", "-p", "runs", "--batch-size", "10")
        wait_until(
            lambda: checkpoint(journal) == head, 60, "the second worker catches up", lambda: processes.log("node-b")
        )
        assert_applied_exactly_once(journal)
        assert "acquired projection:runs (token 2)" in processes.log("node-b")  # took over the dead node's lease


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_two_workers_share_the_projections_and_one_takes_over_when_the_other_dies(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url, processes = _database_then_processes(request, backend)
    everything = len(builtin_projections())
    with Journal.open(url) as journal:
        append_runs(journal, synthetic_runs(50, seed=12))
        a = processes.worker(url, "node-a")
        processes.worker(url, "node-b")
        logs = lambda: processes.log("node-a") + processes.log("node-b")  # noqa: E731
        fair = [everything // 2, everything - everything // 2]

        def shares() -> list[int]:
            taken = list(owners(journal).values())
            return sorted(taken.count(node) for node in ("node-a", "node-b"))

        # The first node takes everything; the second gets its fair share over the next lease rounds.
        wait_until(
            lambda: len(owners(journal)) == everything and shares() == fair,
            20,
            "both nodes run a fair share of the projections",
            logs,
        )
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        took = wait_until(
            lambda: set(owners(journal).values()) == {"node-b"} and len(owners(journal)) == everything,
            TTL * 4,
            "node-b takes over every projection",
            logs,
        )
        assert took < TTL + 2 * TTL / 3 + 1.5  # expiry, then up to two lease rounds (TTL/3 each), plus slack
        append_runs(journal, synthetic_runs(20, seed=13))
        head = journal.head_position()
        wait_until(
            lambda: all(checkpoint(journal, p.name) == head for p in builtin_projections()),
            20,
            "node-b applies new runs",
            logs,
        )
        assert_applied_exactly_once(journal)


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_a_frozen_worker_loses_its_lease_and_its_write_is_refused(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url, processes = _database_then_processes(request, backend)
    marker = tmp_path / "in-batch"
    with Journal.open(url) as journal:
        append_runs(journal, synthetic_runs(60, seed=14))
        head = journal.head_position()
        frozen = processes.start("node-a", [sys.executable, SLOW_WORKER, url, "node-a", str(marker), str(TTL)])
        logs = lambda: processes.log("node-a") + processes.log("node-b")  # noqa: E731
        wait_until(marker.exists, 20, "node-a is inside its first batch", logs)
        frozen.send_signal(signal.SIGSTOP)  # frozen mid-transaction, holding the lease's token 1
        processes.worker(url, "node-b", "-p", "runs")
        wait_until(lambda: owners(journal).get("runs") == "node-b", TTL * 4, "node-b takes the expired lease", logs)
        time.sleep(0.5)
        frozen.send_signal(signal.SIGCONT)
        wait_until(lambda: "the write was refused" in processes.log("node-a"), 20, "node-a's write is refused", logs)
        wait_until(lambda: checkpoint(journal) == head, 30, "the runs projection catches up", logs)
        assert_applied_exactly_once(journal)
        assert "node-a lost token 1 (now token 2 of node-b)" in processes.log("node-a")
