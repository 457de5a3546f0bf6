"""The journal against a plain in-memory model, driven by hypothesis' stateful testing.

Each example writes to streams under its own random prefix, so the SQL backends reuse one
database across examples; global checks start from the head position the example found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from agentjournal import ANY, ConcurrencyError, DuplicateEventError, Journal, NewEvent, RecordedEvent

from .base import ConformanceBase, assert_contiguous

STREAMS = st.sampled_from(["a", "b", "c"])
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
DATA = st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3)
EVENTS = st.lists(
    st.tuples(st.sampled_from(["Started", "Called", "Done"]), DATA, st.booleans()), min_size=1, max_size=4
)


@dataclass
class Batch:
    """A batch the model knows was stored: the events as given, and where they landed."""

    stream: str
    events: list[NewEvent]
    first_version: int
    stored: list[RecordedEvent] = field(default_factory=list)


def journal_machine(journal: Journal) -> type[RuleBasedStateMachine]:
    class JournalMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"hyp-{uuid.uuid4().hex[:10]}-"
            self.start = journal.head_position()
            self.streams: dict[str, list[RecordedEvent]] = {}
            self.order: list[RecordedEvent] = []  # the model's global order
            self.batches: list[Batch] = []

        def name(self, stream: str) -> str:
            return self.prefix + stream

        @rule(stream=STREAMS, spec=EVENTS, mode=st.sampled_from(["right", "wrong", "any"]), delta=st.integers(1, 3))
        def append(self, stream: str, spec: list[tuple[str, dict[str, Any], bool]], mode: str, delta: int) -> None:
            current = len(self.streams.get(stream, []))
            events = [
                NewEvent(type, data, event_id=str(uuid.uuid4()) if explicit else None) for type, data, explicit in spec
            ]
            expected: int | str = {"right": current, "any": ANY, "wrong": current + delta}[mode]
            if mode == "wrong" and current >= delta and delta % 2:
                expected = current - delta
            if mode == "wrong":
                try:
                    journal.append(self.name(stream), events, expected_version=expected)
                except ConcurrencyError as conflict:
                    assert (conflict.stream_id, conflict.expected, conflict.actual) == (
                        self.name(stream),
                        expected,
                        current,
                    )
                else:
                    raise AssertionError(f"expected_version={expected} at version {current} was accepted")
                return
            result = journal.append(self.name(stream), events, expected_version=expected)
            assert not result.already_appended
            assert [event.version for event in result.events] == list(range(current + 1, current + len(events) + 1))
            assert [(event.type, event.data) for event in result.events] == [
                (event.type, event.data) for event in events
            ]
            assert_contiguous(result.events, self.start + len(self.order) + 1)
            self.streams.setdefault(stream, []).extend(result.events)
            self.order.extend(result.events)
            if all(event.event_id for event in events):
                self.batches.append(Batch(stream, events, current + 1, result.events))

        @precondition(lambda self: self.batches)
        @rule(pick=st.integers(0, 1000), any_version=st.booleans())
        def retry(self, pick: int, any_version: bool) -> None:
            batch = self.batches[pick % len(self.batches)]
            expected = ANY if any_version else batch.first_version - 1
            result = journal.append(self.name(batch.stream), batch.events, expected_version=expected)
            assert result.already_appended
            assert result.events == batch.stored

        @precondition(lambda self: self.batches)
        @rule(pick=st.integers(0, 1000))
        def retry_with_changed_content(self, pick: int) -> None:
            batch = self.batches[pick % len(self.batches)]
            first = batch.events[0]
            changed = NewEvent(first.type, {**first.data, "changed": True}, event_id=first.event_id)  # type: ignore[dict-item]
            try:
                journal.append(self.name(batch.stream), [changed, *batch.events[1:]])
            except DuplicateEventError as error:
                assert error.event_id == first.event_id
            else:
                raise AssertionError("a changed retry was accepted")

        @rule(stream=STREAMS, start=st.integers(1, 12), length=st.none() | st.integers(0, 6), backwards=st.booleans())
        def read_stream(self, stream: str, start: int, length: int | None, backwards: bool) -> None:
            model = self.streams.get(stream, [])
            end = None if length is None else start + length
            expected = model[start - 1 : end]
            got = journal.read_stream(self.name(stream), start, end, backwards=backwards)
            assert got == (expected[::-1] if backwards else expected)

        @rule(skip=st.integers(0, 30), limit=st.integers(1, 20))
        def read_all(self, skip: int, limit: int) -> None:
            got = journal.read_all(self.start + skip, limit)
            assert got == self.order[skip : skip + limit]

        @invariant()
        def versions_and_head_agree(self) -> None:
            assert journal.head_position() == self.start + len(self.order)
            for stream, events in self.streams.items():
                assert journal.stream_version(self.name(stream)) == len(events)

    return JournalMachine


class StatefulConformance(ConformanceBase):
    def test_journal_behaves_like_the_model(self, journal: Journal) -> None:
        machine = journal_machine(journal)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=self.hypothesis_examples,
                stateful_step_count=12,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
        assert journal.verify().ok
