"""The envelope every backend stores, its canonical bytes and the per-stream hash chain.

Canonical JSON is orjson with sorted keys: the same bytes for a payload on SQLite,
PostgreSQL and MariaDB, so a journal moved between backends still verifies.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel

from agentjournal.journal.errors import InvalidEventError

ANY: Final = "any"
"""`expected_version=ANY` appends whatever version the stream is at."""

ExpectedVersion = int | Literal["any"]

MAX_STREAM_ID_LENGTH: Final = 200
MAX_TYPE_LENGTH: Final = 200
MAX_ENVELOPE_FIELD_LENGTH: Final = 255
"""actor, tenant_id, correlation_id, causation_id and traceparent."""
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
MAX_JSON_DEPTH: Final = 254
"""Data and metadata may nest this many levels (arrays and objects, the outermost one counted), on
every backend: the limit of the canonical encoder (orjson). Deeper is refused at append."""
GENESIS_HASH: Final = "0" * 64
"""The `prev_hash` of a stream's first event."""


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@functools.lru_cache(maxsize=8)  # the events of a batch share one time: format it once
def format_time(moment: datetime) -> str:
    """UTC with microseconds and a Z, the form that is hashed and sorts as text."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def check_identifier(value: object, what: object, max_length: int) -> str:
    """`value` as a valid id; `what` names it in the error (any object that prints as text)."""
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise InvalidEventError(f"{what} is {len(value)} characters long; the limit is {max_length}: {value[:40]!r}…")
    if not value.isprintable():  # control, format, separator or unassigned characters
        index, char = next((i, c) for i, c in enumerate(value) if not c.isprintable())
        raise InvalidEventError(f"{what} {value!r} has a non-printable character {char!r} at index {index}")
    return value


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. Envelope fields left as None come from the ambient context.

    `closes_stream=True` makes it the stream's last event: every later append to the stream is
    refused (StreamClosedError). The flag is stored, hashed and exported in the metadata.
    """

    type: str
    data: dict[str, Any] | BaseModel = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    schema_version: int | None = None
    actor: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    closes_stream: bool = False


CLOSES_STREAM: Final = "closes_stream"
"""The metadata key that marks an event as the last one of its stream."""
_CLOSES_KEY_TEXT: Final = f'"{CLOSES_STREAM}"'
_CLOSES_KEY_BYTES: Final = _CLOSES_KEY_TEXT.encode()


class RecordedEvent:
    """A stored event. `data` is decoded from its canonical JSON on first access."""

    __slots__ = (
        "_data",
        "_metadata",
        "_stored",
        "actor",
        "causation_id",
        "correlation_id",
        "data_json",
        "event_id",
        "hash",
        "metadata_json",
        "position",
        "prev_hash",
        "recorded_at",
        "schema_version",
        "stream_id",
        "tenant_id",
        "traceparent",
        "type",
        "version",
    )

    def __init__(
        self,
        *,
        event_id: str,
        stream_id: str,
        version: int,
        position: int,
        type: str,
        schema_version: int,
        recorded_at: datetime,
        actor: str | None,
        tenant_id: str | None,
        correlation_id: str | None,
        causation_id: str | None,
        traceparent: str | None,
        data_json: bytes | str,
        metadata_json: bytes | str,
        prev_hash: str,
        hash: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.event_id = event_id
        self.stream_id = stream_id
        self.version = version
        self.position = position
        self.type = type
        self.schema_version = schema_version
        self.recorded_at = recorded_at
        self.actor = actor
        self.tenant_id = tenant_id
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.traceparent = traceparent
        self.data_json = data_json
        self.metadata_json = metadata_json
        self.prev_hash = prev_hash
        self.hash = hash
        self._data = data
        self._metadata: dict[str, Any] | None = None
        self._stored: RecordedEvent | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any], recorded_at: datetime) -> RecordedEvent:
        """A stored row (the SQL backends' column order) without keyword-argument overhead:
        reading is the journal's hottest path."""
        event = cls.__new__(cls)
        (
            event.position,
            event.event_id,
            event.stream_id,
            event.version,
            event.type,
            event.schema_version,
            _,
            event.actor,
            event.tenant_id,
            event.correlation_id,
            event.causation_id,
            event.traceparent,
            event.data_json,
            event.metadata_json,
            event.prev_hash,
            event.hash,
        ) = row
        event.recorded_at = recorded_at
        event._data = event._metadata = event._stored = None
        return event

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = orjson.loads(self.data_json)
        return self._data

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = orjson.loads(self.metadata_json)
        return self._metadata

    @property
    def closes_stream(self) -> bool:
        """True when this event closed its stream (nothing can be appended after it)."""
        raw = self.metadata_json
        if not (_CLOSES_KEY_TEXT in raw if isinstance(raw, str) else _CLOSES_KEY_BYTES in raw):
            return False  # most events: no decoding
        return self.metadata.get(CLOSES_STREAM) is True

    def with_data(self, data: dict[str, Any], schema_version: int) -> RecordedEvent:
        """A copy carrying upcast data; it hashes and exports as the stored original."""
        copy = RecordedEvent(**{name: getattr(self, name) for name in _ENVELOPE_FIELDS}, data=data)
        copy.schema_version = schema_version
        copy._stored = self._stored or self
        return copy

    def header(self) -> dict[str, Any]:
        """The hashed envelope fields as stored (schema version too), without payload, position or own hash."""
        return {
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "schema_version": (self._stored or self).schema_version,
            "recorded_at": format_time(self.recorded_at),
            "actor": self.actor,
            "tenant_id": self.tenant_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return chain_hash(self.header(), _as_bytes(self.data_json), _as_bytes(self.metadata_json))

    def to_dict(self) -> dict[str, Any]:
        """The whole envelope as stored, in plain JSON types (the export format, even when upcast)."""
        return {
            **self.header(),
            "position": self.position,
            "data": (self._stored or self).data,
            "metadata": self.metadata,
            "hash": self.hash,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordedEvent) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.event_id)

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(stream_id={self.stream_id!r}, version={self.version}, position={self.position}, "
            f"type={self.type!r}, event_id={self.event_id!r})"
        )


_ENVELOPE_FIELDS = [name for name in RecordedEvent.__slots__ if not name.startswith("_")]


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def chain_hash(header: dict[str, Any], data_json: bytes, metadata_json: bytes) -> str:
    """SHA-256 over the canonical header (which holds `prev_hash`), then data, then metadata.

    Each part is canonical JSON and the parts are joined by newlines, which canonical JSON
    never contains, so the split between them is unambiguous.
    """
    digest = hashlib.sha256(canonical_json(header))
    digest.update(b"\n")
    digest.update(data_json)
    digest.update(b"\n")
    digest.update(metadata_json)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append stored, or found already stored (`already_appended`)."""

    stream_id: str
    events: list[RecordedEvent]
    already_appended: bool = False

    @property
    def first_version(self) -> int:
        return self.events[0].version

    @property
    def last_version(self) -> int:
        return self.events[-1].version

    @property
    def last_position(self) -> int:
        return self.events[-1].position


@dataclass(frozen=True, slots=True)
class StreamInfo:
    stream_id: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BrokenLink:
    stream_id: str
    version: int
    position: int
    reason: str

    def __str__(self) -> str:
        return f"stream {self.stream_id!r} version {self.version} (position {self.position}): {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    streams_checked: int
    events_checked: int
    first_broken: BrokenLink | None
    damage: str | None = None
    """The database could not be read to the end (a damaged file): what was read and where it failed."""

    @property
    def ok(self) -> bool:
        return self.first_broken is None and self.damage is None
