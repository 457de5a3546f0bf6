"""agentjournal: an event-sourced system of record and runtime for AI agents.

Names load on first use (PEP 562): `import agentjournal` alone imports nothing heavy.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.journal import ANY as ANY
    from agentjournal.journal import AppendResult as AppendResult
    from agentjournal.journal import AsyncJournal as AsyncJournal
    from agentjournal.journal import ConcurrencyError as ConcurrencyError
    from agentjournal.journal import DuplicateEventError as DuplicateEventError
    from agentjournal.journal import EventNotFoundError as EventNotFoundError
    from agentjournal.journal import EventRegistry as EventRegistry
    from agentjournal.journal import InvalidEventError as InvalidEventError
    from agentjournal.journal import Journal as Journal
    from agentjournal.journal import JournalConnectionError as JournalConnectionError
    from agentjournal.journal import JournalError as JournalError
    from agentjournal.journal import NewEvent as NewEvent
    from agentjournal.journal import RecordedEvent as RecordedEvent
    from agentjournal.journal import StreamClosedError as StreamClosedError
    from agentjournal.journal import VerifyReport as VerifyReport
    from agentjournal.journal import event_context as event_context
    from agentjournal.journal.errors import AgentJournalError as AgentJournalError

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.journal": (
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
            "StreamClosedError",
            "VerifyReport",
            "event_context",
        ),
        "agentjournal.journal.errors": ("AgentJournalError",),
    },
)
