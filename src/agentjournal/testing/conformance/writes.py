"""Writing: optimistic concurrency, atomic batches, idempotent retries, and refused input."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from agentjournal import ANY, ConcurrencyError, DuplicateEventError, InvalidEventError, Journal, NewEvent

from .base import ConformanceBase, new_events


class WriteConformance(ConformanceBase):
    # ----- optimistic concurrency -----------------------------------------------------------

    def test_expected_version_zero_means_the_stream_must_not_exist(self, journal: Journal) -> None:
        journal.append("s", new_events(1), expected_version=0)
        with pytest.raises(ConcurrencyError) as raised:
            journal.append("s", new_events(1), expected_version=0)
        assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("s", 0, 1)
        assert "'s'" in str(raised.value)
        assert "expected version 0" in str(raised.value)
        assert "at version 1" in str(raised.value)
        assert journal.stream_version("s") == 1

    def test_exact_expected_version(self, journal: Journal) -> None:
        journal.append("s", new_events(3), expected_version=0)
        for wrong in (1, 2, 4, 10):
            with pytest.raises(ConcurrencyError) as raised:
                journal.append("s", new_events(1), expected_version=wrong)
            assert (raised.value.expected, raised.value.actual) == (wrong, 3)
        with pytest.raises(ConcurrencyError) as raised:
            journal.append("missing", new_events(1), expected_version=2)
        assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("missing", 2, 0)
        assert journal.append("s", new_events(1), expected_version=3).last_version == 4
        assert journal.head_position() == 4
        assert journal.streams() == journal.streams("s")  # the refused append created no stream

    def test_any_appends_at_whatever_version(self, journal: Journal) -> None:
        assert journal.append("s", new_events(2), expected_version=ANY).last_version == 2
        assert journal.append("s", new_events(2), expected_version="any").last_version == 4
        assert journal.append("s", new_events(1)).last_version == 5  # ANY is the default

    def test_a_conflicting_batch_stores_none_of_its_events(self, journal: Journal) -> None:
        journal.append("s", new_events(2))
        with pytest.raises(ConcurrencyError):
            journal.append("s", new_events(5), expected_version=1)
        assert journal.stream_version("s") == 2
        assert journal.head_position() == 2
        assert journal.verify().ok

    def test_a_batch_with_one_invalid_event_stores_none(self, journal: Journal) -> None:
        batch: list[Any] = [NewEvent("Good", {"n": 1}), NewEvent("Bad", {"when": object()}), NewEvent("Good")]
        with pytest.raises(InvalidEventError, match=r"event 2 of 3 \(Bad\)"):
            journal.append("s", batch)
        assert journal.head_position() == 0
        assert journal.streams() == []

    def test_a_batch_with_a_taken_event_id_stores_none(self, journal: Journal) -> None:
        taken = journal.append("other", new_events(1)).events[0].event_id
        batch = [NewEvent("Fresh", {"n": 1}), NewEvent("Clash", {"n": 2}, event_id=taken)]
        with pytest.raises(DuplicateEventError) as raised:
            journal.append("s", batch, expected_version=0)
        assert raised.value.event_id == taken
        assert journal.stream_version("s") == 0
        assert journal.head_position() == 1
        # The stream is still free, and the next append takes the next position.
        assert journal.append("s", new_events(1), expected_version=0).last_position == 2

    def test_racing_writers_with_the_same_expected_version_one_wins(self, journal: Journal) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        journal.append("s", new_events(1))
        start = threading.Barrier(6)

        def attempt(writer: int) -> str:
            start.wait()
            try:
                journal.append("s", [NewEvent("Claimed", {"writer": writer})], expected_version=1)
            except ConcurrencyError as conflict:
                assert (conflict.expected, conflict.actual) == (1, 2)
                return "conflict"
            return "won"

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(attempt, range(6)))
        assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
        assert journal.stream_version("s") == 2
        assert journal.head_position() == 2

    # ----- idempotent retries ----------------------------------------------------------------

    def test_retrying_the_same_batch_is_reported_and_stores_nothing(self, journal: Journal) -> None:
        batch = [
            NewEvent("A", {"n": 1}, event_id=str(uuid.uuid4())),
            NewEvent("B", {"n": 2}, event_id=str(uuid.uuid4())),
        ]
        first = journal.append("s", batch, expected_version=0)
        journal.append("t", new_events(1))
        for expected in (0, ANY, 5):
            retry = journal.append("s", batch, expected_version=expected)
            assert retry.already_appended
            assert retry.events == first.events
            assert retry.last_position == first.last_position
        assert journal.head_position() == 3
        assert journal.stream_version("s") == 2

    def test_a_retry_after_the_stream_moved_on_is_still_recognised(self, journal: Journal) -> None:
        batch = [NewEvent("A", {"n": 1}, event_id=str(uuid.uuid4()))]
        journal.append("s", batch, expected_version=0)
        journal.append("s", new_events(2), expected_version=1)
        retry = journal.append("s", batch, expected_version=0)
        assert retry.already_appended
        assert retry.last_version == 1
        assert journal.stream_version("s") == 3

    def test_same_event_id_with_different_content_is_an_error(self, journal: Journal) -> None:
        event_id = str(uuid.uuid4())
        journal.append("s", [NewEvent("A", {"n": 1}, event_id=event_id)], expected_version=0)
        changed = [
            NewEvent("A", {"n": 2}, event_id=event_id),
            NewEvent("B", {"n": 1}, event_id=event_id),
            NewEvent("A", {"n": 1}, metadata={"x": 1}, event_id=event_id),
        ]
        for event in changed:
            for expected in (0, ANY):
                with pytest.raises(DuplicateEventError, match="different content") as raised:
                    journal.append("s", [event], expected_version=expected)
                assert raised.value.event_id == event_id
        with pytest.raises(DuplicateEventError, match="different content"):
            journal.append("elsewhere", [NewEvent("A", {"n": 1}, event_id=event_id)])
        assert journal.head_position() == 1
        assert journal.stream_version("elsewhere") == 0

    def test_a_partial_retry_is_refused(self, journal: Journal) -> None:
        stored = NewEvent("A", {"n": 1}, event_id=str(uuid.uuid4()))
        journal.append("s", [stored], expected_version=0)
        with pytest.raises(DuplicateEventError, match="1 of the 2"):
            journal.append("s", [stored, NewEvent("B", event_id=str(uuid.uuid4()))], expected_version=0)
        assert journal.head_position() == 1

    # ----- bad input: a clear error, and nothing stored ----------------------------------------

    def test_bad_payload_is_refused(self, journal: Journal) -> None:
        for data, message in BAD_PAYLOADS:
            error = _refused(
                f"data={data!r}", lambda data=data: journal.append("s", [NewEvent("Noted", data)]), message
            )
            assert "'s'" in error
            assert "Noted" in error
        _assert_nothing_stored(journal)

    def test_bad_metadata_is_refused(self, journal: Journal) -> None:
        with pytest.raises(InvalidEventError, match="metadata"):
            journal.append("s", [NewEvent("Noted", {}, metadata={"at": object()})])
        with pytest.raises(InvalidEventError, match="metadata"):
            journal.append("s", [NewEvent("Noted", {}, metadata=["not", "a", "dict"])])
        _assert_nothing_stored(journal)

    def test_payload_size_limit(self, journal_url: str) -> None:
        with self.open_journal(journal_url, create=True, max_payload_bytes=1000) as journal:
            assert journal.max_payload_bytes == 1000
            with pytest.raises(InvalidEventError, match=r"1,0\d\d bytes; the limit is 1,000 bytes"):
                journal.append("s", [NewEvent("Big", {"text": "x" * 1000})])
            _assert_nothing_stored(journal)
            journal.append("s", [NewEvent("Small", {"text": "x" * 900})])
            assert journal.head_position() == 1

    def test_default_payload_limit_is_one_mebibyte(self, journal: Journal) -> None:
        with pytest.raises(InvalidEventError, match="the limit is 1,048,576 bytes"):
            journal.append("s", [NewEvent("Big", {"text": "x" * (1024 * 1024)})])
        _assert_nothing_stored(journal)

    def test_bad_stream_id_is_refused(self, journal: Journal) -> None:
        for stream_id, message in BAD_STREAM_IDS:
            _refused(
                f"stream id {stream_id!r}",
                lambda stream_id=stream_id: journal.append(stream_id, new_events(1)),
                message,
            )
            _refused(f"stream id {stream_id!r}", lambda stream_id=stream_id: journal.read_stream(stream_id), message)
            _refused(f"stream id {stream_id!r}", lambda stream_id=stream_id: journal.stream_version(stream_id), message)
        _assert_nothing_stored(journal)

    def test_longest_stream_id_and_type_are_accepted(self, journal: Journal) -> None:
        name = "ü" * 200  # 200 characters, 400 bytes in UTF-8
        journal.append(name, [NewEvent("T" * 200)])
        assert journal.read_stream(name)[0].type == "T" * 200
        assert [info.stream_id for info in journal.streams()] == [name]

    def test_bad_envelope_fields_are_refused(self, journal: Journal) -> None:
        for field in ("actor", "tenant_id", "correlation_id", "causation_id", "traceparent"):
            too_long = NewEvent("Noted", **{field: "x" * 256})
            _refused(
                f"{field} of 256",
                lambda event=too_long: journal.append("s", [event]),
                f"{field} is 256 characters long; the limit is 255",
            )
            broken = NewEvent("Noted", **{field: "line\nbreak"})
            _refused(
                f"{field} with a newline",
                lambda event=broken: journal.append("s", [event]),
                f"{field} .* non-printable character",
            )
            with journal.context(**{field: "from\x00context"}):
                _refused(
                    f"context {field}",
                    lambda: journal.append("s", [NewEvent("Noted")]),
                    f"the context's {field} .* non-printable",
                )
        _assert_nothing_stored(journal)

    def test_stream_ids_are_compared_exactly(self, journal: Journal) -> None:
        """Case, trailing spaces and Unicode normalization forms all make different streams."""
        names = ["run-1", "Run-1", "run-1 ", " run-1", "caf\u00e9", "cafe\u0301", "🎉" * 200]
        for name in names:
            journal.append(name, [NewEvent("Noted", {"name": name})], expected_version=0)
        for name in names:
            assert journal.stream_version(name) == 1
            assert [event.data["name"] for event in journal.read_stream(name)] == [name]
        assert [info.stream_id for info in journal.streams()] == sorted(names)
        assert [info.stream_id for info in journal.streams("run-1")] == ["run-1", "run-1 "]

    def test_a_batch_larger_than_a_server_packet_is_stored_whole(self, journal: Journal) -> None:
        """18 events of about 1 MB each: more than MySQL's default 16 MiB max_allowed_packet."""
        batch = [NewEvent("Big", {"n": n, "text": "x" * 1_000_000}) for n in range(18)]
        result = journal.append("big", batch, expected_version=0)
        assert result.last_version == 18
        assert [event.data["n"] for event in journal.read_stream("big", 17)] == [16, 17]
        assert journal.verify("big").ok

    def test_bad_event_is_refused(self, journal: Journal) -> None:
        for event, message in BAD_EVENTS:
            _refused(repr(event), lambda event=event: journal.append("s", [NewEvent("Fine"), event]), message)
        _assert_nothing_stored(journal)

    def test_empty_batch_and_repeated_id_in_a_batch_are_refused(self, journal: Journal) -> None:
        with pytest.raises(InvalidEventError, match="empty"):
            journal.append("s", [])
        event_id = str(uuid.uuid4())
        with pytest.raises(InvalidEventError, match="appears twice"):
            journal.append("s", [NewEvent("A", event_id=event_id), NewEvent("B", event_id=event_id)])
        _assert_nothing_stored(journal)

    def test_bad_expected_version_is_refused(self, journal: Journal) -> None:
        for expected in (-1, "latest", "1", 1.0, None, True):
            append = lambda expected=expected: journal.append("s", new_events(1), expected_version=expected)  # noqa: E731
            _refused(f"expected_version={expected!r}", append, "expected_version must be a version >= 0 or 'any'")
        _assert_nothing_stored(journal)


def _assert_nothing_stored(journal: Journal) -> None:
    assert journal.head_position() == 0
    assert journal.streams() == []
    assert journal.read_all() == []


def _refused(case: str, call: Callable[[], object], match: str) -> str:
    """Run `call`, which must raise InvalidEventError matching `match`; returns the message."""
    try:
        call()
    except InvalidEventError as error:
        assert re.search(match, str(error)), f"{case}: the error {str(error)!r} does not match {match!r}"
        return str(error)
    pytest.fail(f"{case} was accepted")


BAD_PAYLOADS: list[tuple[Any, str]] = [
    ({"when": object()}, "not JSON-serializable"),
    ({"values": {1, 2}}, "not JSON-serializable"),
    ({1: "integer key"}, "not JSON-serializable"),
    ({"nan": float("nan")}, "not JSON-serializable"),
    ({"deep": [{"inf": float("-inf")}]}, "not JSON-serializable"),
    ({"half": "\ud800"}, "not JSON-serializable"),
    ({"huge": 2**64}, "not JSON-serializable"),
    ([1, 2, 3], "must be a JSON object"),
    ("text", "must be a JSON object"),
    (None, "must be a JSON object"),
]
BAD_STREAM_IDS: list[tuple[Any, str]] = [
    ("", "non-empty"),
    ("x" * 201, "201 characters long; the limit is 200"),
    ("run\n42", "non-printable character"),
    ("run\x0042", "non-printable character"),
    ("run\u200b42", "non-printable character"),
    ("run\ud80042", "non-printable character"),
    (42, "non-empty string"),
    (None, "non-empty string"),
]
BAD_EVENTS: list[tuple[Any, str]] = [
    (NewEvent(""), "event type must be a non-empty string"),
    (NewEvent("T" * 201), "the limit is 200"),
    (NewEvent("Tool\tCalled"), "non-printable character"),
    (NewEvent("Noted", event_id="not-a-uuid"), "not a UUID"),
    (NewEvent("Noted", schema_version=0), "schema_version must be an integer >= 1, got 0"),
    (NewEvent("Noted", schema_version="2"), "schema_version must be an integer >= 1, got '2'"),
    ({"type": "Noted"}, "expected a NewEvent"),
]
