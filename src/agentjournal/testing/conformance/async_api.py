"""AsyncJournal: the same behaviour through `await`, without blocking the event loop."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from agentjournal import AsyncJournal, ConcurrencyError, Journal, NewEvent

from .base import ConformanceBase, assert_contiguous, new_events


class AsyncConformance(ConformanceBase):
    def test_async_round_trip_and_reads(self, journal: Journal) -> None:
        async def scenario() -> None:
            async_journal = AsyncJournal(journal)
            result = await async_journal.append("run-1", new_events(3), expected_version=0)
            await async_journal.append("run-2", new_events(2))
            assert await async_journal.read_stream("run-1") == result.events
            assert await async_journal.read_stream("run-1", 2, 3, backwards=True) == result.events[1:][::-1]
            everything = await async_journal.read_all()
            assert_contiguous(everything, 1)
            assert await async_journal.read_all(after=1, limit=2, types=["Noted"]) == everything[1:3]
            assert [event async for event in async_journal.iter_all(batch_size=2)] == everything
            assert await async_journal.get_event(result.events[1].event_id) == result.events[1]
            assert await async_journal.stream_version("run-1") == 3
            assert [info.stream_id for info in await async_journal.streams("run-")] == ["run-1", "run-2"]
            assert await async_journal.head_position() == 5
            assert (await async_journal.verify()).ok
            assert async_journal.registry is journal.registry
            with pytest.raises(ConcurrencyError) as raised:
                await async_journal.append("run-1", new_events(1), expected_version=2)
            assert (raised.value.expected, raised.value.actual) == (2, 3)

        asyncio.run(scenario())

    def test_async_open_and_close(self, journal_url: str) -> None:
        async def scenario() -> None:
            async with await AsyncJournal.open(journal_url, create=True) as async_journal:
                assert isinstance(async_journal.sync, Journal)
                await async_journal.append("s", NewEvent("Opened"))
                assert await async_journal.stream_version("s") == 1

        asyncio.run(scenario())

    def test_async_appends_carry_the_callers_context(self, journal: Journal) -> None:
        async def scenario() -> None:
            async_journal = AsyncJournal(journal)

            async def task(actor: str) -> None:
                with async_journal.context(actor=actor, tenant_id="acme"):
                    await asyncio.sleep(0.01)
                    await async_journal.append(f"run-{actor}", NewEvent("Worked"))

            await asyncio.gather(*(task(actor) for actor in ("ana", "bo", "cy")))

        asyncio.run(scenario())
        for actor in ("ana", "bo", "cy"):
            (event,) = journal.read_stream(f"run-{actor}")
            assert (event.actor, event.tenant_id) == (actor, "acme")

    def test_a_slow_append_does_not_block_the_event_loop(self, journal: Journal) -> None:
        """A ticker keeps ticking while one append holds the write lock and a second waits for it:
        had an append run on the loop, the ticker would have stalled for its whole 0.5 s."""
        journal._before_commit = lambda: time.sleep(0.5)

        async def scenario() -> tuple[list[float], float]:
            async_journal = AsyncJournal(journal)
            ticks: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                while not done.is_set():
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            started = time.monotonic()
            await asyncio.gather(
                async_journal.append("a", NewEvent("Slow")), async_journal.append("b", NewEvent("Slow"))
            )
            elapsed = time.monotonic() - started
            done.set()
            await ticking
            return ticks, elapsed

        ticks, elapsed = asyncio.run(scenario())
        assert elapsed >= 0.5  # the appends really were slow
        assert len(ticks) >= 10, f"the event loop ticked only {len(ticks)} times in {elapsed:.2f}s"
        longest_stall = max(later - earlier for earlier, later in itertools.pairwise(ticks))
        assert longest_stall < 0.25, f"the event loop stalled for {longest_stall:.2f}s"
        assert journal.head_position() == 2
