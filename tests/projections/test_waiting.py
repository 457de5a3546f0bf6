"""How a caught-up subscriber waits: LISTEN/NOTIFY on PostgreSQL, back-off polling elsewhere."""

from __future__ import annotations

import threading
import time

from agentjournal.journal import Journal, NewEvent
from agentjournal.projections.waiting import PollingWaiter, PostgresNotifyWaiter, waiter_for


def test_postgres_wakes_the_subscriber_at_the_append_commit(postgres_url: str) -> None:
    with Journal.open(postgres_url) as journal:
        waiter = waiter_for(journal)
        assert isinstance(waiter, PostgresNotifyWaiter)
        try:
            threading.Timer(0.2, lambda: journal.append("s", [NewEvent("Ping")])).start()
            began = time.monotonic()
            waiter.wait(5.0)
            assert 0.15 < time.monotonic() - began < 1.0  # woken by the NOTIFY, long before the timeout
            began = time.monotonic()
            waiter.wait(0.1)  # nothing new: waits out its timeout
            assert time.monotonic() - began >= 0.09
        finally:
            waiter.close()


def test_polling_backs_off_while_idle_and_resets_when_events_flow(sqlite_url: str) -> None:
    with Journal.open(sqlite_url) as journal:
        waiter = waiter_for(journal)
    assert isinstance(waiter, PollingWaiter)
    polling = PollingWaiter(min_delay=0.01, max_delay=0.04)
    delays = []
    for found in (False, False, False, False, True):
        polling.woke(found)
        delays.append(polling.delay)
    assert delays == [0.02, 0.04, 0.04, 0.04, 0.01]
