"""The journal: an append-only, hash-chained event store with one envelope on every backend.

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.journal.asyncio import AsyncJournal as AsyncJournal
    from agentjournal.journal.base import Journal as Journal
    from agentjournal.journal.base import ReadFilter as ReadFilter
    from agentjournal.journal.context import EventContext as EventContext
    from agentjournal.journal.context import current_context as current_context
    from agentjournal.journal.context import event_context as event_context
    from agentjournal.journal.envelope import ANY as ANY
    from agentjournal.journal.envelope import AppendResult as AppendResult
    from agentjournal.journal.envelope import BrokenLink as BrokenLink
    from agentjournal.journal.envelope import NewEvent as NewEvent
    from agentjournal.journal.envelope import RecordedEvent as RecordedEvent
    from agentjournal.journal.envelope import StreamInfo as StreamInfo
    from agentjournal.journal.envelope import VerifyReport as VerifyReport
    from agentjournal.journal.errors import ConcurrencyError as ConcurrencyError
    from agentjournal.journal.errors import DamagedDatabaseError as DamagedDatabaseError
    from agentjournal.journal.errors import DuplicateEventError as DuplicateEventError
    from agentjournal.journal.errors import EventNotFoundError as EventNotFoundError
    from agentjournal.journal.errors import ImportInterruptedError as ImportInterruptedError
    from agentjournal.journal.errors import ImportRefusedError as ImportRefusedError
    from agentjournal.journal.errors import InvalidEventError as InvalidEventError
    from agentjournal.journal.errors import JournalClosedError as JournalClosedError
    from agentjournal.journal.errors import JournalConnectionError as JournalConnectionError
    from agentjournal.journal.errors import JournalError as JournalError
    from agentjournal.journal.errors import JournalNotFoundError as JournalNotFoundError
    from agentjournal.journal.errors import LocationInUseError as LocationInUseError
    from agentjournal.journal.errors import MigrationError as MigrationError
    from agentjournal.journal.errors import ReadOnlyJournalError as ReadOnlyJournalError
    from agentjournal.journal.errors import SchemaRegistryError as SchemaRegistryError
    from agentjournal.journal.errors import StreamClosedError as StreamClosedError
    from agentjournal.journal.errors import StreamNotFoundError as StreamNotFoundError
    from agentjournal.journal.errors import UnsupportedURLError as UnsupportedURLError
    from agentjournal.journal.imports import ExportFile as ExportFile
    from agentjournal.journal.imports import ImportReport as ImportReport
    from agentjournal.journal.location import Location as Location
    from agentjournal.journal.registry import EventRegistry as EventRegistry
    from agentjournal.journal.urls import DEFAULT_URL as DEFAULT_URL

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.journal.asyncio": ("AsyncJournal",),
        "agentjournal.journal.base": (
            "Journal",
            "ReadFilter",
        ),
        "agentjournal.journal.context": (
            "EventContext",
            "current_context",
            "event_context",
        ),
        "agentjournal.journal.envelope": (
            "ANY",
            "AppendResult",
            "BrokenLink",
            "NewEvent",
            "RecordedEvent",
            "StreamInfo",
            "VerifyReport",
        ),
        "agentjournal.journal.errors": (
            "ConcurrencyError",
            "DamagedDatabaseError",
            "DuplicateEventError",
            "EventNotFoundError",
            "ImportInterruptedError",
            "ImportRefusedError",
            "InvalidEventError",
            "JournalClosedError",
            "JournalConnectionError",
            "JournalError",
            "JournalNotFoundError",
            "LocationInUseError",
            "MigrationError",
            "ReadOnlyJournalError",
            "SchemaRegistryError",
            "StreamClosedError",
            "StreamNotFoundError",
            "UnsupportedURLError",
        ),
        "agentjournal.journal.imports": (
            "ExportFile",
            "ImportReport",
        ),
        "agentjournal.journal.location": ("Location",),
        "agentjournal.journal.registry": ("EventRegistry",),
        "agentjournal.journal.urls": ("DEFAULT_URL",),
    },
)
