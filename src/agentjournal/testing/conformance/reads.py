"""Append/read round trips: every envelope field comes back, and every read narrows correctly."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentjournal import EventNotFoundError, InvalidEventError, Journal, NewEvent
from agentjournal.journal.envelope import GENESIS_HASH, canonical_json

from .base import ConformanceBase, assert_contiguous, new_events

RICH_DATA = {
    "text": "refund ORD-5521 — naïve café ✓ 🎉 日本語",
    "nul": "a\u0000b",
    "escapes": "\"quoted\" 'single' back\\slash\nnewline\ttab",
    "int": 42,
    "big": 2**62,
    "negative": -7,
    "float": 0.1,
    "tiny": 1.5e-300,
    "flag": True,
    "nothing": None,
    "list": [1, "two", [3.5], {"four": 4}],
    "nested": {"z": 1, "a": {"b": [], "c": {}}},
}


class ReadConformance(ConformanceBase):
    def test_round_trip_keeps_every_envelope_field(self, journal: Journal) -> None:
        event_id = str(uuid.uuid4())
        cause = str(uuid.uuid4())
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        new = NewEvent(
            "ToolCalled",
            RICH_DATA,
            metadata={"model": "scripted", "cost": {"usd": 0.0012}},
            event_id=event_id,
            schema_version=2,
            actor="agent:planner",
            tenant_id="acme",
            correlation_id="corr-1",
            causation_id=cause,
            traceparent=traceparent,
        )
        appended = journal.append("run-42", [new], expected_version=0)
        assert not appended.already_appended
        (stored,) = appended.events
        (read,) = journal.read_stream("run-42")
        for event in (stored, read, journal.get_event(event_id), journal.read_all()[0]):
            assert event.event_id == event_id
            assert event.stream_id == "run-42"
            assert event.version == 1
            assert event.position == 1
            assert event.type == "ToolCalled"
            assert event.schema_version == 2
            assert event.actor == "agent:planner"
            assert event.tenant_id == "acme"
            assert event.correlation_id == "corr-1"
            assert event.causation_id == cause
            assert event.traceparent == traceparent
            assert event.data == RICH_DATA
            assert event.metadata == {"model": "scripted", "cost": {"usd": 0.0012}}
            assert event.prev_hash == GENESIS_HASH
            assert event.hash == event.compute_hash() == stored.hash
            assert event.recorded_at == stored.recorded_at
            assert event.recorded_at.utcoffset() == timedelta(0)
            assert event == stored
        # The canonical bytes, not merely an equal JSON value: the hash depends on them.
        assert _as_bytes(read.data_json) == canonical_json(RICH_DATA)
        assert _as_bytes(read.metadata_json) == b'{"cost":{"usd":0.0012},"model":"scripted"}'

    def test_recorded_at_is_utc_now_with_microseconds(self, journal: Journal) -> None:
        before = datetime.now(UTC)
        journal.append("clock", NewEvent("Ticked"))
        after = datetime.now(UTC)
        (event,) = journal.read_stream("clock")
        assert before <= event.recorded_at <= after
        assert event.recorded_at.tzinfo is not None

    def test_batch_gets_consecutive_versions_positions_and_a_hash_chain(self, journal: Journal) -> None:
        journal.append("other", new_events(2))
        result = journal.append("run-1", new_events(3), expected_version=0)
        more = journal.append("run-1", new_events(2), expected_version=3)
        assert (result.first_version, result.last_version, more.last_version) == (1, 3, 5)
        events = journal.read_stream("run-1")
        assert [event.version for event in events] == [1, 2, 3, 4, 5]
        assert_contiguous(events, 3)
        assert more.last_position == 7
        assert events[0].prev_hash == GENESIS_HASH
        for previous, event in itertools.pairwise(events):
            assert event.prev_hash == previous.hash
        assert [event.data["n"] for event in events] == [1, 2, 3, 1, 2]

    def test_a_root_event_is_its_own_correlation(self, journal: Journal) -> None:
        result = journal.append("run-1", new_events(3))
        first = result.events[0].event_id
        assert [event.correlation_id for event in journal.read_stream("run-1")] == [first] * 3
        assert journal.read_stream("run-1")[0].causation_id is None

    def test_read_stream_ranges_backwards_and_limit(self, journal: Journal) -> None:
        journal.append("s", new_events(10), expected_version=0)
        journal.append("t", new_events(3))

        def versions(**kwargs: object) -> list[int]:
            return [event.version for event in journal.read_stream("s", **kwargs)]

        assert versions() == list(range(1, 11))
        assert versions(from_version=4) == list(range(4, 11))
        assert versions(from_version=4, to_version=6) == [4, 5, 6]
        assert versions(from_version=7, to_version=7) == [7]
        assert versions(to_version=3) == [1, 2, 3]
        assert versions(from_version=9, to_version=20) == [9, 10]
        assert versions(from_version=11) == []
        assert versions(backwards=True) == list(range(10, 0, -1))
        assert versions(from_version=3, to_version=5, backwards=True) == [5, 4, 3]
        assert versions(limit=4) == [1, 2, 3, 4]
        assert versions(backwards=True, limit=2) == [10, 9]
        assert versions(from_version=5, limit=2) == [5, 6]
        assert journal.read_stream("never-written") == []

    def test_read_stream_refuses_a_bad_range(self, journal: Journal) -> None:
        journal.append("s", new_events(2))
        with pytest.raises(InvalidEventError, match="version range"):
            journal.read_stream("s", from_version=0)
        with pytest.raises(InvalidEventError, match="version range"):
            journal.read_stream("s", from_version=5, to_version=4)

    def test_read_all_in_position_order_with_after_limit_and_backwards(self, journal: Journal) -> None:
        for round_ in range(3):
            for stream in ("a", "b", "c"):
                journal.append(stream, [NewEvent("Noted", {"round": round_, "stream": stream})])
        everything = journal.read_all()
        assert_contiguous(everything, 1)
        assert [event.stream_id for event in everything] == ["a", "b", "c"] * 3
        assert journal.read_all(after=4, limit=3) == everything[4:7]
        assert journal.read_all(after=9) == []
        assert journal.read_all(backwards=True) == everything[::-1]
        assert journal.read_all(after=5, backwards=True) == everything[:4][::-1]
        assert journal.read_all(after=5, limit=2, backwards=True) == everything[2:4][::-1]
        assert list(journal.iter_all(batch_size=2)) == everything
        assert list(journal.iter_all(after=7, batch_size=2)) == everything[7:]
        with pytest.raises(InvalidEventError, match="limit"):
            journal.read_all(limit=0)

    def test_read_all_filters(self, journal: Journal) -> None:
        root = journal.append("run-1", [NewEvent("RunStarted", {}, tenant_id="acme", correlation_id="c1")]).events[0]
        journal.append(
            "run-1", [NewEvent("ToolCalled", {}, tenant_id="acme", correlation_id="c1", causation_id=root.event_id)]
        )
        journal.append("run-2", [NewEvent("RunStarted", {}, tenant_id="globex", correlation_id="c2")])
        journal.append("run-2", [NewEvent("ToolCalled", {}, tenant_id="globex", correlation_id="c2")])
        journal.append("run-1", [NewEvent("RunCompleted", {}, tenant_id="acme", correlation_id="c1")])

        def where(**filters: object) -> list[tuple[str, str]]:
            return [(event.stream_id, event.type) for event in journal.read_all(**filters)]

        assert where(types=["ToolCalled"]) == [("run-1", "ToolCalled"), ("run-2", "ToolCalled")]
        assert where(types=["RunStarted", "RunCompleted"]) == [
            ("run-1", "RunStarted"),
            ("run-2", "RunStarted"),
            ("run-1", "RunCompleted"),
        ]
        assert where(types=["Unknown"]) == []
        assert where(tenant_id="globex") == [("run-2", "RunStarted"), ("run-2", "ToolCalled")]
        assert where(correlation_id="c1") == [
            ("run-1", "RunStarted"),
            ("run-1", "ToolCalled"),
            ("run-1", "RunCompleted"),
        ]
        assert where(causation_id=root.event_id) == [("run-1", "ToolCalled")]
        assert where(tenant_id="acme", types=["ToolCalled"]) == [("run-1", "ToolCalled")]
        assert where(tenant_id="acme", types=["RunCompleted"], backwards=True) == [("run-1", "RunCompleted")]
        assert where(tenant_id="acme", limit=1, after=1) == [("run-1", "ToolCalled")]

    def test_read_all_since_and_until(self, journal: Journal) -> None:
        stamps = []
        for number in range(4):
            stamps.append(journal.append(f"s{number}", NewEvent("Noted")).events[0].recorded_at)
            time.sleep(0.003)
        assert len(set(stamps)) == 4

        def streams(**filters: object) -> list[str]:
            return [event.stream_id for event in journal.read_all(**filters)]

        assert streams(since=stamps[1]) == ["s1", "s2", "s3"]  # since is inclusive
        assert streams(until=stamps[2]) == ["s0", "s1"]  # until is exclusive
        assert streams(since=stamps[1], until=stamps[3]) == ["s1", "s2"]
        assert streams(since=stamps[1] + timedelta(microseconds=1)) == ["s2", "s3"]
        # Any time zone names the same instant.
        east = stamps[2].astimezone(timezone(timedelta(hours=9)))
        assert streams(since=east) == ["s2", "s3"]
        with pytest.raises(InvalidEventError, match="time zone"):
            journal.read_all(since=stamps[0].replace(tzinfo=None))

    def test_stream_listing_with_prefix_after_and_limit(self, journal: Journal) -> None:
        for name in ("run-b", "run-a", "task-1", "run-c", "run_x"):
            journal.append(name, new_events(2 if name == "run-a" else 1))
        journal.append("run-a", new_events(1), expected_version=2)
        listed = journal.streams()
        assert [info.stream_id for info in listed] == ["run-a", "run-b", "run-c", "run_x", "task-1"]
        run_a = listed[0]
        assert run_a.version == 3
        assert run_a.created_at <= run_a.updated_at
        assert run_a.updated_at == journal.read_stream("run-a")[-1].recorded_at
        assert run_a.created_at == journal.read_stream("run-a")[0].recorded_at
        assert [info.stream_id for info in journal.streams("run-")] == ["run-a", "run-b", "run-c"]
        # A prefix is literal text, never a LIKE pattern: "_" and "%" match only themselves.
        assert [info.stream_id for info in journal.streams("run_")] == ["run_x"]
        assert journal.streams("run%") == []
        assert [info.stream_id for info in journal.streams("run-", after="run-a")] == ["run-b", "run-c"]
        assert [info.stream_id for info in journal.streams(limit=2)] == ["run-a", "run-b"]
        assert [info.stream_id for info in journal.streams(after="run-c", limit=2)] == ["run_x", "task-1"]
        assert journal.streams("nothing") == []

    def test_get_event_stream_version_and_head_position(self, journal: Journal) -> None:
        assert journal.head_position() == 0
        assert journal.stream_version("s") == 0
        result = journal.append("s", new_events(3))
        journal.append("t", new_events(2))
        assert journal.stream_version("s") == 3
        assert journal.stream_version("t") == 2
        assert journal.head_position() == 5
        middle = result.events[1]
        assert journal.get_event(middle.event_id) == middle
        assert journal.get_event(middle.event_id.upper()) == middle  # any spelling of the UUID
        missing = str(uuid.uuid4())
        with pytest.raises(EventNotFoundError, match=missing):
            journal.get_event(missing)
        with pytest.raises(InvalidEventError, match="not a UUID"):
            journal.get_event("not-a-uuid")

    def test_event_ids_are_time_ordered(self, journal: Journal) -> None:
        events = journal.append("s", new_events(50)).events
        ids = [uuid.UUID(event.event_id) for event in events]
        assert all(event_id.version == 7 for event_id in ids)
        assert ids == sorted(ids)

    def test_reopened_journal_reads_the_same_events(self, journal: Journal, journal_url: str) -> None:
        if not self.persistent:
            pytest.skip(f"{journal.backend_name} keeps nothing once closed")
        stored = journal.append("s", new_events(3)).events
        with self.open_journal(journal_url) as again:
            assert again.read_stream("s") == stored
            assert again.verify().ok


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
