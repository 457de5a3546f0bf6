"""Candidates: what changed, named, applied to the agents the recorded runs ran.

A candidate changes any of: an agent's system prompt, the model (any `Model`, a provider
adapter included), tool descriptions, the policy, or the agent code as a whole. It is a
Python object (`Candidate(...)`) or an entry of a small YAML file:

    agents: myapp.agents:crew            # the agent code the recorded runs ran
    candidates:
      prompt-v42:
        description: Shorter refund instructions
        prompts: {refund-agent: "You resolve refunds. Never refund more than 40 USD."}
        prompt_files: {triage-agent: prompts/triage-v42.txt}
        model: openai:gpt-4.1-mini       # or anthropic:<name>, or package.module:attr
        tools: {issue_refund: "Issue a refund of at most 40 USD."}
        policy: policies/strict.yaml
        agents: myapp.agents_v2:crew     # instead: replace the agent code

Paths are relative to the file. A candidate's fingerprint is that of the agents it yields
(versions, prompt, tool schema and policy hashes, model names), so any real change shows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agentjournal.agents.agent import Agent
from agentjournal.agents.models.base import Model
from agentjournal.agents.policy import Policy, PolicyError
from agentjournal.agents.runtime import load_agents
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError
from agentjournal.model import import_object

__all__ = ["BASELINE", "Candidate", "CandidateError", "Candidates", "all_agents", "fingerprint", "load_model"]

BASELINE = "recorded"
"""The name of the baseline that is the recorded runs themselves."""


class CandidateError(AgentJournalError):
    """A candidate that cannot be built: an unknown name, a bad file, an agent or tool it names that does not exist."""


@dataclass(frozen=True)
class Candidate:
    """What changed. Empty fields keep what the agents have; `agents` replaces the agent code."""

    name: str
    description: str = ""
    prompts: Mapping[str, str] = field(default_factory=dict)
    """Agent name -> its new system prompt."""
    model: Model | None = None
    """Every agent's model (and planner model)."""
    models: Mapping[str, Model] = field(default_factory=dict)
    """Agent name -> its model, over `model`."""
    tools: Mapping[str, str] = field(default_factory=dict)
    """Tool name -> its new description."""
    policy: Policy | None = None
    """Every agent's policy."""
    agents: Sequence[Agent] | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name == BASELINE or not self.name.replace("-", "").replace("_", "").isalnum():
            raise CandidateError(
                f"candidate name {self.name!r}: use letters, digits, '-' and '_' ({BASELINE!r} is the baseline)"
            )

    def apply(self, agents: Sequence[Agent]) -> list[Agent]:
        """The agents this candidate runs: `agents` (or its own code) with its changes."""
        base = all_agents(self.agents if self.agents is not None else agents)
        for kind, names in (("prompts", self.prompts), ("models", self.models)):
            unknown = sorted(set(names) - set(base))
            if unknown:
                raise CandidateError(
                    f"candidate {self.name}: {kind} names agent(s) {', '.join(unknown)}; "
                    f"the agents are {', '.join(sorted(base))}"
                )
        tool_names = {tool.name for agent in base.values() for tool in agent.registry}
        unknown_tools = sorted(set(self.tools) - tool_names)
        if unknown_tools:
            raise CandidateError(
                f"candidate {self.name}: tools names {', '.join(unknown_tools)}, which no agent has; "
                f"the tools are {', '.join(sorted(tool_names))}"
            )
        return [self._changed(agent) for agent in base.values()]

    def _changed(self, agent: Agent) -> Agent:
        changes: dict[str, Any] = {"handoffs": agent.handoff_names}  # by name: the changed agents are the ones run
        if agent.name in self.prompts:
            changes["instructions"] = self.prompts[agent.name]
        model = self.models.get(agent.name) or self.model
        if model is not None:
            changes["model"] = model
            if agent.planner_model is not None:
                changes["planner_model"] = model
        if self.policy is not None:
            changes["policy"] = self.policy
        if any(tool.name in self.tools for tool in agent.registry):
            changes["tools"] = [
                dataclasses.replace(tool, description=self.tools[tool.name]) if tool.name in self.tools else tool
                for tool in agent.registry
                if not (agent.memory_writes and tool.name == "remember")  # added again by the agent itself
            ]
        return dataclasses.replace(agent, **changes)


def all_agents(agents: Sequence[Agent]) -> dict[str, Agent]:
    """Every agent by name, including the Agent objects reached through handoffs."""
    found: dict[str, Agent] = {}
    pending = list(agents)
    while pending:
        agent = pending.pop(0)
        if agent.name in found:
            if found[agent.name] is not agent:
                raise CandidateError(f"two different agents are named {agent.name!r}")
            continue
        found[agent.name] = agent
        pending.extend(target for target in agent.handoffs if isinstance(target, Agent))
    return found


def fingerprint(agents: Sequence[Agent]) -> str:
    """SHA-256 of what the agents run with: a candidate's identity."""
    pins = {
        agent.name: {
            "version": agent.version,
            "prompt": agent.prompt_version,
            "model": agent.model.name,
            "planner_model": agent.planner_model.name if agent.planner_model else None,
            "tools": agent.tool_schema_hashes(),
            "handoffs": agent.handoff_names,
            "policy": agent.policy.version if agent.policy else None,
            "planner": agent.planner,
        }
        for agent in all_agents(agents).values()
    }
    return hashlib.sha256(canonical_json(pins)).hexdigest()


def load_model(spec: str) -> Model:
    """`openai:<model>`, `anthropic:<model>` (the provider adapters) or `package.module:attr` (a Model or a factory)."""
    provider, _, name = spec.partition(":")
    if provider in ("openai", "anthropic") and name:
        try:
            if provider == "openai":
                from agentjournal.agents.models.openai import OpenAIModel

                return OpenAIModel(name)
            from agentjournal.agents.models.anthropic import AnthropicModel

            return AnthropicModel(name)
        except ImportError:
            extra = f"pip install 'agentjournal[{provider}]'"
            raise CandidateError(f"model {spec!r} needs the {provider} extra: {extra}") from None
    found: Any = import_object(spec, "model")
    if not isinstance(found, Model) and callable(found):
        found = found()
    if not isinstance(found, Model):
        raise CandidateError(f"model {spec!r} is {found!r}, not a Model (or a function returning one)")
    return found


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    prompts: dict[str, str] = {}
    prompt_files: dict[str, str] = {}
    model: str | None = None
    models: dict[str, str] = {}
    tools: dict[str, str] = {}
    policy: str | None = None
    agents: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: str | None = None
    candidates: dict[str, _Entry]


@dataclass(frozen=True)
class Candidates:
    """A candidates file: the agent code of the recorded runs and the named candidates."""

    path: Path
    agents: str | None
    entries: Mapping[str, _Entry]

    @classmethod
    def load(cls, path: str | Path) -> Candidates:
        source = Path(path)
        try:
            loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CandidateError(f"{source}: cannot read the candidates file: {exc}") from None
        except yaml.YAMLError as exc:
            raise CandidateError(f"{source}: not YAML: {exc}") from None
        try:
            parsed = _File.model_validate(loaded)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'the file'}: {error['msg']}"
                for error in exc.errors()[:3]
            )
            raise CandidateError(f"{source}: {problems}") from None
        return cls(source, parsed.agents, parsed.candidates)

    @property
    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Candidate:
        """Build candidate `name` (its models, policy and agents are loaded now)."""
        entry = self.entries.get(name)
        if entry is None:
            known = ", ".join(self.names) or "(none)"
            raise CandidateError(f"{self.path}: no candidate named {name!r}; known: {known}")
        where = f"{self.path}: candidate {name}"
        prompts = dict(entry.prompts)
        for agent, file in entry.prompt_files.items():
            try:
                prompts[agent] = (self.path.parent / file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CandidateError(f"{where}: cannot read the prompt file {file}: {exc}") from None
        try:
            policy = Policy.load(self.path.parent / entry.policy) if entry.policy else None
        except PolicyError as exc:
            raise CandidateError(f"{where}: {exc}") from None
        try:
            return Candidate(
                name=name,
                description=entry.description,
                prompts=prompts,
                model=load_model(entry.model) if entry.model else None,
                models={agent: load_model(spec) for agent, spec in entry.models.items()},
                tools=dict(entry.tools),
                policy=policy,
                agents=load_agents(entry.agents) if entry.agents else None,
            )
        except AgentJournalError as exc:
            raise CandidateError(f"{where}: {exc}") from None

    def base_agents(self) -> list[Agent] | None:
        """The agent code the file names for the recorded runs (None when it names none)."""
        return load_agents(self.agents) if self.agents else None
