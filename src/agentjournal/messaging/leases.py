"""The lease registry: time-bounded ownership of a background worker by one node, with fencing.

A lease row holds (name, owner, token, expires_at) in the journal's database. Taking over an
expired lease increments the token, so tokens are monotonic per name. Every write a leased
worker makes is fenced with `check(cursor, lease)` inside the write's own transaction: it
succeeds only while the row still names this owner and token and has not expired. A node
that was paused past its lease therefore cannot write after waking, whatever it believes.

Expiry is judged by the database's clock, never the node's, and no session-scoped advisory
lock is used (those break behind connection poolers such as PgBouncer).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentjournal.journal import Journal, JournalError
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.schema import Component

DEFAULT_TTL = 15.0
"""Seconds a lease lasts unless renewed; a crashed node's work moves within this time."""


MIGRATIONS = Component("messaging", "agentjournal.messaging")
"""aj_leases."""


class LeaseLostError(JournalError):
    """This node no longer holds the lease (it expired and was taken over, or was released)."""


def default_node() -> str:
    """host:pid, unique per worker process on a machine."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this node holds: its fencing token is what its writes are checked against."""

    name: str
    owner: str
    token: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A row of the registry as `agentjournal leases` shows it."""

    name: str
    owner: str
    token: int
    expires_at: datetime | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    held: bool


class LeaseRegistry:
    """Acquire, renew, release and fence leases stored in the journal's database."""

    def __init__(self, journal: Journal, *, ttl: float = DEFAULT_TTL) -> None:
        if not isinstance(journal, SQLJournal):
            raise JournalError(
                f"the lease registry lives in the journal's database; the {journal.backend_name} backend has none "
                "(use sqlite://, postgresql:// or mysql://)"
            )
        if ttl <= 0:
            raise JournalError(f"a lease TTL must be positive, got {ttl}")
        self.journal = journal
        self.ttl = ttl
        dialect = journal.sql_dialect
        self._p = journal.param
        self._now = dialect.now
        self._for_update = dialect.for_update
        self._create = dialect.sql(
            dialect.insert_if_absent(
                "aj_leases", ("name", "owner", "token", "expires_at", "acquired_at", "renewed_at"), ("name",)
            )
        )
        MIGRATIONS.migrate(journal)

    def acquire(self, name: str, owner: str, *, ttl: float | None = None) -> Lease | None:
        """Take the lease if it is free or expired (a new token), or extend it if `owner` holds it.

        Returns None when another owner holds an unexpired lease.
        """
        p, now, seconds = self._p, self._now, ttl or self.ttl
        with self.journal.transaction() as cursor:
            cursor.execute(self._create, (name, "", 0, 0, 0, 0))
            cursor.execute(
                f"UPDATE aj_leases SET owner = {p}, token = token + 1, expires_at = {now} + {p}, "
                f"acquired_at = {now}, renewed_at = {now} WHERE name = {p} AND expires_at <= {now}",
                (owner, seconds, name),
            )
            if cursor.rowcount != 1:
                cursor.execute(
                    f"UPDATE aj_leases SET expires_at = {now} + {p}, renewed_at = {now} "
                    f"WHERE name = {p} AND owner = {p} AND expires_at > {now}",
                    (seconds, name, owner),
                )
                if cursor.rowcount != 1:
                    return None
            cursor.execute(f"SELECT owner, token, expires_at FROM aj_leases WHERE name = {p}", (name,))
            row = cursor.fetchone()
        return Lease(name, row[0], int(row[1]), _time(row[2]))

    def renew(self, lease: Lease, *, ttl: float | None = None) -> Lease:
        """Extend a lease; raises LeaseLostError if it changed hands (or was released) meanwhile.

        A lease that expired but that nobody took is renewed: its token is unchanged, so no other
        node can have written under it.
        """
        p, now = self._p, self._now
        with self.journal.transaction() as cursor:
            cursor.execute(
                f"UPDATE aj_leases SET expires_at = {now} + {p}, renewed_at = {now} "
                f"WHERE name = {p} AND owner = {p} AND token = {p} AND expires_at > 0",
                (ttl or self.ttl, lease.name, lease.owner, lease.token),
            )
            if cursor.rowcount != 1:
                raise LeaseLostError(self._lost_message(cursor, lease))
            cursor.execute(f"SELECT expires_at FROM aj_leases WHERE name = {p}", (lease.name,))
            expires_at = cursor.fetchone()[0]
        return Lease(lease.name, lease.owner, lease.token, _time(expires_at))

    def release(self, lease: Lease) -> bool:
        """Give the lease up now so another node can take it at once; False if it was already lost."""
        p = self._p
        with self.journal.transaction() as cursor:
            cursor.execute(
                f"UPDATE aj_leases SET expires_at = 0 WHERE name = {p} AND owner = {p} AND token = {p}",
                (lease.name, lease.owner, lease.token),
            )
            return bool(cursor.rowcount == 1)

    def check(self, cursor: Any, lease: Lease) -> None:
        """The fence: call inside the transaction of a leased write, as its last statement.

        Raises LeaseLostError (and the caller's transaction rolls back) unless the lease still
        names this owner and token and has not expired. On PostgreSQL and MariaDB the lease row
        stays locked until the write commits, so a takeover cannot interleave with it.
        """
        p = self._p
        cursor.execute(
            f"SELECT token FROM aj_leases WHERE name = {p} AND owner = {p} AND token = {p} "
            f"AND expires_at > {self._now}{self._for_update}",
            (lease.name, lease.owner, lease.token),
        )
        if cursor.fetchone() is None:
            raise LeaseLostError(self._lost_message(cursor, lease) + "; the write was refused")

    def leases(self) -> list[LeaseInfo]:
        """Every lease, held or not, in name order."""
        rows = self.journal.query(
            "SELECT name, owner, token, expires_at, acquired_at, renewed_at, "
            f"CASE WHEN expires_at > {self._now} THEN 1 ELSE 0 END FROM aj_leases ORDER BY name"
        )
        return [
            LeaseInfo(
                name=row[0],
                owner=row[1],
                token=int(row[2]),
                expires_at=_time(row[3]) if row[3] else None,
                acquired_at=_time(row[4]) if row[4] else None,
                renewed_at=_time(row[5]) if row[5] else None,
                held=bool(row[6]),
            )
            for row in rows
        ]

    def _lost_message(self, cursor: Any, lease: Lease) -> str:
        # A locking read sees the latest row, also inside a REPEATABLE READ transaction (MariaDB).
        cursor.execute(f"SELECT owner, token FROM aj_leases WHERE name = {self._p}{self._for_update}", (lease.name,))
        row = cursor.fetchone()
        now_holder = f"now token {row[1]} of {row[0] or 'nobody'}" if row else "the lease row is gone"
        return f"lease {lease.name!r}: {lease.owner} lost token {lease.token} ({now_holder})"


def _time(seconds: Any) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


class LeaseKeeper:
    """A leased worker's side of its lease: renews it in time and fences its writes.

    `ensure()` renews once a third of the TTL has passed since the last renewal, so the lease
    never lapses while the worker runs. It goes by the node's monotonic clock, which runs on
    while a process is frozen: a node woken after a SIGSTOP renews before its next action and
    finds the lease gone (LeaseLostError), so it acts on nothing after it was fenced out. With
    no registry (a worker run by hand) both calls do nothing.
    """

    def __init__(self, leases: LeaseRegistry | None, lease: Lease | None) -> None:
        if (leases is None) != (lease is None):
            raise JournalError("give both `leases` and `lease`, or neither")
        self.leases = leases
        self.lease = lease
        self._renewed = time.monotonic()

    def ensure(self) -> None:
        if self.leases is None or self.lease is None:
            return
        if time.monotonic() - self._renewed >= self.leases.ttl / 3:
            started = time.monotonic()
            self.lease = self.leases.renew(self.lease)
            self._renewed = started

    def fence(self, cursor: Any) -> None:
        """The last statement of a leased write's transaction (see LeaseRegistry.check)."""
        if self.leases is not None and self.lease is not None:
            self.leases.check(cursor, self.lease)
