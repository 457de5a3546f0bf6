"""The Journal interface and every decision that needs no I/O, shared by all backends.

A backend only executes: it stores a prepared batch atomically (`_write`) and fetches
rows. Validation, context stamping, hashing, idempotent retries, upcasting and
verification live here, once.
"""

from __future__ import annotations

import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel

from agentjournal.journal.context import EventContext, current_context, current_traceparent, event_context
from agentjournal.journal.envelope import (
    ANY,
    CLOSES_STREAM,
    DEFAULT_MAX_PAYLOAD_BYTES,
    GENESIS_HASH,
    MAX_ENVELOPE_FIELD_LENGTH,
    MAX_STREAM_ID_LENGTH,
    MAX_TYPE_LENGTH,
    AppendResult,
    BrokenLink,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    VerifyReport,
    canonical_json,
    check_identifier,
)
from agentjournal.journal.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventNotFoundError,
    InvalidEventError,
    StreamClosedError,
)
from agentjournal.journal.ids import uuid7
from agentjournal.journal.registry import EventRegistry

Build = Callable[[int, str], list[RecordedEvent]]
"""Turns (current version, last hash) into the batch's envelopes, inside the write transaction."""


class EventIdTaken(Exception):
    """Raised by a backend when a unique event id collides; the base decides what it means."""


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """Filters of `read_all`, handed to the backend as one value."""

    types: tuple[str, ...] = ()
    tenant_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class _Where:
    """Where an event sits in a batch, for error messages: formatted only when one is raised,
    since building the text for every event of every batch would tax the append path."""

    __slots__ = ("_about", "_event", "_index", "_stream_id", "_total")

    def __init__(self, stream_id: str, index: int, total: int, event: object, about: str = "") -> None:
        self._stream_id, self._index, self._total, self._event, self._about = stream_id, index, total, event, about

    def about(self, part: str) -> _Where:
        return _Where(self._stream_id, self._index, self._total, self._event, part)

    def __str__(self) -> str:
        kind = getattr(self._event, "type", None)
        named = f" ({kind})" if isinstance(kind, str) and kind.isprintable() and len(kind) <= MAX_TYPE_LENGTH else ""
        text = f"stream {self._stream_id!r}, event {self._index} of {self._total}{named}"
        return f"{text}: {self._about}" if self._about else text


@dataclass(frozen=True, slots=True)
class _Pending:
    """A validated event waiting for its version, position, time and hash."""

    event_id: str
    explicit_id: bool
    type: str
    schema_version: int
    data: dict[str, Any]
    data_json: bytes
    metadata_json: bytes
    actor: str | None
    tenant_id: str | None
    correlation_id: str | None
    causation_id: str | None
    traceparent: str | None


class Journal(ABC):
    """An append-only event store. Open one with `Journal.open(url)`."""

    backend_name: ClassVar[str]

    def __init__(
        self,
        *,
        registry: EventRegistry | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ):
        self.registry = registry or EventRegistry()
        self.max_payload_bytes = max_payload_bytes
        self.redact = redact
        """Maps each event's data before it is encoded and hashed (e.g. agents.redaction.Redactor())."""
        self.url = ""
        self._before_commit: Callable[[], None] | None = None
        """Test hook: called inside the write transaction, after the inserts, before COMMIT."""

    @staticmethod
    def open(url: str, **options: Any) -> Journal:
        """Open (and migrate, unless `migrate=False`) the journal at `url`.

        sqlite:///path.db, sqlite:///:memory:, postgresql://…, mysql://… or memory://
        """
        from agentjournal.journal.urls import open_journal

        return open_journal(url, **options)

    # ----- writing ---------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append a batch atomically; all of it is stored or none of it."""
        check_identifier(stream_id, "stream id", MAX_STREAM_ID_LENGTH)
        batch = [events] if isinstance(events, NewEvent) else list(events)
        if not batch:
            raise InvalidEventError(f"stream {stream_id!r}: nothing to append (the batch is empty)")
        if expected_version != ANY and (
            not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 0
        ):
            raise InvalidEventError(
                f"stream {stream_id!r}: expected_version must be a version >= 0 or 'any', got {expected_version!r}"
            )
        pending = self._prepare(stream_id, batch)
        try:
            stored = self._write(stream_id, expected_version, self._builder(stream_id, pending))
        except (ConcurrencyError, EventIdTaken, StreamClosedError) as conflict:
            retry = self._find_retry(stream_id, pending)
            if retry is not None:
                return retry
            if isinstance(conflict, EventIdTaken):
                raise DuplicateEventError(pending[0].event_id, "an event id of this batch is already stored") from None
            raise
        return AppendResult(stream_id, stored)

    def _prepare(self, stream_id: str, batch: list[NewEvent]) -> list[_Pending]:
        context = current_context()
        traceparent = context.traceparent or current_traceparent()
        for name in ("actor", "tenant_id", "correlation_id", "causation_id", "traceparent"):
            if getattr(context, name) is not None:
                check_identifier(
                    getattr(context, name), f"stream {stream_id!r}: the context's {name}", MAX_ENVELOPE_FIELD_LENGTH
                )
        pending: list[_Pending] = []
        seen_ids: set[str] = set()
        for index, event in enumerate(batch, start=1):
            where = _Where(stream_id, index, len(batch), event)
            if not isinstance(event, NewEvent):
                raise InvalidEventError(f"{where}: expected a NewEvent, got {type(event).__name__}")
            check_identifier(event.type, where.about("event type"), MAX_TYPE_LENGTH)
            data, schema_version = self._payload(event, where)
            if self.redact is not None:
                data = self.redact(data)
            data_json = self._encode(data, where.about("data"))
            metadata = event.metadata
            if event.closes_stream is not False or CLOSES_STREAM in metadata:
                metadata = self._closing_metadata(event, where)
                if metadata.get(CLOSES_STREAM) is True and index < len(batch):
                    raise InvalidEventError(
                        f"stream {stream_id!r}: event {index} of {len(batch)} closes the stream; "
                        "nothing may follow it in the batch"
                    )
            metadata_json = self._encode(metadata, where.about("metadata"))
            size = len(data_json) + len(metadata_json)
            if size > self.max_payload_bytes:
                raise InvalidEventError(
                    f"{where}: the payload is {size:,} bytes; the limit is {self.max_payload_bytes:,} bytes"
                )
            for name in ("actor", "tenant_id", "correlation_id", "causation_id", "traceparent"):
                if getattr(event, name) is not None:
                    check_identifier(getattr(event, name), where.about(name), MAX_ENVELOPE_FIELD_LENGTH)
            event_id = self._event_id(event.event_id, where)
            if event_id in seen_ids:
                raise InvalidEventError(f"{where}: event id {event_id} appears twice in the batch")
            seen_ids.add(event_id)
            pending.append(
                _Pending(
                    event_id=event_id,
                    explicit_id=event.event_id is not None,
                    type=event.type,
                    schema_version=schema_version,
                    data=data,
                    data_json=data_json,
                    metadata_json=metadata_json,
                    actor=event.actor or context.actor,
                    tenant_id=event.tenant_id or context.tenant_id,
                    correlation_id=event.correlation_id or context.correlation_id,
                    causation_id=event.causation_id or context.causation_id,
                    traceparent=event.traceparent or traceparent,
                )
            )
        return pending

    def _payload(self, event: NewEvent, where: _Where) -> tuple[dict[str, Any], int]:
        if isinstance(event.data, BaseModel):
            registered = self.registry.type_of(event.data)
            if registered != event.type:
                raise InvalidEventError(f"{where}: data is a {registered} model, not {event.type}")
            data = event.data.model_dump(mode="json")
        elif isinstance(event.data, dict):
            data = event.data
        else:
            raise InvalidEventError(f"{where}: data must be a JSON object (a dict), got {type(event.data).__name__}")
        if not isinstance(event.metadata, dict):
            raise InvalidEventError(
                f"{where}: metadata must be a JSON object (a dict), got {type(event.metadata).__name__}"
            )
        if event.schema_version is None:
            return data, self.registry.schema_version(event.type)
        if (
            not isinstance(event.schema_version, int)
            or isinstance(event.schema_version, bool)
            or event.schema_version < 1
        ):
            raise InvalidEventError(f"{where}: schema_version must be an integer >= 1, got {event.schema_version!r}")
        return data, event.schema_version

    @staticmethod
    def _closing_metadata(event: NewEvent, where: _Where) -> dict[str, Any]:
        """The metadata with the closing flag merged in (it is hashed and exported with the event)."""
        if not isinstance(event.closes_stream, bool):
            raise InvalidEventError(f"{where}: closes_stream must be True or False, got {event.closes_stream!r}")
        flagged = event.metadata.get(CLOSES_STREAM, event.closes_stream)
        if not isinstance(flagged, bool):
            raise InvalidEventError(
                f"{where.about(f'metadata {CLOSES_STREAM!r}')} must be true or false, got {flagged!r}"
            )
        if event.closes_stream and not flagged:
            raise InvalidEventError(f"{where}: closes_stream=True, but its metadata says {CLOSES_STREAM!r}: false")
        if event.closes_stream and CLOSES_STREAM not in event.metadata:
            return {**event.metadata, CLOSES_STREAM: True}
        return event.metadata

    @staticmethod
    def _encode(value: dict[str, Any], where: object) -> bytes:
        try:
            encoded = canonical_json(value)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidEventError(f"{where} is not JSON-serializable: {exc}") from None
        # orjson writes NaN and infinities as null; refuse them rather than store a changed value.
        if b"null" in encoded and _has_non_finite(value):
            raise InvalidEventError(f"{where} is not JSON-serializable: it holds NaN or an infinity")
        return encoded

    @staticmethod
    def _event_id(given: str | None, where: object) -> str:
        if given is None:
            return uuid7()
        try:
            return str(uuid.UUID(str(given)))
        except ValueError:
            raise InvalidEventError(f"{where}: event_id {given!r} is not a UUID") from None

    def _builder(self, stream_id: str, pending: list[_Pending]) -> Build:
        def build(current_version: int, last_hash: str) -> list[RecordedEvent]:
            recorded_at = datetime.now(UTC)
            prev_hash = last_hash
            stored = []
            for offset, item in enumerate(pending, start=1):
                event = RecordedEvent(
                    event_id=item.event_id,
                    stream_id=stream_id,
                    version=current_version + offset,
                    position=0,
                    type=item.type,
                    schema_version=item.schema_version,
                    recorded_at=recorded_at,
                    actor=item.actor,
                    tenant_id=item.tenant_id,
                    # A root event (no context) starts its own causal chain.
                    correlation_id=item.correlation_id or pending[0].event_id,
                    causation_id=item.causation_id,
                    traceparent=item.traceparent,
                    data_json=item.data_json,
                    metadata_json=item.metadata_json,
                    prev_hash=prev_hash,
                    hash="",
                    data=item.data,
                )
                event.hash = prev_hash = event.compute_hash()
                stored.append(event)
            return stored

        return build

    def _find_retry(self, stream_id: str, pending: list[_Pending]) -> AppendResult | None:
        """After a conflict: is this batch a retry of one already stored? (None if not.)"""
        explicit = [item for item in pending if item.explicit_id]
        if not explicit:
            return None
        stored = {event.event_id: event for event in self._fetch_by_ids([item.event_id for item in explicit])}
        if not stored:
            return None
        for item in pending:
            event = stored.get(item.event_id)
            if event is None:
                continue
            if (
                event.stream_id != stream_id
                or event.type != item.type
                or _bytes(event.data_json) != item.data_json
                or _bytes(event.metadata_json) != item.metadata_json
            ):
                raise DuplicateEventError(
                    item.event_id,
                    f"already stored as {event.type} version {event.version} of stream {event.stream_id!r} "
                    "with different content",
                )
        if len(stored) < len(pending):
            first_stored = next(item.event_id for item in pending if item.event_id in stored)
            raise DuplicateEventError(
                first_stored,
                f"only {len(stored)} of the {len(pending)} events of this batch are already stored; "
                "a retry must repeat the original batch exactly",
            )
        ordered = sorted(stored.values(), key=lambda event: event.position)
        return AppendResult(stream_id, [self.registry.upcast(event) for event in ordered], already_appended=True)

    @staticmethod
    def _check_expected(stream_id: str, expected: ExpectedVersion, current: int) -> None:
        if expected not in (ANY, current):
            raise ConcurrencyError(stream_id, expected, current)

    def import_events(self, records: Iterable[dict[str, Any]], *, progress: Callable[[int], None] | None = None) -> int:
        """Store exported envelopes as they are (ids, times, hashes); refuses any that fail their hash.

        Positions are assigned anew by this journal; versions and hash chains are kept.
        """
        count = 0
        batch: list[RecordedEvent] = []
        for number, record in enumerate(records, start=1):
            event = _event_from_export(record, number)
            if batch and (
                event.stream_id != batch[-1].stream_id
                or event.version != batch[-1].version + 1
                or batch[-1].closes_stream  # what follows a closing event is refused, as an append would be
            ):
                count += self._import_batch(batch)
                if progress:
                    progress(count)
                batch = []
            batch.append(event)
        if batch:
            count += self._import_batch(batch)
            if progress:
                progress(count)
        return count

    def _import_batch(self, batch: list[RecordedEvent]) -> int:
        first = batch[0]

        def build(current_version: int, last_hash: str) -> list[RecordedEvent]:
            if first.prev_hash != last_hash:
                raise InvalidEventError(
                    f"import: stream {first.stream_id!r} version {first.version} does not chain onto the stored "
                    f"version {current_version} (prev_hash {first.prev_hash[:12]}… != {last_hash[:12]}…)"
                )
            return batch

        self._write(first.stream_id, first.version - 1, build)
        return len(batch)

    # ----- reading ---------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of one stream, versions from..to inclusive (backwards: newest first)."""
        check_identifier(stream_id, "stream id", MAX_STREAM_ID_LENGTH)
        if from_version < 1 or (to_version is not None and to_version < from_version):
            raise InvalidEventError(
                f"stream {stream_id!r}: bad version range {from_version}..{to_version} (versions start at 1)"
            )
        return self._upcast(self._fetch_stream(stream_id, from_version, to_version, backwards, limit))

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        types: Iterable[str] | None = None,
        tenant_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        backwards: bool = False,
    ) -> list[RecordedEvent]:
        """Up to `limit` events of every stream with position > `after`, in position order.

        Backwards reads return positions < `after` (or the newest, when `after` is 0), newest first.
        """
        if limit < 1:
            raise InvalidEventError(f"read_all: limit must be at least 1, got {limit}")
        filters = ReadFilter(
            types=tuple(types or ()),
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            since=_utc(since),
            until=_utc(until),
        )
        return self._upcast(self._fetch_all(after, limit, filters, backwards))

    def iter_all(self, after: int = 0, *, batch_size: int = 1000, **filters: Any) -> Iterator[RecordedEvent]:
        """Every event after `after`, read in pages of `batch_size`."""
        while True:
            page = self.read_all(after, batch_size, **filters)
            yield from page
            if len(page) < batch_size:
                return
            after = page[-1].position

    def get_event(self, event_id: str) -> RecordedEvent:
        found = self._fetch_by_ids([self._event_id(event_id, "get_event")])
        if not found:
            raise EventNotFoundError(f"no event with id {event_id}")
        return self._upcast(found)[0]

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist."""
        check_identifier(stream_id, "stream id", MAX_STREAM_ID_LENGTH)
        return self._stream_head(stream_id)[0]

    def _stream_closed(self, stream_id: str, closed_at: int | None = None) -> StreamClosedError:
        """The refusal of an append to a closed stream, naming the closing event (reads: refusal path only)."""
        if closed_at is None:
            version, _, closed_at = self._stream_head(stream_id)
            if closed_at is None:  # reopened since the database refused the append
                closed_at = version
        closing = self._fetch_stream(stream_id, closed_at, closed_at, False, 1)
        return StreamClosedError(stream_id, closed_at, closing[0].type if closing else None)

    def streams(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[StreamInfo]:
        """Streams in id order, optionally only those starting with `prefix`, after `after`."""
        return self._fetch_streams(prefix, after, limit)

    def _upcast(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        if not self.registry.has_upcasters:
            return events
        upcast = self.registry.upcast
        return [upcast(event) for event in events]

    # ----- verification ----------------------------------------------------------------

    def verify(self, stream_id: str | None = None, *, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute every hash chain; report the first broken link in position order.

        Also checks that each stream's recorded head (version, last hash and closed state)
        matches its last event, which catches events deleted from the end of a stream and a
        closed stream reopened behind the journal's back.
        """
        heads: dict[str, tuple[int, str, bool]] = {}
        checked = 0
        events = (
            iter(self._fetch_stream(stream_id, 1, None, False, None)) if stream_id is not None else self._scan_raw()
        )
        for event in events:
            checked += 1
            version, last_hash, closed = heads.get(event.stream_id, (0, GENESIS_HASH, False))
            reason = None
            if event.version != version + 1:
                reason = f"version {event.version} follows version {version}"
            elif event.prev_hash != last_hash:
                reason = "prev_hash does not match the hash of the previous event"
            elif event.compute_hash() != event.hash:
                reason = "the stored hash does not match the event's content (the row was changed)"
            elif closed:
                reason = f"version {event.version} follows version {version}, which closed the stream"
            if reason:
                return VerifyReport(
                    len(heads), checked, BrokenLink(event.stream_id, event.version, event.position, reason)
                )
            heads[event.stream_id] = (event.version, event.hash, event.closes_stream)
            if progress and checked % 10_000 == 0:
                progress(checked)
        names = [stream_id] if stream_id is not None else [info.stream_id for info in self._all_streams()]
        for name in names:
            recorded_version, recorded_hash, recorded_closed_at = self._stream_head(name)
            version, last_hash, closed = heads.get(name, (0, GENESIS_HASH, False))
            if (recorded_version, recorded_hash) != (version, last_hash):
                reason = f"the stream head says version {recorded_version}, but its events end at version {version}"
                if recorded_version == version:
                    reason = "the stream head's hash does not match its last event"
                return VerifyReport(len(heads), checked, BrokenLink(name, version, 0, reason))
            if recorded_closed_at != (version if closed else None):
                if closed:
                    reason = f"the stream head says it is open, but its last event (version {version}) closed it"
                else:
                    reason = f"the stream head says version {recorded_closed_at} closed it, but its last event is open"
                return VerifyReport(len(heads), checked, BrokenLink(name, version, 0, reason))
        return VerifyReport(len(heads), checked, None)

    def _scan_raw(self) -> Iterator[RecordedEvent]:
        after = 0
        while True:
            page = self._fetch_all(after, 5000, ReadFilter(), False)
            yield from page
            if len(page) < 5000:
                return
            after = page[-1].position

    def _all_streams(self) -> Iterator[StreamInfo]:
        after = ""
        while True:
            page = self._fetch_streams("", after, 5000)
            yield from page
            if len(page) < 5000:
                return
            after = page[-1].stream_id

    # ----- context and lifetime ----------------------------------------------------------

    def context(
        self,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: str | None = None,
        tenant_id: str | None = None,
        traceparent: str | None = None,
        caused_by: RecordedEvent | None = None,
    ) -> AbstractContextManager[EventContext]:
        """Stamp every append inside the `with` block (see `agentjournal.event_context`)."""
        return event_context(
            correlation_id=correlation_id,
            causation_id=causation_id,
            actor=actor,
            tenant_id=tenant_id,
            traceparent=traceparent,
            caused_by=caused_by,
        )

    def head_position(self) -> int:
        """The highest committed position (0 for an empty journal)."""
        return self._head_position()

    def pending_migrations(
        self, component: str = "journal", package: str = "agentjournal.journal.backends"
    ) -> list[str]:
        """Migrations of a component not yet applied to this database (empty when up to date)."""
        return []

    def migrate(self, component: str = "journal", package: str = "agentjournal.journal.backends") -> list[str]:
        """Apply a component's pending migrations; returns their names."""
        return []

    def close(self) -> None:  # noqa: B027 (a backend without connections has nothing to release)
        """Release connections."""

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # ----- what a backend implements ------------------------------------------------------

    @abstractmethod
    def _write(self, stream_id: str, expected: ExpectedVersion, build: Build) -> list[RecordedEvent]:
        """Atomically: check `expected` against the stream, build the batch, give it positions
        that follow every committed position, and store it. Raises ConcurrencyError on a version
        clash, EventIdTaken on an event id clash and StreamClosedError when the stream is closed
        (whatever `expected` says), storing nothing. When the batch's last event closes the
        stream (`closes_stream`; no other event of a batch can), the stream head records it."""

    @abstractmethod
    def _fetch_stream(
        self, stream_id: str, from_version: int, to_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]: ...

    @abstractmethod
    def _fetch_all(self, after: int, limit: int, filters: ReadFilter, backwards: bool) -> list[RecordedEvent]: ...

    @abstractmethod
    def _fetch_by_ids(self, event_ids: list[str]) -> list[RecordedEvent]: ...

    @abstractmethod
    def _fetch_streams(self, prefix: str, after: str, limit: int) -> list[StreamInfo]: ...

    @abstractmethod
    def _stream_head(self, stream_id: str) -> tuple[int, str, int | None]:
        """(version, last hash, closing version or None) of a stream; (0, GENESIS_HASH, None) when it
        does not exist."""

    @abstractmethod
    def _head_position(self) -> int: ...


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False


def _bytes(value: bytes | str | memoryview) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidEventError(f"time {moment.isoformat()} has no time zone; give an aware datetime (UTC)")
    return moment.astimezone(UTC)


def _event_from_export(record: dict[str, Any], number: int) -> RecordedEvent:
    """An exported envelope back into a RecordedEvent, checking its own hash."""
    try:
        event = RecordedEvent(
            event_id=str(uuid.UUID(record["event_id"])),
            stream_id=check_identifier(record["stream_id"], "stream id", MAX_STREAM_ID_LENGTH),
            version=int(record["version"]),
            position=0,
            type=check_identifier(record["type"], "event type", MAX_TYPE_LENGTH),
            schema_version=int(record["schema_version"]),
            recorded_at=datetime.fromisoformat(record["recorded_at"]),
            actor=record.get("actor"),
            tenant_id=record.get("tenant_id"),
            correlation_id=record.get("correlation_id"),
            causation_id=record.get("causation_id"),
            traceparent=record.get("traceparent"),
            data_json=canonical_json(record["data"]),
            metadata_json=canonical_json(record.get("metadata", {})),
            prev_hash=record["prev_hash"],
            hash=record["hash"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEventError(
            f"import record {number}: not an exported envelope ({type(exc).__name__}: {exc})"
        ) from None
    if event.compute_hash() != event.hash:
        raise InvalidEventError(
            f"import record {number} (stream {event.stream_id!r} version {event.version}): "
            "its hash does not match its content; refusing to import a changed event"
        )
    return event
