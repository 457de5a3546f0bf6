"""Aggregates: state folded from a stream, loaded now, at a version or at a moment, with snapshots."""

from agentjournal.model.aggregate import Aggregate
from agentjournal.model.errors import AggregateLoadError, VersionOutOfRangeError
from agentjournal.model.repository import Repository, version_at_time
from agentjournal.model.snapshots import MemorySnapshotStore, Snapshot, SnapshotStore, SQLSnapshotStore, snapshot_store
from agentjournal.model.summary import StreamSummary
from agentjournal.model.types import AggregateTypes, aggregate_types, import_object, load_aggregate_type

__all__ = [
    "Aggregate",
    "AggregateLoadError",
    "AggregateTypes",
    "MemorySnapshotStore",
    "Repository",
    "SQLSnapshotStore",
    "Snapshot",
    "SnapshotStore",
    "StreamSummary",
    "VersionOutOfRangeError",
    "aggregate_types",
    "import_object",
    "load_aggregate_type",
    "snapshot_store",
    "version_at_time",
]
