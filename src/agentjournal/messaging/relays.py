"""Relays: deliver the outbox's messages at least once, in order, under a lease.

A relay reads OutboxMessage events after its checkpoint (aj_messaging_checkpoints), hands each to its
transport (a handler function in-process, NATS JetStream between machines) and moves the
checkpoint after the transport accepted it. A crash in between delivers those messages again
(at least once); the receiver drops the repeats by dispatch id (messaging.receivers).

A message whose delivery fails is retried with exponential backoff, the relay waiting on it
so that messages keep their order; after `max_attempts` it becomes a dead letter with its
error (aj_outbox_failures) and the relay moves past it. `outbox retry` sends dead letters
again. Under a lease every checkpoint write is fenced, and the relay stops delivering as soon
as its lease may have expired by its own monotonic clock (which runs on while a process is
frozen), so a node paused past its lease delivers nothing after waking: it renews first and
finds the lease gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from agentjournal.journal import Journal
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.messaging.checkpoints import LeasedRunner, OutboxError, require_sql
from agentjournal.messaging.leases import MIGRATIONS, Lease, LeaseRegistry
from agentjournal.messaging.outbox import OUTBOX_MESSAGE, Dispatch

logger = logging.getLogger("agentjournal.relays")


INLINE_WAIT = 0.25
"""A backoff at most this long is slept inside `step`; a longer one ends the step (the worker comes back)."""


class UndeliverableError(OutboxError):
    """A message that no retry can deliver (no handler for its destination): a dead letter at once."""


class Transport(Protocol):
    """Where a relay hands messages: `deliver` returns once the message is accepted, raises otherwise."""

    def deliver(self, dispatch: Dispatch) -> None: ...

    def close(self) -> None: ...


class HandlerTransport:
    """In-process delivery, for one machine: each destination's handler is called with the dispatch."""

    def __init__(self, handlers: Mapping[str, Callable[[Dispatch], object]]) -> None:
        if not handlers or not all(callable(handler) for handler in handlers.values()):
            raise OutboxError(f"an in-process relay needs {{destination: handler function}}, got {handlers!r}")
        self.handlers = dict(handlers)

    def deliver(self, dispatch: Dispatch) -> None:
        handler = self.handlers.get(dispatch.destination)
        if handler is None:
            raise UndeliverableError(
                f"no handler for destination {dispatch.destination!r} "
                f"(this relay has: {', '.join(sorted(self.handlers))})"
            )
        handler(dispatch)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: base, base*factor, base*factor², … capped; a dead letter after max_attempts."""

    max_attempts: int = 8
    base: float = 0.2
    factor: float = 2.0
    cap: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base < 0 or self.factor < 1 or self.cap < 0:
            raise OutboxError(f"a backoff needs max_attempts >= 1, base >= 0, factor >= 1, cap >= 0: {self!r}")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return float(min(self.cap, self.base * self.factor ** (attempts - 1)))


@dataclass(frozen=True)
class Relay:
    """A named relay: its transport, the destinations it serves (prefixes; none: all) and its backoff."""

    name: str
    transport: Transport
    destinations: tuple[str, ...] = ()
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def lease_name(self) -> str:
        return f"relay:{self.name}"

    def serves(self, destination: str) -> bool:
        return not self.destinations or destination.startswith(self.destinations)

    def runner(
        self,
        journal: Journal,
        *,
        batch_size: int = 100,
        leases: LeaseRegistry | None = None,
        lease: Lease | None = None,
    ) -> RelayRunner:
        return RelayRunner(journal, self, batch_size=batch_size, leases=leases, lease=lease)


@dataclass(frozen=True, slots=True)
class Failure:
    """A message that failed at least once: retrying (the relay's head), dead, or queued for a retry."""

    relay: str
    dispatch: Dispatch
    status: str
    attempts: int
    error: str
    next_attempt_at: datetime
    updated_at: datetime


class RelayRunner(LeasedRunner):
    """Runs one relay against one journal; `step` delivers at most one batch."""

    def __init__(
        self,
        journal: Journal,
        relay: Relay,
        *,
        batch_size: int = 100,
        leases: LeaseRegistry | None = None,
        lease: Lease | None = None,
    ) -> None:
        super().__init__(
            journal, relay.lease_name, f"relay {relay.name!r}", batch_size=batch_size, leases=leases, lease=lease
        )
        self.relay = relay
        self.name = relay.name
        self._sql = self.journal.sql_dialect.sql

    def step(self) -> int:
        """Deliver the next batch (queued retries first); returns the delivery attempts it made, failed
        ones included (0: nothing can be delivered now, everything is delivered or waits for its backoff)."""
        tried = self._redeliver()
        checkpoint = self.position()
        page = self.journal.read_all(checkpoint, self.batch_size, types=[OUTBOX_MESSAGE])
        failures = self._failures_of([event.event_id for event in page], "retrying")
        position, delivered = checkpoint, 0
        finished: list[str] = []
        for event in page:
            dispatch = Dispatch.of(event)
            if self.relay.serves(dispatch.destination):
                failed = failures.get(dispatch.dispatch_id)
                wait = failed.next_attempt_at.timestamp() - time.time() if failed else 0.0
                if wait > INLINE_WAIT:
                    break  # its backoff: later messages wait, so that they keep their order
                if wait > 0:
                    time.sleep(wait)  # a short one is waited out here, not a whole worker round
                self.keeper.ensure()
                try:
                    self.relay.transport.deliver(dispatch)
                except Exception as error:
                    attempts = (failed.attempts if failed else 0) + 1
                    dead = isinstance(error, UndeliverableError) or attempts >= self.relay.backoff.max_attempts
                    self._commit(checkpoint, position, delivered, finished)
                    tried += delivered
                    self._record_failure(dispatch, attempts, error, dead=dead, past=position if dead else None)
                    if not dead:
                        return tried + 1
                    checkpoint = position = dispatch.position
                    delivered, finished = 0, []
                    tried += 1
                    continue
                delivered += 1
                if failed is not None:
                    finished.append(dispatch.dispatch_id)
            position = event.position
        self._commit(checkpoint, position, delivered, finished)
        return tried + delivered

    def catch_up(self) -> int:
        """Deliver until nothing can be delivered now; returns the delivery attempts made."""
        total = 0
        while tried := self.step():
            total += tried
        return total

    # ----- bookkeeping ----------------------------------------------------------------

    def _commit(self, checkpoint: int, position: int, delivered: int, finished: list[str]) -> None:
        """Move the checkpoint (compare-and-set, fenced) and forget the failures now delivered."""
        if position == checkpoint and not delivered:
            return
        with self.journal.transaction() as cursor:
            self.checkpoint.advance(cursor, checkpoint, position, delivered)
            for dispatch_id in finished:
                cursor.execute(
                    self._sql("DELETE FROM aj_outbox_failures WHERE relay = ? AND dispatch_id = ?"),
                    (self.name, dispatch_id),
                )
            self.keeper.fence(cursor)

    def _record_failure(
        self, dispatch: Dispatch, attempts: int, error: BaseException, *, dead: bool, past: int | None = None
    ) -> None:
        """A failed attempt: retrying (after its backoff) or dead; with `past`, the checkpoint moves
        from there over the message, in the same transaction."""
        detail = f"{type(error).__name__}: {error}"
        wait = 0.0 if dead else self.relay.backoff.delay(attempts)
        status = "dead" if dead else "retrying"
        log = logger.error if dead else logger.warning
        log(
            "relay %s: %s %s to %s failed (attempt %d): %s%s",
            self.name,
            dispatch.type,
            dispatch.dispatch_id,
            dispatch.destination,
            attempts,
            detail,
            "; a dead letter now" if dead else f"; again in {wait:.2f}s",
        )
        now = time.time()
        upsert = self.journal.sql_dialect.upsert("aj_outbox_failures", FAILURE_COLUMNS, ("relay", "dispatch_id"))
        row = (
            self.name,
            dispatch.dispatch_id,
            dispatch.position,
            dispatch.destination,
            dispatch.type,
            status,
            attempts,
            detail,
            orjson.dumps(dispatch.to_json()).decode(),
            now + wait,
            now,
        )
        with self.journal.transaction() as cursor:
            cursor.execute(self._sql(upsert), row)
            if past is not None:
                self.checkpoint.advance(cursor, past, dispatch.position, 0)
            self.keeper.fence(cursor)

    def _failures_of(self, dispatch_ids: list[str], status: str) -> dict[str, Failure]:
        wanted = set(dispatch_ids)
        if not wanted:
            return {}
        return {
            failure.dispatch.dispatch_id: failure
            for failure in failures(self.journal, relay=self.name, status=status)
            if failure.dispatch.dispatch_id in wanted
        }

    def _redeliver(self) -> int:
        """Deliver the dead letters `outbox retry` queued (a failure makes one dead again); returns the attempts."""
        queued = failures(self.journal, relay=self.name, status="retry")
        for failure in queued:
            self.keeper.ensure()
            try:
                self.relay.transport.deliver(failure.dispatch)
            except Exception as error:
                self._record_failure(failure.dispatch, failure.attempts + 1, error, dead=True)
                continue
            with self.journal.transaction() as cursor:
                cursor.execute(
                    self._sql(
                        "DELETE FROM aj_outbox_failures WHERE relay = ? AND dispatch_id = ? AND status = 'retry'"
                    ),
                    (self.name, failure.dispatch.dispatch_id),
                )
                self.checkpoint.count(cursor, 1)
                self.keeper.fence(cursor)
        return len(queued)


FAILURE_COLUMNS = (
    "relay",
    "dispatch_id",
    "position",
    "destination",
    "message_type",
    "status",
    "attempts",
    "error",
    "dispatch",
    "next_attempt_at",
    "updated_at",
)


def failures(journal: Journal, *, relay: str | None = None, status: str | None = None) -> list[Failure]:
    """Messages that failed at least once, in delivery order: of one relay or all, of one status or all."""
    sql_journal = require_sql(journal)
    if not _has_outbox(sql_journal):
        return []
    where, params = _where(relay=relay, status=status)
    rows = sql_journal.query(
        sql_journal.sql_dialect.sql(
            "SELECT relay, status, attempts, error, dispatch, next_attempt_at, updated_at FROM aj_outbox_failures"
            f"{where} ORDER BY relay, position"
        ),
        params,
    )
    return [
        Failure(
            relay=row[0],
            dispatch=Dispatch.from_json(orjson.loads(row[4])),
            status=row[1],
            attempts=int(row[2]),
            error=row[3],
            next_attempt_at=datetime.fromtimestamp(float(row[5]), UTC),
            updated_at=datetime.fromtimestamp(float(row[6]), UTC),
        )
        for row in rows
    ]


def _has_outbox(journal: SQLJournal) -> bool:
    """Whether the outbox's tables exist (a read never creates them)."""
    return not any("outbox" in name for name in MIGRATIONS.pending(journal))


def _where(**equal: str | None) -> tuple[str, list[str]]:
    given = [(column, value) for column, value in equal.items() if value is not None]
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in given), [value for _, value in given]


def retry_dead_letters(journal: Journal, *, relay: str | None = None, dispatch_ids: Iterable[str] = ()) -> int:
    """Queue dead letters for the relay's next step (all of a relay, or the ones named); returns how many."""
    sql_journal = require_sql(journal)
    if not _has_outbox(sql_journal):
        return 0
    chosen = list(dispatch_ids)
    where, params = _where(relay=relay)
    where = f"{where} AND" if where else " WHERE"
    sql = f"UPDATE aj_outbox_failures SET status = 'retry', updated_at = ?{where} status = 'dead'"
    values: list[Any] = [time.time(), *params]
    if chosen:
        sql += f" AND dispatch_id IN ({', '.join('?' * len(chosen))})"
        values.extend(chosen)
    with sql_journal.transaction() as cursor:
        cursor.execute(sql_journal.sql_dialect.sql(sql), values)
        return int(cursor.rowcount)


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """One relay as `outbox status` shows it."""

    relay: str
    position: int
    pending: int
    """OutboxMessage events after its checkpoint (of every destination: a relay's filter is its code's)."""
    retrying: int
    dead: int
    delivered: int
    updated_at: datetime


def outbox_status(journal: Journal) -> list[RelayStatus]:
    """Every relay that ever ran: pending, retrying (in flight), dead letters and delivered, by name.

    Reads only: a journal whose outbox tables were never created has no relays to show.
    """
    sql_journal = require_sql(journal)
    if not _has_outbox(sql_journal):
        return []
    sql = sql_journal.sql_dialect.sql
    counts: dict[tuple[str, str], int] = {
        (row[0], row[1]): int(row[2])
        for row in sql_journal.query("SELECT relay, status, count(*) FROM aj_outbox_failures GROUP BY relay, status")
    }
    found = []
    for name, position, delivered, updated_at in sql_journal.query(
        sql(
            "SELECT name, position, delivered, updated_at FROM aj_messaging_checkpoints WHERE name LIKE ? ORDER BY name"
        ),
        ["relay:%"],
    ):
        relay = name.removeprefix("relay:")
        [(pending,)] = sql_journal.query(
            sql("SELECT count(*) FROM aj_events WHERE type = ? AND position > ?"), [OUTBOX_MESSAGE, int(position)]
        )
        found.append(
            RelayStatus(
                relay=relay,
                position=int(position),
                pending=int(pending),
                retrying=counts.get((relay, "retrying"), 0) + counts.get((relay, "retry"), 0),
                dead=counts.get((relay, "dead"), 0),
                delivered=int(delivered),
                updated_at=datetime.fromtimestamp(float(updated_at), UTC),
            )
        )
    return found


def load_messaging(path: str) -> list[Any]:
    """The relays and process managers named by `package.module:attr` (a list, or a function returning one)."""
    from agentjournal.messaging.process_managers import ProcessManager
    from agentjournal.model.types import import_object

    found: Any = import_object(path, "messaging")
    if callable(found) and not isinstance(found, Relay | ProcessManager):
        try:
            found = found()
        except TypeError as exc:
            raise OutboxError(
                f"messaging {path!r} is a function that cannot be called without arguments: {exc}"
            ) from None
    items = list(found) if isinstance(found, list | tuple) else [found]
    wrong = [item for item in items if not isinstance(item, Relay | ProcessManager)]
    if not items or wrong:
        raise OutboxError(f"messaging {path!r}: {wrong[0] if wrong else found!r} is not a Relay or a ProcessManager")
    return items
