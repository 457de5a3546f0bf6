"""Every table the product keeps in a journal's database: the components and their migrations.

`migrate(journal)` applies whatever is pending for every component, `pending(journal)` lists it
(what `agentjournal migrate` and `migrate --check` do). Each component declares its migrations
once, next to its code (`MIGRATIONS` in model.snapshots, projections.base, messaging.leases, api.keys).
"""

from __future__ import annotations

from agentjournal.api.keys import MIGRATIONS as API_KEYS
from agentjournal.journal import Journal
from agentjournal.journal.schema import JOURNAL, Component
from agentjournal.messaging.leases import MIGRATIONS as LEASES
from agentjournal.model.snapshots import MIGRATIONS as SNAPSHOTS
from agentjournal.projections.base import MIGRATIONS as PROJECTIONS

__all__ = ["COMPONENTS", "Component", "migrate", "pending"]

COMPONENTS: tuple[Component, ...] = (JOURNAL, SNAPSHOTS, PROJECTIONS, LEASES, API_KEYS)
"""In the order they are applied (the journal's own tables first)."""


def pending(journal: Journal) -> list[str]:
    """Every migration not yet applied, as `<component>/<NNNN_name>`, in the order `migrate` applies them."""
    return [name for component in COMPONENTS for name in component.pending(journal)]


def migrate(journal: Journal) -> list[str]:
    """Apply every pending migration of every component; returns the names applied (none when up to date)."""
    return [name for component in COMPONENTS for name in component.migrate(journal)]
