"""An agent: instructions, models per stage, tools, policy, memory, output checks and its handoffs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentjournal.agents.checks import OutputCheck
from agentjournal.agents.memory import MemoryService, remember_tool
from agentjournal.agents.models.base import Model, ToolSpec
from agentjournal.agents.policy import Policy
from agentjournal.agents.tools import Tool, ToolRegistry

HANDOFF_PREFIX = "transfer_to_"
DEFAULT_FALLBACK = "I'm sorry, I can't complete this request safely right now. A human will follow up with you."


@dataclass(frozen=True)
class RunOptions:
    """Limits of one run. Every option is recorded in RunStarted, so a run explains its own limits."""

    max_steps: int = 20
    """Model calls plus plan steps before the run is aborted."""
    model_timeout_s: float = 120.0
    tool_timeout_s: float | None = None
    """A cap on every tool's own timeout (None: each tool's timeout_s)."""
    budget_usd: float | None = None
    budget_tokens: int | None = None
    max_attempts: int = 3
    """Tries of a call that fails transiently (a timeout, a TransientToolError), each one recorded."""
    backoff_s: float = 0.2
    backoff_multiplier: float = 2.0
    max_backoff_s: float = 10.0
    approval_ttl_s: float | None = 24 * 3600
    blob_threshold_bytes: int = 4096
    """Tool outputs larger than this are stored once by content hash (`blob-<sha256>`) and referenced."""
    claim_grace_s: float = 30.0
    """A claim on a call lasts the tool's timeout plus this; a claim older than that belongs to a crashed worker."""
    memory_items: int = 5
    """How many memory items an agent with memory recalls before its first model call."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_attempts", "memory_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"RunOptions.{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "model_timeout_s",
            "tool_timeout_s",
            "budget_usd",
            "budget_tokens",
            "approval_ttl_s",
            "claim_grace_s",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"RunOptions.{name} must be positive (or None), got {value}")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * self.backoff_multiplier ** (attempt - 1)))

    def limits(self) -> dict[str, Any]:
        return {
            "max_steps": self.max_steps,
            "budget_usd": self.budget_usd,
            "budget_tokens": self.budget_tokens,
            "max_attempts": self.max_attempts,
        }


@dataclass
class Agent:
    """What runs: the system prompt, the models, tools, policy, memory, output checks and handoffs.

    `planner=True` follows seed 001: the model first returns a JSON plan (validated against
    the AgentPlan contract, with this agent's tools as the tool enum), the orchestrator runs
    its steps through the policy guard, and a last model call writes the answer. With
    `planner_model`, a small model writes the plan and `model` only answers (seed 001's "small,
    fast planning model + stronger synthesis model only at response stage").

    `memory` recalls what the service holds about the run's user into the context before the
    first model call (recorded as MemoryRecalled); `memory_writes=True` also gives the model a
    `remember` tool (a side effect like any other: claimed, policy-checked, recorded).
    `output_checks` run on the drafted answer before the user sees it (agents.checks).
    """

    name: str
    instructions: str
    model: Model
    tools: Sequence[Tool | Callable[..., Any]] = ()
    version: str = "1"
    policy: Policy | None = None
    handoffs: Sequence[Agent | str] = ()
    planner: bool = False
    planner_model: Model | None = None
    memory: MemoryService | None = None
    memory_writes: bool = False
    output_checks: Sequence[OutputCheck] = ()
    fallback_response: str = DEFAULT_FALLBACK
    registry: ToolRegistry = field(init=False, repr=False)
    _specs: list[ToolSpec] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"an agent needs a name, got {self.name!r}")
        if self.planner_model is not None and not self.planner:
            raise ValueError(f"agent {self.name!r}: planner_model is the plan stage's model; set planner=True")
        if self.memory_writes and self.memory is None:
            raise ValueError(f"agent {self.name!r}: memory_writes=True needs memory=MemoryService(...)")
        tools = list(self.tools)
        if self.memory_writes and self.memory is not None:
            tools.append(remember_tool(self.memory))
        self.registry = ToolRegistry(tools)
        for target in self.handoff_names:
            if HANDOFF_PREFIX + target in self.registry:
                raise ValueError(f"agent {self.name!r}: a tool named {HANDOFF_PREFIX + target!r} hides the handoff")

    @property
    def handoff_names(self) -> list[str]:
        return [target.name if isinstance(target, Agent) else target for target in self.handoffs]

    @property
    def prompt_version(self) -> str:
        return hashlib.sha256(self.instructions.encode()).hexdigest()

    def tool_specs(self) -> list[ToolSpec]:
        """What the model is told about the tools (built once: JSON schemas are slow to generate)."""
        if self._specs:
            return self._specs
        specs = [ToolSpec(t.name, t.description, t.schema()["parameters"]) for t in self.registry]
        for target in self.handoff_names:
            specs.append(
                ToolSpec(
                    HANDOFF_PREFIX + target,
                    f"Hand the conversation over to {target}.",
                    {
                        "type": "object",
                        "properties": {"reason": {"type": "string", "description": "Why the handoff"}},
                        "required": ["reason"],
                    },
                )
            )
        self._specs = specs
        return specs

    def tool_schema_hashes(self) -> dict[str, str]:
        return self.registry.schema_hashes()

    def stage_model(self, stage: str) -> Model:
        """The model that answers a stage: the planner model plans when there is one."""
        return self.planner_model if stage == "plan" and self.planner_model is not None else self.model
