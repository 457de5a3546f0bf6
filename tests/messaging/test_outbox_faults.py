"""Fault injection with real processes: `agentjournal worker` running an in-process relay
(fault_relay.py) whose receiver fails, loses acknowledgements, and SIGKILLs its own process
between the receiver's commit and the relay's checkpoint; and a node frozen with SIGSTOP past
its lease. Effects are counted outside the system, in a file the receiver writes after it committed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentjournal.journal import Journal, NewEvent
from agentjournal.messaging import LeaseRegistry, Message, append_with_outbox, failures, outbox_status
from agentjournal.messaging.leases import MIGRATIONS
from agentjournal.messaging.outbox import OUTBOX_MESSAGE

AGENTJOURNAL = str(Path(sys.executable).with_name("agentjournal"))
HERE = Path(__file__).parent
TTL = 2.0

pytestmark = pytest.mark.slow


class Nodes:
    """Worker processes running the faulty relay; each logs to its own file, all killed at the end."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.effects = folder / "effects.txt"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, node: str, messaging: str = "fault_relay:relays", **fault: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
            "AJ_FAULT_DB": self.url,
            "AJ_FAULT_NODE": node,
            "AJ_FAULT_EFFECTS": str(self.effects),
            **{f"AJ_FAULT_{key.upper()}": value for key, value in fault.items()},
        }
        command = [AGENTJOURNAL, "--db", self.url, "worker", "--node", node, "--ttl", str(TTL)]
        command += ["--alerts-every", "0", "-p", "runs", "-m", messaging]
        with (self.folder / f"{node}.log").open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.started.append(process)
        return process

    def log(self, node: str) -> str:
        path = self.folder / f"{node}.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def lines(self) -> list[tuple[str, str]]:
        if not self.effects.exists():
            return []
        return [(line.split()[0], line.split()[1]) for line in self.effects.read_text().splitlines()]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Nodes]:
    """The database first, the processes after: they are killed before it is dropped."""
    backend = request.node.callspec.params["backend"]
    url = str(request.getfixturevalue(f"{backend}_url"))
    started = Nodes(url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def produce(journal: Journal, count: int) -> int:
    """`count` orders, each ringing a doorbell through the outbox; returns the last message's position."""
    MIGRATIONS.migrate(journal)  # the relay's tables, so that the test can read its checkpoint from the start
    for n in range(count):
        append_with_outbox(
            journal,
            f"order-{n}",
            [NewEvent("OrderPlaced", {"n": n})],
            expected_version=0,
            messages=[Message("doorbell", "RingBell", {"stream": f"door-{n % 40}", "n": n})],
        )
    return journal.read_all(journal.head_position() - 1, 1, types=[OUTBOX_MESSAGE])[-1].position


def delivered_up_to(journal: Journal) -> int:
    rows = journal.query(  # type: ignore[attr-defined]
        journal.sql_dialect.sql("SELECT position FROM aj_messaging_checkpoints WHERE name = ?"),  # type: ignore[attr-defined]
        ["relay:bells"],
    )
    return int(rows[0][0]) if rows else 0


def rings_in_journal(journal: Journal) -> int:
    return len(journal.read_all(0, 100_000, types=["BellRang"]))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_thirty_percent_faults_over_2000_messages_every_effect_once(backend: str, nodes: Nodes) -> None:
    with Journal.open(nodes.url) as journal:
        last = produce(journal, 2000)
        worker = nodes.start("node-a", rate="0.3")
        restarts = 0
        deadline = time.monotonic() + 240
        while delivered_up_to(journal) < last or failures(journal):
            assert time.monotonic() < deadline, f"not delivered within 240 s\n{nodes.log('node-a')}"
            if worker.poll() is not None:  # it killed itself between commit and checkpoint: start it again
                assert worker.returncode == -signal.SIGKILL, nodes.log("node-a")
                restarts += 1
                worker = nodes.start("node-a", rate="0.3")
            time.sleep(0.05)
        effects = Counter(dispatch for _, dispatch in nodes.lines())
        assert len(effects) == 2000 and set(effects.values()) == {1}, "an effect happened twice or never"
        assert rings_in_journal(journal) == 2000  # the journal's record agrees with the count
        assert restarts >= 3, "the kills between commit and checkpoint were not exercised"
        [status] = outbox_status(journal)
        assert (status.pending, status.retrying, status.dead) == (0, 0, 0)
        assert status.delivered >= 2000  # redeliveries after the kills are counted again


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_node_frozen_past_its_lease_delivers_nothing_after_it_is_fenced_out(backend: str, nodes: Nodes) -> None:
    with Journal.open(nodes.url) as journal:
        last = produce(journal, 300)
        marker = nodes.folder / "frozen"
        frozen = nodes.start("node-a", freeze_after="50", freeze_marker=str(marker))
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, nodes.log("node-a")
            time.sleep(0.01)
        frozen.send_signal(signal.SIGSTOP)  # inside its 50th delivery, after the effect, holding the relay's lease
        nodes.start("node-b")
        leases = LeaseRegistry(journal)
        while not any(info.name == "relay:bells" and info.owner == "node-b" and info.held for info in leases.leases()):
            assert time.monotonic() < deadline, nodes.log("node-b")
            time.sleep(0.05)
        while len(nodes.lines()) < 120:  # node-b delivers for a while
            assert time.monotonic() < deadline, nodes.log("node-b")
            time.sleep(0.05)
        frozen.send_signal(signal.SIGCONT)
        while delivered_up_to(journal) < last:
            assert time.monotonic() < deadline, nodes.log("node-a") + nodes.log("node-b")
            time.sleep(0.05)
        time.sleep(1.0)  # node-a had time to act on its wake-up
        lines = nodes.lines()
        by_a = [index for index, (node, _) in enumerate(lines) if node == "node-a"]
        assert len(by_a) == 50 and by_a == list(range(50)), "node-a delivered after it was fenced out"
        effects = Counter(dispatch for _, dispatch in lines)
        assert len(effects) == 300 and set(effects.values()) == {1}
        assert "lost token 1" in nodes.log("node-a")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_process_manager_killed_mid_batch_issues_every_command_once(backend: str, nodes: Nodes) -> None:
    with Journal.open(nodes.url) as journal:
        MIGRATIONS.migrate(journal)
        for n in range(500):
            journal.append(f"order-{n}", NewEvent("OrderPlaced", {"n": n}))
        head = journal.head_position()
        worker = nodes.start("node-a", "fault_relay:managers", rate="1")
        restarts = 0
        deadline = time.monotonic() + 120

        def checkpoint() -> int:
            rows = journal.query(  # type: ignore[attr-defined]
                journal.sql_dialect.sql("SELECT position FROM aj_messaging_checkpoints WHERE name = ?"),  # type: ignore[attr-defined]
                ["process:ring-on-order"],
            )
            return int(rows[0][0]) if rows else 0

        while checkpoint() < head:
            assert time.monotonic() < deadline, nodes.log("node-a")
            if worker.poll() is not None:
                assert worker.returncode == -signal.SIGKILL, nodes.log("node-a")
                restarts += 1
                worker = nodes.start("node-a", "fault_relay:managers", rate="1")
            time.sleep(0.05)
        assert restarts >= 3, "the kills mid-batch were not exercised"
        decisions = [info.version for info in journal.streams("process-ring-on-order-", limit=10_000)]
        assert len(decisions) == 500 and set(decisions) == {1}  # one decision per order, none twice
        commands = journal.read_all(0, 10_000, types=[OUTBOX_MESSAGE])
        assert len(commands) == 500 and len({c.data["payload"]["n"] for c in commands}) == 500


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_worker_resumes_a_saga_nobody_drives(backend: str, nodes: Nodes) -> None:
    from agentjournal.agents.demo_sagas import SAGAS, book_demo_input
    from agentjournal.messaging.sagas import SagaRunner, load_saga

    with Journal.open(nodes.url) as journal:
        SagaRunner(journal, SAGAS).start("book-demo", book_demo_input("lead-9"), saga_id="lead-9", run=False)
        command = [AGENTJOURNAL, "--db", nodes.url, "worker", "--node", "node-a", "--ttl", str(TTL), "--alerts-every"]
        command += ["0", "-p", "runs", "--sagas", "agentjournal.agents.demo_sagas:SAGAS", "--sagas-every", "0.2"]
        with (nodes.folder / "node-a.log").open("ab") as log:
            nodes.started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 30
        while load_saga(journal, "lead-9").status != "completed":
            assert time.monotonic() < deadline, nodes.log("node-a")
            time.sleep(0.1)
