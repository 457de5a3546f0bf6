"""Global order under concurrency: positions in commit order, contiguous as readers see them."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentjournal import ConcurrencyError, Journal, NewEvent, RecordedEvent

from .base import ConformanceBase, assert_contiguous, new_events, positions, tail

WRITERS = 8


class OrderingConformance(ConformanceBase):
    appends_per_writer = 15
    """Appends of each of the 8 concurrent writers (half to its own stream, half to a shared one)."""

    def test_racing_1000_event_batches_get_non_overlapping_contiguous_blocks(self, journal: Journal) -> None:
        journal.append("before", new_events(3))
        start = threading.Barrier(2)

        def write(stream: str) -> list[RecordedEvent]:
            batch = new_events(1000, stream=stream)
            start.wait()
            return journal.append(stream, batch, expected_version=0).events

        with ThreadPoolExecutor(2) as pool:
            left, right = pool.map(write, ["left", "right"])
        for block in (left, right):
            assert_contiguous(block, block[0].position)
        first, second = sorted([left, right], key=lambda block: block[0].position)
        assert first[0].position == 4
        assert second[0].position == first[-1].position + 1
        everything = list(journal.iter_all(batch_size=700))
        assert_contiguous(everything, 1)
        assert everything[3:] == first + second
        assert journal.verify().ok

    def test_a_reader_never_sees_part_of_a_batch(self, journal: Journal) -> None:
        done = threading.Event()

        def write() -> None:
            try:
                for number in range(6):
                    journal.append(f"batch-{number}", new_events(200))
            finally:
                done.set()

        with ThreadPoolExecutor(1) as pool:
            writing = pool.submit(write)
            while not done.is_set():
                count = len(journal.read_all(limit=5000))
                assert count % 200 == 0, f"a reader saw {count} events: part of a 200-event batch"
            writing.result()
        assert len(journal.read_all(limit=5000)) == 1200

    def test_a_late_commit_is_never_skipped_by_a_polling_reader(self, journal: Journal) -> None:
        """A writes and stays open (in the before-commit hook), B writes, the reader polls;
        then A commits. The reader must get A, then B, with no gap."""
        journal.append("warm-up", new_events(2))
        checkpoint = journal.head_position()
        a_inside, release_a = threading.Event(), threading.Event()
        hook_calls: list[str] = []

        def hold_the_first_writer() -> None:
            hook_calls.append(threading.current_thread().name)
            if len(hook_calls) == 1:
                a_inside.set()
                assert release_a.wait(20), "the test never released writer A"

        journal._before_commit = hold_the_first_writer
        b_started = threading.Event()

        def write_a() -> list[RecordedEvent]:
            return journal.append("stream-a", new_events(3, writer="A")).events

        def write_b() -> list[RecordedEvent]:
            b_started.set()
            return journal.append("stream-b", new_events(2, writer="B")).events

        with ThreadPoolExecutor(3) as pool:
            future_a = pool.submit(write_a)
            assert a_inside.wait(10), "writer A never reached its commit"
            future_b = pool.submit(write_b)
            assert b_started.wait(10)
            seen_while_a_open: list[RecordedEvent] = []
            deadline = time.monotonic() + 0.4  # B has long reached its insert or its lock wait by then
            while time.monotonic() < deadline:
                seen_while_a_open += journal.read_all(after=checkpoint)
                time.sleep(0.01)
            assert seen_while_a_open == [], "a reader saw events while an earlier writer was still open"
            reader = pool.submit(tail, journal, checkpoint, 5, timeout=20)
            release_a.set()
            a_events, b_events = future_a.result(timeout=20), future_b.result(timeout=20)
            seen = reader.result(timeout=25)
        assert [event.stream_id for event in seen] == ["stream-a"] * 3 + ["stream-b"] * 2
        assert seen == a_events + b_events
        assert_contiguous(seen, checkpoint + 1)
        assert journal.head_position() == checkpoint + 5

    @pytest.mark.parametrize("jitter", [False, True], ids=["plain", "commit-jitter"])
    def test_eight_writers_and_a_tailing_reader(self, journal: Journal, jitter: bool) -> None:
        """Every event is seen exactly once, in position order, with contiguous positions."""
        checkpoint = journal.head_position()
        if jitter:
            # A pause between the inserts and COMMIT widens the window in which a backend that
            # hands out positions before commit order would let the reader see a later event first.
            pauses = random.Random(42)
            journal._before_commit = lambda: time.sleep(pauses.uniform(0, 0.002))
        start = threading.Barrier(WRITERS + 1)
        sizes = [1, 2, 3]
        per_writer = sum(sizes[n % 3] for n in range(self.appends_per_writer))
        total = WRITERS * per_writer

        def write(writer: int) -> list[RecordedEvent]:
            stored: list[RecordedEvent] = []
            own_version = 0
            start.wait()
            for number in range(self.appends_per_writer):
                batch = [NewEvent("Wrote", {"writer": writer, "n": number, "i": i}) for i in range(sizes[number % 3])]
                if number % 2:
                    stored += journal.append("shared", batch).events
                else:
                    result = journal.append(f"writer-{writer}", batch, expected_version=own_version)
                    own_version = result.last_version
                    stored += result.events
            return stored

        def read() -> list[RecordedEvent]:
            start.wait()
            return tail(journal, checkpoint, total, timeout=30)

        with ThreadPoolExecutor(WRITERS + 1) as pool:
            reader = pool.submit(read)
            written = [event for block in pool.map(write, range(WRITERS)) for event in block]
            seen = reader.result()
        assert len(seen) == total
        assert_contiguous(seen, checkpoint + 1)
        assert len({event.event_id for event in seen}) == total
        assert sorted(seen, key=lambda event: event.position) == sorted(written, key=lambda event: event.position)
        # Each writer's own events appear in the order it wrote them.
        for writer in range(WRITERS):
            mine = [(event.data["n"], event.data["i"]) for event in seen if event.data["writer"] == writer]
            assert mine == sorted(mine)
        # Appends with expected_version="any" to one shared stream still get versions 1..n.
        shared = journal.read_stream("shared")
        assert [event.version for event in shared] == list(range(1, len(shared) + 1))
        assert positions(shared) == sorted(positions(shared))
        assert journal.verify().ok

    def test_two_journals_on_one_database_share_one_order(self, journal: Journal, journal_url: str) -> None:
        """Two Journal objects (as two processes would) see one another's events and conflicts."""
        if not self.persistent:
            pytest.skip(f"each {journal.backend_name} journal is its own store")
        with self.open_journal(journal_url) as other:
            start = threading.Barrier(2)

            def write(target: Journal, name: str) -> list[RecordedEvent]:
                start.wait()
                stored: list[RecordedEvent] = []
                for _ in range(20):
                    stored += target.append("shared", new_events(2, writer=name)).events
                return stored

            with ThreadPoolExecutor(2) as pool:
                first, second = pool.map(write, [journal, other], ["one", "two"])
            assert len(first) + len(second) == 80
            for reader in (journal, other):
                everything = reader.read_all()
                assert_contiguous(everything, 1)
                assert [event.version for event in reader.read_stream("shared")] == list(range(1, 81))
            with pytest.raises(ConcurrencyError):
                other.append("shared", new_events(1), expected_version=79)
            assert journal.verify().ok

    def test_journals_opened_at_once_on_a_fresh_database_all_migrate(self, journal_url: str) -> None:
        """Migrations take a lock: six journals opening one fresh database together all succeed."""
        if not self.persistent:
            pytest.skip("the memory backend has no schema to migrate")
        start = threading.Barrier(6)

        def open_and_append(number: int) -> int:
            start.wait()
            with self.open_journal(journal_url, create=True) as opened:
                assert opened.pending_migrations() == []
                return opened.append(f"s{number}", new_events(1)).last_position

        with ThreadPoolExecutor(6) as pool:
            assert sorted(pool.map(open_and_append, range(6))) == [1, 2, 3, 4, 5, 6]
