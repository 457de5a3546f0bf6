"""Errors of the model layer; they are JournalErrors, so the CLI prints them as messages."""

from __future__ import annotations

from agentjournal.journal import JournalError


class VersionOutOfRangeError(JournalError, LookupError):
    """A version (or moment) that the stream does not have; the message gives the valid range."""

    def __init__(self, stream_id: str, requested: object, current: int) -> None:
        self.stream_id = stream_id
        self.requested = requested
        self.current = current
        super().__init__(f"stream {stream_id!r} has versions 1..{current}; there is no version {requested}")


class AggregateLoadError(JournalError, ValueError):
    """An aggregate type that cannot be named, imported or restored."""
