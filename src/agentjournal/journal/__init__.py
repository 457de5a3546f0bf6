"""The journal: an append-only, hash-chained event store with one envelope on every backend."""

from agentjournal.journal.asyncio import AsyncJournal
from agentjournal.journal.base import Journal, ReadFilter
from agentjournal.journal.context import EventContext, current_context, event_context
from agentjournal.journal.envelope import (
    ANY,
    AppendResult,
    BrokenLink,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    VerifyReport,
)
from agentjournal.journal.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventNotFoundError,
    InvalidEventError,
    JournalConnectionError,
    JournalError,
    MigrationError,
    SchemaRegistryError,
    StreamNotFoundError,
    UnsupportedURLError,
)
from agentjournal.journal.registry import EventRegistry
from agentjournal.journal.urls import DEFAULT_URL

__all__ = [
    "ANY",
    "DEFAULT_URL",
    "AppendResult",
    "AsyncJournal",
    "BrokenLink",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventContext",
    "EventNotFoundError",
    "EventRegistry",
    "InvalidEventError",
    "Journal",
    "JournalConnectionError",
    "JournalError",
    "MigrationError",
    "NewEvent",
    "ReadFilter",
    "RecordedEvent",
    "SchemaRegistryError",
    "StreamInfo",
    "StreamNotFoundError",
    "UnsupportedURLError",
    "VerifyReport",
    "current_context",
    "event_context",
]
