"""The ambient context every append is stamped with (contextvars, so it follows async tasks).

Explicit values on a `NewEvent` win over the context; the W3C traceparent of the current
OpenTelemetry span is used when the context does not name one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from agentjournal.journal.envelope import RecordedEvent


@dataclass(frozen=True, slots=True)
class EventContext:
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    tenant_id: str | None = None
    traceparent: str | None = None


_current: ContextVar[EventContext] = ContextVar("agentjournal_event_context", default=EventContext())  # noqa: B039 (frozen)


def current_context() -> EventContext:
    return _current.get()


@contextmanager
def event_context(
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    actor: str | None = None,
    tenant_id: str | None = None,
    traceparent: str | None = None,
    caused_by: RecordedEvent | None = None,
) -> Iterator[EventContext]:
    """Stamp appends inside the block; nested blocks override only what they name.

    `caused_by=event` continues that event's causal chain: its correlation id, and the
    event itself as the cause.
    """
    outer = _current.get()
    if caused_by is not None:
        correlation_id = correlation_id or caused_by.correlation_id or caused_by.event_id
        causation_id = causation_id or caused_by.event_id
    given = {
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "actor": actor,
        "tenant_id": tenant_id,
        "traceparent": traceparent,
    }
    inner = replace(outer, **{name: value for name, value in given.items() if value is not None})
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active OpenTelemetry span, if there is a valid one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
