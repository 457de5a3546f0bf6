"""How a caught-up subscription waits for the next event.

PostgreSQL: LISTEN on the journal's notify channel (every append NOTIFYs its last position
at commit), so a subscriber wakes within milliseconds. SQLite and MariaDB: poll with an
exponential back-off that resets as soon as events flow again.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from agentjournal.journal import Journal


class Waiter(Protocol):
    def wait(self, timeout: float) -> None:
        """Block until new events may have been appended, or `timeout` seconds pass."""

    def woke(self, found_events: bool) -> None:
        """Tell the waiter whether the last read found anything (resets the back-off)."""

    def close(self) -> None: ...


class PollingWaiter:
    """Sleep 5 ms, then twice as long after each empty read, up to `max_delay`."""

    def __init__(self, *, min_delay: float = 0.005, max_delay: float = 0.5) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.delay = min_delay
        """The next idle sleep."""

    def wait(self, timeout: float) -> None:
        time.sleep(max(0.0, min(self.delay, timeout)))

    def woke(self, found_events: bool) -> None:
        self.delay = self.min_delay if found_events else min(self.delay * 2, self.max_delay)

    def close(self) -> None:
        pass


class PostgresNotifyWaiter:
    """LISTEN on the journal's channel over one dedicated autocommit connection."""

    def __init__(self, conninfo: str, channel: str) -> None:
        import psycopg

        self._conn: Any = psycopg.connect(conninfo, autocommit=True)
        self._conn.execute(f'LISTEN "{channel}"')

    def wait(self, timeout: float) -> None:
        # Returns at the first notification; the ones queued behind it are drained below, since a
        # single read catches up on all of them.
        for _ in self._conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
            break
        for _ in self._conn.notifies(timeout=0.0):
            pass

    def woke(self, found_events: bool) -> None:
        pass

    def close(self) -> None:
        self._conn.close()


def waiter_for(journal: Journal) -> Waiter:
    """LISTEN/NOTIFY on PostgreSQL, back-off polling elsewhere."""
    channel = getattr(journal, "notify_channel", None)
    conninfo = getattr(journal, "conninfo", None)
    if channel and conninfo:
        return PostgresNotifyWaiter(conninfo, channel)
    return PollingWaiter()
