"""A component that keeps tables in the journal's database, and its migrations, declared once.

Each component (the journal itself, snapshots, projections, leases, ...) names itself and the
package holding its `migrations/<dialect>/NNNN_name.sql` files next to its code;
`agentjournal.schema` lists them all, so `agentjournal migrate`, `migrate --check` and
`agentjournal.schema.migrate(journal)` see every table the product owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentjournal.journal.base import Journal

__all__ = ["JOURNAL", "Component"]


@dataclass(frozen=True)
class Component:
    name: str
    package: str
    """The package whose `migrations/` folder holds this component's SQL, one folder per dialect."""

    def migrate(self, journal: Journal) -> list[str]:
        """Apply this component's pending migrations (idempotent); the names applied now."""
        return journal.migrate(component=self.name, package=self.package)

    def pending(self, journal: Journal) -> list[str]:
        return journal.pending_migrations(component=self.name, package=self.package)


JOURNAL = Component("journal", "agentjournal.journal.backends")
"""The events, the stream heads and the position counter."""
