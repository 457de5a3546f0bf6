"""Bisect agrees with a linear scan, within its evaluation budget, wherever the failure is."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from agentjournal.forensics import Fails, Holds, Invariant, bisect_journal, bisect_stream
from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.model import Aggregate


class Seen(Aggregate):
    bad: int

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.bad = 0

    def when(self, event: RecordedEvent) -> None:
        self.bad += event.data.get("bad", 0)


class NothingBad(Invariant[Any]):
    name: ClassVar[str] = "nothing-bad"
    aggregate: ClassVar[type[Aggregate] | None] = Seen
    types: ClassVar[tuple[str, ...] | None] = ("Step",)

    def initial(self) -> list[int]:
        return [0]

    def fold(self, state: list[int], event: RecordedEvent) -> list[int]:
        return [state[0] + event.data["bad"]]

    def evaluate(self, state: Any) -> Holds | Fails:
        bad = state.bad if isinstance(state, Seen) else state[0]
        return Fails(f"{bad} bad") if bad else Holds()


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=400),
    first_bad=st.one_of(st.none(), st.floats(min_value=0, max_value=0.999)),
    noise=st.integers(min_value=0, max_value=3),
)
def test_bisect_finds_the_first_failing_event(size: int, first_bad: float | None, noise: int) -> None:
    journal = Journal.open("memory://")
    bad_at = None if first_bad is None else int(first_bad * size)
    events = []
    for index in range(size):
        events.append(NewEvent("Step", {"bad": int(bad_at is not None and index >= bad_at)}))
        events.extend(NewEvent("Noise", {}) for _ in range(noise))  # other types, skipped by the journal fold
    stored = journal.append("run-p", events).events
    steps = [event for event in stored if event.type == "Step"]
    expected = None if bad_at is None else steps[bad_at]

    over_stream = bisect_stream(journal, NothingBad(), "run-p")
    over_journal = bisect_journal(journal, NothingBad())
    for result in (over_stream, over_journal):
        assert (result.culprit.event_id if result.culprit else None) == (expected.event_id if expected else None)
        assert result.evaluations <= math.ceil(math.log2(len(stored) + 1)) + 3
        if expected is not None:
            assert result.confirmed
    every_version = bisect_stream(journal, NothingBad(), "run-p", exhaustive=True)
    every_step = bisect_journal(journal, NothingBad(), exhaustive=True)
    assert (every_version.evaluations, every_step.evaluations) == (len(stored), size)
    for result in (every_version, every_step):
        assert (result.culprit.event_id if result.culprit else None) == (expected.event_id if expected else None)
        assert len(result.transitions) == (0 if expected is None else 1)
