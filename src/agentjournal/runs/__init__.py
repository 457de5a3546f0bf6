"""The run contract: the typed events of an agent run, its state and counters, their explainers.

Everything that writes or reads runs uses it: the runtime, the integrations, the read models,
the forensics and the evaluator. docs/run-contract.md is its reference.

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.runs.events import CONTRACT as CONTRACT
    from agentjournal.runs.events import CONTRACT_VERSION as CONTRACT_VERSION
    from agentjournal.runs.events import RUN_EVENTS as RUN_EVENTS
    from agentjournal.runs.events import RUN_PREFIX as RUN_PREFIX
    from agentjournal.runs.events import TERMINAL as TERMINAL
    from agentjournal.runs.events import is_run_start as is_run_start
    from agentjournal.runs.events import new_event as new_event
    from agentjournal.runs.events import register_run_events as register_run_events
    from agentjournal.runs.events import run_id_of as run_id_of
    from agentjournal.runs.events import run_stream as run_stream
    from agentjournal.runs.events import upcast as upcast
    from agentjournal.runs.explain import register_run_explainers as register_run_explainers
    from agentjournal.runs.metrics import METRIC_EVENT_TYPES as METRIC_EVENT_TYPES
    from agentjournal.runs.metrics import RunMetrics as RunMetrics
    from agentjournal.runs.recognize import aggregate_for as aggregate_for
    from agentjournal.runs.recognize import is_run as is_run
    from agentjournal.runs.state import Approval as Approval
    from agentjournal.runs.state import Claim as Claim
    from agentjournal.runs.state import Handoff as Handoff
    from agentjournal.runs.state import Message as Message
    from agentjournal.runs.state import RunState as RunState
    from agentjournal.runs.state import ToolCall as ToolCall
    from agentjournal.runs.summary import RunStatus as RunStatus
    from agentjournal.runs.summary import RunSummary as RunSummary
    from agentjournal.runs.summary import WaitingFor as WaitingFor

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.runs.events": (
            "CONTRACT",
            "CONTRACT_VERSION",
            "RUN_EVENTS",
            "RUN_PREFIX",
            "TERMINAL",
            "is_run_start",
            "new_event",
            "register_run_events",
            "run_id_of",
            "run_stream",
            "upcast",
        ),
        "agentjournal.runs.explain": ("register_run_explainers",),
        "agentjournal.runs.metrics": (
            "METRIC_EVENT_TYPES",
            "RunMetrics",
        ),
        "agentjournal.runs.recognize": (
            "aggregate_for",
            "is_run",
        ),
        "agentjournal.runs.state": (
            "Approval",
            "Claim",
            "Handoff",
            "Message",
            "RunState",
            "ToolCall",
        ),
        "agentjournal.runs.summary": (
            "RunStatus",
            "RunSummary",
            "WaitingFor",
        ),
    },
)
