"""The outbox: messages to deliver, written in the same transaction as the events that cause them.

A message (a command to another aggregate, a notification, an external call) is stored as an
`OutboxMessage` event on the stream `outbox-<cause stream>`, appended with the cause's events
by one `append_streams`: both are stored or neither is. Its event id is the dispatch id, a
UUID derived from the cause (stream, version, index), so a producer that retries, or that
decides the same thing again after a crash, stores no second message: the journal recognises
the event id and appends nothing. Relays (messaging.relays) deliver the messages at least
once; receivers (messaging.receivers) drop the repeats.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agentjournal.journal import ANY, AppendResult, InvalidEventError, Journal, NewEvent, RecordedEvent
from agentjournal.journal.context import current_context
from agentjournal.journal.envelope import ExpectedVersion
from agentjournal.journal.ids import uuid7

OUTBOX_MESSAGE = "OutboxMessage"
"""The event type of a message in the outbox."""
OUTBOX_PREFIX = "outbox-"
"""Messages caused by events of stream S are stored on the stream `outbox-S`."""
DISPATCH_NAMESPACE = uuid.UUID("6b2f4f8e-1c53-4d55-9a2e-6f1e0a6c1b7d")
"""The UUID namespace of dispatch ids (uuid5): fixed, so ids are the same on every node and release."""


def dispatch_id(stream_id: str, version: int, index: int) -> str:
    """The id of the `index`-th message caused by event `version` of `stream_id`: the same every time."""
    return str(uuid.uuid5(DISPATCH_NAMESPACE, f"{stream_id}\x00{version}\x00{index}"))


@dataclass(frozen=True, slots=True)
class Message:
    """A message to send: `destination` names the receiver (a handler in-process, a subject over NATS)."""

    destination: str
    type: str
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("destination", "type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidEventError(f"a message's {name} must be a non-empty string, got {value!r}")
        if not isinstance(self.payload, dict):
            raise InvalidEventError(f"message {self.type!r}: payload must be a dict, got {type(self.payload).__name__}")


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A message as the outbox stored it and a relay delivers it."""

    dispatch_id: str
    destination: str
    type: str
    payload: dict[str, Any]
    cause_stream: str
    cause_version: int
    index: int
    position: int
    """The OutboxMessage event's global position: relays deliver in this order."""
    correlation_id: str | None = None
    tenant_id: str | None = None

    @classmethod
    def of(cls, event: RecordedEvent) -> Dispatch:
        data = event.data
        return cls(
            dispatch_id=event.event_id,
            destination=data["destination"],
            type=data["type"],
            payload=data["payload"],
            cause_stream=data["cause"]["stream"],
            cause_version=data["cause"]["version"],
            index=data["cause"]["index"],
            position=event.position,
            correlation_id=event.correlation_id,
            tenant_id=event.tenant_id,
        )

    def to_json(self) -> dict[str, Any]:
        """The wire form a relay sends (and `from_json` reads on the other side)."""
        return {
            "dispatch_id": self.dispatch_id,
            "destination": self.destination,
            "type": self.type,
            "payload": self.payload,
            "cause": {"stream": self.cause_stream, "version": self.cause_version, "index": self.index},
            "position": self.position,
            "correlation_id": self.correlation_id,
            "tenant_id": self.tenant_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dispatch:
        try:
            cause = data["cause"]
            return cls(
                dispatch_id=str(data["dispatch_id"]),
                destination=str(data["destination"]),
                type=str(data["type"]),
                payload=dict(data["payload"]),
                cause_stream=str(cause["stream"]),
                cause_version=int(cause["version"]),
                index=int(cause["index"]),
                position=int(data["position"]),
                correlation_id=data.get("correlation_id"),
                tenant_id=data.get("tenant_id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEventError(f"not a dispatch: {type(exc).__name__}: {exc} in {dict(data)!r}") from None


def outbox_stream(cause_stream: str) -> str:
    return f"{OUTBOX_PREFIX}{cause_stream}"


def outbox_events(
    cause: NewEvent, stream_id: str, version: int, messages: Sequence[Message], *, correlation_id: str | None
) -> list[NewEvent]:
    """The OutboxMessage events of `messages`, caused by `cause`, stored as event `version` of `stream_id`."""
    events = []
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidEventError(f"{stream_id!r} v{version}: message {index} is not a Message: {message!r}")
        events.append(
            NewEvent(
                OUTBOX_MESSAGE,
                {
                    "destination": message.destination,
                    "type": message.type,
                    "payload": message.payload,
                    "cause": {"stream": stream_id, "version": version, "index": index},
                },
                event_id=dispatch_id(stream_id, version, index),
                causation_id=cause.event_id,
                correlation_id=correlation_id,
                tenant_id=cause.tenant_id,
            )
        )
    return events


def append_with_outbox(
    journal: Journal,
    stream_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: int,
    messages: Sequence[Message],
) -> dict[str, AppendResult]:
    """Append `events` to `stream_id` and, in the same transaction, `messages` to its outbox.

    The messages are caused by the batch's last event, whose version is known only with an
    exact `expected_version` (the dispatch ids derive from it). The messages share the cause's
    correlation id and name it as their causation. Give the events ids of your own and a retry
    of the same call after a lost reply is recognised and stores nothing twice.
    """
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
        raise InvalidEventError(
            f"stream {stream_id!r}: the outbox needs the exact expected version (an int >= 0) to derive dispatch "
            f"ids from, got {expected_version!r}"
        )
    batch = [event if event.event_id else replace(event, event_id=uuid7()) for event in events]
    if not batch:
        raise InvalidEventError(f"stream {stream_id!r}: nothing to append (the batch is empty)")
    writes: dict[str, tuple[Sequence[NewEvent], ExpectedVersion]] = {stream_id: (batch, expected_version)}
    if messages:
        cause, version = batch[-1], expected_version + len(batch)
        correlation = batch[0].correlation_id or current_context().correlation_id or batch[0].event_id
        writes[outbox_stream(stream_id)] = (
            outbox_events(cause, stream_id, version, messages, correlation_id=correlation),
            ANY,
        )
    return journal.append_streams(writes)
