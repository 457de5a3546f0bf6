"""Regrade: the seed's "the eval rubric changed; re-grade history" as one call.

Every run (stream) active in a time range is judged by a new invariant: once at its last
version in the range, and, when it fails there, bisected to the event since which it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentjournal.forensics.bisect import bisect_stream
from agentjournal.forensics.explainers import Explainers, Explanation, explainers
from agentjournal.forensics.invariants import Invariant, Outcome
from agentjournal.journal import Journal, RecordedEvent, StreamInfo, StreamNotFoundError
from agentjournal.model import Aggregate, version_at_time


@dataclass(frozen=True)
class RunGrade:
    stream_id: str
    graded_version: int
    """The run's last version inside the range (the state that was judged)."""
    holds: bool
    evaluations: int
    failed_since: int | None = None
    """The first version after which the rule fails (None when it holds)."""
    event: RecordedEvent | None = None
    outcome: Outcome | None = None
    explanation: Explanation | None = None


@dataclass(frozen=True)
class RegradeReport:
    invariant: str
    since: datetime | None
    until: datetime | None
    runs: list[RunGrade]

    @property
    def failed(self) -> list[RunGrade]:
        return [run for run in self.runs if not run.holds]

    @property
    def passed(self) -> list[RunGrade]:
        return [run for run in self.runs if run.holds]

    @property
    def evaluations(self) -> int:
        return sum(run.evaluations for run in self.runs)


def regrade(
    journal: Journal,
    invariant: Invariant[Any],
    *,
    streams: str | Sequence[str] = "run-",
    since: datetime | None = None,
    until: datetime | None = None,
    aggregate: type[Aggregate] | None = None,
    explain: Explainers = explainers,
    progress: Callable[[int, int], None] | None = None,
) -> RegradeReport:
    """Judge every run with events in [since, until); `streams` is an id prefix or a list of ids."""
    chosen = list(_streams_in_range(journal, streams, since, until))
    grades = []
    for done, info in enumerate(chosen, start=1):
        grades.append(_grade(journal, invariant, info, until, aggregate=aggregate, explain=explain))
        if progress:
            progress(done, len(chosen))
    return RegradeReport(invariant.name, since, until, grades)


def _streams_in_range(
    journal: Journal, streams: str | Sequence[str], since: datetime | None, until: datetime | None
) -> Iterator[StreamInfo]:
    if isinstance(streams, str):
        infos: Iterator[StreamInfo] = _all_streams(journal, streams)
    else:
        infos = (_info(journal, stream_id) for stream_id in streams)
    for info in infos:
        if (since is None or info.updated_at >= since) and (until is None or info.created_at < until):
            yield info


def _all_streams(journal: Journal, prefix: str) -> Iterator[StreamInfo]:
    after = ""
    while True:
        page = journal.streams(prefix, after=after, limit=1000)
        yield from page
        if len(page) < 1000:
            return
        after = page[-1].stream_id


def _info(journal: Journal, stream_id: str) -> StreamInfo:
    found = [info for info in journal.streams(stream_id, limit=1) if info.stream_id == stream_id]
    if not found:
        raise StreamNotFoundError(f"no stream {stream_id!r} in {journal.url}")
    return found[0]


def _grade(
    journal: Journal,
    invariant: Invariant[Any],
    info: StreamInfo,
    until: datetime | None,
    *,
    aggregate: type[Aggregate] | None,
    explain: Explainers,
) -> RunGrade:
    end = info.version
    if until is not None and info.updated_at >= until:
        end = version_at_time(journal, info.stream_id, until)  # the run started before `until`
    result = bisect_stream(journal, invariant, info.stream_id, aggregate=aggregate, to_version=end, explain=explain)
    if result.holds:
        return RunGrade(info.stream_id, end, True, result.evaluations)
    return RunGrade(
        info.stream_id,
        end,
        False,
        result.evaluations,
        failed_since=result.culprit.version if result.culprit else None,
        event=result.culprit,
        outcome=result.outcome,
        explanation=result.explanation,
    )
