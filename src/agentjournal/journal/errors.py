"""One error hierarchy for every backend, so callers catch the same thing on any database."""

from __future__ import annotations


class JournalError(Exception):
    """Base of every error the journal raises on purpose."""


class ConcurrencyError(JournalError):
    """The stream was not at the version the writer expected; nothing was stored."""

    def __init__(self, stream_id: str, expected: int | str, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream_id!r}: expected version {expected}, but the stream is at version {actual}")


class StreamClosedError(JournalError):
    """The stream was closed by its last event; nothing was stored, and retrying cannot help.

    Not a ConcurrencyError on purpose: reloading the stream and appending again is refused the same way.
    """

    def __init__(self, stream_id: str, closed_at_version: int, closing_type: str | None = None) -> None:
        self.stream_id = stream_id
        self.closed_at_version = closed_at_version
        self.closing_type = closing_type
        closing = f"version {closed_at_version}" + (f" ({closing_type})" if closing_type else "")
        super().__init__(f"stream {stream_id!r} is closed: {closing} closed it; nothing can be appended after it")


class DuplicateEventError(JournalError):
    """An event id is already stored with different content (or only part of a batch is)."""

    def __init__(self, event_id: str, reason: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id}: {reason}")


class InvalidEventError(JournalError, ValueError):
    """An event or stream id that cannot be stored; says which one and why."""


class EventNotFoundError(JournalError, LookupError):
    """No event with that id."""


class StreamNotFoundError(JournalError, LookupError):
    """No stream with that id."""


class UnsupportedURLError(JournalError, ValueError):
    """A journal URL with a scheme no backend handles."""


class JournalConnectionError(JournalError, ConnectionError):
    """The database could not be reached; the message names where we tried."""


class SchemaRegistryError(JournalError, ValueError):
    """An event type or upcaster registration that would make old events unreadable."""


class MigrationError(JournalError):
    """The database schema is behind, or a migration failed."""
