"""Where each projection stands, bringing one up to date for a read, and read-your-writes waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from agentjournal.journal import Journal
from agentjournal.messaging.leases import LeaseRegistry
from agentjournal.projections.base import MIGRATIONS, AnyProjection, ProjectionError, require_sql
from agentjournal.projections.evaluations import EvaluationsProjection
from agentjournal.projections.queries import refresh
from agentjournal.projections.read_models import (
    PolicyDecisionsProjection,
    SearchProjection,
    ToolDecisionsProjection,
    ToolUsageProjection,
)
from agentjournal.projections.runner import lease_name, read_checkpoint
from agentjournal.projections.runs import RunsProjection
from agentjournal.projections.waiting import PollingWaiter


def builtin_projections() -> list[AnyProjection]:
    """Fresh instances of the read models `agentjournal worker` runs by default."""
    return [
        RunsProjection(),
        ToolDecisionsProjection(),
        ToolUsageProjection(),
        PolicyDecisionsProjection(),
        SearchProjection(),
        EvaluationsProjection(),
    ]


def builtin_projection(name: str) -> AnyProjection:
    for projection in builtin_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in builtin_projections())
    raise ProjectionError(f"no projection named {name!r}; known: {known}")


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime | None
    dead_letters: int


def projection_status(journal: Journal) -> list[ProjectionStatus]:
    """Every projection with a checkpoint, plus the built-in ones not started yet.

    Lag in seconds is the age of the oldest event the projection has not applied yet.
    """
    sql_journal = require_sql(journal, "projections")
    MIGRATIONS.migrate(sql_journal)
    leases = {info.name: info for info in LeaseRegistry(sql_journal).leases() if info.held}
    head = journal.head_position()
    rows = {
        name: (int(position), float(updated))
        for name, position, updated in sql_journal.query("SELECT name, position, updated_at FROM aj_projections")
    }
    parked: dict[str, int] = {
        name: int(count)
        for name, count in sql_journal.query(
            "SELECT projection, count(*) FROM aj_projection_dead_letters GROUP BY projection"
        )
    }
    names = sorted(set(rows) | {p.name for p in builtin_projections()})
    now = time.time()
    found = []
    for name in names:
        position, updated = rows.get(name, (0, 0.0))
        lag_seconds = 0.0
        if position < head:
            oldest = journal.read_all(position, 1)
            if oldest:
                lag_seconds = max(0.0, now - oldest[0].recorded_at.timestamp())
        lease = leases.get(lease_name(name))
        found.append(
            ProjectionStatus(
                name=name,
                position=position,
                head=head,
                lag_events=max(0, head - position),
                lag_seconds=lag_seconds,
                owner=lease.owner if lease else None,
                lease_expires_at=lease.expires_at if lease else None,
                updated_at=datetime.fromtimestamp(updated, UTC) if updated else None,
                dead_letters=parked.get(name, 0),
            )
        )
    return found


def checkpoint(journal: Journal, name: str) -> int:
    """The last position projection `name` has applied (0 if it never ran)."""
    sql_journal = require_sql(journal, "projections")
    MIGRATIONS.migrate(sql_journal)
    return read_checkpoint(sql_journal, name) or 0


@dataclass(frozen=True, slots=True)
class Freshness:
    """What `bring_up_to_date` found and did for one read model."""

    name: str
    applied: int  # events this call applied
    behind: int  # events the read model is still behind the journal
    worker: str | None  # the node whose live lease runs it (then this call applied nothing)


def bring_up_to_date(
    journal: Journal, names: Iterable[str], *, progress: Callable[[str, int, int], None] | None = None
) -> list[Freshness]:
    """Apply what the named read models have not applied yet, unless a worker holds one's lease.

    A read-side answer from a read model that never ran would be an empty table taken for the
    truth; one a worker is running is left to that worker (its lag is reported instead).
    `progress(name, done, total)` follows each catch-up in events.
    """
    sql_journal = require_sql(journal, "read models")
    MIGRATIONS.migrate(sql_journal)
    held = {info.name: info.owner for info in LeaseRegistry(sql_journal).leases() if info.held}
    found = []
    for name in names:
        start = read_checkpoint(sql_journal, name) or 0
        worker = held.get(lease_name(name))
        if worker is None:
            _catch_up(sql_journal, name, start, progress)
        end = read_checkpoint(sql_journal, name) or 0
        found.append(Freshness(name, max(0, end - start), max(0, sql_journal.head_position() - end), worker))
    return found


def _catch_up(journal: Journal, name: str, start: int, progress: Callable[[str, int, int], None] | None) -> None:
    head = journal.head_position()
    if start >= head:
        return
    total = head - start

    def report(_: str, position: int) -> None:
        if progress is not None:
            progress(name, min(position, head) - start, total)

    refresh(journal, builtin_projection(name), progress=report)


def wait_for(journal: Journal, name: str, position: int, *, timeout: float = 10.0) -> int:
    """Block until projection `name` has applied `position` (read-your-writes); returns its checkpoint.

    Raises ProjectionError after `timeout` seconds, saying how far it got.
    """
    sql_journal = require_sql(journal, "projections")
    deadline = time.monotonic() + timeout
    waiter = PollingWaiter(max_delay=0.05)
    while True:
        reached = read_checkpoint(sql_journal, name)
        if reached is None:
            raise ProjectionError(f"projection {name!r} has no checkpoint yet (has a worker ever run it?)")
        if reached >= position:
            return reached
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProjectionError(
                f"projection {name!r} reached position {reached}, not {position}, within {timeout:g}s "
                "(is `agentjournal worker` running?)"
            )
        waiter.woke(False)
        waiter.wait(remaining)
