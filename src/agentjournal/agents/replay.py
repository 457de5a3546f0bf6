"""Record and replay: re-execute a run's agent code with its recorded model replies, tool results and human decisions.

The replay is the same decider under a second driver: `ReplayDriver` answers every effect from
the recording instead of performing it, and writes the replayed run to a throwaway in-memory
journal. Every model request must match the recorded one (the request fingerprint); a request
the recording does not have raises DivergenceError, which names what changed (the agent, the
model, the system prompt, a tool's schema, which message and which field) and shows the
recorded and the requested call side by side, like a durable-execution engine's
non-determinism error.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.decider import AskModel, Draft, Recall, RunTool, Wait
from agentjournal.agents.driver import Driver, RunError, RunResult
from agentjournal.agents.models.base import ModelResponse
from agentjournal.agents.runtime import Runtime
from agentjournal.agents.tools import Observation
from agentjournal.journal import Journal, RecordedEvent, StreamNotFoundError
from agentjournal.journal.ids import uuid7
from agentjournal.runs import RunState, run_stream, upcast
from agentjournal.runs import events as ev

__all__ = [
    "DivergenceError",
    "Recording",
    "ReplayResult",
    "added_messages",
    "differences",
    "replace_started",
    "replay",
    "replay_sync",
    "side_by_side",
]


class DivergenceError(RunError):
    """The replayed code asked for a call the recording does not have; `changes` says what differs."""

    def __init__(
        self,
        run_id: str,
        what: str,
        recorded: dict[str, Any] | None,
        requested: dict[str, Any],
        changes: Sequence[str] = (),
    ) -> None:
        self.run_id = run_id
        self.what = what
        self.recorded = recorded
        self.requested = requested
        self.changes = list(changes)
        because = f": {'; '.join(self.changes)}" if self.changes else ""
        super().__init__(f"replay of run {run_id} diverged at {what}{because}\n{side_by_side(recorded, requested)}")


def side_by_side(recorded: dict[str, Any] | None, requested: dict[str, Any]) -> str:
    """A plain-text table: one row per field, recorded on the left, requested on the right."""
    table = Table("", "recorded", "requested", show_lines=True, expand=False)
    for key in dict.fromkeys([*(recorded or {}), *requested]):
        left = "(no such call in the recording)" if recorded is None else _show(recorded.get(key))
        right = _show(requested.get(key))
        marker = key if left == right else f"{key} ≠"
        table.add_row(marker, left, right)
    console = Console(width=140, file=io.StringIO(), color_system=None)
    console.print(table)
    return str(console.file.getvalue())  # type: ignore[attr-defined]


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class ReplayResult:
    original: RunState
    replayed: RunResult
    journal: Journal
    """The throwaway journal holding the replayed run (memory://)."""

    @property
    def same_response(self) -> bool:
        return self.original.final_response == self.replayed.output


class Recording:
    """The recorded model calls, tool outcomes, memory and human decisions of one run.

    Built from the run's events (upcast to the contract's current schema); `blob` returns the
    content a large tool output refers to.
    """

    @classmethod
    def read(cls, journal: Journal, run_id: str) -> Recording:
        events = [upcast(event) for event in journal.read_stream(run_stream(run_id))]
        if not events:
            raise StreamNotFoundError(f"no run {run_id!r} in {journal.url}")
        return cls(run_id, events, BlobStore(journal).get)

    def __init__(self, run_id: str, events: Sequence[RecordedEvent], blob: Callable[[str], Any]) -> None:
        self.run_id = run_id
        self.events = list(events)
        self.started: dict[str, Any] = events[0].data
        self.tenant_id = events[0].tenant_id
        self.state = RunState(run_stream(run_id))
        self.models: list[RecordedEvent] = []
        self.sent: list[int] = []
        """How many messages each recorded request held."""
        self.schemas: dict[str, dict[str, str]] = {self.started["agent"]: dict(self.started["tool_schemas"])}
        self.prompts: dict[str, str] = {self.started["agent"]: self.started["prompt_version"]}
        self.outcomes: dict[str, list[Observation]] = {}
        self.proposed: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, RecordedEvent] = {}
        self.recalls: list[dict[str, Any]] = []
        self.blobs: dict[str, Any] = {}
        """The contents of every blob the run refers to, read once here (no journal reads later)."""
        for event in self.events:
            data = event.data
            if event.type == "ModelCalled":
                self.models.append(event)
                self.sent.append(len(self.state.messages))
            elif event.type == "ToolProposed":
                self.proposed[data["call_id"]] = data
            elif event.type == "ToolExecuted":
                output = data.get("output")
                if data.get("output_ref"):
                    output = self.blobs[data["output_ref"]] = blob(data["output_ref"])
                done = Observation(True, output, latency_ms=data["latency_ms"], cost_usd=data.get("cost_usd", 0.0))
                self.outcomes.setdefault(data["call_id"], []).append(done)
            elif event.type == "ToolFailed":
                failure = Observation.failure(
                    data["error_type"],
                    data["error"],
                    latency_ms=data.get("latency_ms", 0),
                    retryable=data["will_retry"],
                )
                self.outcomes.setdefault(data["call_id"], []).append(failure)
            elif event.type in ("ToolApproved", "ToolRejected"):
                self.decisions[data["approval_id"]] = event
            elif event.type == "MemoryRecalled":
                self.recalls.append(data)
            elif event.type == "HandoffInitiated" and data.get("tool_schemas") is not None:
                self.schemas[data["to_agent"]] = dict(data["tool_schemas"])
                self.prompts[data["to_agent"]] = data.get("prompt_version") or ""
            self.state.apply(event)

    def messages(self, call: int) -> list[dict[str, Any]]:
        """The conversation recorded request `call` sent, as the model saw it."""
        state = self.state
        return [state.wire(message, self.blobs.__getitem__) for message in state.messages[: self.sent[call]]]


def differences(recording: Recording, index: int, ask: AskModel, agent: Agent) -> list[str]:
    """What makes request `ask` differ from recorded request `index`, in words."""
    data = recording.models[index].data
    changes: list[str] = []
    if data["agent"] != ask.agent:
        changes.append(f"the agent: recorded {data['agent']}, now {ask.agent}")
    if data["stage"] != ask.stage:
        changes.append(f"the stage: recorded {data['stage']}, now {ask.stage}")
    if data["model"] != ask.model.name:
        changes.append(f"the model: recorded {data['model']}, now {ask.model.name}")
    recorded_prompt = data.get("prompt_hash")
    if (recorded_prompt is not None and recorded_prompt != ask.prompt_hash) or (
        recorded_prompt is None and recording.prompts.get(ask.agent) not in (None, agent.prompt_version)
    ):
        changes.append(f"the system prompt of {ask.agent} changed")
    if data.get("tools_hash") not in (None, ask.tools_hash):
        changes.extend(_tool_changes(recording.schemas.get(ask.agent, {}), agent.tool_schema_hashes(), ask))
    recorded = recording.messages(index)
    requested = ask.request.messages
    for position, (old, new) in enumerate(zip(recorded, requested, strict=False), start=1):
        if old != new:
            changes.append(_message_change(position, old, new))
            break
    else:
        if len(recorded) != len(requested):
            changes.append(f"the conversation: recorded {len(recorded)} messages, now {len(requested)}")
    return changes


def _tool_changes(recorded: dict[str, str], current: dict[str, str], ask: AskModel) -> list[str]:
    changes = [f"tool {name} is new" for name in sorted(set(current) - set(recorded))]
    changes += [f"tool {name} was removed" for name in sorted(set(recorded) - set(current))]
    changes += [
        f"tool {name} changed its description or schema"
        for name in sorted(set(recorded) & set(current))
        if recorded[name] != current[name]
    ]
    return changes or [f"the tools {ask.agent} is offered changed (its handoffs, or their descriptions)"]


def _message_change(position: int, old: dict[str, Any], new: dict[str, Any]) -> str:
    what = f"message {position} ({old.get('role')}"
    what += f", the result of {old['tool_call_id']})" if old.get("tool_call_id") else ")"
    if old.get("role") != new.get("role"):
        return f"{what}: recorded role {old.get('role')}, now {new.get('role')}"
    if old.get("content") != new.get("content"):
        return f"{what}: its content differs"
    old_calls = {call["id"]: call for call in old.get("tool_calls") or []}
    for call in new.get("tool_calls") or []:
        before = old_calls.get(call["id"])
        if before is None:
            return f"{what}: tool call {call['id']} is new"
        if before["name"] != call["name"]:
            return f"{what}: tool call {call['id']} names {call['name']}, recorded {before['name']}"
        for key in sorted(set(before["arguments"]) | set(call["arguments"])):
            if before["arguments"].get(key) != call["arguments"].get(key):
                recorded, now = before["arguments"].get(key), call["arguments"].get(key)
                return f"{what}: tool call {call['id']} argument {key!r}: recorded {recorded!r}, now {now!r}"
    return f"{what}: it differs"


class ReplayDriver(Driver):
    """The driver whose effects come from a recording; nothing is called and the source journal is not written."""

    def __init__(self, runtime: Runtime, state: RunState, options: RunOptions, recording: Recording) -> None:
        super().__init__(runtime, state, options)
        self.recording = recording
        self.model_calls = 0
        self.recall_calls = 0
        self.redact = None  # the recording is already as the journal stored it

    async def call_model(self, ask: AskModel) -> tuple[ModelResponse, float]:
        index = self.model_calls
        self.model_calls += 1
        what = f"model call {index + 1}"
        requested = {
            "agent": ask.agent,
            "stage": ask.stage,
            "model": ask.model.name,
            "new messages": added_messages(ask.request.messages),
            "fingerprint": ask.fingerprint,
        }
        models = self.recording.models
        if index >= len(models):
            raise DivergenceError(self.recording.run_id, what, None, requested, ["the recording has no such call"])
        data = models[index].data
        if data["request_fingerprint"] != ask.fingerprint:
            recorded = {
                "agent": data["agent"],
                "stage": data["stage"],
                "model": data["model"],
                "new messages": added_messages(self.recording.messages(index)),
                "fingerprint": data["request_fingerprint"],
            }
            changes = differences(self.recording, index, ask, self.runtime.agent(ask.agent))
            raise DivergenceError(self.recording.run_id, f"{what} (step {data['step']})", recorded, requested, changes)
        usage = {
            "input_tokens": data["input_tokens"],
            "output_tokens": data["output_tokens"],
            "cost_usd": data["cost_usd"],
        }
        return ModelResponse.from_dict(data["response"], model=data["model"], **usage), float(data["latency_ms"])

    async def run_tool(self, run: RunTool) -> Observation:
        proposed = self.recording.proposed.get(run.call_id)
        requested = {"call": run.call_id, "tool": run.tool.name, "arguments": run.arguments}
        outcomes = self.recording.outcomes.get(run.call_id)
        what = f"tool call {run.call_id}"
        if proposed is None or not outcomes:
            raise DivergenceError(self.recording.run_id, what, None, requested, ["the recording has no result for it"])
        if proposed["tool"] != run.tool.name:
            recorded = {"call": run.call_id, "tool": proposed["tool"], "arguments": proposed["arguments"]}
            raise DivergenceError(
                self.recording.run_id, what, recorded, requested, [f"the tool: recorded {proposed['tool']}"]
            )
        return outcomes.pop(0)

    async def recall(self, recall: Recall) -> list[dict[str, Any]]:
        if self.recall_calls >= len(self.recording.recalls):
            requested = {"memory recall": recall.query}
            raise DivergenceError(self.recording.run_id, "a memory recall", None, requested, ["the recording has none"])
        self.recall_calls += 1
        return list(self.recording.recalls[self.recall_calls - 1]["items"])

    async def fetch_blobs(self, refs: tuple[str, ...]) -> dict[str, Any]:
        return {ref: self.recording.blobs[ref] for ref in refs}

    async def waiting(self, wait: Wait) -> bool:
        """A recorded human decision is replayed as it was made (approval ids derive from run and call)."""
        decision = self.recording.decisions.get(wait.approval_id or "")
        if decision is None:
            return False
        model = ev.ToolApproved if decision.type == "ToolApproved" else ev.ToolRejected
        approval = self.state.approvals[decision.data["approval_id"]]
        self.stage(
            Draft(model.model_validate(decision.data), decision.actor or "human", approval.requested_id, uuid7())
        )
        return True


def added_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages after the last assistant reply: what a request added."""
    added: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            break
        added.append(message)
    return list(reversed(added))


async def replay(journal: Journal, run_id: str, agents: Sequence[Agent]) -> ReplayResult:
    """Re-execute run `run_id` of `journal` with `agents` (the code under test), answering from the recording."""
    recording = await asyncio.to_thread(Recording.read, journal, run_id.removeprefix("run-"))
    by_name = {agent.name: agent for agent in agents}
    started = recording.started
    if started["agent"] not in by_name:
        raise RunError(f"run {run_id} was started by agent {started['agent']!r}; pass it to replay()")
    limits = started.get("limits") or {}
    options = RunOptions(
        max_steps=limits.get("max_steps", 20),
        budget_usd=limits.get("budget_usd"),
        budget_tokens=limits.get("budget_tokens"),
        max_attempts=limits.get("max_attempts", 3),
        backoff_s=0.0,
        approval_ttl_s=None,
    )
    sandbox = Journal.open("memory://")
    runtime = Runtime(sandbox, agents=list(by_name.values()), options=options)
    agent = runtime.agent(started["agent"])
    state = runtime.repository.create(run_stream(recording.run_id))
    driver = ReplayDriver(runtime, state, options, recording)
    driver.correlation_id = recording.events[0].correlation_id
    driver.tenant_id = recording.tenant_id
    start = ev.RunStarted.model_validate(started)
    pinned = replace_started(start, agent, options)
    driver.stage(Draft(pinned, "orchestrator", None, recording.events[0].event_id))
    result = await driver.drive()
    return ReplayResult(recording.state, result, sandbox)


def replace_started(recorded: ev.RunStarted, agent: Agent, options: RunOptions) -> ev.RunStarted:
    """The replayed run's RunStarted: the recorded input and user, the code under test's pins."""
    return recorded.model_copy(
        update={
            "agent_version": agent.version,
            "model": agent.model.name,
            "prompt_version": agent.prompt_version,
            "tool_schemas": agent.tool_schema_hashes(),
            "policy_version": agent.policy.version if agent.policy else None,
            "limits": options.limits(),
            "contract_version": ev.CONTRACT_VERSION,
        }
    )


def replay_sync(journal: Journal, run_id: str, agents: Sequence[Agent]) -> ReplayResult:
    return asyncio.run(replay(journal, run_id, agents))
