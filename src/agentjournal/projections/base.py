"""What a projection is, and the transaction handle it writes its read model through.

Two kinds, two guarantees:

- `Projection`: its read model lives in the journal's database. The runner applies a batch
  and writes the checkpoint in one transaction, so every event is applied exactly once,
  also across a crash.
- `ExternalProjection`: its read model lives elsewhere (a search cluster, a cache, an HTTP
  service). The checkpoint is written after `handle` returns, so a crash in between
  replays the batch: delivery is at least once and `handle` must be idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from agentjournal.journal.errors import JournalError
from agentjournal.journal.schema import Component

if TYPE_CHECKING:  # kept out of the import, so the CLI's options can name this package's constants cheaply
    from agentjournal.journal import Journal, RecordedEvent
    from agentjournal.journal.backends.sql import SQLJournal
    from agentjournal.journal.dialect import Dialect


class ProjectionError(JournalError):
    """A projection that cannot run as asked: unknown name, wrong backend, checkpoint moved."""


def require_sql(journal: Journal, what: str) -> SQLJournal:
    """The journal as a SQL journal, or a clear error for the memory backend."""
    from agentjournal.journal.backends.sql import SQLJournal

    if not isinstance(journal, SQLJournal):
        raise ProjectionError(
            f"{what} keep their read models in the journal's database; the {journal.backend_name} backend has none. "
            "Use sqlite:///:memory: for a throwaway journal, or sqlite://, postgresql://, mysql://"
        )
    return journal


MIGRATIONS = Component("projections", "agentjournal.projections")
"""Checkpoints, parked events and the built-in read models' tables."""


class Tx:
    """A cursor in the runner's transaction, with the journal's SQL dialect.

    SQL is written once with `?` placeholders; `execute` converts them for the database.
    """

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self._cache: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        converted = self._cache.get(sql)
        if converted is None:
            converted = self._cache[sql] = self.dialect.sql(sql)
        return converted

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.cursor.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.cursor.execute(self._sql(sql), params)
        return list(self.cursor.fetchall())

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert rows, replacing the non-key columns of rows whose key already exists.

        Rows go in multi-row statements (one round trip per few hundred rows, which is what
        makes a rebuild fast on a networked database), within every driver's parameter limit.
        """
        rows = list(rows)
        per_statement = max(1, min(500, 16_000 // len(columns)))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            self.execute(
                self.dialect.upsert(table, columns, keys, len(chunk)), [value for row in chunk for value in row]
            )

    def select_in(self, sql: str, values: Sequence[Any], chunk: int = 500) -> list[Any]:
        """`sql` holds one `IN ({})`; runs it over `values` in chunks (drivers cap parameters)."""
        found: list[Any] = []
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            found.extend(self.fetchall(sql.format(", ".join("?" * len(part))), part))
        return found


class Projection(ABC):
    """A read model in the journal's database, applied exactly once per event.

    `apply` gets the events of one batch in position order and writes through `tx`; the
    runner commits it together with the checkpoint. It must not keep state between calls
    outside the database: a batch that fails is rolled back and retried.
    """

    name: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]] = ()
    """The event types it reads; empty means every event."""
    tables: ClassVar[tuple[str, ...]] = ()
    """Its read-model tables, emptied by `clear` before a rebuild."""

    def setup(self, journal: SQLJournal) -> None:
        """Create its tables. The built-in read models come with the projections migration."""
        MIGRATIONS.migrate(journal)

    @abstractmethod
    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None: ...

    def clear(self, tx: Tx) -> None:
        """Empty the read model before a rebuild."""
        for table in self.tables:
            tx.execute(f"DELETE FROM {table}")


class ExternalProjection(ABC):
    """A read model outside the journal's database: at-least-once, so `handle` must be idempotent.

    After a crash between `handle` and the checkpoint write, the same events arrive again;
    key every write by event id or position so that a repeat changes nothing.
    """

    name: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def handle(self, events: Sequence[RecordedEvent]) -> None: ...

    @abstractmethod
    def clear(self) -> None:
        """Empty the external read model before a rebuild."""


AnyProjection = Projection | ExternalProjection
