"""The worker: runs every projection, outbox relay and process manager (and the alert rules)
whose lease it can hold.

Start one per node against the same database: each lease is held by one node at a time, so
each of them runs on exactly one node; when a node dies its leases expire and another node
takes them within the TTL. A node that was paused past its lease loses it: its next
checkpoint write is refused by the fence, and it drops that work until it can lease it again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agentjournal.journal import Journal
from agentjournal.messaging.checkpoints import OutboxError
from agentjournal.messaging.leases import DEFAULT_TTL, Lease, LeaseLostError, LeaseRegistry, default_node
from agentjournal.messaging.process_managers import ProcessManager
from agentjournal.messaging.relays import Relay
from agentjournal.projections.base import MIGRATIONS, AnyProjection, ProjectionError, require_sql
from agentjournal.projections.runner import ProjectionRunner, is_transient, lease_name
from agentjournal.projections.waiting import Waiter, waiter_for

logger = logging.getLogger("agentjournal.worker")
NODE_PREFIX = "node:"
"""Each running worker holds `node:<name>`: the registry's list of live nodes."""


class Runner(Protocol):
    """What the worker drives: a projection runner, a relay runner or a process manager runner."""

    @property
    def lease(self) -> Lease | None: ...

    def step(self) -> int: ...


@dataclass
class PeriodicJob:
    """Work that runs every `every` seconds on whichever node holds lease `name` (e.g. alert rules)."""

    name: str
    every: float
    run: Callable[[], object]
    last_run: float = field(default=0.0)


class Worker:
    """One node's loop: lease, apply, renew, repeat. `run(stop)` returns when `stop()` is true."""

    def __init__(
        self,
        journal: Journal,
        projections: Sequence[AnyProjection],
        *,
        node: str | None = None,
        ttl: float = DEFAULT_TTL,
        batch_size: int = 1000,
        jobs: Sequence[PeriodicJob] = (),
        relays: Sequence[Relay] = (),
        process_managers: Sequence[ProcessManager] = (),
    ) -> None:
        self.journal = require_sql(journal, "workers")
        self.node = node or default_node()
        self.leases = LeaseRegistry(journal, ttl=ttl)
        MIGRATIONS.migrate(self.journal)
        self.jobs = list(jobs)
        self.batch_size = batch_size
        self.work_by_lease: dict[str, Callable[[Lease], Runner]] = {}
        """Everything this node can run, by lease name: how to start its runner under a lease."""
        for projection in projections:
            self.work_by_lease[lease_name(projection.name)] = self._projection(projection)
        for relay in relays:
            self.work_by_lease[relay.lease_name] = self._relay(relay)
        for manager in process_managers:
            self.work_by_lease[manager.lease_name] = self._manager(manager)
        self.runners: dict[str, Runner] = {}
        """What this node runs now, by lease name."""
        self.job_leases: dict[str, Lease] = {}
        self.node_lease: Lease | None = None
        self._last_round = float("-inf")
        self._live = 0
        self._rescued: set[str] = set()
        """Leases held beyond the fair share because no other node took them."""
        self._free_before: set[str] = set()

    def _projection(self, projection: AnyProjection) -> Callable[[Lease], Runner]:
        return lambda lease: ProjectionRunner(
            self.journal, projection, batch_size=self.batch_size, leases=self.leases, lease=lease
        )

    def _relay(self, relay: Relay) -> Callable[[Lease], Runner]:
        return lambda lease: relay.runner(self.journal, leases=self.leases, lease=lease)

    def _manager(self, manager: ProcessManager) -> Callable[[Lease], Runner]:
        return lambda lease: manager.runner(self.journal, leases=self.leases, lease=lease)

    def run(self, stop: Callable[[], bool], *, idle_timeout: float = 1.0) -> None:
        """Loop until `stop()`; a database outage is logged and retried, never fatal."""
        waiter: Waiter | None = None
        try:
            while not stop():
                try:
                    waiter = waiter or waiter_for(self.journal)
                    if time.monotonic() - self._last_round >= self.leases.ttl / 3:
                        self.lease_round()
                    moved = self.work()
                    waiter.woke(moved > 0)
                    if not moved:
                        waiter.wait(min(idle_timeout, self.leases.ttl / 6))
                except Exception as error:
                    if not is_transient(error):
                        raise
                    logger.warning("%s: %s; retrying in a moment", self.node, error)
                    if waiter is not None:
                        waiter.close()
                        waiter = None  # a LISTEN connection may be gone with the database
                    time.sleep(min(1.0, self.leases.ttl / 6))
        finally:
            if waiter is not None:
                waiter.close()
            self.release_all()

    def lease_round(self) -> None:
        """Announce this node, take or give up projection leases to hold a fair share, run due jobs.

        A fair share is ceil(projections / live nodes), where a live node is one whose `node:`
        lease is held: a new node gets work as soon as the others notice it, and a dead node's
        share is taken over when its leases expire. Nodes may run different sets of projections
        (`--projection`), so a projection that stays free for a whole round, which no node
        within its share took, is rescued by any node that can run it, beyond its share.
        """
        self._last_round = time.monotonic()
        self.node_lease = self.leases.acquire(f"{NODE_PREFIX}{self.node}", self.node)
        registry = self.leases.leases()
        live = sum(1 for info in registry if info.held and info.name.startswith(NODE_PREFIX))
        if live != self._live:
            self._live, self._rescued = live, set()  # the cluster changed: rebalance everything
        share = math.ceil(len(self.work_by_lease) / max(live, 1))
        taken = {info.name for info in registry if info.held}
        free = {name for name in self.work_by_lease if name not in taken}
        shared = sorted((name for name in self.runners if name not in self._rescued), reverse=True)
        for name in shared[: max(0, len(shared) - share)]:
            self._drop(name)
            logger.info("%s: handed %s over (fair share %d of %d nodes)", self.node, name, share, live)
        for name, start in self.work_by_lease.items():
            if name in self.runners:
                continue
            orphan = name in free and name in self._free_before
            if len(self.runners) - len(self._rescued) >= share and not orphan:
                continue
            lease = self.leases.acquire(name, self.node)
            if lease is not None:
                logger.info("%s: acquired %s (token %d)", self.node, lease.name, lease.token)
                self.runners[name] = start(lease)
                if orphan and len(self.runners) - len(self._rescued) > share:
                    self._rescued.add(name)
        self._free_before = free - set(self.runners)
        for job in self.jobs:
            held = self.job_leases.get(job.name)
            try:
                lease = self.leases.renew(held) if held else self.leases.acquire(f"job:{job.name}", self.node)
            except LeaseLostError as lost:
                logger.warning("%s", lost)
                lease = None
            if lease is None:
                self.job_leases.pop(job.name, None)
                continue
            self.job_leases[job.name] = lease
            if time.monotonic() - job.last_run >= job.every:
                job.last_run = time.monotonic()
                try:
                    job.run()
                except Exception:  # a failing job must not stop the projections; it runs again next time
                    logger.exception("%s: job %s failed", self.node, job.name)

    def work(self) -> int:
        """One batch of everything this node holds; returns how much moved (0: all caught up)."""
        moved = 0
        for name, runner in list(self.runners.items()):
            try:
                moved += runner.step()
            except LeaseLostError as lost:
                logger.warning("%s", lost)
                del self.runners[name]
            except (ProjectionError, OutboxError) as error:  # its checkpoint moved under it: someone else runs it
                logger.error("%s", error)
                self._drop(name)
        return moved

    def _drop(self, name: str) -> None:
        self._rescued.discard(name)
        runner = self.runners.pop(name)
        if runner.lease is not None:
            self.leases.release(runner.lease)

    def release_all(self) -> None:
        for runner in self.runners.values():
            if runner.lease is not None:
                self.leases.release(runner.lease)
        for lease in self.job_leases.values():
            self.leases.release(lease)
        if self.node_lease is not None:
            self.leases.release(self.node_lease)
            self.node_lease = None
        self.runners.clear()
        self.job_leases.clear()
