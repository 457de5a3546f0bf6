"""The offline evaluator: datasets of past runs, candidates, counterfactual replay, scorers and gates.

Seed 001's loop: select past runs into a dataset (`build_dataset`), replay them with a named
candidate (`replay_dataset`), score quality, cost, latency and policy (`score_evaluation`) and
gate the change against its baseline (`gate`). Names load on first use (PEP 562).
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.evals.candidates import BASELINE as BASELINE
    from agentjournal.evals.candidates import Candidate as Candidate
    from agentjournal.evals.candidates import CandidateError as CandidateError
    from agentjournal.evals.candidates import Candidates as Candidates
    from agentjournal.evals.candidates import load_model as load_model
    from agentjournal.evals.dataset import Dataset as Dataset
    from agentjournal.evals.dataset import DatasetError as DatasetError
    from agentjournal.evals.dataset import DatasetItem as DatasetItem
    from agentjournal.evals.dataset import Reference as Reference
    from agentjournal.evals.dataset import Selection as Selection
    from agentjournal.evals.dataset import build_dataset as build_dataset
    from agentjournal.evals.dataset import read_references as read_references
    from agentjournal.evals.gates import Check as Check
    from agentjournal.evals.gates import GateReport as GateReport
    from agentjournal.evals.gates import Thresholds as Thresholds
    from agentjournal.evals.gates import gate as gate
    from agentjournal.evals.models import recorded_replies as recorded_replies
    from agentjournal.evals.record import EvaluationRecord as EvaluationRecord
    from agentjournal.evals.record import EvaluationSummary as EvaluationSummary
    from agentjournal.evals.record import latest_evaluation as latest_evaluation
    from agentjournal.evals.record import list_evaluations as list_evaluations
    from agentjournal.evals.record import read_evaluation as read_evaluation
    from agentjournal.evals.replay import Evaluation as Evaluation
    from agentjournal.evals.replay import EvaluationError as EvaluationError
    from agentjournal.evals.replay import ItemResult as ItemResult
    from agentjournal.evals.replay import ReplaySettings as ReplaySettings
    from agentjournal.evals.replay import replay_dataset as replay_dataset
    from agentjournal.evals.replay import replay_dataset_sync as replay_dataset_sync
    from agentjournal.evals.scoring import METRICS as METRICS
    from agentjournal.evals.scoring import Assertion as Assertion
    from agentjournal.evals.scoring import ExactMatch as ExactMatch
    from agentjournal.evals.scoring import Judge as Judge
    from agentjournal.evals.scoring import Score as Score
    from agentjournal.evals.scoring import Scorer as Scorer
    from agentjournal.evals.scoring import Subject as Subject
    from agentjournal.evals.scoring import TrajectoryMatch as TrajectoryMatch
    from agentjournal.evals.scoring import default_quality_scorers as default_quality_scorers
    from agentjournal.evals.scoring import score_evaluation as score_evaluation
    from agentjournal.evals.scoring import score_evaluation_sync as score_evaluation_sync
    from agentjournal.evals.trajectory import Trajectory as Trajectory

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.evals.candidates": ("BASELINE", "Candidate", "CandidateError", "Candidates", "load_model"),
        "agentjournal.evals.dataset": (
            "Dataset",
            "DatasetError",
            "DatasetItem",
            "Reference",
            "Selection",
            "build_dataset",
            "read_references",
        ),
        "agentjournal.evals.gates": ("Check", "GateReport", "Thresholds", "gate"),
        "agentjournal.evals.models": ("recorded_replies",),
        "agentjournal.evals.record": (
            "EvaluationRecord",
            "EvaluationSummary",
            "latest_evaluation",
            "list_evaluations",
            "read_evaluation",
        ),
        "agentjournal.evals.replay": (
            "Evaluation",
            "EvaluationError",
            "ItemResult",
            "ReplaySettings",
            "replay_dataset",
            "replay_dataset_sync",
        ),
        "agentjournal.evals.scoring": (
            "METRICS",
            "Assertion",
            "ExactMatch",
            "Judge",
            "Score",
            "Scorer",
            "Subject",
            "TrajectoryMatch",
            "default_quality_scorers",
            "score_evaluation",
            "score_evaluation_sync",
        ),
        "agentjournal.evals.trajectory": ("Trajectory",),
    },
)
