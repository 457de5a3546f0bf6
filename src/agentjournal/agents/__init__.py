"""The agent runtime: runs recorded in the run contract, policy-guarded tools, approvals, replay.

Names load on first use (PEP 562), so importing this package costs almost nothing. (The replay
function itself is `agentjournal.agents.replay.replay`: a package name cannot be both it and
its module.)
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.agents.agent import Agent as Agent
    from agentjournal.agents.agent import RunOptions as RunOptions
    from agentjournal.agents.approvals import Approval as Approval
    from agentjournal.agents.approvals import ApprovalError as ApprovalError
    from agentjournal.agents.approvals import approve as approve
    from agentjournal.agents.approvals import list_approvals as list_approvals
    from agentjournal.agents.approvals import reject as reject
    from agentjournal.agents.checks import CheckResult as CheckResult
    from agentjournal.agents.checks import OutputCheck as OutputCheck
    from agentjournal.agents.checks import PolicyCheck as PolicyCheck
    from agentjournal.agents.checks import RedactOutput as RedactOutput
    from agentjournal.agents.checks import output_check as output_check
    from agentjournal.agents.memory import MemoryItem as MemoryItem
    from agentjournal.agents.memory import MemoryService as MemoryService
    from agentjournal.agents.models import Model as Model
    from agentjournal.agents.models import ModelRequest as ModelRequest
    from agentjournal.agents.models import ModelResponse as ModelResponse
    from agentjournal.agents.models import ScriptedModel as ScriptedModel
    from agentjournal.agents.models import ToolCall as ToolCall
    from agentjournal.agents.models import call as call
    from agentjournal.agents.planner import AgentPlan as AgentPlan
    from agentjournal.agents.planner import PlanStep as PlanStep
    from agentjournal.agents.planner import PlanValidationError as PlanValidationError
    from agentjournal.agents.planner import validate_plan as validate_plan
    from agentjournal.agents.policy import Decision as Decision
    from agentjournal.agents.policy import Policy as Policy
    from agentjournal.agents.policy import PolicyError as PolicyError
    from agentjournal.agents.redaction import Finding as Finding
    from agentjournal.agents.redaction import Redactor as Redactor
    from agentjournal.agents.replay import DivergenceError as DivergenceError
    from agentjournal.agents.replay import ReplayResult as ReplayResult
    from agentjournal.agents.replay import replay_sync as replay_sync
    from agentjournal.agents.runtime import RunError as RunError
    from agentjournal.agents.runtime import RunResult as RunResult
    from agentjournal.agents.runtime import Runtime as Runtime
    from agentjournal.agents.runtime import arguments_hash as arguments_hash
    from agentjournal.agents.tools import Observation as Observation
    from agentjournal.agents.tools import RunContext as RunContext
    from agentjournal.agents.tools import Tool as Tool
    from agentjournal.agents.tools import ToolRegistry as ToolRegistry
    from agentjournal.agents.tools import TransientToolError as TransientToolError
    from agentjournal.agents.tools import current_run as current_run
    from agentjournal.agents.tools import tool as tool
    from agentjournal.runs import RunMetrics as RunMetrics
    from agentjournal.runs import RunState as RunState
    from agentjournal.runs import run_stream as run_stream

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.agents.agent": ("Agent", "RunOptions"),
        "agentjournal.agents.approvals": ("Approval", "ApprovalError", "approve", "list_approvals", "reject"),
        "agentjournal.agents.checks": ("CheckResult", "OutputCheck", "PolicyCheck", "RedactOutput", "output_check"),
        "agentjournal.agents.memory": ("MemoryItem", "MemoryService"),
        "agentjournal.agents.models": ("Model", "ModelRequest", "ModelResponse", "ScriptedModel", "ToolCall", "call"),
        "agentjournal.agents.planner": ("AgentPlan", "PlanStep", "PlanValidationError", "validate_plan"),
        "agentjournal.agents.policy": ("Decision", "Policy", "PolicyError"),
        "agentjournal.agents.redaction": ("Finding", "Redactor"),
        "agentjournal.agents.replay": ("DivergenceError", "ReplayResult", "replay_sync"),
        "agentjournal.agents.runtime": ("RunError", "RunResult", "Runtime", "arguments_hash"),
        "agentjournal.agents.tools": (
            "Observation",
            "RunContext",
            "Tool",
            "ToolRegistry",
            "TransientToolError",
            "current_run",
            "tool",
        ),
        "agentjournal.runs": ("RunMetrics", "RunState", "run_stream"),
    },
)
