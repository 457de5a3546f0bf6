"""Record and replay: re-execute a run's agent code with its recorded model replies and tool results.

The replay runs the real orchestrator against a throwaway in-memory journal, with the same run
id and input. Every model request must match the recorded one (by request fingerprint) and every
tool call the recorded call (tool and arguments); the recorded reply or output is returned
instead of calling anything. Human decisions are replayed from the recording too. A request the
recording does not have raises DivergenceError, which shows the recorded and the requested call
side by side, like a durable-execution engine's non-determinism error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.events import register_run_events, run_stream
from agentjournal.agents.models.base import Model, ModelRequest, ModelResponse
from agentjournal.agents.runtime import RunError, RunResult, Runtime
from agentjournal.agents.state import RunState
from agentjournal.agents.tools import Observation, Tool
from agentjournal.journal import Journal, NewEvent, RecordedEvent, StreamNotFoundError


class DivergenceError(RunError):
    """The replayed code asked for a call the recording does not have."""

    def __init__(self, run_id: str, what: str, recorded: dict[str, Any] | None, requested: dict[str, Any]) -> None:
        self.run_id = run_id
        self.what = what
        self.recorded = recorded
        self.requested = requested
        super().__init__(f"replay of run {run_id} diverged at {what}\n{side_by_side(recorded, requested)}")


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


class _Recording:
    """The recorded model calls, tool outcomes and human decisions of one run."""

    def __init__(self, journal: Journal, run_id: str) -> None:
        self.run_id = run_id
        self.events = journal.read_stream(run_stream(run_id))
        if not self.events:
            raise StreamNotFoundError(f"no run {run_id!r} in {journal.url}")
        self.models = [event for event in self.events if event.type == "ModelCalled"]
        self.state = RunState(run_stream(run_id))
        self.sent: list[int] = []
        """How many messages each recorded request held."""
        for event in self.events:
            if event.type == "ModelCalled":
                self.sent.append(len(self.state.messages))
            self.state.apply(event)
        self.blobs = blobs = BlobStore(journal)
        self.outcomes: dict[str, list[Observation]] = {}
        self.proposed: dict[str, dict[str, Any]] = {}
        self.decisions = [event for event in self.events if event.type in ("ToolApproved", "ToolRejected")]
        for event in self.events:
            data = event.data
            if event.type == "ToolProposed":
                self.proposed[data["call_id"]] = data
            elif event.type == "ToolExecuted":
                output = blobs.get(data["output_ref"]) if data.get("output_ref") else data.get("output")
                observation = Observation(True, output, latency_ms=data["latency_ms"], cost_usd=data.get("cost_usd", 0))
                self.outcomes.setdefault(data["call_id"], []).append(observation)
            elif event.type == "ToolFailed":
                failure = Observation.failure(
                    data["error_type"],
                    data["error"],
                    latency_ms=data.get("latency_ms", 0),
                    retryable=data["will_retry"],
                )
                self.outcomes.setdefault(data["call_id"], []).append(failure)

    def new_messages(self, call: int) -> list[dict[str, Any]]:
        """What recorded request `call` added to the conversation, as the model saw it."""
        state = self.state
        return _new_messages([state.render(m, self.blobs.get) for m in state.messages[: self.sent[call]]])

    def started(self) -> dict[str, Any]:
        return self.events[0].data


class _ReplayModel:
    """Answers each request with the recorded reply, once its fingerprint matches the recorded one."""

    def __init__(self, recording: _Recording) -> None:
        self.recording = recording
        self.calls = 0

    def answer(self, request: ModelRequest, agent: str, model_name: str) -> ModelResponse:
        index = self.calls
        self.calls += 1
        fingerprint = request.fingerprint(model_name)
        requested = {
            "agent": agent,
            "model": model_name,
            "new messages": _new_messages(request.messages),
            "fingerprint": fingerprint,
        }
        what = f"model call {index + 1}"
        if index >= len(self.recording.models):
            raise DivergenceError(self.recording.run_id, what, None, requested)
        event = self.recording.models[index]
        data = event.data
        if data["request_fingerprint"] != fingerprint:
            recorded = {
                "agent": data["agent"],
                "model": data["model"],
                "new messages": self.recording.new_messages(index),
                "fingerprint": data["request_fingerprint"],
            }
            raise DivergenceError(self.recording.run_id, f"{what} (step {data['step']})", recorded, requested)
        return ModelResponse.from_dict(
            data["response"],
            input_tokens=data["input_tokens"],
            output_tokens=data["output_tokens"],
            cost_usd=data["cost_usd"],
            model=data["model"],
        )


def _new_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages after the last assistant reply."""
    added: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            break
        added.append(message)
    return list(reversed(added))


def _executor(recording: _Recording) -> Any:
    async def substitute(
        tool: Tool, arguments: dict[str, Any], *, idempotency_key: str, calls_so_far: int, call_id: str
    ) -> Observation:
        proposed = recording.proposed.get(call_id)
        requested = {"call": call_id, "tool": tool.name, "arguments": arguments}
        outcomes = recording.outcomes.get(call_id)
        if proposed is None or not outcomes:
            raise DivergenceError(recording.run_id, f"tool call {call_id}", None, requested)
        recorded = {"call": call_id, "tool": proposed["tool"], "arguments": proposed["arguments"]}
        if proposed["tool"] != tool.name:
            raise DivergenceError(recording.run_id, f"tool call {call_id}", recorded, requested)
        return outcomes.pop(0)

    return substitute


async def replay(journal: Journal, run_id: str, agents: Sequence[Agent]) -> ReplayResult:
    """Re-execute run `run_id` of `journal` with `agents` (the code under test), substituting recordings."""
    register_run_events(journal.registry)
    recording = _Recording(journal, run_id.removeprefix("run-"))
    model = _ReplayModel(recording)
    by_name = {
        agent.name: dataclasses.replace(
            agent, model=_Named(model, agent.name, agent.model.name), handoffs=agent.handoff_names
        )
        for agent in agents
    }
    started = recording.started()
    if started["agent"] not in by_name:
        raise RunError(f"run {run_id} was started by agent {started['agent']!r}; pass it to replay()")
    sandbox = Journal.open("memory://")
    limits = started.get("limits") or {}
    options = RunOptions(
        max_steps=limits.get("max_steps", 20),
        budget_usd=limits.get("budget_usd"),
        budget_tokens=limits.get("budget_tokens"),
        max_attempts=limits.get("max_attempts", 3),
        backoff_s=0.0,
        approval_ttl_s=None,
    )
    runtime = Runtime(sandbox, agents=list(by_name.values()), options=options, executor=_executor(recording))
    result = await runtime.run(
        by_name[started["agent"]],
        started["input"],
        run_id=recording.run_id,
        user_id=started.get("user_id"),
        tenant_id=recording.events[0].tenant_id,
        route=started.get("route"),
        options=options,
    )
    for decision in recording.decisions:
        if result.status != "waiting_approval":
            break
        _redecide(sandbox, result.state, decision)
        result = await runtime.resume(recording.run_id, options=options)
    return ReplayResult(recording.state, result, sandbox)


def replay_sync(journal: Journal, run_id: str, agents: Sequence[Agent]) -> ReplayResult:
    return asyncio.run(replay(journal, run_id, agents))


def _redecide(sandbox: Journal, state: RunState, decision: RecordedEvent) -> None:
    """Append the recorded human decision to the replayed run (approval ids derive from run and call)."""
    approval_id = decision.data["approval_id"]
    current = sandbox.stream_version(state.stream_id)
    if approval_id not in state.approvals:
        raise DivergenceError(
            state.run_id,
            f"the human decision on {approval_id}",
            {"approval": approval_id, "tool": decision.data.get("tool")},
            {"approval": ", ".join(a["approval_id"] for a in state.pending_approvals()) or "(none pending)"},
        )
    sandbox.append(
        state.stream_id, [NewEvent(decision.type, dict(decision.data), actor=decision.actor)], expected_version=current
    )


class _Named(Model):
    """The replay model under each agent's own model name, so fingerprints match the recording."""

    def __init__(self, inner: _ReplayModel, agent: str, name: str) -> None:
        self.inner = inner
        self.agent = agent
        self.name = name

    async def request(self, request: ModelRequest) -> ModelResponse:
        return self.inner.answer(request, self.agent, self.name)
