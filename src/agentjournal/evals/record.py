"""An evaluation as its journal holds it: the dataset items, the replays, the scores, the gate decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agentjournal.evals.replay import EvaluationError
from agentjournal.evals.trajectory import Trajectory
from agentjournal.journal import Journal
from agentjournal.journal.location import redact
from agentjournal.runs import evaluations as evs
from agentjournal.runs import run_stream

__all__ = ["EvaluationRecord", "EvaluationSummary", "latest_evaluation", "list_evaluations", "read_evaluation"]


@dataclass(frozen=True)
class EvaluationRecord:
    started: evs.EvaluationStarted
    started_at: datetime
    items: dict[str, evs.EvaluationItem]
    """By item (recorded run id), in dataset order."""
    replays: dict[tuple[str, int], evs.ItemReplayed]
    scores: list[evs.ScoreRecorded]
    gates: list[evs.GateDecided]
    version: int
    """The evaluation stream's version when it was read."""

    @property
    def evaluation_id(self) -> str:
        return self.started.evaluation_id

    @property
    def complete(self) -> bool:
        return len(self.replays) == len(self.items) * self.started.repeat

    def baseline(self, item: str) -> Trajectory:
        return Trajectory.model_validate(self.items[item].baseline)

    def trajectories(self, journal: Journal) -> dict[tuple[str, int], Trajectory]:
        """Every replay's trajectory, folded from its run in the evaluation journal."""
        return {
            key: Trajectory.of(journal.read_stream(run_stream(replay.run_id))) for key, replay in self.replays.items()
        }


def read_evaluation(journal: Journal, evaluation_id: str) -> EvaluationRecord:
    events = journal.read_stream(evs.evaluation_stream(evaluation_id))
    if not events or events[0].type != "EvaluationStarted":
        known = ", ".join(summary.evaluation_id for summary in list_evaluations(journal)[-5:]) or "none yet"
        raise EvaluationError(f"no evaluation {evaluation_id!r} in {redact(journal.url)}; the latest: {known}")
    items: dict[str, evs.EvaluationItem] = {}
    replays: dict[tuple[str, int], evs.ItemReplayed] = {}
    scores: list[evs.ScoreRecorded] = []
    gates: list[evs.GateDecided] = []
    for event in events[1:]:
        if event.type == "EvaluationItem":
            item = evs.EvaluationItem.model_validate(event.data)
            items[item.item] = item
        elif event.type == "ItemReplayed":
            replay = evs.ItemReplayed.model_validate(event.data)
            replays[(replay.item, replay.repeat)] = replay
        elif event.type == "ScoreRecorded":
            scores.append(evs.ScoreRecorded.model_validate(event.data))
        elif event.type == "GateDecided":
            gates.append(evs.GateDecided.model_validate(event.data))
    return EvaluationRecord(
        started=evs.EvaluationStarted.model_validate(events[0].data),
        started_at=events[0].recorded_at,
        items=items,
        replays=replays,
        scores=scores,
        gates=gates,
        version=events[-1].version,
    )


@dataclass(frozen=True)
class EvaluationSummary:
    evaluation_id: str
    candidate: str
    dataset_version: str
    items: int
    repeat: int
    started_at: datetime


def list_evaluations(journal: Journal) -> list[EvaluationSummary]:
    """Every evaluation in the journal, oldest first."""
    found = []
    for event in journal.iter_all(types=["EvaluationStarted"]):
        if not event.stream_id.startswith(evs.EVALUATION_PREFIX) or event.version != 1:
            continue
        started = evs.EvaluationStarted.model_validate(event.data)
        found.append(
            EvaluationSummary(
                started.evaluation_id,
                started.candidate,
                started.dataset_version,
                started.items,
                started.repeat,
                event.recorded_at,
            )
        )
    return found


def latest_evaluation(journal: Journal, *, candidate: str | None = None, dataset_version: str | None = None) -> str:
    """The id of the most recent evaluation (of `candidate`, over `dataset_version`, when given)."""
    matching = [
        summary
        for summary in list_evaluations(journal)
        if (candidate is None or summary.candidate == candidate)
        and (dataset_version is None or summary.dataset_version == dataset_version)
    ]
    if not matching:
        of = f" of candidate {candidate}" if candidate else ""
        over = f" over dataset {dataset_version[:19]}…" if dataset_version else ""
        raise EvaluationError(f"no evaluation{of}{over} in {redact(journal.url)}; run `agentjournal eval replay` first")
    return matching[-1].evaluation_id
