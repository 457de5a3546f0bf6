"""JournalSaver: a LangGraph checkpointer whose threads are journal streams of what changed per step.

A thread lives on `langgraph-<thread_id>` (every namespace of it: subgraphs too). Each `put` appends one
CheckpointSaved event: the checkpoint's id, time and metadata, its channel versions and `versions_seen`
as differences from its parent's, and values only for the channels whose version changed, where a list
that grew is stored as "the parent's list plus these writes" (or plus this tail), not again. Each
`put_writes` appends one WritesSaved event with the task's writes. So a 200-step conversation is stored
about once, where a saver that stores every checkpoint whole stores it 100 times.

Reading folds the stream once per process (`_thread.ThreadIndex`) and then only what others appended
since; a value is rebuilt from the newest copy this process holds. The journal never changes an event,
so `delete_thread`, `prune` and `delete_for_runs` append an event that hides checkpoints from every read
through a saver; the events themselves stay (see docs/integrations/langgraph.md, "Deleting").

Async methods run the sync ones on a worker thread (`asyncio.to_thread`), as `AsyncJournal` does.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import hashlib
import operator
import random
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentjournal.integrations.langgraph._codec import Codec, Entry, is_plain_json
from agentjournal.integrations.langgraph._thread import (
    _NO_LIVE,
    CHECKPOINT_SAVED,
    RUNS_DELETED,
    THREAD_COPIED,
    THREAD_DELETED,
    THREAD_PRUNED,
    WRITES_SAVED,
    CheckpointRecord,
    ThreadIndex,
    WriteRecord,
)
from agentjournal.integrations.langgraph.guard import aguard_tool_call, guard_tool_call
from agentjournal.integrations.langgraph.runs import RunView
from agentjournal.integrations.recorder import RecorderError
from agentjournal.journal import ConcurrencyError, Journal, JournalError, NewEvent, RecordedEvent
from agentjournal.journal.envelope import MAX_STREAM_ID_LENGTH

if TYPE_CHECKING:
    from agentjournal.agents.policy import Policy

__all__ = ["THREAD_PREFIX", "JournalSaver", "thread_stream"]

THREAD_PREFIX: Final = "langgraph-"
_RETRIES: Final = 20
_INLINE_TEXT: Final = 32
"""A string this short is stored again rather than referred to (the reference would be as long)."""


def thread_stream(thread_id: object) -> str:
    """`langgraph-<thread_id>`; a thread id too long or unprintable for a stream id is hashed."""
    text = str(thread_id)
    if text and len(text) + len(THREAD_PREFIX) <= MAX_STREAM_ID_LENGTH and text.isprintable():
        return THREAD_PREFIX + text
    return THREAD_PREFIX + "sha256-" + hashlib.sha256(text.encode()).hexdigest()


class _Thread:
    """A thread's folded index and the writes this process has queued for it.

    Writers queue a job and then take the lock; whoever holds it appends every job queued by then in one
    batch (group commit), so while one append waits for the database the next steps' writes gather, and
    each writer returns only once its own event is stored."""

    def __init__(self, index: ThreadIndex, thread_id: object) -> None:
        self.index = index
        self.thread_id = thread_id
        self.lock = threading.RLock()
        self.jobs: list[_Job] = []
        self.jobs_lock = threading.Lock()
        self.arrived = threading.Condition(self.jobs_lock)
        self.folded = False
        self.view: Any = None
        """The run view (runs.RunView) of this thread, made on first use."""


@dataclass(eq=False)
class _Job:
    build: Callable[[ThreadIndex], NewEvent | None]
    """The event, built against the index as it will be when the event is appended (None: nothing to add)."""
    after: Callable[[ThreadIndex, int], None] | None = None
    """Right after the event is folded (before the next job of the batch is built)."""
    hooks: Callable[[ThreadIndex, int], None] | None = None
    """Once the batch is stored: the run view."""
    linger: bool = False
    """Wait briefly for a companion job before appending (a task's writes wait for the next checkpoint)."""
    done: bool = False
    error: BaseException | None = None


class _Provisional:
    """An event as it will be stored, folded before the batch is appended (the batch's later events refer
    to it); if the append fails the index is thrown away and the thread folded again."""

    __slots__ = ("data", "recorded_at", "type", "version")

    def __init__(self, event: NewEvent, version: int) -> None:
        self.type = event.type
        self.data = event.data
        self.version = version
        self.recorded_at = datetime.now(UTC)


class JournalSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer (sync and async) backed by an agentjournal journal.

        saver = JournalSaver(journal)
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"messages": [...]}, {"configurable": {"thread_id": "t-1"}})

    `deltas=False` stores each changed channel whole, as LangGraph's own savers do: for graphs whose
    nodes change list elements in place (LangGraph asks nodes to return updates instead), since a saved
    element that is the same object as its parent's is not stored again. `plain_json` stores plain JSON
    values as JSON (readable in the journal) rather than through the serializer; it defaults to on for
    LangGraph's JsonPlusSerializer and off for any other `serde` (an EncryptedSerializer sees every value).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        serde: SerializerProtocol | None = None,
        runs: bool = True,
        agent: str = "langgraph",
        model: str = "langgraph",
        policy: Policy | None = None,
        tenant_id: str | None = None,
        deltas: bool = True,
        plain_json: bool | None = None,
        blob_threshold: int = 16 * 1024,
        cache_threads: int = 256,
        run_wait_s: float = 30.0,
        linger_s: float = 0.002,
    ) -> None:
        super().__init__(serde=serde)
        if getattr(journal, "redact", None) is not None:
            raise ValueError(
                "JournalSaver needs a journal without a redactor: a checkpoint must read back exactly as it "
                "was saved (open the journal without redact=..., or give the saver serde=EncryptedSerializer(...))"
            )
        if blob_threshold < 1024:
            raise ValueError(f"blob_threshold must be at least 1024 bytes, got {blob_threshold}")
        self.journal = journal
        self.runs = runs
        self.agent = agent
        self.model = model
        self.policy = policy
        self.tenant_id = tenant_id
        self.run_wait_s = run_wait_s
        self.linger_s = linger_s
        self.deltas = deltas
        self.cache_threads = cache_threads
        self._plain_json = plain_json
        self._blob_threshold = blob_threshold
        self.codec = Codec(journal, self.serde, plain_json=plain_json, blob_threshold=blob_threshold)
        self._threads: OrderedDict[str, _Thread] = OrderedDict()
        self._threads_lock = threading.Lock()

    def with_allowlist(self, extra_allowlist: Any) -> JournalSaver:
        """A clone whose serializer has the graph's msgpack allowlist; it keeps its own folded threads, so
        every value it reads goes through that serializer."""
        clone = super().with_allowlist(extra_allowlist)
        if clone is self:
            return self
        assert isinstance(clone, JournalSaver)
        clone.codec = Codec(self.journal, clone.serde, plain_json=self._plain_json, blob_threshold=self._blob_threshold)
        clone._threads = OrderedDict()
        clone._threads_lock = threading.Lock()
        return clone

    # ----- threads -------------------------------------------------------------------------------

    def _thread(self, stream: str, thread_id: object = None) -> _Thread:
        with self._threads_lock:
            thread = self._threads.get(stream)
            if thread is None:
                thread_id = stream.removeprefix(THREAD_PREFIX) if thread_id is None else thread_id
                thread = self._threads[stream] = _Thread(ThreadIndex(stream, self.codec, self._read), thread_id)
                while len(self._threads) > self.cache_threads:
                    self._threads.popitem(last=False)
            else:
                self._threads.move_to_end(stream)
            return thread

    def _read(self, stream: str, first: int, last: int | None) -> list[RecordedEvent]:
        return self.journal.read_stream(stream, first, last)

    @contextlib.contextmanager
    def _open(self, thread_id: object) -> Iterator[_Thread]:
        """The thread, locked and caught up with what any writer appended."""
        thread = self._thread(thread_stream(thread_id), thread_id)
        with thread.lock:
            self._drain(thread)
            thread.index.catch_up()
            thread.folded = True
            yield thread

    def _submit(self, thread: _Thread, job: _Job) -> None:
        """Queue `job` and return once its event is stored (by this thread or by whoever held the lock)."""
        with thread.jobs_lock:
            thread.jobs.append(job)
            thread.arrived.notify_all()
        with thread.lock:
            if not job.done:
                if job.linger and self.linger_s > 0:
                    self._linger(thread)
                self._drain(thread)
        if job.error is not None:
            raise job.error

    def _linger(self, thread: _Thread) -> None:
        """A task's writes are usually followed at once by the next checkpoint: wait a moment for it, so
        both go in one commit (the writes are stored, and `put_writes` returns, only with it)."""
        deadline = time.monotonic() + self.linger_s
        with thread.jobs_lock:
            while len(thread.jobs) == 1 and (left := deadline - time.monotonic()) > 0:
                thread.arrived.wait(left)

    def _drain(self, thread: _Thread) -> None:
        """Append every queued job in one batch at the version this process folded; on a conflict, fold
        what the other writer appended and build the batch again (its references may have changed)."""
        with thread.jobs_lock:
            jobs, thread.jobs = thread.jobs, []
        if not jobs:
            return
        try:
            for _ in range(_RETRIES):
                if not thread.folded:
                    thread.index.catch_up()
                    thread.folded = True
                index = thread.index
                if self.runs:  # made now, so it never reads the batch's provisional checkpoints
                    self._view(thread, thread.thread_id)
                base = index.version
                events: list[NewEvent] = []
                stored: list[tuple[_Job, int]] = []
                try:
                    for job in jobs:
                        event = job.build(index)
                        if event is None:
                            continue
                        version = base + len(events) + 1
                        index.fold(_Provisional(event, version), index.stream)  # type: ignore[arg-type]
                        index.version = version
                        if job.after is not None:
                            job.after(index, version)
                        events.append(event)
                        stored.append((job, version))
                    if events:
                        self.journal.append(index.stream, events, expected_version=base)
                except ConcurrencyError:
                    self._forget(thread)
                    continue
                except BaseException:
                    self._forget(thread)
                    raise
                for job in jobs:
                    job.done = True
                for job, version in stored:
                    if job.hooks is not None:
                        try:
                            job.hooks(index, version)
                        except Exception as exc:
                            job.error = exc
                return
            raise JournalError(
                f"{thread.index.stream}: gave up after {_RETRIES} conflicting appends from other writers"
            )
        except BaseException as exc:
            for job in jobs:
                if not job.done:
                    job.done, job.error = True, exc
            if not isinstance(exc, Exception):
                raise

    def _forget(self, thread: _Thread) -> None:
        """Drop what this process folded of the thread (provisionally, or stale); it is read again."""
        thread.index = ThreadIndex(thread.index.stream, self.codec, self._read)
        thread.folded = False
        thread.view = None

    # ----- put -----------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = _configurable(config)
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "") or ""
        parent_id = configurable.get("checkpoint_id")
        stored_metadata = _json_metadata(get_serializable_checkpoint_metadata(config, metadata))
        values = checkpoint["channel_values"]
        thread = self._thread(thread_stream(thread_id), thread_id)

        def build(index: ThreadIndex) -> NewEvent:
            data = self._checkpoint_data(
                index,
                ns=ns,
                thread_id=thread_id,
                checkpoint=checkpoint,
                metadata=stored_metadata,
                new_versions=new_versions,
                parent_id=parent_id,
            )
            self._before_checkpoint(thread, data, ns, config)
            return NewEvent(CHECKPOINT_SAVED, data, correlation_id=self._correlation(thread))

        def after(index: ThreadIndex, version: int) -> None:
            record = index.events[(index.stream, version)]
            assert isinstance(record, CheckpointRecord)
            for channel in new_versions:  # this process holds the graph's lists: the next step compares to them
                value = values.get(channel)
                source = record.sources.get(channel)
                if type(value) is list and source is not None and source.entry is not None:
                    index.materialized[(ns, channel)] = (source, value.copy())
            if record.parent is not None:
                for write in index.writes.get((ns, record.parent.id), {}).values():
                    write.live = _NO_LIVE

        def hooks(index: ThreadIndex, version: int) -> None:
            record = index.events[(index.stream, version)]
            assert isinstance(record, CheckpointRecord)
            self._after_checkpoint(thread, record, config)

        self._submit(thread, _Job(build, after, hooks))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _checkpoint_data(
        self,
        index: ThreadIndex,
        *,
        ns: str,
        thread_id: object,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: ChannelVersions,
        parent_id: str | None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"id": checkpoint["id"], "ts": checkpoint["ts"]}
        if ns:
            data["ns"] = ns
        if thread_stream(thread_id) != THREAD_PREFIX + str(thread_id):
            data["thread"] = str(thread_id)
        parent = index.checkpoints.get((ns, parent_id)) if parent_id else None
        if parent is not None and parent.origin == index.stream:
            data["p"] = parent.event_version
        elif parent_id:
            data["p"] = parent_id
        if parent is None or parent.v != checkpoint["v"]:
            data["v"] = checkpoint["v"]
        versions_seen = {node: dict(seen) for node, seen in checkpoint["versions_seen"].items()}
        for key, current, base in (
            ("m", metadata, parent.metadata if parent else {}),
            ("cv", dict(checkpoint["channel_versions"]), parent.channel_versions if parent else {}),
            ("vs", versions_seen, parent.versions_seen if parent else {}),
        ):
            changed, removed = _diff(base, current)
            if changed:
                data[key] = changed
            if removed:
                data[key + "-"] = removed
        sends = dict(checkpoint).get("pending_sends")
        if sends:
            data["sends"] = self.codec.encode(sends)
        values = checkpoint["channel_values"]
        writes = [write for write in index.pending(parent) if write.live is not _NO_LIVE] if parent else []
        entries: dict[str, Entry] = {}
        for channel in new_versions:
            if channel not in values:
                entries[channel] = {"e": 1}
            else:
                entries[channel] = self._entry(
                    index, ns, channel=channel, value=values[channel], parent=parent, writes=writes
                )
        if entries:
            data["c"] = entries
        # LangGraph's usual step: every changed channel at one new version, and those are the updated channels.
        versions = data.get("cv")
        if versions and "cv-" not in data and sorted(versions) == sorted(entries) and len(set(versions.values())) == 1:
            only = next(iter(versions.values()))
            if isinstance(only, int) and not isinstance(only, bool):
                data["cv"] = only
        updated = checkpoint.get("updated_channels")
        if updated is None:
            data["u"] = None
        elif list(updated) != sorted(entries):
            data["u"] = list(updated)
        return data

    def _entry(
        self,
        index: ThreadIndex,
        ns: str,
        *,
        channel: str,
        value: Any,
        parent: CheckpointRecord | None,
        writes: list[WriteRecord],
    ) -> Entry:
        """How to store one changed channel: by reference to what is stored already, when it is."""
        mine = [write for write in writes if write.channel == channel]
        if self.deltas and type(value) is list and parent is not None:
            source = parent.sources.get(channel)
            if source is not None and source.entry is not None:
                base = index.list_value(ns, channel, source)
                if base is not None and self._extends(base, value):
                    tail = value[len(base) :]
                    refs = _refs(tail, mine)
                    if refs is not None:
                        return {"+w": refs}
                    return {"+": self.codec.encode(tail)}
        if not (isinstance(value, (bool, int, float)) or value is None) and not (
            isinstance(value, str) and len(value) <= _INLINE_TEXT
        ):
            for write in mine:
                if write.live is value:
                    return {"w": [write.event_version, write.position]}
        return self.codec.encode(value)

    def _extends(self, base: list[Any], value: list[Any]) -> bool:
        """True when `value` begins with every element of `base`: the same objects (the graph's reducer
        kept them), or else values that encode to the same bytes."""
        if len(value) < len(base):
            return False
        if all(map(operator.is_, base, value)):
            return True
        return all(a is b or self._same(a, b) for a, b in zip(base, value, strict=False))

    def _same(self, a: Any, b: Any) -> bool:
        try:
            if self.codec.plain_json and is_plain_json(a) and is_plain_json(b):
                return orjson.dumps(a) == orjson.dumps(b)
            return self.serde.dumps_typed(a) == self.serde.dumps_typed(b)
        except Exception:
            return False

    # ----- put_writes ------------------------------------------------------------------------------

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = _configurable(config)
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "") or ""
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise ValueError("put_writes needs the checkpoint's id in config['configurable']['checkpoint_id']")
        thread = self._thread(thread_stream(thread_id), thread_id)
        kept: list[Any] = []

        def build(index: ThreadIndex) -> NewEvent | None:
            bucket = index.writes.get((ns, checkpoint_id), {})
            items: list[list[Any]] = []
            kept.clear()
            for position, (channel, value) in enumerate(writes):
                idx = WRITES_IDX_MAP.get(channel, position)
                if idx >= 0 and (task_id, idx) in bucket:
                    continue  # stored already (a retry): a regular write is written once
                item: list[Any] = [channel, self.codec.encode(value)]
                if idx != len(items):
                    item.append(idx)
                items.append(item)
                kept.append(value)
            if not items:
                return None
            record = index.checkpoints.get((ns, checkpoint_id))
            data: dict[str, Any] = {
                "cp": record.event_version if record is not None and record.origin == index.stream else checkpoint_id,
                "task": task_id,
                "w": items,
            }
            if task_path:
                data["path"] = task_path
            if ns:
                data["ns"] = ns
            return NewEvent(WRITES_SAVED, data, correlation_id=self._correlation(thread))

        def after(index: ThreadIndex, version: int) -> None:
            records = index.events[(index.stream, version)]
            assert isinstance(records, list)
            for record, value in zip(records, kept, strict=True):
                record.live = value

        def hooks(index: ThreadIndex, version: int) -> None:
            records = index.events[(index.stream, version)]
            assert isinstance(records, list)
            self._after_writes(thread, records, config)

        self._submit(thread, _Job(build, after, hooks, linger=True))

    # ----- reading ---------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = _configurable(config)
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "") or ""
        checkpoint_id = get_checkpoint_id(config)
        with self._open(thread_id) as thread:
            index = thread.index
            record = index.get(ns, checkpoint_id) if checkpoint_id else index.latest(ns)
            if record is None:
                return None
            return self._tuple(index, record, thread_id)

    def _tuple(self, index: ThreadIndex, record: CheckpointRecord, thread_id: object) -> CheckpointTuple:
        checkpoint: dict[str, Any] = {
            "v": record.v,
            "id": record.id,
            "ts": record.ts,
            "channel_values": index.values(record),
            "channel_versions": dict(record.channel_versions),
            "versions_seen": {node: dict(seen) for node, seen in record.versions_seen.items()},
            "updated_channels": list(record.updated_channels) if record.updated_channels is not None else None,
        }
        if record.pending_sends is not None:
            checkpoint["pending_sends"] = self.codec.decode(record.pending_sends)
        parent_config: RunnableConfig | None = None
        if record.parent_id:
            parent_config = {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": record.ns, "checkpoint_id": record.parent_id}
            }
        pending = [(write.task_id, write.channel, self.codec.decode(write.entry)) for write in index.pending(record)]
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": record.ns, "checkpoint_id": record.id}},
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=copy.deepcopy(record.metadata),  # type: ignore[arg-type]
            parent_config=parent_config,
            pending_writes=pending,
        )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of one thread (one namespace when the config names one), or of every
        thread when `config` is None; `filter` matches metadata keys by equality."""
        before_id = get_checkpoint_id(before) if before else None
        if config is None:
            yield from self._list_all(filter, before_id, limit)
            return
        configurable = _configurable(config)
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns")
        only = configurable.get("checkpoint_id")
        with self._open(thread_id) as thread:
            index = thread.index  # kept: a reset of the thread (another writer) makes a new one
            records = [record for record in index.newest_first(ns) if _matches(record, only, before_id, filter)]
        for record in records[:limit]:
            with thread.lock:
                item = self._tuple(index, record, thread_id)
            yield item

    def _list_all(
        self, filter: dict[str, Any] | None, before_id: str | None, limit: int | None
    ) -> Iterator[CheckpointTuple]:
        found: list[tuple[CheckpointRecord, _Thread, ThreadIndex, str]] = []
        for stream in self._streams():
            thread = self._thread(stream)
            with thread.lock:
                self._drain(thread)
                thread.index.catch_up()
                thread.folded = True
                thread_id = thread.index.thread_id or stream.removeprefix(THREAD_PREFIX)
                found += [
                    (record, thread, thread.index, thread_id)
                    for record in thread.index.newest_first(None)
                    if _matches(record, None, before_id, filter)
                ]
        found.sort(key=lambda item: item[0].id, reverse=True)
        for record, thread, index, thread_id in found[:limit]:
            with thread.lock:
                item = self._tuple(index, record, thread_id)
            yield item

    def _streams(self) -> Iterator[str]:
        after = ""
        while True:
            page = self.journal.streams(THREAD_PREFIX, after=after, limit=1000)
            for info in page:
                yield info.stream_id
            if len(page) < 1000:
                return
            after = page[-1].stream_id

    # ----- deleting, copying, pruning ----------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Hide every checkpoint and write of the thread from reads through a saver; the journal keeps the
        events (they are immutable): this is not erasure."""
        thread = self._thread(thread_stream(thread_id), thread_id)

        def build(index: ThreadIndex) -> NewEvent | None:
            if not any(record.visible for record in index.checkpoints.values()) and not index.writes:
                return None
            return NewEvent(THREAD_DELETED, {})

        with self._open(thread_id):  # folds what others appended, so the check above sees it
            self._submit(thread, _Job(build))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """The target thread starts with every checkpoint and write the source has now (one event on the
        target, which refers to the source's events: nothing is stored twice)."""
        source_stream = thread_stream(source_thread_id)
        target_stream = thread_stream(target_thread_id)
        if source_stream == target_stream:
            raise ValueError(f"copy_thread: the source and the target are the same thread ({source_thread_id!r})")
        with self._open(source_thread_id) as source:
            through = source.index.version
        if through == 0:
            return
        target = self._thread(target_stream)
        self._submit(target, _Job(lambda index: NewEvent(THREAD_COPIED, {"from": source_stream, "through": through})))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: reads see only each namespace's newest checkpoint; `delete`: nothing. The events
        stay in the journal (the history is hidden, not freed)."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"prune: unknown strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            with self._open(thread_id) as thread:
                self._submit(thread, _Job(_prune_latest))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Hide the checkpoints whose metadata names one of `run_ids`, in every thread (this reads every
        thread of the journal once)."""
        runs = sorted({str(run_id) for run_id in run_ids})
        if not runs:
            return
        for stream in self._streams():
            thread = self._thread(stream)
            with thread.lock:
                thread.index.catch_up()
                thread.folded = True
                self._submit(thread, _Job(lambda index: _delete_runs(index, runs)))

    # ----- versions --------------------------------------------------------------------------------

    def get_next_version(self, current: Any, channel: None = None) -> Any:
        """Integers (short to store); a thread begun by a saver with string versions keeps their form."""
        if current is None:
            return 1
        if isinstance(current, str):
            number = int(current.split(".")[0]) + 1
            return f"{number:032}.{random.random():016}"
        return int(current) + 1

    # ----- the run view (runs.py) ---------------------------------------------------------------------

    def _view(self, thread: _Thread, thread_id: object) -> RunView | None:
        if not self.runs:
            return None
        if thread.view is None:
            thread.view = RunView(
                self.journal,
                thread.index,
                thread_id,
                agent=self.agent,
                model=self.model,
                policy=self.policy,
                tenant_id=self.tenant_id,
            )
        view: RunView = thread.view
        return view

    def _before_checkpoint(self, thread: _Thread, data: dict[str, Any], ns: str, config: RunnableConfig) -> None:
        view = self._view(thread, _configurable(config)["thread_id"])
        if view is not None:
            view.names_run(data, ns)

    def _after_checkpoint(self, thread: _Thread, record: CheckpointRecord, config: RunnableConfig) -> None:
        view = self._view(thread, _configurable(config)["thread_id"])
        if view is not None:
            self._moved(view, lambda: view.checkpoint_saved(record, dict(config)))

    def _after_writes(self, thread: _Thread, records: builtins.list[WriteRecord], config: RunnableConfig) -> None:
        view = self._view(thread, _configurable(config)["thread_id"])
        if view is not None:
            self._moved(view, lambda: view.writes_saved(records))

    @staticmethod
    def _moved(view: RunView, record: Any) -> None:
        """Record into the run; when another process moved it (a human decided), reload it and go on."""
        try:
            record()
        except RecorderError as exc:
            if "another writer moved it" not in str(exc):
                raise
            view.refresh()
            record()

    def _correlation(self, thread: _Thread) -> str | None:
        """The open run's correlation id, so a run's checkpoints and writes are found with its events."""
        view = thread.view
        run = view.run if view is not None else None
        return run.correlation_id if run is not None and not run.state.finished else None

    def run_of(self, thread_id: object) -> str | None:
        """The id of the thread's open run (`run-<id>` is its stream), or None when none is open."""
        with self._open(thread_id) as thread:
            view = self._view(thread, thread_id)
            run = view.current() if view is not None else None
            return run.run_id if run is not None else None

    # ----- the policy, in front of every tool a ToolNode runs ------------------------------------------

    def guard(self, request: Any, execute: Any) -> Any:
        """`ToolNode(tools, wrap_tool_call=saver.guard)`: the policy decides each call before it runs."""
        return guard_tool_call(self, request, execute)

    async def aguard(self, request: Any, execute: Any) -> Any:
        """`ToolNode(tools, awrap_tool_call=saver.aguard)`: `guard` for graphs run with `ainvoke`."""
        return await aguard_tool_call(self, request, execute)

    # ----- async -------------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)


def _configurable(config: RunnableConfig) -> dict[str, Any]:
    configurable = config.get("configurable") if isinstance(config, dict) else None
    if not isinstance(configurable, dict) or configurable.get("thread_id") in (None, ""):
        raise ValueError(
            "a checkpointer needs a thread: pass config={'configurable': {'thread_id': ...}} "
            f"(got {sorted(configurable) if isinstance(configurable, dict) else config!r})"
        )
    return configurable


def _json_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata as JSON (tuples become lists; anything else JSON cannot hold becomes its text)."""
    encoded = orjson.dumps(metadata, default=str, option=orjson.OPT_NON_STR_KEYS)
    value: dict[str, Any] = orjson.loads(encoded)
    return value


def _diff(base: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    changed = {key: value for key, value in current.items() if key not in base or base[key] != value}
    return changed, [key for key in base if key not in current]


def _refs(tail: list[Any], writes: list[WriteRecord]) -> list[list[int]] | None:
    """The parent's writes whose values, concatenated in LangGraph's order, are exactly `tail`'s objects."""
    refs: list[list[int]] = []
    at = 0
    for write in sorted(writes, key=lambda write: write.sort_key):
        if at == len(tail):
            break
        items = write.live if type(write.live) is list else [write.live]
        count = len(items)
        if count and at + count <= len(tail) and all(map(operator.is_, items, tail[at : at + count])):
            refs.append([write.event_version, write.position])
            at += count
    return refs if at == len(tail) else None


def _prune_latest(index: ThreadIndex) -> NewEvent | None:
    keep = [[ns, latest.id] for ns in sorted(index.by_ns) if (latest := index.latest(ns)) is not None]
    if sum(1 for record in index.checkpoints.values() if record.visible) <= len(keep):
        return None
    return NewEvent(THREAD_PRUNED, {"keep": keep})


def _delete_runs(index: ThreadIndex, runs: builtins.list[str]) -> NewEvent | None:
    if not any(record.visible and record.metadata.get("run_id") in runs for record in index.checkpoints.values()):
        return None
    return NewEvent(RUNS_DELETED, {"runs": runs})


def _matches(record: CheckpointRecord, only: str | None, before_id: str | None, filter: dict[str, Any] | None) -> bool:
    if only and record.id != only:
        return False
    if before_id and record.id >= before_id:
        return False
    return not filter or all(record.metadata.get(key) == value for key, value in filter.items())
