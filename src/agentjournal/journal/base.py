"""The Journal interface and every decision that needs no I/O, shared by all backends.

A backend only executes: it stores prepared batches of one or several streams atomically
(`_write_many`) and fetches rows. Validation, context stamping, hashing, idempotent retries, upcasting and
verification live here, once.
"""

from __future__ import annotations

import math
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
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
    MAX_JSON_DEPTH,
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
    AgentJournalError,
    ConcurrencyError,
    DamagedDatabaseError,
    DuplicateEventError,
    EventNotFoundError,
    InvalidEventError,
    JournalClosedError,
    JournalNotFoundError,
    LocationInUseError,
    MigrationError,
    StreamClosedError,
)
from agentjournal.journal.ids import uuid7
from agentjournal.journal.imports import ExportFile, ImportReport, run_import
from agentjournal.journal.location import Location, redact, tables
from agentjournal.journal.registry import EventRegistry

Build = Callable[[int, str], list[RecordedEvent]]
"""Turns (current version, last hash) into the batch's envelopes, inside the write transaction."""


@dataclass(frozen=True, slots=True)
class StreamWrite:
    """One stream's part of a write: what it expects and how to build its batch on its head."""

    stream_id: str
    expected: ExpectedVersion
    build: Build


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""An event id already in the form it is stored in (uuid7() makes them so): kept without parsing it."""


class EventIdTaken(AgentJournalError):
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


@dataclass(slots=True)
class _Scan:
    """How far `verify` got, for its report when the database turns out to be damaged."""

    heads: dict[str, tuple[int, str, bool]] = field(default_factory=dict)
    checked: int = 0
    last: RecordedEvent | None = None
    finished: bool = False


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
        allow_other_tables: bool = False,
    ):
        self.registry = registry or EventRegistry()
        self.max_payload_bytes = max_payload_bytes
        self.redact = redact
        """Maps each event's data before it is encoded and hashed (e.g. agents.redaction.Redactor())."""
        self.allow_other_tables = allow_other_tables
        """Create a journal even where another application's tables are (see `Journal.open`)."""
        self.url = ""
        self.ephemeral = False
        """A new, empty database each time it is opened (memory://, sqlite:///:memory:): always created."""
        self.read_only = False
        self._closed = False
        self._before_commit: Callable[[], None] | None = None
        """Test hook: called inside the write transaction, after the inserts, before COMMIT."""

    @staticmethod
    def open(url: str, *, create: bool = False, migrate: bool = True, **options: Any) -> Journal:
        """Open the journal at `url`: sqlite:///path.db, postgresql://…, mysql://…, memory://

        Opening only reads: where there is no journal it raises JournalNotFoundError and creates
        nothing (no file, no schema, no table). `create=True` creates the journal when there is
        none, but never beside another application's tables unless `allow_other_tables=True`
        (PostgreSQL: or a `?schema=` of its own). An existing journal gets its pending migrations
        applied; with `migrate=False` one that is behind is refused instead. memory:// and
        sqlite:///:memory: are new each time, so they are always created.
        """
        from agentjournal.journal.urls import open_journal

        return open_journal(url, create=create, migrate=migrate, **options)

    def _settle(self, *, create: bool, migrate: bool) -> None:
        """Opening, for every backend: an existing journal is migrated (or checked), and a
        missing one is created only when asked to."""
        location = self._location()
        if not location.has_journal:
            if not (create or self.ephemeral):
                raise self._not_found(location)
            self.migrate()  # refuses a place that holds other tables: see _prepare_location
            return
        if migrate and not self.read_only:
            self.migrate()
        elif pending := self.pending_migrations():
            how = "open it without mode=ro to migrate it" if self.read_only else "or open with migrate=True"
            raise MigrationError(
                f"{redact(self.url)}: {len(pending)} migration(s) pending ({', '.join(pending)}); "
                f"run `agentjournal migrate` {how}"
            )

    def _not_found(self, location: Location) -> JournalNotFoundError:
        url = redact(self.url)
        if location.other_tables:
            return JournalNotFoundError(
                f"no journal at {url}: {location.where} holds another application's tables "
                f"({tables(location.other_tables)}) and no journal; check the URL",
                self.url,
            )
        detail = f" ({location.detail})" if location.detail else ""
        return JournalNotFoundError(
            f"no journal at {url}{detail}; `agentjournal migrate` creates one (Journal.open(url, create=True))",
            self.url,
        )

    def _prepare_location(self, location: Location) -> None:
        """Before the journal's first migration: refuse a place that holds other tables, else make it ready."""
        if location.other_tables and not location.explicit and not self.allow_other_tables:
            raise LocationInUseError(
                f"{redact(self.url)}: {location.where} holds another application's tables "
                f"({tables(location.other_tables)}); refusing to create a journal beside them: "
                f"{location.advice}, or pass --allow-other-tables to `agentjournal migrate` "
                "(allow_other_tables=True in Python)",
                self.url,
                list(location.other_tables),
            )
        self._create_location()

    def location(self) -> Location:
        """What is at this journal's URL, read without writing: is a journal there, and does the
        place hold another application's tables (for a journal opened with `connect`)."""
        self._check_open()
        return self._location()

    def _location(self) -> Location:
        """What is at this URL (reads only). A backend without a database always holds its journal."""
        return Location(has_journal=True)

    def _check_storage(self) -> str | None:
        """After every event was read and checked: the database's own check of its storage, if it
        has one that is cheap enough (SQLite's quick_check); what is damaged, or None."""
        return None

    def _create_location(self) -> None:  # noqa: B027 (most backends need nothing made before the tables)
        """Make the place the journal's tables go (a PostgreSQL schema); called only when creating one."""

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError(redact(self.url))

    # ----- writing ---------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append a batch atomically; all of it is stored or none of it."""
        return self.append_streams({stream_id: (events, expected_version)})[stream_id]

    def append_streams(
        self, writes: Mapping[str, tuple[Sequence[NewEvent] | NewEvent, ExpectedVersion]]
    ) -> dict[str, AppendResult]:
        """Append to several streams in one transaction: every batch is stored or none is.

        `writes` maps each stream to `(events, expected_version)`; each stream's version is
        checked as `append` checks it, and one conflict (a stale expected version, a closed
        stream, a taken event id) stores nothing anywhere. The events get consecutive positions
        in the order given, so a reader sees the whole write or nothing of it. Retrying the same
        write is recognised as `append` recognises a retry (every result `already_appended`).
        """
        self._check_open()
        if not isinstance(writes, Mapping) or not writes:
            raise InvalidEventError(f"append_streams needs {{stream_id: (events, expected_version)}}, got {writes!r}")
        prepared: dict[str, tuple[ExpectedVersion, list[_Pending]]] = {}
        seen: dict[str, str] = {}
        for stream_id, write in writes.items():
            check_identifier(stream_id, "stream id", MAX_STREAM_ID_LENGTH)
            if not isinstance(write, tuple) or len(write) != 2:
                raise InvalidEventError(f"stream {stream_id!r}: expected (events, expected_version), got {write!r}")
            events, expected_version = write
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
            for item in pending:
                if item.event_id in seen:
                    raise InvalidEventError(
                        f"event id {item.event_id} appears in the batches of both {seen[item.event_id]!r} "
                        f"and {stream_id!r}"
                    )
                seen[item.event_id] = stream_id
            prepared[stream_id] = (expected_version, pending)
        try:
            stored = self._write_many(
                [
                    StreamWrite(stream, expected, self._builder(stream, pending))
                    for stream, (expected, pending) in prepared.items()
                ]
            )
        except (ConcurrencyError, EventIdTaken, StreamClosedError) as conflict:
            retries = {stream: self._find_retry(stream, pending) for stream, (_, pending) in prepared.items()}
            if all(retry is not None for retry in retries.values()):
                return {stream: retry for stream, retry in retries.items() if retry is not None}
            if isinstance(conflict, EventIdTaken):
                first = next(iter(prepared.values()))[1][0].event_id
                raise DuplicateEventError(first, "an event id of this batch is already stored") from None
            raise
        return {stream: AppendResult(stream, batch) for stream, batch in zip(prepared, stored, strict=True)}

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
            if str(exc) == "Recursion limit reached":
                raise InvalidEventError(
                    f"{where} is nested more than {MAX_JSON_DEPTH} levels deep; every backend stores JSON "
                    f"nested up to {MAX_JSON_DEPTH} levels"
                ) from None
            raise InvalidEventError(f"{where} is not JSON-serializable: {exc}") from None
        # orjson writes NaN and infinities as null; refuse them rather than store a changed value.
        if b"null" in encoded and _has_non_finite(value):
            raise InvalidEventError(f"{where} is not JSON-serializable: it holds NaN or an infinity")
        return encoded

    @staticmethod
    def _event_id(given: str | None, where: object) -> str:
        if given is None:
            return uuid7()
        if isinstance(given, str) and _CANONICAL_UUID.fullmatch(given):
            return given
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

    def import_events(
        self, records: Iterable[dict[str, Any]] | ExportFile, *, progress: Callable[[int], None] | None = None
    ) -> ImportReport:
        """Store exported envelopes as they are (ids, times, hashes): a journal moved from another one.

        Positions are assigned anew by this journal; versions and hash chains are kept. What is
        already stored is skipped, so importing the same records again changes nothing, and an
        import that was stopped is finished by running it again. A list or an `ExportFile` is
        checked whole before anything is written (ImportRefusedError lists every problem); see
        `agentjournal.journal.imports`. `progress` gets the number of records handled so far.
        """
        self._check_open()
        return run_import(self, records, progress)

    def _import_batch(self, batch: list[RecordedEvent]) -> None:
        """Store consecutive exported events of one stream in one transaction, onto its stored head."""
        first = batch[0]

        def build(current_version: int, last_hash: str) -> list[RecordedEvent]:
            if first.prev_hash != last_hash:
                onto = f"the stored version {current_version}" if current_version else "nothing (a new stream)"
                raise InvalidEventError(
                    f"stream {first.stream_id!r} version {first.version} does not chain onto {onto} "
                    f"(prev_hash {first.prev_hash[:12]}… != {last_hash[:12]}…)"
                )
            return batch

        try:
            self._write(first.stream_id, first.version - 1, build)
        except EventIdTaken:
            ids = {event.event_id for event in batch}
            taken = self._fetch_by_ids(sorted(ids))
            if not taken:
                raise DuplicateEventError(first.event_id, "an event id of this batch is already stored") from None
            raise DuplicateEventError(
                taken[0].event_id, f"already stored as version {taken[0].version} of stream {taken[0].stream_id!r}"
            ) from None

    def _stream_heads(self, stream_ids: list[str]) -> dict[str, tuple[int, str, int | None]]:
        """`_stream_head` of many streams (a backend may read them in fewer queries)."""
        return {stream_id: self._stream_head(stream_id) for stream_id in stream_ids}

    def _stored_hash(self, stream_id: str, version: int) -> str | None:
        found = self._fetch_stream(stream_id, version, version, False, 1)
        return found[0].hash if found else None

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
        self._check_open()
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
        self._check_open()
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
        self._check_open()
        found = self._fetch_by_ids([self._event_id(event_id, "get_event")])
        if not found:
            raise EventNotFoundError(f"no event with id {event_id}")
        return self._upcast(found)[0]

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist."""
        self._check_open()
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
        self._check_open()
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
        closed stream reopened behind the journal's back. A database that is damaged (it says so
        itself, e.g. a SQLite page overwritten) gives a report of what could be read and where
        reading stopped (`damage`), not an exception.
        """
        self._check_open()
        scan = _Scan()
        try:
            report = self._verify(stream_id, progress, scan)
            damage = self._check_storage() if stream_id is None else None
            if damage is None:
                return report
            return VerifyReport(report.streams_checked, report.events_checked, None, damage)
        except DamagedDatabaseError as exc:
            if scan.last is None:
                where = "no event could be read"
            else:
                where = (
                    f"{scan.checked:,} event(s) read and intact, up to position {scan.last.position} (stream "
                    f"{scan.last.stream_id!r} version {scan.last.version}); reading failed after it"
                )
                if scan.finished:
                    where = f"every event ({scan.checked:,}) was read and is intact; the damage is elsewhere"
            return VerifyReport(len(scan.heads), scan.checked, None, damage=f"{exc}; {where}")

    def _verify(self, stream_id: str | None, progress: Callable[[int], None] | None, scan: _Scan) -> VerifyReport:
        heads = scan.heads
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
            scan.checked, scan.last = checked, event
            if progress and checked % 10_000 == 0:
                progress(checked)
        scan.finished = True
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
        """Every stored event in position order; on a damaged database, as many as can be read
        (a page that cannot be read is read again in smaller pieces, down to one event)."""
        after, size = 0, 5000
        while True:
            try:
                page = self._fetch_all(after, size, ReadFilter(), False)
            except DamagedDatabaseError:
                if size == 1:
                    raise
                size = max(1, size // 10)
                continue
            yield from page
            if len(page) < size:
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
        self._check_open()
        return self._head_position()

    def pending_migrations(
        self, component: str = "journal", package: str = "agentjournal.journal.backends"
    ) -> list[str]:
        """Migrations of a component not yet applied to this database (empty when up to date)."""
        self._check_open()
        return []

    def migrate(self, component: str = "journal", package: str = "agentjournal.journal.backends") -> list[str]:
        """Apply a component's pending migrations; returns their names."""
        self._check_open()
        return []

    def close(self) -> None:
        """Release connections; every later call raises JournalClosedError (closing twice is fine)."""
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:  # noqa: B027 (a backend without connections has nothing to release)
        """Close the backend's connections."""

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r})"

    # ----- what a backend implements ------------------------------------------------------

    def _write(self, stream_id: str, expected: ExpectedVersion, build: Build) -> list[RecordedEvent]:
        """One stream's batch, stored as `_write_many` stores several."""
        return self._write_many([StreamWrite(stream_id, expected, build)])[0]

    @abstractmethod
    def _write_many(self, writes: Sequence[StreamWrite]) -> list[list[RecordedEvent]]:
        """Atomically, in one transaction: for each write, check its `expected` against its stream
        and build its batch on the stream's head; give the batches positions that follow every
        committed position, in the order given; store them all. Raises ConcurrencyError on a
        version clash, EventIdTaken on an event id clash and StreamClosedError when a stream is
        closed (whatever `expected` says), storing nothing of any write. When a batch's last
        event closes its stream (`closes_stream`; no other event of a batch can), the stream
        head records it. Returns the stored batches in the order of `writes`."""

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
    """A NaN or an infinity anywhere in `value`: walked without recursion, the JSON types checked by their exact
    type first (this runs for every payload that holds a null)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is str or kind is int or kind is bool or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _bytes(value: bytes | str | memoryview) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidEventError(f"time {moment.isoformat()} has no time zone; give an aware datetime (UTC)")
    return moment.astimezone(UTC)
