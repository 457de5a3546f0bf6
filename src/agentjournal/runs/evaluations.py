"""The events of an offline evaluation, on the stream `eval-<evaluation_id>` of the evaluation journal.

An evaluation replays a dataset's runs with a candidate (agentjournal.evals). The replayed runs
are ordinary runs of the run contract in the same journal (so explain, state and lineage work
on them); this stream says which dataset and candidate, what each item's baseline was, how
each replay went, every score and every gate decision. The evaluations read model and the
replay-delta alert read these, which is why they live beside the run contract.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from agentjournal.runs.events import RunEvent

__all__ = [
    "EVALUATION_EVENTS",
    "EVALUATION_PREFIX",
    "EvaluationItem",
    "EvaluationStarted",
    "GateDecided",
    "ItemReplayed",
    "ScoreRecorded",
    "evaluation_stream",
]

EVALUATION_PREFIX: Final = "eval-"

Side = Literal["baseline", "candidate"]


def evaluation_stream(evaluation_id: str) -> str:
    return evaluation_id if evaluation_id.startswith(EVALUATION_PREFIX) else EVALUATION_PREFIX + evaluation_id


class EvaluationStarted(RunEvent):
    evaluation_id: str
    dataset_version: str
    dataset_source: str
    items: int
    candidate: str
    candidate_fingerprint: str
    description: str = ""
    repeat: int
    unmatched: Literal["refuse", "stub", "live"]
    live_tools: list[str]
    reuse_model_replies: bool
    agents: dict[str, dict[str, Any]]
    """Agent name -> what it ran with: model, prompt_version, policy_version, version."""


class EvaluationItem(RunEvent):
    """One dataset item as the evaluation compares against it: its baseline is the recorded run."""

    item: str
    """The recorded run's id."""
    index: int
    agent: str
    model: str
    route: str | None = None
    tenant_id: str | None = None
    input: str
    reference: dict[str, Any] | None = None
    baseline: dict[str, Any]
    """The recorded run's trajectory (evals.trajectory.Trajectory)."""


class ItemReplayed(RunEvent):
    item: str
    repeat: int
    run_id: str
    """The replayed run, in this journal."""
    status: str
    response: str | None = None
    divergence: dict[str, Any] | None = None
    """Where the replay first left the recording: {what, step, changes, recorded, requested}."""
    unanswered: list[dict[str, Any]] = []
    """Calls the recording had no result for, {tool, arguments, answer}: refused, stubbed or run live."""
    model: str
    """The model the candidate's first agent ran with."""


class ScoreRecorded(RunEvent):
    item: str
    repeat: int
    """0 for the baseline (the recorded run), 1.. for the candidate's replays."""
    side: Side
    metric: Literal["quality", "cost", "latency", "policy"]
    scorer: str
    scorer_version: str
    value: float
    details: dict[str, Any] = {}


class GateDecided(RunEvent):
    passed: bool
    baseline: str
    """`recorded`, or the evaluation id of the baseline candidate."""
    thresholds: dict[str, Any]
    checks: list[dict[str, Any]]
    """Each {name, threshold, value, bound, passed, detail}."""


EVALUATION_EVENTS: Final[tuple[type[RunEvent], ...]] = (
    EvaluationStarted,
    EvaluationItem,
    ItemReplayed,
    ScoreRecorded,
    GateDecided,
)
