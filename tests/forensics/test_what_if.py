"""What-if replay: injected, dropped and replaced events, in memory only; the journal never changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agentjournal.forensics import Fails, Holds, what_if
from agentjournal.journal import InvalidEventError, Journal, NewEvent, StreamNotFoundError
from agentjournal.model import Repository, VersionOutOfRangeError

from .agentdata import Ledger, PricesInBounds, agent_run


def _export(journal: Journal) -> list[dict[str, object]]:
    return [event.to_dict() for event in journal.iter_all(batch_size=5000)]


def test_dropping_the_bad_answer_makes_the_run_pass(journal: Journal) -> None:
    run = agent_run(journal, "w1")
    assert run.planted_version is not None
    before = _export(journal)
    result = what_if(journal, run.stream_id, drop=[run.planted_version], invariants=[PricesInBounds()])
    assert isinstance(result.verdicts["prices-in-bounds"][0], Fails)
    assert isinstance(result.verdicts["prices-in-bounds"][1], Holds)
    assert result.changed_verdicts().keys() == {"prices-in-bounds"}
    assert isinstance(result.actual, Ledger) and isinstance(result.hypothetical, Ledger)
    assert result.hypothetical.tool_calls == result.actual.tool_calls - 1
    assert len(result.events) == len(run.events) - 1
    assert [event.version for event in result.events] == list(range(1, len(run.events)))
    assert result.changes == [f"dropped version {run.planted_version} (ToolExecuted)"]
    assert _export(journal) == before


def test_inject_and_replace(journal: Journal) -> None:
    run = agent_run(journal, "w2", steps=20, plant_at_step=None)
    bad = NewEvent("ToolExecuted", {"tool": "price_lookup", "result": {"price": 99999.0}, "latency_ms": 5})
    fixed = NewEvent("ToolExecuted", {"tool": "price_lookup", "result": {"price": 10.0}, "latency_ms": 5})
    result = what_if(
        journal,
        run.stream_id,
        inject=[(0, NewEvent("UserMessage", {"text": "hi"})), (10, bad)],
        replace={3: fixed},
        invariants=[PricesInBounds()],
    )
    assert isinstance(result.verdicts["prices-in-bounds"][0], Holds)
    verdict = result.verdicts["prices-in-bounds"][1]
    assert isinstance(verdict, Fails) and "99999.0" in verdict.message
    assert [event.type for event in result.events[:2]] == ["UserMessage", "RunStarted"]
    injected = result.events[11]  # after original version 10, shifted by the injected first event
    assert injected.data["result"]["price"] == 99999.0 and injected.hash == "" and injected.position == 0
    assert injected.causation_id == run.events[9].event_id
    assert result.events[3].data == fixed.data
    assert result.hypothetical.prices[0] == 10.0
    assert len(result.events) == len(run.events) + 2
    assert result.changes[0] == "injected UserMessage after version 0"


def test_what_if_up_to_a_version_folds_only_that_far(journal: Journal) -> None:
    run = agent_run(journal, "w3", steps=30)
    result = what_if(journal, run.stream_id, upto=40, aggregate=Ledger)
    assert result.actual.version == 40
    assert (
        result.actual.snapshot_state()
        == Repository(journal, Ledger).load_at_version(run.stream_id, 40).snapshot_state()
    )


def test_what_if_never_writes_the_sqlite_file(sqlite_url: str) -> None:
    journal = Journal.open(sqlite_url)
    run = agent_run(journal, "w4")
    journal.close()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    journal = Journal.open(sqlite_url)
    assert run.planted_version is not None
    what_if(
        journal, run.stream_id, drop=[run.planted_version], replace={1: NewEvent("RunStarted", {})}, aggregate=Ledger
    )
    what_if(journal, run.stream_id, inject=[(5, NewEvent("Noted", {"x": 1}))], invariants=[PricesInBounds()])
    journal.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_what_if_bad_input(journal: Journal) -> None:
    run = agent_run(journal, "w5", steps=3)
    last = len(run.events)
    with pytest.raises(StreamNotFoundError):
        what_if(journal, "run-missing")
    with pytest.raises(VersionOutOfRangeError, match=rf"for drop; valid: 1..{last}"):
        what_if(journal, run.stream_id, drop=[last + 1])
    with pytest.raises(VersionOutOfRangeError, match="for replace"):
        what_if(journal, run.stream_id, replace={0: NewEvent("X")})
    with pytest.raises(VersionOutOfRangeError, match="for inject after"):
        what_if(journal, run.stream_id, inject=[(-1, NewEvent("X"))])
    with pytest.raises(VersionOutOfRangeError, match="for upto"):
        what_if(journal, run.stream_id, upto=0)
    with pytest.raises(InvalidEventError, match="both dropped and replaced"):
        what_if(journal, run.stream_id, drop=[2], replace={2: NewEvent("X")})
    with pytest.raises(InvalidEventError, match="must be NewEvent"):
        what_if(journal, run.stream_id, inject=[(1, {"type": "X"})])  # type: ignore[list-item]
