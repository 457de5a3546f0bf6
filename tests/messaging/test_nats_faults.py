"""Fault injection over the real NATS server, with real processes (fault_nats.py).

An `agentjournal worker` relays the outbox to JetStream and SIGKILLs itself after a PubAck and
before its checkpoint moves; consumer processes receive with a doorbell Receiver that fails
before committing, commits and then fails (the ack is lost), or SIGKILLs its process between
the commit and the ack; and proxies in front of NATS break the connections at chosen protocol
messages (a PubAck lost, an ack lost, an ack's confirmation lost, a delivery lost) and all at
once. Every fault point is deterministic: the kills happen at chosen messages, the proxy's traps
at chosen kinds of message once the run has progressed so far, and the test waits for progress,
never for time. Effects are counted outside the system, in a file the receiver writes after it
committed; what JetStream stored is counted by the server.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
from nats.js.api import ConsumerInfo

from agentjournal.journal import Journal
from agentjournal.messaging import LeaseRegistry, failures, outbox_status
from agentjournal.messaging.nats import NatsTransport
from agentjournal.model import Repository

from .fault_relay import Door
from .nats_proxy import FaultProxy, Trap
from .test_nats import admin
from .test_outbox_faults import HERE, Nodes, delivered_up_to, produce

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COUNT = 2000
DOORS = 40  # produce() rings door n % 40
RELAY_KILLS = (250, 690, 1130, 1570, 1960)
CONSUMER_KILLS = (120, 480, 850, 1210, 1580, 1890)
DEADLINE = 150.0


class NatsNodes(Nodes):
    """The relay's workers and the consumers of a test, its JetStream stream, and a proxy in front of
    NATS for the relays and one for the consumers."""

    def __init__(self, url: str, folder: Path, nats_url: str) -> None:
        super().__init__(url, folder)
        self.nats_url = nats_url
        self.stream = f"AJFAULT_{uuid.uuid4().hex[:12]}"
        self.prefix = f"{self.stream.lower()}."
        self.publishes = folder / "publishes.txt"
        self.faults = folder / "faults.txt"
        self.marks = folder / "marks"
        self.marks.mkdir()
        self.relay_proxy = FaultProxy(nats_url)
        self.consumer_proxy = FaultProxy(nats_url)
        self.names: list[str] = []

    def _nats(self) -> dict[str, str]:
        return {"stream": self.stream, "prefix": self.prefix, "marks": str(self.marks)}

    def relay(self, node: str, **fault: str) -> subprocess.Popen[bytes]:
        """`agentjournal worker` with the NATS relay, through the relays' proxy."""
        self._name(node)
        extra = {"nats": self.relay_proxy.url, "publishes": str(self.publishes), **self._nats(), **fault}
        return self.start(node, "fault_nats:relays", **extra)

    def consumer(self, node: str, **fault: str) -> subprocess.Popen[bytes]:
        """A consumer process, through the consumers' proxy."""
        self._name(node)
        extra = {"nats": self.consumer_proxy.url, "faults": str(self.faults), **self._nats(), **fault}
        env = {
            **os.environ,
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
            "AJ_FAULT_DB": self.url,
            "AJ_FAULT_NODE": node,
            "AJ_FAULT_EFFECTS": str(self.effects),
            **{f"AJ_FAULT_{key.upper()}": value for key, value in extra.items()},
        }
        with (self.folder / f"{node}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(HERE / "fault_nats.py")], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.started.append(process)
        return process

    def _name(self, node: str) -> None:
        if node not in self.names:
            self.names.append(node)

    def published(self) -> list[tuple[str, str]]:
        """(node, dispatch id) of every publish JetStream acknowledged, in order."""
        return [(line.split()[0], line.split()[1]) for line in _lines(self.publishes)]

    def fault_kinds(self) -> Counter[str]:
        return Counter(line.split()[1] for line in _lines(self.faults))

    def full_log(self, node: str) -> str:
        path = self.folder / f"{node}.log"
        return path.read_text() if path.exists() else ""

    def logs(self) -> str:
        """The tail of every process's log, for a failure's message."""
        return "\n".join(f"----- {node} -----\n{self.log(node)}" for node in self.names)

    def consumer_info(self) -> ConsumerInfo:
        """The durable consumer of fault_nats.py as the server sees it (over its own connection)."""

        async def info(js: Any) -> ConsumerInfo:
            return await js.consumer_info(self.stream, "doorbell")  # type: ignore[no-any-return]

        return cast(ConsumerInfo, admin(self.nats_url, info))

    def stored(self) -> int:
        with NatsTransport(self.nats_url, stream=self.stream, subject_prefix=self.prefix) as transport:
            return transport.stored()

    def stop_all(self) -> None:
        try:
            super().stop_all()
        finally:
            self.relay_proxy.close()
            self.consumer_proxy.close()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def system(request: pytest.FixtureRequest, tmp_path: Path, nats_url: str) -> Iterator[NatsNodes]:
    """The database and the NATS server first, the processes after: they are killed before the
    database is dropped (a process in the middle of a write would hold its locks) and the stream deleted."""
    backend = request.node.callspec.params["backend"]
    url = str(request.getfixturevalue(f"{backend}_url"))
    nodes = NatsNodes(url, tmp_path, nats_url)
    try:
        yield nodes
    finally:
        try:
            nodes.stop_all()
        finally:

            async def delete(js: Any) -> None:
                import nats.js.errors

                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(nodes.stream)

            admin(nats_url, delete)


class Keeper:
    """Keeps processes running: one that died of its own SIGKILL (a fault it injected) is started
    again; one that died of anything else fails the test with the logs."""

    def __init__(self, system: NatsNodes) -> None:
        self.system = system
        self.running: dict[str, tuple[subprocess.Popen[bytes], Callable[[], subprocess.Popen[bytes]]]] = {}
        self.restarts: Counter[str] = Counter()

    def keep(self, node: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.running[node] = (start(), start)

    def check(self) -> None:
        for node, (process, start) in list(self.running.items()):
            if process.poll() is None:
                continue
            assert process.returncode == -signal.SIGKILL, (
                f"{node} exited with {process.returncode}\n{self.system.logs()}"
            )
            self.restarts[node] += 1
            self.running[node] = (start(), start)


class Schedule:
    """Faults armed when the run has got so far: `at(what, threshold, arm)` calls `arm()` once `what()`
    reaches `threshold`; `arm` returns the traps it set, which must all fire before the run ends."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], int], int, Callable[[], list[Trap]]]] = []
        self.traps: list[Trap] = []

    def at(self, what: Callable[[], int], threshold: int, arm: Callable[[], list[Trap]]) -> None:
        self.pending.append((what, threshold, arm))

    def advance(self) -> None:
        for entry in list(self.pending):
            what, threshold, arm = entry
            if what() >= threshold:
                self.pending.remove(entry)
                self.traps += arm()

    def done(self) -> bool:
        return not self.pending and all(trap.fired.is_set() for trap in self.traps)

    def __str__(self) -> str:
        waiting = [f"at {threshold}" for _, threshold, _ in self.pending]
        return f"not armed: {waiting}; not fired: {[str(trap) for trap in self.traps if not trap.fired.is_set()]}"


def wait_for(
    condition: Callable[[], bool],
    what: str,
    system: NatsNodes,
    keeper: Keeper | None = None,
    state: Callable[[], str] = str,
) -> None:
    """Poll `condition` (restarting the processes that `keeper` keeps); fail with `state()` and the logs."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if keeper is not None:
            keeper.check()
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE:.0f} s; {state()}\n{system.logs()}"
        time.sleep(0.05)


def network_faults(system: NatsNodes, *, published: Callable[[], int], effects: Callable[[], int]) -> Schedule:
    """The connections broken during the run, each at a protocol message of a kind, once the run got so far."""
    relays, consumers = system.relay_proxy, system.consumer_proxy
    publish = f"HPUB {system.prefix}doorbell".encode()
    delivery = f"HMSG {system.prefix}doorbell".encode()
    ack = re.compile(rb"PUB \$JS\.ACK\.\S+ _INBOX\.\S+ 0\r\n")  # ack_sync: a request with no payload
    schedule = Schedule()
    # The relay: JetStream stores a message and its PubAck is lost; a publish that never arrives.
    schedule.at(published, 300, lambda: [relays.trap(publish, forward=True)])
    schedule.at(published, 900, lambda: [relays.trap(publish, forward=False)])
    schedule.at(published, 1400, lambda: [relays.trap(publish, forward=True)])
    # The consumers: an ack that never arrives; a batch of deliveries lost on the way; an ack that
    # arrives and its confirmation is lost; every connection broken and none accepted for a while.
    schedule.at(effects, 400, lambda: [consumers.trap(ack, forward=False)])
    schedule.at(effects, 800, lambda: [consumers.trap(delivery, upstream=False, forward=False)])
    schedule.at(effects, 1200, lambda: [consumers.trap(ack, forward=True)])

    def cut_everything() -> list[Trap]:
        consumers.refuse(0.5)
        consumers.cut()
        return [consumers.trap(b"", forward=False)]  # and whichever consumer speaks first after that

    schedule.at(effects, 1600, cut_everything)
    return schedule


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_2000_messages_over_nats_with_kills_lost_acks_and_cut_connections_each_take_effect_once(
    backend: str, system: NatsNodes
) -> None:
    with Journal.open(system.url) as journal:
        last = produce(journal, COUNT)
        keeper = Keeper(system)
        kills = ",".join(map(str, RELAY_KILLS))
        keeper.keep("relay", lambda: system.relay("relay", kill_at=kills))
        consumer_kills = ",".join(map(str, CONSUMER_KILLS))
        for node in ("consumer-a", "consumer-b"):
            keeper.keep(node, partial(system.consumer, node, rate="0.3", kill_at=consumer_kills))

        published: set[str] = set()
        effects: list[tuple[str, str]] = []
        schedule = network_faults(system, published=lambda: len(published), effects=lambda: len(effects))

        def delivered() -> bool:
            published.update(dispatch for _, dispatch in system.published())
            effects[:] = system.lines()
            schedule.advance()
            if len(effects) < COUNT or delivered_up_to(journal) < last or failures(journal):
                return False
            info = system.consumer_info()
            return bool(info.num_ack_pending == 0 and info.num_pending == 0 and schedule.done())

        def state() -> str:
            info = system.consumer_info()
            return (
                f"{len(published)} published, {len(effects)} effects, checkpoint {delivered_up_to(journal)} of "
                f"{last}, {len(failures(journal))} failures, {info.num_ack_pending} unacknowledged and "
                f"{info.num_pending} undelivered; {schedule}"
            )

        wait_for(delivered, "every effect, the relay at the last message, all acknowledged", system, keeper, state)

        # Every effect happened exactly once, counted outside the system.
        once = Counter(dispatch for _, dispatch in effects)
        assert len(once) == COUNT and set(once.values()) == {1}, "an effect happened twice or never"
        # The journal's receiving aggregates agree with the count, door by door.
        rung = journal.read_all(0, 100_000, types=["BellRang"])
        assert sorted(event.metadata["dispatch"]["id"] for event in rung) == sorted(once)
        assert not journal.read_all(0, 100_000, types=["DispatchHandled"])
        by_door: dict[int, set[str]] = {door: set() for door in range(DOORS)}
        for line in _lines(system.effects):
            _, dispatch, n = line.split()
            by_door[int(n) % DOORS].add(dispatch)
        repository = Repository(journal, Door)
        for number, dispatches in by_door.items():
            door = repository.load(f"door-{number}")
            assert door.rings == len(dispatches) == COUNT // DOORS
            assert set(door.handled.ids) == dispatches
        # Nothing left undelivered: the relay is at the last message, with no failure left.
        [status] = outbox_status(journal)
        assert (status.position, status.pending, status.retrying, status.dead) == (last, 0, 0, 0)
        info = system.consumer_info()
        assert info.ack_floor is not None and info.ack_floor.stream_seq == COUNT  # all acknowledged up to the last
        assert (info.num_ack_pending, info.num_pending) == (0, 0)
        # JetStream stored each dispatch once: the Msg-Id dedupe dropped the relay's republishes.
        publishes = system.published()
        assert {dispatch for _, dispatch in publishes} == set(once)
        assert len(publishes) >= COUNT + len(RELAY_KILLS)
        assert system.stored() == COUNT

        # The faults happened as injected.
        assert keeper.restarts["relay"] == len(RELAY_KILLS)
        assert keeper.restarts["consumer-a"] + keeper.restarts["consumer-b"] == len(CONSUMER_KILLS)
        kinds = system.fault_kinds()
        assert kinds["kill"] == len(CONSUMER_KILLS)
        assert kinds["raise-before"] >= 0.1 * COUNT and kinds["raise-after"] >= 0.1 * COUNT, kinds
        assert system.relay_proxy.broken >= 3 and system.consumer_proxy.broken >= 4
        consumer_logs = system.full_log("consumer-a") + system.full_log("consumer-b")
        assert "lost the connection to NATS" in consumer_logs
        assert "terminating" not in consumer_logs and "giving up" not in consumer_logs
        relay_log = system.full_log("relay")
        assert "lost the connection to NATS" in relay_log or "no PubAck" in relay_log


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_relay_frozen_past_its_lease_publishes_nothing_after_it_is_fenced_out(
    backend: str, system: NatsNodes
) -> None:
    with Journal.open(system.url) as journal:
        last = produce(journal, 300)
        marker = system.folder / "frozen"
        system.consumer("consumer-a")
        frozen = system.relay("relay-a", freeze_after="50", freeze_marker=str(marker))
        wait_for(marker.exists, "relay-a's 50th publish", system)
        frozen.send_signal(signal.SIGSTOP)  # after its 50th PubAck, holding the lease, its batch in hand
        system.relay("relay-b")
        leases = LeaseRegistry(journal)

        def taken_over() -> bool:
            return any(info.name == "relay:bells" and info.owner == "relay-b" and info.held for info in leases.leases())

        wait_for(taken_over, "relay-b taking the lease over", system)
        wait_for(lambda: delivered_up_to(journal) == last, "relay-b publishing every message", system)
        frozen.send_signal(signal.SIGCONT)  # it wakes with 50 messages of its batch still to publish
        fenced = "lease 'relay:bells': relay-a lost token 1"
        wait_for(lambda: fenced in system.full_log("relay-a"), "relay-a noticing it was fenced out", system)
        wait_for(lambda: len(system.lines()) == 300, "every effect", system)

        def settled() -> bool:
            info = system.consumer_info()
            return bool(info.num_ack_pending == 0 and info.num_pending == 0)

        wait_for(settled, "the consumer acknowledging every message", system)

        publishes = system.published()
        by_a = [index for index, (node, _) in enumerate(publishes) if node == "relay-a"]
        assert by_a == list(range(50)), "relay-a published after it was fenced out"
        assert {dispatch for node, dispatch in publishes if node == "relay-b"} == {d for _, d in publishes}
        assert system.stored() == 300  # relay-b's republishes of relay-a's 50 were dropped by the Msg-Id
        once = Counter(dispatch for _, dispatch in system.lines())
        assert len(once) == 300 and set(once.values()) == {1}
        assert frozen.poll() is None, "relay-a died instead of dropping the relay"
