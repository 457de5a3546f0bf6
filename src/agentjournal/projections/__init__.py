"""Projections: read models built from the journal by catch-up subscriptions with checkpoints.

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.projections.base import ExternalProjection as ExternalProjection
    from agentjournal.projections.base import Projection as Projection
    from agentjournal.projections.base import ProjectionError as ProjectionError
    from agentjournal.projections.base import Tx as Tx
    from agentjournal.projections.runner import DeadLetter as DeadLetter
    from agentjournal.projections.runner import ProjectionRunner as ProjectionRunner
    from agentjournal.projections.runner import dead_letters as dead_letters
    from agentjournal.projections.runs import RunsProjection as RunsProjection
    from agentjournal.projections.status import Freshness as Freshness
    from agentjournal.projections.status import ProjectionStatus as ProjectionStatus
    from agentjournal.projections.status import bring_up_to_date as bring_up_to_date
    from agentjournal.projections.status import builtin_projection as builtin_projection
    from agentjournal.projections.status import builtin_projections as builtin_projections
    from agentjournal.projections.status import checkpoint as checkpoint
    from agentjournal.projections.status import projection_status as projection_status
    from agentjournal.projections.status import wait_for as wait_for
    from agentjournal.projections.worker import PeriodicJob as PeriodicJob
    from agentjournal.projections.worker import Worker as Worker

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.projections.base": (
            "ExternalProjection",
            "Projection",
            "ProjectionError",
            "Tx",
        ),
        "agentjournal.projections.runner": (
            "DeadLetter",
            "ProjectionRunner",
            "dead_letters",
        ),
        "agentjournal.projections.runs": ("RunsProjection",),
        "agentjournal.projections.status": (
            "Freshness",
            "ProjectionStatus",
            "bring_up_to_date",
            "builtin_projection",
            "builtin_projections",
            "checkpoint",
            "projection_status",
            "wait_for",
        ),
        "agentjournal.projections.worker": (
            "PeriodicJob",
            "Worker",
        ),
    },
)
