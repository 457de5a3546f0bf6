"""Projections: read models built from the journal by catch-up subscriptions with checkpoints."""

from agentjournal.projections.base import ExternalProjection, Projection, ProjectionError, Tx
from agentjournal.projections.runner import DeadLetter, ProjectionRunner, dead_letters
from agentjournal.projections.runs import RunsProjection
from agentjournal.projections.status import (
    ProjectionStatus,
    builtin_projection,
    builtin_projections,
    checkpoint,
    projection_status,
    wait_for,
)
from agentjournal.projections.worker import PeriodicJob, Worker

__all__ = [
    "DeadLetter",
    "ExternalProjection",
    "PeriodicJob",
    "Projection",
    "ProjectionError",
    "ProjectionRunner",
    "ProjectionStatus",
    "RunsProjection",
    "Tx",
    "Worker",
    "builtin_projection",
    "builtin_projections",
    "checkpoint",
    "dead_letters",
    "projection_status",
    "wait_for",
]
