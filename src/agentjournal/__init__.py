"""agentjournal: an event-sourced system of record and runtime for AI agents."""

from agentjournal.journal import (
    ANY,
    AppendResult,
    AsyncJournal,
    ConcurrencyError,
    DuplicateEventError,
    EventNotFoundError,
    EventRegistry,
    InvalidEventError,
    Journal,
    JournalConnectionError,
    JournalError,
    NewEvent,
    RecordedEvent,
    VerifyReport,
    event_context,
)

__all__ = [
    "ANY",
    "AppendResult",
    "AsyncJournal",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventNotFoundError",
    "EventRegistry",
    "InvalidEventError",
    "Journal",
    "JournalConnectionError",
    "JournalError",
    "NewEvent",
    "RecordedEvent",
    "VerifyReport",
    "event_context",
]
