"""The agent runtime: runs recorded as events, policy-guarded tools, approvals, replay.

Importing this package registers the run events' explainers and makes `run-` streams
fold into RunState (so `agentjournal state run-…` shows a run).
"""

from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.approvals import Approval, ApprovalError, approve, list_approvals, ready_runs, reject
from agentjournal.agents.events import RUN_EVENTS, register_run_events, run_stream
from agentjournal.agents.memory import MemoryItem, MemoryService
from agentjournal.agents.models import Model, ModelRequest, ModelResponse, ScriptedModel, ToolCall, call
from agentjournal.agents.planner import AgentPlan, PlanStep, PlanValidationError, validate_plan
from agentjournal.agents.policy import Decision, Policy, PolicyError, RunMetrics
from agentjournal.agents.redaction import Finding, Redactor
from agentjournal.agents.replay import DivergenceError, ReplayResult, replay, replay_sync
from agentjournal.agents.runtime import RunError, RunResult, Runtime, arguments_hash
from agentjournal.agents.state import RunState
from agentjournal.agents.tools import Observation, Tool, ToolRegistry, TransientToolError, tool

__all__ = [
    "RUN_EVENTS",
    "Agent",
    "AgentPlan",
    "Approval",
    "ApprovalError",
    "Decision",
    "DivergenceError",
    "Finding",
    "MemoryItem",
    "MemoryService",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "Observation",
    "PlanStep",
    "PlanValidationError",
    "Policy",
    "PolicyError",
    "Redactor",
    "ReplayResult",
    "RunError",
    "RunMetrics",
    "RunOptions",
    "RunResult",
    "RunState",
    "Runtime",
    "ScriptedModel",
    "Tool",
    "ToolCall",
    "ToolRegistry",
    "TransientToolError",
    "approve",
    "arguments_hash",
    "call",
    "list_approvals",
    "ready_runs",
    "register_run_events",
    "reject",
    "replay",
    "replay_sync",
    "run_stream",
    "tool",
    "validate_plan",
]
