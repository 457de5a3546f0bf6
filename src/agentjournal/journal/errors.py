"""One error hierarchy for every backend, so callers catch the same thing on any database."""

from __future__ import annotations


class AgentJournalError(Exception):
    """The root of every error agentjournal raises on purpose: journal, model, policy, tool, agent,
    projection and messaging errors. Catch it to handle any of them; the CLI turns it into a message."""


class JournalError(AgentJournalError):
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


class JournalNotFoundError(JournalError, LookupError):
    """No journal at the URL. Opening to read creates nothing; open with create=True to make one."""

    def __init__(self, message: str, url: str) -> None:
        self.url = url
        super().__init__(message)


class LocationInUseError(JournalError):
    """Where a journal would be created holds another application's tables; nothing was created."""

    def __init__(self, message: str, url: str, tables: list[str]) -> None:
        self.url = url
        self.tables = tables
        super().__init__(message)


class JournalClosedError(JournalError):
    """A call on a journal after its `close()`: open the URL again to use it."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"this journal is closed ({url}); open it again with Journal.open(url)")


class ReadOnlyJournalError(JournalError):
    """A write to a journal opened read-only, or stored where this process cannot write."""


class DamagedDatabaseError(JournalError):
    """The database file is damaged (the database itself says so); says what and where."""


class ImportRefusedError(InvalidEventError):
    """Nothing was imported: records that are not a valid export, or that do not fit this journal.

    `problems` lists each one (file and line, or record number, and what is wrong).
    """

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        count = total if total is not None else len(problems)
        if count == 1:
            super().__init__(f"{problems[0]}; nothing imported")
            return
        more = f"\n  … and {count - len(problems)} more" if count > len(problems) else ""
        super().__init__(f"{count} problems, nothing imported:\n  " + "\n  ".join(problems) + more)


class ImportInterruptedError(JournalError):
    """An import stopped part-way; the message says what was stored. Running it again finishes it."""

    def __init__(self, message: str, imported: int, already_present: int) -> None:
        self.imported = imported
        self.already_present = already_present
        super().__init__(message)
