"""Regrade: a new rule over every run of a range, which fail, and since which event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentjournal.forensics import regrade
from agentjournal.journal import Journal, StreamNotFoundError

from .agentdata import PricesInBounds, agent_run


def test_regrade_names_the_failing_runs_and_the_event_since_which_they_fail(journal: Journal) -> None:
    old = agent_run(journal, "2026-01-old", steps=30, plant_at_step=3)
    since = datetime.now(UTC)
    good = [agent_run(journal, f"2026-02-good-{n}", steps=40, plant_at_step=None, seed=n) for n in range(3)]
    bad = [agent_run(journal, f"2026-02-bad-{n}", steps=60, plant_at_step=7 + n * 10, seed=n) for n in range(2)]
    steps: list[tuple[int, int]] = []
    report = regrade(journal, PricesInBounds(), since=since, progress=lambda done, total: steps.append((done, total)))
    graded = {grade.stream_id for grade in report.runs}
    assert graded == {run.stream_id for run in good + bad}
    assert old.stream_id not in graded
    assert {grade.stream_id for grade in report.failed} == {run.stream_id for run in bad}
    for run in bad:
        grade = next(g for g in report.failed if g.stream_id == run.stream_id)
        assert grade.failed_since == run.planted_version
        assert grade.event is not None and grade.event.data["result"]["price"] == -42.0
    assert all(grade.evaluations == 1 for grade in report.passed)
    assert steps[-1] == (5, 5)
    everything = regrade(journal, PricesInBounds())
    assert len(everything.failed) == 3


def test_regrade_until_judges_runs_as_they_were(journal: Journal) -> None:
    run = agent_run(journal, "early", steps=10, plant_at_step=None)
    report = regrade(journal, PricesInBounds(), until=datetime.now(UTC) + timedelta(seconds=1))
    assert [grade.graded_version for grade in report.runs] == [len(run.events)]
    assert regrade(journal, PricesInBounds(), until=datetime.now(UTC) - timedelta(days=1)).runs == []


def test_regrade_explicit_streams(journal: Journal) -> None:
    run = agent_run(journal, "x", steps=20, plant_at_step=5)
    report = regrade(journal, PricesInBounds(), streams=[run.stream_id])
    assert [grade.stream_id for grade in report.failed] == [run.stream_id]
    with pytest.raises(StreamNotFoundError, match="run-nope"):
        regrade(journal, PricesInBounds(), streams=["run-nope"])
