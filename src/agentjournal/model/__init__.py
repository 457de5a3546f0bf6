"""Aggregates: state folded from a stream, loaded now, at a version or at a moment, with snapshots.

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.model.aggregate import Aggregate as Aggregate
    from agentjournal.model.errors import AggregateLoadError as AggregateLoadError
    from agentjournal.model.errors import VersionOutOfRangeError as VersionOutOfRangeError
    from agentjournal.model.repository import Repository as Repository
    from agentjournal.model.repository import version_at_time as version_at_time
    from agentjournal.model.snapshots import MemorySnapshotStore as MemorySnapshotStore
    from agentjournal.model.snapshots import Snapshot as Snapshot
    from agentjournal.model.snapshots import SnapshotStore as SnapshotStore
    from agentjournal.model.snapshots import SQLSnapshotStore as SQLSnapshotStore
    from agentjournal.model.snapshots import snapshot_store as snapshot_store
    from agentjournal.model.summary import StreamSummary as StreamSummary
    from agentjournal.model.types import AggregateTypes as AggregateTypes
    from agentjournal.model.types import aggregate_types as aggregate_types
    from agentjournal.model.types import import_object as import_object
    from agentjournal.model.types import load_aggregate_type as load_aggregate_type

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.model.aggregate": ("Aggregate",),
        "agentjournal.model.errors": (
            "AggregateLoadError",
            "VersionOutOfRangeError",
        ),
        "agentjournal.model.repository": (
            "Repository",
            "version_at_time",
        ),
        "agentjournal.model.snapshots": (
            "MemorySnapshotStore",
            "Snapshot",
            "SnapshotStore",
            "SQLSnapshotStore",
            "snapshot_store",
        ),
        "agentjournal.model.summary": ("StreamSummary",),
        "agentjournal.model.types": (
            "AggregateTypes",
            "aggregate_types",
            "import_object",
            "load_aggregate_type",
        ),
    },
)
