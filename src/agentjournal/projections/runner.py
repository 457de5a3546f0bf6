"""The projection runner: a catch-up subscription that applies batches and moves a checkpoint.

It reads the journal after its checkpoint in position order (positions are gapless and in
commit order, so reading "after P" never skips an event that commits later), applies a
batch, and moves the checkpoint forward with a compare-and-set in the same transaction:
if anyone else moved it meanwhile, the batch is rolled back. When a lease is held, every
checkpoint write is also fenced by the lease's token.

A batch that fails is retried one event at a time; an event that still fails after
`max_attempts` is parked in aj_projection_dead_letters with its error, and the checkpoint
moves past it, so one poison event never stalls a read model silently.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agentjournal.journal import Journal, JournalConnectionError, RecordedEvent
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.messaging.leases import Lease, LeaseLostError, LeaseRegistry
from agentjournal.projections.base import (
    MIGRATIONS,
    AnyProjection,
    ExternalProjection,
    Projection,
    ProjectionError,
    Tx,
    require_sql,
)
from agentjournal.projections.waiting import waiter_for
from agentjournal.runs import tracing

logger = logging.getLogger("agentjournal.projections")

_NOT_POISON = (LeaseLostError, ProjectionError, JournalConnectionError)
"""Failures that say nothing about the event: they stop the runner instead of parking it."""


def is_transient(error: BaseException) -> bool:
    """A database that is down, locked or deadlocked (DB-API OperationalError on every driver).

    Such an error says nothing about the event either: parking would lose a good event to an
    outage, so it propagates and the caller retries later.
    """
    return isinstance(error, _NOT_POISON) or any(cls.__name__ == "OperationalError" for cls in type(error).__mro__)


def read_checkpoint(journal: SQLJournal, name: str) -> int | None:
    """A projection's checkpoint, None when it has none yet."""
    rows = journal.query(f"SELECT position FROM aj_projections WHERE name = {journal.param}", [name])
    return int(rows[0][0]) if rows else None


def lease_name(projection_name: str) -> str:
    return f"projection:{projection_name}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    projection: str
    position: int
    event_id: str
    stream_id: str
    event_type: str
    error: str
    attempts: int
    parked_at: datetime


class ProjectionRunner:
    """Runs one projection against one journal; `step` applies at most one batch."""

    def __init__(
        self,
        journal: Journal,
        projection: AnyProjection,
        *,
        batch_size: int = 1000,
        max_attempts: int = 3,
        retry_delay: float = 0.05,
        leases: LeaseRegistry | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.journal: SQLJournal = require_sql(journal, "projections")
        if batch_size < 1 or max_attempts < 1:
            raise ProjectionError(f"batch_size and max_attempts must be at least 1, got {batch_size}, {max_attempts}")
        if (leases is None) != (lease is None):
            raise ProjectionError("give both `leases` and `lease`, or neither")
        self.projection = projection
        self.name = projection.name
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.leases = leases
        self.lease = lease
        self._renewed = time.monotonic()
        self._types = frozenset(projection.event_types)
        if isinstance(projection, Projection):
            projection.setup(self.journal)
        else:
            MIGRATIONS.migrate(self.journal)
        dialect = self.journal.sql_dialect
        checkpoint = dialect.insert_if_absent("aj_projections", ("name", "position", "updated_at"), ("name",))
        with self.journal.transaction() as cursor:
            Tx(cursor, dialect).execute(checkpoint, (self.name, 0, time.time()))

    # ----- the loop -------------------------------------------------------------------

    def position(self) -> int:
        """The checkpoint: the last position this projection has applied."""
        return read_checkpoint(self.journal, self.name) or 0

    def step(self) -> int:
        """Apply the next batch; returns how far the checkpoint moved (0 when caught up)."""
        self._keep_lease()
        checkpoint = self.position()
        events, upto = self._read(checkpoint)
        if upto == checkpoint:
            return 0
        try:
            self._commit(checkpoint, upto, events)
        except Exception as exc:
            if is_transient(exc):
                raise
            logger.warning(
                "%s: batch after position %d failed (%s); retrying event by event", self.name, checkpoint, exc
            )
            self._one_by_one(checkpoint, upto, events)
        return upto - checkpoint

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Apply batches until the checkpoint reaches the head; returns the positions advanced."""
        moved = 0
        while step := self.step():
            moved += step
            if progress:
                progress(self.position())
        return moved

    def follow(self, *, stop: Callable[[], bool], idle_timeout: float = 1.0) -> None:
        """Catch up, then follow live appends until `stop()` is true."""
        waiter = waiter_for(self.journal)
        try:
            while not stop():
                moved = self.step()
                waiter.woke(moved > 0)
                if not moved:
                    waiter.wait(idle_timeout)
        finally:
            waiter.close()

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Empty the read model, reset the checkpoint to 0 and replay the whole journal."""
        with self.journal.transaction() as cursor:
            tx = Tx(cursor, self.journal.sql_dialect)
            if isinstance(self.projection, Projection):
                self.projection.clear(tx)
            tx.execute("DELETE FROM aj_projection_dead_letters WHERE projection = ?", (self.name,))
            tx.execute(
                "UPDATE aj_projections SET position = 0, updated_at = ? WHERE name = ?", (time.time(), self.name)
            )
            self._fence(cursor)
        if isinstance(self.projection, ExternalProjection):
            self.projection.clear()
        return self.catch_up(progress)

    # ----- one batch ------------------------------------------------------------------

    def _read(self, checkpoint: int) -> tuple[list[RecordedEvent], int]:
        """The next events of the projection's types, and the position the checkpoint moves to.

        The page is read unfiltered and filtered here: a type filter in SQL makes the database
        walk its type index and sort, which gets slower as the journal grows.
        """
        page = self.journal.read_all(checkpoint, self.batch_size)
        if not page:
            return [], checkpoint
        types = self._types
        events = [event for event in page if event.type in types] if types else page
        return events, page[-1].position

    def _commit(self, checkpoint: int, upto: int, events: Sequence[RecordedEvent]) -> None:
        projection = self.projection
        # a span per batch, in the traces of its events, when a tracer provider is configured
        with tracing.projection_batch(self.name, events) if events and tracing.enabled() else tracing.NO_SPAN:
            if isinstance(projection, ExternalProjection) and events:
                projection.handle(events)  # at least once: the checkpoint below may never be written
            with self.journal.transaction() as cursor:
                tx = Tx(cursor, self.journal.sql_dialect)
                if isinstance(projection, Projection) and events:
                    projection.apply(tx, events)
                self._advance(tx, checkpoint, upto)
                self._fence(cursor)

    def _advance(self, tx: Tx, checkpoint: int, upto: int) -> None:
        tx.execute(
            "UPDATE aj_projections SET position = ?, updated_at = ? WHERE name = ? AND position = ?",
            (upto, time.time(), self.name, checkpoint),
        )
        if tx.cursor.rowcount != 1:
            raise ProjectionError(
                f"projection {self.name!r}: its checkpoint moved away from {checkpoint} while this runner applied "
                "a batch; another runner is applying it (run projections through `agentjournal worker`, which "
                "leases each one to a single node)"
            )

    def _fence(self, cursor: object) -> None:
        if self.leases is not None and self.lease is not None:
            self.leases.check(cursor, self.lease)

    def _keep_lease(self) -> None:
        if self.leases is None or self.lease is None:
            return
        if time.monotonic() - self._renewed >= self.leases.ttl / 3:
            self.lease = self.leases.renew(self.lease)
            self._renewed = time.monotonic()

    # ----- poison events --------------------------------------------------------------

    def _one_by_one(self, checkpoint: int, upto: int, events: Sequence[RecordedEvent]) -> None:
        position = checkpoint
        for event in events:
            error: Exception | None = None
            for attempt in range(1, self.max_attempts + 1):
                try:
                    self._commit(position, event.position, [event])
                    error = None
                    break
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    error = exc
                    if attempt < self.max_attempts:
                        time.sleep(self.retry_delay * attempt)
            if error is not None:
                self._park(position, event, error)
            position = event.position
        if position < upto:
            self._commit(position, upto, [])

    def _park(self, checkpoint: int, event: RecordedEvent, error: Exception) -> None:
        detail = "".join(traceback.format_exception_only(error)).strip()
        logger.error(
            "%s: parked event %d (%s on %s) after %d attempts: %s",
            self.name,
            event.position,
            event.type,
            event.stream_id,
            self.max_attempts,
            detail,
        )
        with self.journal.transaction() as cursor:
            tx = Tx(cursor, self.journal.sql_dialect)
            tx.execute(
                "INSERT INTO aj_projection_dead_letters (projection, position, event_id, stream_id, event_type, error, "
                "attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.name,
                    event.position,
                    event.event_id,
                    event.stream_id,
                    event.type,
                    detail,
                    self.max_attempts,
                    time.time(),
                ),
            )
            self._advance(tx, checkpoint, event.position)
            self._fence(cursor)


def dead_letters(journal: Journal, projection: str | None = None) -> list[DeadLetter]:
    """Parked events, oldest first; of one projection or of all."""
    sql_journal = require_sql(journal, "projections")
    sql = (
        "SELECT projection, position, event_id, stream_id, event_type, error, attempts, parked_at "
        "FROM aj_projection_dead_letters"
    )
    params: list[str] = []
    if projection is not None:
        sql += f" WHERE projection = {sql_journal.param}"
        params.append(projection)
    return [
        DeadLetter(*row[:7], parked_at=datetime.fromtimestamp(float(row[7]), UTC))  # type: ignore[misc]
        for row in sql_journal.query(sql + " ORDER BY parked_at, position", params)
    ]
