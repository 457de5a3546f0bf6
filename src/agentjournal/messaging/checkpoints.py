"""Where relays and process managers keep their place: a named position, moved by compare-and-set."""

from __future__ import annotations

import time
from typing import Any

from agentjournal.journal import Journal, JournalError
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.messaging.leases import MIGRATIONS, Lease, LeaseKeeper, LeaseRegistry


class OutboxError(JournalError):
    """A relay or process manager that cannot run as asked, or a message no transport can take."""


def require_sql(journal: Journal) -> SQLJournal:
    if not isinstance(journal, SQLJournal):
        raise OutboxError(
            f"relays and process managers keep their checkpoints in the journal's database; the "
            f"{journal.backend_name} backend has none (use sqlite://, postgresql:// or mysql://)"
        )
    return journal


class Checkpoint:
    """A row of aj_messaging_checkpoints: the last position handled, and how many messages it settled."""

    def __init__(self, journal: SQLJournal, name: str, what: str) -> None:
        self.journal = journal
        self.name = name
        self.what = what
        """Named in the error when the position moved under this runner: "relay 'crm'"."""
        MIGRATIONS.migrate(journal)
        dialect = journal.sql_dialect
        self._sql = dialect.sql
        columns = ("name", "position", "delivered", "updated_at")
        with journal.transaction() as cursor:
            cursor.execute(
                dialect.sql(dialect.insert_if_absent("aj_messaging_checkpoints", columns, ("name",))),
                (name, 0, 0, time.time()),
            )

    def position(self) -> int:
        rows = self.journal.query(
            self._sql("SELECT position FROM aj_messaging_checkpoints WHERE name = ?"), [self.name]
        )
        return int(rows[0][0])

    def advance(self, cursor: Any, checkpoint: int, position: int, settled: int) -> None:
        """Inside the caller's transaction: from `checkpoint` to `position`, or OutboxError if it moved."""
        cursor.execute(
            self._sql(
                "UPDATE aj_messaging_checkpoints SET position = ?, delivered = delivered + ?, updated_at = ? "
                "WHERE name = ? AND position = ?"
            ),
            (position, settled, time.time(), self.name, checkpoint),
        )
        if cursor.rowcount != 1:
            raise OutboxError(
                f"{self.what}: its checkpoint moved away from {checkpoint} while it ran; another process runs it "
                "(run it through `agentjournal worker`, which leases it to one node)"
            )

    def count(self, cursor: Any, settled: int) -> None:
        """Count messages settled without moving the position (redelivered dead letters)."""
        cursor.execute(
            self._sql("UPDATE aj_messaging_checkpoints SET delivered = delivered + ?, updated_at = ? WHERE name = ?"),
            (settled, time.time(), self.name),
        )


class LeasedRunner:
    """What a relay runner and a process manager runner share: their journal, batch size, lease and checkpoint."""

    def __init__(
        self,
        journal: Journal,
        name: str,
        what: str,
        *,
        batch_size: int,
        leases: LeaseRegistry | None,
        lease: Lease | None,
    ) -> None:
        self.journal = require_sql(journal)
        if batch_size < 1:
            raise OutboxError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.keeper = LeaseKeeper(leases, lease)
        self.checkpoint = Checkpoint(self.journal, name, what)

    @property
    def lease(self) -> Lease | None:
        return self.keeper.lease

    def position(self) -> int:
        return self.checkpoint.position()
