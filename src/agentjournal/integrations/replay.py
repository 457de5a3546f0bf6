"""Replay a recorded loop: run the same code again, offline, answered from the recording.

    with Replay(journal, run_id, policy=policy) as replay:
        answer = refund_loop(client, replay.recorder)   # the loop's own code, with its wrapped client
    print(replay.same_response, replay.state.status)

`replay.recorder` is a RunRecorder on a throwaway in-memory journal. In the runs it records, the client
wrappers (`record_anthropic`, `record_openai`) send nothing: model call N is answered with the recorded
reply N once its request's fingerprint matches; `@journaled` tools do not run: each returns the recorded
output of its call (or raises RecordedToolError for a recorded failure); a held call gets the human
decision it got then. Whatever the loop asks that the recording does not have (another request, another
tool call, other arguments, another user input) raises DivergenceError, which names what changed.
The recorded journal is only read. Code the loop runs outside those (a tool not wrapped with
`@journaled`, a request through another client) runs for real: replay cannot answer it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import orjson

from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.policy import Policy
from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations.recorder import RecorderError, RunRecorder
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.journal.errors import AgentJournalError
from agentjournal.model import Repository
from agentjournal.runs import RunState, is_run_start, run_stream, upcast
from agentjournal.runs import events as ev

__all__ = ["RecordedToolError", "Replay"]


class RecordedToolError(AgentJournalError):
    """A recorded tool failure, raised again on replay: `error_type` is the original exception's class name."""

    def __init__(self, tool: str, error_type: str, error: str) -> None:
        self.tool = tool
        self.error_type = error_type
        self.error = error
        super().__init__(f"{error_type}: {error}")


class Replay:
    """A recorded run and the throwaway recorder that re-executes it (a ReplaySource for the recorder)."""

    def __init__(self, journal: Journal, run_id: str, *, policy: Policy | None = None) -> None:
        self.run_id = run_id.removeprefix("run-")
        self.source = journal
        events = [upcast(event) for event in journal.read_stream(run_stream(self.run_id))]
        if not events or not is_run_start(events[0]):
            raise RecorderError(f"no recorded run {self.run_id!r} in {journal.url}")
        self.events = events
        self.original = RunState(run_stream(self.run_id))
        self.models: list[dict[str, Any]] = []
        self.proposed: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, RecordedEvent] = {}
        self.decisions: dict[str, RecordedEvent] = {}
        requested: dict[str, str] = {}
        for event in events:
            data = event.data
            if event.type == "ModelCalled":
                self.models.append(data)
            elif event.type == "ToolProposed":
                self.proposed[data["call_id"]] = data
            elif event.type in ("ToolExecuted", "ToolFailed"):
                self.outcomes[data["call_id"]] = event
            elif event.type == "ApprovalRequested":
                requested[data["approval_id"]] = data["call_id"]
            elif event.type in ("ToolApproved", "ToolRejected") and data["approval_id"] in requested:
                self.decisions[requested[data["approval_id"]]] = event
            self.original.apply(event)
        self.blobs = BlobStore(journal)
        self.journal = Journal.open("memory://", create=True)
        """Where the replayed run is recorded (in memory, gone with the Replay)."""
        self.recorder = RunRecorder(self.journal, policy=policy, replay=self)
        self.resolved: dict[str, str] = {}
        """Replayed call id -> the recorded call it stands for."""
        self.replayed_run_id: str | None = None

    # ----- what the replayed run asks ------------------------------------------------------------------

    def check_start(self, started: ev.RunStarted) -> None:
        recorded = self.events[0].data
        fields = ("agent", "input", "user_id")
        changes = [f"{name} changed" for name in fields if recorded.get(name) != getattr(started, name)]
        if changes:
            then = {name: recorded.get(name) for name in fields}
            now = {name: getattr(started, name) for name in fields}
            raise DivergenceError(self.run_id, "the start of the run", then, now, changes)
        self.replayed_run_id = started.run_id

    def model_reply(self, index: int, fingerprint: str, requested: dict[str, Any]) -> dict[str, Any]:
        what = f"model call {index + 1}"
        if index >= len(self.models):
            changes = [f"the recording has {len(self.models)} model call(s); the loop asked for another"]
            raise DivergenceError(self.run_id, what, None, requested, changes)
        recorded = self.models[index]
        if recorded["request_fingerprint"] == fingerprint:
            return recorded
        then = {key: recorded.get(key) for key in ("api", "settings", "prompt_hash", "tools_hash", "new_messages")}
        raise DivergenceError(self.run_id, what, then, requested, _changes(then, requested))

    def recorded_call(self, call_id: str, tool: str, arguments: dict[str, Any]) -> str | None:
        """The recorded call a replayed one stands for: the same id (a model's call id), or else, for ids
        made up anew on each run, the first recorded call of that tool with those arguments not yet taken."""
        known = self.resolved.get(call_id)
        if known is not None:
            return known
        taken = set(self.resolved.values())
        if call_id in self.proposed and call_id not in taken:
            self.resolved[call_id] = call_id
            return call_id
        for recorded, data in self.proposed.items():
            if recorded not in taken and data["tool"] == tool and data["arguments"] == arguments:
                self.resolved[call_id] = recorded
                return recorded
        return None

    def tool_outcome(self, call_id: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        what = f"tool call {call_id} ({tool})"
        recorded_id = self.recorded_call(call_id, tool, arguments)
        proposed = self.proposed.get(recorded_id) if recorded_id is not None else None
        now = {"tool": tool, "arguments": arguments}
        if recorded_id is None or proposed is None:
            raise DivergenceError(self.run_id, what, None, now, ["the recording has no such call"])
        call_id = recorded_id
        then = {"tool": proposed["tool"], "arguments": proposed["arguments"]}
        if then != now:
            changes = [f"{key} changed" for key in now if then[key] != now[key]]
            raise DivergenceError(self.run_id, what, then, now, changes)
        outcome = self.outcomes.get(call_id)
        if outcome is None:
            changes = ["the recorded call never ran (refused, or still waiting), so there is no result to give"]
            raise DivergenceError(self.run_id, what, then, now, changes)
        data = dict(outcome.data)
        if data.get("output_ref"):
            data["output"] = self.blobs.get(data["output_ref"])
        elif isinstance(data.get("output_json"), str):  # the output with its keys in the order they had
            data["output"] = orjson.loads(data["output_json"])
        return {"type": outcome.type, **data}

    def human_decision(self, call_id: str, tool: str, arguments: dict[str, Any]) -> RecordedEvent | None:
        recorded_id = self.recorded_call(call_id, tool, arguments)
        return self.decisions.get(recorded_id) if recorded_id is not None else None

    # ----- what came of it -----------------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        """The replayed run, as recorded in the throwaway journal."""
        if self.replayed_run_id is None:
            raise RecorderError(f"replay of run {self.run_id}: the loop has not started the run yet")
        return Repository(self.journal, RunState).load(run_stream(self.replayed_run_id))

    @property
    def same_response(self) -> bool:
        """Whether the replay answered the user what the recorded run answered."""
        return self.state.final_response == self.original.final_response

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        """The replayed run stays readable (`state`, `journal`) until `close()`."""


def _changes(recorded: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """What differs between a recorded request and the one the replayed loop made, in words."""
    changes: list[str] = []
    if recorded.get("api") != requested.get("api"):
        changes.append(f"another API ({recorded.get('api')} then, {requested.get('api')} now)")
    then, now = recorded.get("settings") or {}, requested.get("settings") or {}
    for key in sorted({*then, *now}):
        if then.get(key) != now.get(key):
            changes.append(f"{key}: {then.get(key)!r} then, {now.get(key)!r} now")
    if recorded.get("prompt_hash") != requested.get("prompt_hash"):
        changes.append("the system prompt changed")
    if recorded.get("tools_hash") != requested.get("tools_hash"):
        changes.append("the tool descriptions changed")
    sent, sending = recorded.get("new_messages") or [], requested.get("new_messages") or []
    for index in range(max(len(sent), len(sending))):
        before = sent[index] if index < len(sent) else None
        after = sending[index] if index < len(sending) else None
        if before != after:
            role = (after or before or {}).get("role", "item")
            state = "is new" if before is None else "is missing" if after is None else "changed"
            changes.append(f"new message {index + 1} ({role}) {state}")
            break
    if not changes:
        changes.append("an earlier message of the conversation changed (the history sent again differs)")
    return changes
