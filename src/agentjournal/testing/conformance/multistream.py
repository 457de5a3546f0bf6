"""Writing several streams at once (`append_streams`): one transaction or none, with append's errors."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from agentjournal import ANY, ConcurrencyError, DuplicateEventError, InvalidEventError, Journal, NewEvent
from agentjournal.journal.errors import StreamClosedError

from .base import ConformanceBase, assert_contiguous, new_events


class MultiStreamConformance(ConformanceBase):
    def test_several_streams_commit_together_in_the_order_given(self, journal: Journal) -> None:
        journal.append("order-1", new_events(2))
        results = journal.append_streams(
            {
                "order-1": (new_events(1, "Shipped"), 2),
                "invoice-1": (new_events(2, "Billed"), 0),
                "outbox": (NewEvent("Send", {"to": "carrier"}), ANY),
            }
        )
        assert list(results) == ["order-1", "invoice-1", "outbox"]
        assert [(r.first_version, r.last_version) for r in results.values()] == [(3, 3), (1, 2), (1, 1)]
        stored = [event for result in results.values() for event in result.events]
        assert_contiguous(stored, 3)  # after the two earlier events, in the order of the mapping
        assert list(journal.iter_all(after=2)) == stored
        assert journal.verify().ok

    def test_one_stale_expected_version_stores_nothing_anywhere(self, journal: Journal) -> None:
        journal.append("a", new_events(2))
        with pytest.raises(ConcurrencyError) as raised:
            journal.append_streams({"b": (new_events(3), 0), "a": (new_events(1), 1), "c": (new_events(1), ANY)})
        assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("a", 1, 2)
        assert journal.head_position() == 2
        assert [stream.stream_id for stream in journal.streams()] == ["a"]

    def test_a_closed_stream_stores_nothing_anywhere(self, journal: Journal) -> None:
        journal.append("done", [NewEvent("Opened"), NewEvent("Closed", closes_stream=True)])
        with pytest.raises(StreamClosedError):
            journal.append_streams({"fresh": (new_events(1), 0), "done": (new_events(1), ANY)})
        assert journal.stream_version("fresh") == 0
        assert journal.head_position() == 2

    def test_a_taken_event_id_stores_nothing_anywhere(self, journal: Journal) -> None:
        taken = journal.append("a", new_events(1)).events[0].event_id
        with pytest.raises(DuplicateEventError):
            journal.append_streams({"b": (new_events(2), 0), "c": (NewEvent("Copy", {"n": 9}, event_id=taken), ANY)})
        assert journal.head_position() == 1 and journal.stream_version("b") == 0

    def test_retrying_the_same_write_is_recognised(self, journal: Journal) -> None:
        write: dict[str, Any] = {
            "a": ([NewEvent("A", {"n": 1}, event_id="0193aaaa-0000-7000-8000-000000000001")], 0),
            "b": ([NewEvent("B", {"n": 1}, event_id="0193aaaa-0000-7000-8000-000000000002")], 0),
        }
        first = journal.append_streams(write)
        again = journal.append_streams(write)
        assert all(result.already_appended for result in again.values())
        assert [r.events for r in again.values()] == [r.events for r in first.values()]
        assert journal.head_position() == 2

    def test_racing_writers_each_commit_all_of_theirs_or_none(self, journal: Journal) -> None:
        """Six writers race for version 1 of a shared stream, each also writing a stream of its own:
        one wins both; the others store nothing, their own streams included."""
        from concurrent.futures import ThreadPoolExecutor

        journal.append("shared", new_events(1))
        start = threading.Barrier(6)

        def attempt(writer: int) -> str:
            start.wait()
            try:
                journal.append_streams(
                    {f"own-{writer}": (new_events(2), 0), "shared": ([NewEvent("Claimed", {"writer": writer})], 1)}
                )
            except ConcurrencyError:
                return "conflict"
            return "won"

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(attempt, range(6)))
        assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
        winner = outcomes.index("won")
        assert [s.stream_id for s in journal.streams("own-")] == [f"own-{winner}"]
        assert journal.head_position() == 4

    def test_a_reader_never_sees_part_of_a_write(self, journal: Journal) -> None:
        """While writes of three streams commit, every read of the whole journal holds each write whole."""
        done = threading.Event()
        torn: list[str] = []

        def write() -> None:
            try:
                for n in range(60):
                    journal.append_streams({f"{name}-{n}": (new_events(2, write=n), 0) for name in ("x", "y", "z")})
            finally:
                done.set()

        writer = threading.Thread(target=write)
        writer.start()
        while True:
            finished = done.is_set()  # one more read after the last write committed
            seen: dict[int, int] = {}
            for event in journal.read_all():  # one query: one snapshot of the journal
                seen[event.data["write"]] = seen.get(event.data["write"], 0) + 1
            torn.extend(f"write {n}: {count} of 6 events" for n, count in seen.items() if count != 6)
            if finished:
                break
        writer.join()
        assert not torn, torn
        assert journal.head_position() == 360

    def test_bad_writes_are_refused_naming_the_stream(self, journal: Journal) -> None:
        for writes, message in (
            ({}, "append_streams needs"),
            ({"a": new_events(1)}, "stream 'a': expected (events, expected_version)"),
            ({"a": ([], ANY)}, "stream 'a': nothing to append"),
            ({"a": (new_events(1), -1)}, "stream 'a': expected_version must be"),
            ({"": (new_events(1), ANY)}, "stream id"),
        ):
            with pytest.raises(InvalidEventError, match=re.escape(message)):
                journal.append_streams(writes)
        same = NewEvent("X", event_id="0193aaaa-0000-7000-8000-0000000000ff")
        with pytest.raises(InvalidEventError, match="appears in the batches of both 'a' and 'b'"):
            journal.append_streams({"a": ([same], ANY), "b": ([same], ANY)})
        assert journal.head_position() == 0
