"""Aggregates and the repository: load, load_at_version, load_at_time, save, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from pydantic import BaseModel

from agentjournal.journal import (
    ConcurrencyError,
    InvalidEventError,
    Journal,
    NewEvent,
    RecordedEvent,
    StreamNotFoundError,
)
from agentjournal.model import (
    Aggregate,
    AggregateLoadError,
    Repository,
    Snapshot,
    StreamSummary,
    VersionOutOfRangeError,
    aggregate_types,
    load_aggregate_type,
    snapshot_store,
)


class Budget(BaseModel):
    limit_usd: float = 5.0
    spent_usd: float = 0.0


class Wallet(Aggregate):
    """A run's spending: a pydantic model, a list and a dict in its state."""

    snapshot_every: ClassVar[int | None] = 10

    budget: Budget
    charges: list[float]
    by_tool: dict[str, int]

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.budget = Budget()
        self.charges = []
        self.by_tool = {}

    def when(self, event: RecordedEvent) -> None:
        if event.type == "Charged":
            self.budget.spent_usd += event.data["usd"]
            self.charges.append(event.data["usd"])
            self.by_tool[event.data["tool"]] = self.by_tool.get(event.data["tool"], 0) + 1

    def charge(self, tool: str, usd: float) -> None:
        """A command: decides an event, refusing to overspend."""
        if self.budget.spent_usd + usd > self.budget.limit_usd:
            raise ValueError(f"{tool} would overspend")
        self.record(NewEvent("Charged", {"tool": tool, "usd": usd}))


def _charges(journal: Journal, stream: str, count: int) -> None:
    tools = ["search", "read_file", "edit_file"]
    journal.append(stream, [NewEvent("Charged", {"tool": tools[i % 3], "usd": 0.01}) for i in range(count)])


@pytest.fixture(params=["memory", "sqlite", "postgres", "mysql"])
def journal(request: pytest.FixtureRequest) -> Journal:
    url = "memory://" if request.param == "memory" else request.getfixturevalue(f"{request.param}_url")
    opened = Journal.open(url)
    request.addfinalizer(opened.close)
    return opened


def test_load_folds_the_whole_stream(journal: Journal) -> None:
    _charges(journal, "run-a", 25)
    wallet = Repository(journal, Wallet).load("run-a")
    assert wallet.version == 25
    assert len(wallet.charges) == 25
    assert wallet.budget.spent_usd == pytest.approx(0.25)
    assert wallet.by_tool == {"search": 9, "read_file": 8, "edit_file": 8}


def test_load_at_version_is_the_state_right_after_that_event(journal: Journal) -> None:
    _charges(journal, "run-a", 25)
    repository = Repository(journal, Wallet)
    for version in (1, 9, 10, 11, 20, 25):
        wallet = repository.load_at_version("run-a", version)
        assert wallet.version == version
        assert len(wallet.charges) == version
        assert sum(wallet.by_tool.values()) == version


def test_snapshots_are_taken_every_n_events_and_give_the_same_state(journal: Journal) -> None:
    _charges(journal, "run-a", 35)
    with_snapshots = Repository(journal, Wallet)
    with_snapshots.load("run-a")
    assert snapshot_store(journal).count("run-a", Wallet.type_name()) == 3  # versions 10, 20, 30
    without = Repository(journal, Wallet, snapshots=False)
    for version in (5, 10, 19, 30, 35):
        restored = with_snapshots.load_at_version("run-a", version)
        folded = without.load_at_version("run-a", version)
        assert restored.snapshot_state() == folded.snapshot_state()
        assert isinstance(restored.budget, Budget)


def test_loading_from_a_snapshot_folds_at_most_snapshot_every_events(journal: Journal) -> None:
    _charges(journal, "run-a", 100)
    repository = Repository(journal, Wallet)
    repository.load("run-a")
    folded: list[int] = []

    class Counting(Wallet):
        @classmethod
        def type_name(cls) -> str:
            return Wallet.type_name()

        def when(self, event: RecordedEvent) -> None:
            folded.append(event.version)
            super().when(event)

    wallet = Repository(journal, Counting).load_at_version("run-a", 87)
    assert folded == list(range(81, 88))
    assert len(wallet.charges) == 87


def test_a_snapshot_of_another_state_version_is_ignored(journal: Journal) -> None:
    _charges(journal, "run-a", 20)
    Repository(journal, Wallet).load("run-a")

    class WalletV2(Wallet):
        state_version: ClassVar[int] = 2

        @classmethod
        def type_name(cls) -> str:
            return Wallet.type_name()

        def restore_state(self, state: dict[str, object]) -> None:
            raise AssertionError("a stale snapshot must never be restored")

    assert Repository(journal, WalletV2).load("run-a").version == 20


def test_a_snapshot_that_does_not_match_its_event_hash_is_ignored(journal: Journal) -> None:
    _charges(journal, "run-a", 20)
    store = snapshot_store(journal)
    forged = Snapshot("run-a", Wallet.type_name(), 20, 1, "f" * 64, b'{"charges":[],"by_tool":{},"budget":{}}')
    store.save([forged])
    wallet = Repository(journal, Wallet).load("run-a")
    assert len(wallet.charges) == 20


def test_save_appends_with_optimistic_concurrency(journal: Journal) -> None:
    repository = Repository(journal, Wallet)
    wallet = repository.create("run-b")
    wallet.charge("search", 1.0)
    wallet.charge("edit_file", 2.0)
    result = repository.save(wallet)
    assert result.last_version == 2
    assert wallet.version == 2 and wallet.budget.spent_usd == 3.0 and wallet.pending == []

    first, second = repository.load("run-b"), repository.load("run-b")
    first.charge("search", 1.0)
    repository.save(first)
    second.charge("search", 1.0)
    with pytest.raises(ConcurrencyError, match=r"expected version 2, but the stream is at version 3"):
        repository.save(second)
    assert journal.stream_version("run-b") == 3
    with pytest.raises(ValueError, match="overspend"):
        repository.load("run-b").charge("edit_file", 4.0)


def test_save_without_recorded_events_is_refused(journal: Journal) -> None:
    repository = Repository(journal, Wallet)
    with pytest.raises(InvalidEventError, match="no recorded events"):
        repository.save(repository.create("run-c"))


def test_load_at_time(journal: Journal) -> None:
    journal.append("run-t", NewEvent("Charged", {"tool": "search", "usd": 0.5}))
    middle = datetime.now(UTC)
    journal.append("run-t", NewEvent("Charged", {"tool": "search", "usd": 0.5}))
    repository = Repository(journal, Wallet)
    assert repository.load_at_time("run-t", middle).version == 1
    assert repository.load_at_time("run-t", datetime.now(UTC) + timedelta(days=1)).version == 2
    with pytest.raises(VersionOutOfRangeError, match="first event is at"):
        repository.load_at_time("run-t", middle - timedelta(days=1))
    with pytest.raises(InvalidEventError, match="no time zone"):
        repository.load_at_time("run-t", datetime(2026, 1, 1))


def test_unknown_stream_and_versions_out_of_range(journal: Journal) -> None:
    _charges(journal, "run-a", 5)
    repository = Repository(journal, Wallet)
    with pytest.raises(StreamNotFoundError, match="no stream 'run-missing'"):
        repository.load("run-missing")
    with pytest.raises(StreamNotFoundError):
        repository.load_at_version("run-missing", 1)
    for bad in (0, 6, -1):
        with pytest.raises(VersionOutOfRangeError, match=rf"versions 1\.\.5; there is no version {bad}"):
            repository.load_at_version("run-a", bad)
    assert journal.stream_version("run-a") == 5


def test_stream_summary_is_the_default_aggregate(journal: Journal) -> None:
    journal.append("misc-1", [NewEvent("Noted", {"text": "a"}), NewEvent("Noted", {"text": "b"}), NewEvent("Done")])
    summary = Repository(journal, aggregate_types.for_stream("misc-1")).load_at_version("misc-1", 2)
    assert isinstance(summary, StreamSummary)
    assert summary.counts == {"Noted": 2}
    assert summary.latest == {"Noted": {"text": "b"}}
    assert summary.last_event is not None and summary.last_event["version"] == 2


def test_aggregate_types_by_prefix_and_by_path() -> None:
    assert load_aggregate_type("agentjournal.model:StreamSummary") is StreamSummary
    for bad, message in [
        ("no_colon", "not of the form"),
        ("agentjournal.nope:Thing", "cannot import module"),
        ("agentjournal.model:Nope", "has no attribute"),
        ("agentjournal.model:Repository", "not an Aggregate subclass"),
    ]:
        with pytest.raises(AggregateLoadError, match=message):
            load_aggregate_type(bad)
    registry = type(aggregate_types)()
    registry.register("run-", Wallet)
    registry.register("run-special-", StreamSummary)
    assert registry.for_stream("run-1") is Wallet
    assert registry.for_stream("run-special-1") is StreamSummary
    assert registry.for_stream("other") is StreamSummary


def test_applying_out_of_order_is_refused() -> None:
    journal = Journal.open("memory://")
    journal.append("s", [NewEvent("A"), NewEvent("B")])
    wallet = Wallet("s")
    with pytest.raises(AggregateLoadError, match="cannot apply version 2 on top of version 0"):
        wallet.apply(journal.read_stream("s")[1])


def test_an_aggregate_that_cannot_fold_an_event_says_which_one(journal: Journal) -> None:
    journal.append("run-odd", [NewEvent("Charged", {"tool": "search", "usd": 1}), NewEvent("Charged", {"usd": 2})])
    message = r"Wallet cannot fold 'run-odd' version 2 \(Charged\): KeyError: 'tool'"
    with pytest.raises(AggregateLoadError, match=message):
        Repository(journal, Wallet).load("run-odd")
