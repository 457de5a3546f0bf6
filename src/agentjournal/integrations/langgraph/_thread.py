"""One LangGraph thread folded from its stream: checkpoints, pending writes, and channel values resolved
through the parent chain.

A thread's events store what changed per step (see `saver`): a checkpoint stores its metadata, channel
versions and `versions_seen` as differences from its parent's, and a value only for the channels whose
version changed, often as "the parent's list plus these writes". Folding keeps, per checkpoint, where each
channel's value at its version lives (`Source`), so reading a checkpoint materializes only what it needs,
starting from the newest list this process already holds.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from langgraph.checkpoint.base import writes_sort_key

from agentjournal.integrations.langgraph._codec import Codec, Entry, mark
from agentjournal.journal import JournalError, RecordedEvent

CHECKPOINT_SAVED: Final = "CheckpointSaved"
WRITES_SAVED: Final = "WritesSaved"
THREAD_DELETED: Final = "ThreadDeleted"
THREAD_COPIED: Final = "ThreadCopied"
THREAD_PRUNED: Final = "ThreadPruned"
RUNS_DELETED: Final = "RunsDeleted"
THREAD_EVENTS: Final = (CHECKPOINT_SAVED, WRITES_SAVED, THREAD_DELETED, THREAD_COPIED, THREAD_PRUNED, RUNS_DELETED)

_DELTAS: Final = ("+", "+w")
_NO_LIVE: Final = object()


class ThreadCorruptError(JournalError):
    """A thread's events do not fold (a value refers to something the thread does not hold)."""


@dataclass(slots=True, eq=False)
class Source:
    """Where one channel's value at one version is stored: an entry of a checkpoint (None: empty)."""

    entry: Entry | None
    record: CheckpointRecord
    base: Source | None = None


@dataclass(slots=True, eq=False)
class WriteRecord:
    task_id: str
    idx: int
    channel: str
    entry: Entry
    task_path: str
    checkpoint_id: str
    ns: str
    origin: str
    event_version: int
    position: int
    """Its index in its event's list of writes (what a checkpoint's reference names)."""
    live: Any = _NO_LIVE
    """The object `put_writes` was given, in this process: a checkpoint whose value holds the same objects
    refers to the write instead of storing them again."""

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return writes_sort_key(self.task_path, self.task_id, self.idx)


@dataclass(slots=True, eq=False)
class CheckpointRecord:
    ns: str
    id: str
    parent_id: str | None
    parent: CheckpointRecord | None
    ts: str
    v: int
    metadata: dict[str, Any]
    channel_versions: dict[str, Any]
    versions_seen: dict[str, dict[str, Any]]
    updated_channels: list[str] | None
    own: dict[str, Entry]
    origin: str
    event_version: int
    recorded_at: Any
    run: str | None = None
    pending_sends: Entry | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    visible: bool = True

    def has_value(self, channel: str) -> bool:
        source = self.sources.get(channel)
        return source is not None and source.entry is not None


def diff(parent: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What changed from `parent` to `current`: the keys set (new or different) and the keys removed."""
    changed = {key: value for key, value in current.items() if key not in parent or parent[key] != value}
    removed = [key for key in parent if key not in current]
    return changed, removed


def _patch(parent: dict[str, Any], changed: dict[str, Any] | None, removed: list[str] | None) -> dict[str, Any]:
    if not changed and not removed:
        return parent.copy()
    patched = {key: value for key, value in parent.items() if not removed or key not in removed}
    if changed:
        patched.update(changed)
    return patched


class ThreadIndex:
    """The folded state of one thread's stream (and of the threads it was copied from)."""

    def __init__(self, stream: str, codec: Codec, read: Callable[[str, int, int | None], list[RecordedEvent]]):
        self.stream = stream
        self.codec = codec
        self.read = read
        self.version = 0
        self.checkpoints: dict[tuple[str, str], CheckpointRecord] = {}
        self.by_ns: dict[str, list[CheckpointRecord]] = {}
        self._ids: dict[str, list[str]] = {}
        self.events: dict[tuple[str, int], CheckpointRecord | list[WriteRecord]] = {}
        self.writes: dict[tuple[str, str], dict[tuple[str, int], WriteRecord]] = {}
        self._by_version: dict[tuple[str, str, Any], Source] = {}
        self.materialized: dict[tuple[str, str], tuple[Source, list[Any]]] = {}
        self.thread_id: str | None = None

    # ----- folding -------------------------------------------------------------------------------

    def catch_up(self) -> list[RecordedEvent]:
        """Fold the events appended since the last fold (by this process or any other); returns them."""
        events = self.read(self.stream, self.version + 1, None)
        for event in events:
            self.fold(event, self.stream)
            self.version = event.version
        return events

    def fold(self, event: RecordedEvent, origin: str) -> None:
        data = event.data
        kind = event.type
        if kind == CHECKPOINT_SAVED:
            self._add_checkpoint(data, origin, event)
        elif kind == WRITES_SAVED:
            self._add_writes(data, origin, event.version)
        elif kind == THREAD_DELETED:
            self._hide(lambda record: True)
        elif kind == THREAD_COPIED:
            for copied in self.read(data["from"], 1, int(data["through"])):
                self.fold(copied, data["from"])
        elif kind == THREAD_PRUNED:
            keep = {(ns, checkpoint_id) for ns, checkpoint_id in data.get("keep", [])}
            self._hide(lambda record: (record.ns, record.id) not in keep)
        elif kind == RUNS_DELETED:
            runs = set(data["runs"])
            self._hide(lambda record: record.metadata.get("run_id") in runs)

    def _hide(self, condition: Callable[[CheckpointRecord], bool]) -> None:
        """Records stay (later checkpoints may still resolve values through them); reads no longer see them."""
        for key, record in self.checkpoints.items():
            if record.visible and condition(record):
                record.visible = False
                self.writes.pop(key, None)

    def _add_checkpoint(self, d: dict[str, Any], origin: str, event: RecordedEvent) -> None:
        ns = d.get("ns", "")
        if "thread" in d:
            self.thread_id = d["thread"]
        parent: CheckpointRecord | None = None
        parent_id: str | None = None
        ref = d.get("p")
        if isinstance(ref, int):
            found = self.events.get((origin, ref))
            if not isinstance(found, CheckpointRecord):
                raise ThreadCorruptError(f"{origin} v{event.version}: its parent v{ref} is not a checkpoint")
            parent, parent_id = found, found.id
        elif isinstance(ref, str):
            parent_id = ref
            parent = self.checkpoints.get((ns, ref))
        own: dict[str, Entry] = d.get("c", {})
        changed = d.get("cv")
        if changed is not None and not isinstance(changed, dict):  # one version for every stored channel
            changed = dict.fromkeys(own, changed)
        record = CheckpointRecord(
            ns=ns,
            id=d["id"],
            parent_id=parent_id,
            parent=parent,
            ts=d["ts"],
            v=d.get("v", parent.v if parent else 1),
            metadata=_patch(parent.metadata if parent else {}, d.get("m"), d.get("m-")),
            channel_versions=_patch(parent.channel_versions if parent else {}, changed, d.get("cv-")),
            versions_seen=_patch(parent.versions_seen if parent else {}, d.get("vs"), d.get("vs-")),
            updated_channels=d["u"] if "u" in d else sorted(own),
            own=own,
            origin=origin,
            event_version=event.version,
            recorded_at=event.recorded_at,
            run=d.get("run"),
            pending_sends=d.get("sends"),
        )
        for channel, version in record.channel_versions.items():
            entry = own.get(channel)
            if entry is not None:
                base = None
                kind = mark(entry)
                if kind in _DELTAS:
                    base = parent.sources.get(channel) if parent is not None else None
                    if base is None or base.entry is None:
                        raise ThreadCorruptError(
                            f"{origin} v{event.version}: channel {channel!r} adds to its parent's value, "
                            "which the thread does not hold"
                        )
                source = Source(None if kind == "e" else entry, record, base)
                self._by_version[(ns, channel, version)] = source
            elif parent is not None and parent.channel_versions.get(channel) == version and channel in parent.sources:
                source = parent.sources[channel]
            else:
                found_source = self._by_version.get((ns, channel, version))
                if found_source is None:
                    continue  # a version with no value stored (LangGraph's savers leave it out too)
                source = found_source
            record.sources[channel] = source
        key = (ns, record.id)
        previous = self.checkpoints.get(key)
        if previous is not None:  # the same checkpoint put again: the newer one wins
            self.by_ns[ns].remove(previous)
            self._ids[ns].remove(previous.id)
        self.checkpoints[key] = record
        self.events[(origin, event.version)] = record
        ids = self._ids.setdefault(ns, [])
        at = bisect.bisect_right(ids, record.id)
        ids.insert(at, record.id)
        self.by_ns.setdefault(ns, []).insert(at, record)

    def _add_writes(self, d: dict[str, Any], origin: str, version: int) -> None:
        ns = d.get("ns", "")
        ref = d["cp"]
        if isinstance(ref, int):
            found = self.events.get((origin, ref))
            if not isinstance(found, CheckpointRecord):
                raise ThreadCorruptError(f"{origin} v{version}: its checkpoint v{ref} is not a checkpoint")
            checkpoint_id = found.id
        else:
            checkpoint_id = ref
        task_id, task_path = d["task"], d.get("path", "")
        records = []
        bucket = self.writes.setdefault((ns, checkpoint_id), {})
        for position, item in enumerate(d["w"]):
            channel, entry = item[0], item[1]
            idx = item[2] if len(item) > 2 else position
            write = WriteRecord(task_id, idx, channel, entry, task_path, checkpoint_id, ns, origin, version, position)
            records.append(write)
            bucket[(task_id, idx)] = write
        self.events[(origin, version)] = records

    # ----- reading -------------------------------------------------------------------------------

    def latest(self, ns: str) -> CheckpointRecord | None:
        for record in reversed(self.by_ns.get(ns, ())):
            if record.visible:
                return record
        return None

    def get(self, ns: str, checkpoint_id: str) -> CheckpointRecord | None:
        record = self.checkpoints.get((ns, checkpoint_id))
        return record if record is not None and record.visible else None

    def newest_first(self, ns: str | None) -> Iterator[CheckpointRecord]:
        """Visible checkpoints, newest id first; of one namespace, or of all (ids across namespaces merged)."""
        if ns is not None:
            for record in reversed(self.by_ns.get(ns, ())):
                if record.visible:
                    yield record
            return
        merged = sorted(
            (record for records in self.by_ns.values() for record in records if record.visible),
            key=lambda record: record.id,
            reverse=True,
        )
        yield from merged

    def pending(self, record: CheckpointRecord) -> list[WriteRecord]:
        """The writes stored against a checkpoint, in the order LangGraph applies them."""
        bucket = self.writes.get((record.ns, record.id))
        if not bucket:
            return []
        return sorted(bucket.values(), key=lambda write: write.sort_key)

    def values(self, record: CheckpointRecord) -> dict[str, Any]:
        """The checkpoint's channel values, materialized."""
        return {
            channel: self.value(record.ns, channel, source)
            for channel, source in record.sources.items()
            if source.entry is not None
        }

    def value(self, ns: str, channel: str, source: Source) -> Any:
        """One channel's value; a list comes from the newest list this process holds, plus the tails since."""
        key = (ns, channel)
        hit = self.materialized.get(key)
        chain: list[Source] = []
        step: Source | None = source
        while True:
            if step is None or step.entry is None:
                raise ThreadCorruptError(f"{self.stream}: channel {channel!r} adds to a value the thread does not hold")
            if hit is not None and hit[0] is step:
                value: Any = hit[1]
                break
            if mark(step.entry) in _DELTAS:
                chain.append(step)
                step = step.base
                continue
            value = self._decode(step)
            break
        if not chain:
            if type(value) is list:
                if hit is None or hit[0] is not source:
                    self.materialized[key] = (source, value)
                return value.copy()
            return value
        if type(value) is not list:
            raise ThreadCorruptError(f"{self.stream}: channel {channel!r} adds to a value that is not a list")
        grown = value.copy()
        for delta in reversed(chain):
            grown.extend(self._tail(delta))
        self.materialized[key] = (source, grown)
        return grown.copy()

    def list_value(self, ns: str, channel: str, source: Source) -> list[Any] | None:
        """The value as the saver compares it (no copy): the list this process holds, or None."""
        hit = self.materialized.get((ns, channel))
        if hit is not None and hit[0] is source:
            return hit[1]
        value = self.value(ns, channel, source)
        if type(value) is not list:
            return None
        return self.materialized[(ns, channel)][1]

    def _decode(self, source: Source) -> Any:
        assert source.entry is not None
        entry = source.entry
        if mark(entry) == "w":
            return self.codec.decode(self._write(source.record.origin, entry["w"]).entry)
        return self.codec.decode(entry)

    def _tail(self, source: Source) -> list[Any]:
        assert source.entry is not None
        entry = source.entry
        if mark(entry) == "+":
            tail = self.codec.decode(entry["+"])
            if type(tail) is not list:
                raise ThreadCorruptError(f"{self.stream}: a list's tail is not a list")
            return tail
        grown: list[Any] = []
        for ref in entry["+w"]:
            written = self.codec.decode(self._write(source.record.origin, ref).entry)
            if type(written) is list:
                grown.extend(written)
            else:
                grown.append(written)
        return grown

    def _write(self, origin: str, ref: list[int]) -> WriteRecord:
        found = self.events.get((origin, ref[0]))
        if not isinstance(found, list) or ref[1] >= len(found):
            raise ThreadCorruptError(f"{origin}: a value refers to write {ref}, which the thread does not hold")
        return found[ref[1]]

    # ----- the saver's comparisons -----------------------------------------------------------------

    @staticmethod
    def identical_prefix(base: list[Any], value: list[Any]) -> bool:
        return len(value) >= len(base) and all(map(operator.is_, base, value))
