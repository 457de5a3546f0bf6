"""Bisect over one stream and over the journal, on a 200-step agent run with a planted failure."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from agentjournal.forensics import (
    Errored,
    Explainers,
    Fails,
    Holds,
    Invariant,
    InvariantError,
    bisect,
    bisect_journal,
    bisect_stream,
    invariant,
)
from agentjournal.forensics.bisect import Replay
from agentjournal.journal import Journal, NewEvent, RecordedEvent, StreamNotFoundError
from agentjournal.model import Aggregate, Repository, StreamSummary, VersionOutOfRangeError

from .agentdata import Ledger, PricesInBounds, agent_run


def _budget(journal: Journal, n: int) -> int:
    return math.ceil(math.log2(n)) + 3


def test_bisect_stream_finds_the_planted_failure(journal: Journal) -> None:
    run = agent_run(journal, "r1")
    assert run.planted_version is not None
    result = bisect_stream(journal, PricesInBounds(), run.stream_id, explain=Explainers())
    assert not result.holds
    assert result.culprit is not None and result.culprit.version == run.planted_version
    assert result.culprit.data["result"]["price"] == -42.0
    assert result.last_held == run.planted_version - 1
    assert result.confirmed
    assert isinstance(result.outcome, Fails) and "-42.0" in result.outcome.message
    assert result.evaluations <= _budget(journal, len(run.events))
    assert result.explanation is not None and result.explanation.title == "Tool executed"
    assert result.lineage is not None and result.lineage.events[0].event_id == result.culprit.event_id
    # the state right before the culprit holds, the state at the culprit fails
    repository = Repository(journal, Ledger)
    before = repository.load_at_version(run.stream_id, run.planted_version - 1)
    assert isinstance(PricesInBounds().evaluate(before), Holds)
    assert isinstance(PricesInBounds().evaluate(repository.load_at_version(run.stream_id, run.planted_version)), Fails)


def test_bisect_stream_when_the_rule_holds_everywhere(journal: Journal) -> None:
    run = agent_run(journal, "clean", plant_at_step=None)
    result = bisect(journal, PricesInBounds(), stream=run.stream_id)
    assert result.holds and result.culprit is None and result.evaluations == 1


def test_bisect_uses_the_streams_registered_aggregate_when_the_invariant_names_none(journal: Journal) -> None:
    journal.append("misc-1", [NewEvent("Noted", {"n": i}) for i in range(1, 301)])

    @invariant("few-notes", "at most 120 notes", register=False)
    def few_notes(state: StreamSummary) -> Holds | Fails:
        count = state.counts.get("Noted", 0)
        return Holds() if count <= 120 else Fails(f"{count} notes")

    result = bisect(journal, few_notes, stream="misc-1")
    assert result.culprit is not None and result.culprit.version == 121
    assert result.evaluations <= _budget(journal, 300)


def test_exhaustive_reports_every_transition_of_a_rule_that_is_not_monotone(journal: Journal) -> None:
    run = agent_run(journal, "r2", steps=40)

    @invariant("no-tool-failure-in-progress", register=False, aggregate=Ledger)
    def no_failure(state: Ledger) -> Holds | Fails:
        failing = [tool for tool, count in state.failures_in_a_row.items() if count]
        return Fails(f"{failing[0]} is failing") if failing else Holds()

    result = bisect_stream(journal, no_failure, run.stream_id, exhaustive=True)
    failed_versions = [event.version for event in run.events if event.type == "ToolFailed"]
    assert len(failed_versions) == 3
    assert [t.at for t in result.transitions if isinstance(t.after, Fails)] == failed_versions
    assert len(result.transitions) == 5  # back to holding after each failure but the last (step 39 of 40)
    assert result.culprit is not None and result.culprit.version == failed_versions[0]
    assert result.last_held == failed_versions[0] - 1
    assert result.evaluations == len(run.events)


def test_an_invariant_that_raises_is_reported_as_an_error_at_that_version(journal: Journal) -> None:
    run = agent_run(journal, "r3", steps=60)

    class Fragile(Invariant[Ledger]):
        name: ClassVar[str] = "fragile"
        aggregate: ClassVar[Any] = Ledger

        def evaluate(self, state: Ledger) -> Holds | Fails:
            if state.tool_calls >= 30:
                raise RuntimeError(f"cannot judge {state.tool_calls} calls")
            return Holds()

    result = bisect_stream(journal, Fragile(), run.stream_id)
    assert isinstance(result.outcome, Errored) and "RuntimeError: cannot judge 30 calls" in result.outcome.message
    assert result.culprit is not None and result.culprit.type == "ToolExecuted"
    assert result.errors and all("RuntimeError" in message for _, message in result.errors)
    exhaustive = bisect_stream(journal, Fragile(), run.stream_id, exhaustive=True)
    assert exhaustive.culprit is not None and exhaustive.culprit.version == result.culprit.version
    assert len(exhaustive.errors) == len(run.events) - result.culprit.version + 1


def test_bisect_bad_input(journal: Journal) -> None:
    agent_run(journal, "r4", steps=10)
    with pytest.raises(StreamNotFoundError, match="run-nope"):
        bisect_stream(journal, PricesInBounds(), "run-nope")
    with pytest.raises(VersionOutOfRangeError, match="no version 999"):
        bisect_stream(journal, PricesInBounds(), "run-r4", to_version=999)
    with pytest.raises(VersionOutOfRangeError, match="no version 0"):
        bisect_stream(journal, PricesInBounds(), "run-r4", from_version=0)
    with pytest.raises(InvariantError, match="needs stream"):
        bisect(journal, PricesInBounds())

    @invariant("stream-only", register=False)
    def stream_only(state: object) -> Holds:
        return Holds()

    with pytest.raises(InvariantError, match="no journal-wide fold"):
        bisect(journal, stream_only, over="journal")


def test_bisect_journal_across_runs_with_since_and_until(journal: Journal) -> None:
    before = agent_run(journal, "a", plant_at_step=None, seed=2)
    since = datetime.now(UTC)
    agent_run(journal, "b", plant_at_step=None, seed=3)
    bad = agent_run(journal, "c", seed=4)
    agent_run(journal, "d", seed=5)  # fails too, later: bisect must name the first
    until = datetime.now(UTC) + timedelta(seconds=1)
    result = bisect(journal, PricesInBounds(), over="journal", since=since, until=until)
    planted = bad.events[bad.planted_version - 1 if bad.planted_version else 0]
    assert result.culprit is not None and result.culprit.event_id == planted.event_id
    assert result.over == "journal" and result.start == before.events[-1].position
    assert result.last_held is not None and result.last_held < planted.position
    assert result.confirmed
    span = result.end - result.start
    assert result.evaluations <= math.ceil(math.log2(span)) + 3
    holds = bisect_journal(journal, PricesInBounds(), until=since)
    assert holds.holds


def test_bisect_journal_with_an_empty_range_is_refused(journal: Journal) -> None:
    agent_run(journal, "e", steps=5)
    later = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(Exception, match="no events"):
        bisect_journal(journal, PricesInBounds(), since=later)


def test_replay_gives_the_same_state_as_folding_from_scratch_in_any_probe_order() -> None:
    """The cheap rebuild (cursor, checkpoints, read-ahead buffer) must never change a state."""
    journal = Journal.open("memory://")
    rnd = random.Random(5)
    kinds = ["A", "B", "C"]
    for stream in range(20):
        journal.append(f"s-{stream}", [NewEvent(rnd.choice(kinds), {"n": rnd.randint(0, 9)}) for _ in range(97)])
    end = journal.head_position()
    everything = journal.read_all(0, end)

    def fold(state: list[int], event: RecordedEvent) -> list[int]:
        return [*state, event.position]

    for types in (None, ("B",)):
        replay: Replay[list[int]] = Replay(
            start=0,
            end=end,
            initial=list,
            fold=fold,
            copy=list,
            read=lambda after, upto, types=types: journal.read_all(after, min(50, upto - after), types=types),
            key=lambda event: event.position,
            checkpoint_every=37,
        )
        for target in [rnd.randint(0, end) for _ in range(200)] + [end, 0, end]:
            expected = [e.position for e in everything if e.position <= target and (not types or e.type in types)]
            assert replay.state_at(target) == expected, (types, target)


class Unannotated(Aggregate):
    """State in plain attributes, no annotations: snapshots hold raw JSON values."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.prices = []  # type: ignore[var-annotated]

    def when(self, event: RecordedEvent) -> None:
        if event.type == "ToolExecuted" and event.data["tool"] == "price_lookup":
            self.prices.append(event.data["result"]["price"])


def test_bisect_checkpoints_never_share_state_with_the_live_aggregate(journal: Journal) -> None:
    run = agent_run(journal, "plain")

    @invariant("plain-prices", register=False, aggregate=Unannotated)
    def plain_prices(state: Unannotated) -> Holds | Fails:
        return Fails("negative price") if any(price < 0 for price in state.prices) else Holds()

    result = bisect_stream(journal, plain_prices, run.stream_id)
    assert result.culprit is not None and result.culprit.version == run.planted_version


class LatestPrice(Invariant[list[float]]):
    """A windowed rule: only price_lookup's latest answer matters."""

    name: ClassVar[str] = "latest-price"
    types: ClassVar[tuple[str, ...] | None] = ("ToolExecuted",)
    window: ClassVar[int | None] = 1

    def relevant(self, event: RecordedEvent) -> bool:
        return bool(event.data["tool"] == "price_lookup")

    def initial(self) -> list[float]:
        return []

    def fold(self, state: list[float], event: RecordedEvent) -> list[float]:
        return [*state, event.data["result"]["price"]]

    def evaluate(self, state: list[float]) -> Holds | Fails:
        if state and state[-1] > 1000:
            raise ValueError(f"implausible price {state[-1]}")
        return Fails(f"price {state[-1]}") if state and state[-1] < 0 else Holds()


def _priced(journal: Journal, stream: str, prices: list[float]) -> list[RecordedEvent]:
    events = []
    for price in prices:
        events += [
            NewEvent("ToolExecuted", {"tool": "search", "result": {"hits": 1}}),
            NewEvent("ToolExecuted", {"tool": "price_lookup", "result": {"price": price}}),
            NewEvent("ObservationCaptured", {"summary": "ok"}),
        ]
    return journal.append(stream, events).events


def test_a_windowed_rule_rebuilds_each_probe_from_the_latest_events(journal: Journal) -> None:
    _priced(journal, "run-w-1", [10.0] * 40)
    bad = _priced(journal, "run-w-2", [10.0] * 7 + [-1.0] * 30)  # the tool goes bad and stays bad
    first_bad = bad[7 * 3 + 1]
    result = bisect_journal(journal, LatestPrice())
    assert result.culprit is not None and result.culprit.event_id == first_bad.event_id
    assert result.confirmed and result.evaluations <= math.ceil(math.log2(journal.head_position())) + 3
    exhaustive = bisect_journal(journal, LatestPrice(), exhaustive=True)
    assert exhaustive.culprit is not None and exhaustive.culprit.event_id == first_bad.event_id
    assert exhaustive.evaluations == 40 + 37  # after every price_lookup answer: the only state changes


def test_a_windowed_rule_that_recovers_shows_every_transition_and_errors(journal: Journal) -> None:
    events = _priced(journal, "run-w-3", [10.0, -1.0, 12.0, 5000.0, 11.0])
    result = bisect_journal(journal, LatestPrice(), exhaustive=True)
    changes = [(change.at, type(change.after).__name__) for change in result.transitions]
    prices = [event.position for event in events if event.data.get("tool") == "price_lookup"]
    assert changes == [(prices[1], "Fails"), (prices[2], "Holds"), (prices[3], "Errored"), (prices[4], "Holds")]
    assert result.errors == [(prices[3], "ValueError: implausible price 5000.0")]


class StrictFold(Invariant[list[float]]):
    """A journal-wide rule whose own fold raises on a malformed price_lookup answer."""

    name: ClassVar[str] = "strict-fold"
    types: ClassVar[tuple[str, ...] | None] = ("ToolExecuted",)

    def initial(self) -> list[float]:
        return []

    def fold(self, state: list[float], event: RecordedEvent) -> list[float]:
        if event.data["tool"] == "price_lookup":
            state.append(float(event.data["result"]["price"]))
        return state

    def evaluate(self, state: list[float]) -> Holds | Fails:
        return Holds()


def test_a_fold_that_raises_is_an_error_at_that_event_not_a_crash(journal: Journal) -> None:
    events = _priced(journal, "run-f-1", [10.0, 11.0, 12.0])
    broken = journal.append(
        "run-f-2", NewEvent("ToolExecuted", {"tool": "price_lookup", "result": {"price": "n/a"}})
    ).events[0]
    _priced(journal, "run-f-3", [13.0, 14.0])
    result = bisect_journal(journal, StrictFold())
    assert result.culprit is not None and result.culprit.event_id == broken.event_id
    assert isinstance(result.outcome, Errored) and f"at {broken.position} failed: ValueError" in result.outcome.message
    assert result.last_held == broken.position - 1 and events[-1].position < broken.position
    exhaustive = bisect_journal(journal, StrictFold(), exhaustive=True)
    assert [(t.at, type(t.after).__name__) for t in exhaustive.transitions] == [(broken.position, "Errored")]


def test_an_aggregate_that_cannot_fold_is_an_error_at_that_version(journal: Journal) -> None:
    run = agent_run(journal, "f-4", steps=30, plant_at_step=None)
    journal.append(run.stream_id, NewEvent("ToolExecuted", {"tool": "price_lookup", "result": {}}))
    result = bisect_stream(journal, PricesInBounds(), run.stream_id)
    assert result.culprit is not None and result.culprit.version == len(run.events) + 1
    assert isinstance(result.outcome, Errored) and "Ledger cannot fold" in result.outcome.message
