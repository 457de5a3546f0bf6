"""What the pieces of the OpenAI Agents SDK integration share: the ambient recording, errors, digests.

The recording of the SDK run in progress travels in a context variable, as the recorder's own
`current_run()` does: the SDK runs tools and guardrails in tasks that copy the context, and calls
tracing processors in the caller's, so every hook finds the run it belongs to without being told.
Outside `AgentsJournal.run` / `resume` it is None and every hook steps aside.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from agentjournal.integrations.recorder import RecorderError
from agentjournal.journal.envelope import canonical_json

if TYPE_CHECKING:
    from agentjournal.integrations.openai_agents._recording import Recording

__all__ = [
    "ApprovalPending",
    "RecordingFailed",
    "RunMoved",
    "current_recording",
    "denied_message",
    "rejected_message",
]

_recording: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "agentjournal_openai_agents_recording", default=None
)
inside_recording_model: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentjournal_openai_agents_inside_model", default=False
)
"""True while a RecordingModel waits for the model it wraps: that model's own trace span is not recorded twice."""


def current_recording() -> Recording | None:
    """The SDK run being recorded in this context, or None (outside `AgentsJournal.run` / `resume`)."""
    return _recording.get()


def set_recording(recording: Recording | None) -> contextvars.Token[Recording | None]:
    return _recording.set(recording)


def reset_recording(token: contextvars.Token[Recording | None]) -> None:
    _recording.reset(token)


class RecordingFailed(RecorderError):
    """agentjournal could not write part of the run (the database is down, ...): the SDK run was stopped.

    Raised from the first hook after the failure (a tracing processor's own errors are swallowed by
    the SDK, so they are kept and raised here) and by `AgentsJournal.run` when the run ends.
    """


class RunMoved(RecorderError):
    """Another process appended to the run (it resumed it too): this one stops without touching it."""


class ApprovalPending(RecorderError):
    """The run still waits for a human: `agentjournal approvals approve|reject <approval_id>` first."""

    def __init__(self, run_id: str, approval_ids: Sequence[str]) -> None:
        self.run_id = run_id
        self.approval_ids = list(approval_ids)
        ids = ", ".join(self.approval_ids)
        super().__init__(
            f"run {run_id} still waits for a human ({ids}): `agentjournal approvals approve {self.approval_ids[0]} "
            "--by NAME --reason TEXT` (or reject), then resume it"
        )


# ----- what the model is told -------------------------------------------------------------------


def denied_message(tool: str, reason: str) -> str:
    """What the model reads instead of a denied call's output (the same text live and in a replay)."""
    return f"The call to {tool} was not run: the policy denied it ({reason})"


def rejected_message(tool: str, by: str | None, reason: str | None) -> str:
    """What the model reads instead of the output of a call a human rejected."""
    return f"A human ({by or 'a reviewer'}) rejected the call to {tool}: {reason or 'no reason given'}"


# ----- digests and plain data -------------------------------------------------------------------


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def jsonable(value: Any) -> Any:
    """Plain JSON data for any SDK value (pydantic items, dataclasses); what cannot be converted becomes its repr."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return to_jsonable_python(value, fallback=repr)


def parse_arguments(arguments: str | None) -> dict[str, Any]:
    """A tool call's arguments as the model sent them (JSON text) as an object; unparseable text is kept raw."""
    if not arguments:
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def text_of(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(part.get("text")) for part in content if isinstance(part, dict) and part.get("text") is not None]
        return "\n".join(parts) if parts else None
    return None


def input_text(value: Any) -> str:
    """The user's message that starts a run: the input string, or the last user message of a list of items."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role") == "user":
                text = text_of(item.get("content"))
                if text:
                    return text
    raise RecorderError(
        f"a run needs the user's message: a non-empty string or input items with a user message, got {value!r:.200}"
    )


@dataclass(frozen=True)
class Reply:
    """What a model answered, in the contract's words: its text and its tool calls (handoffs included)."""

    text: str | None
    tool_calls: list[dict[str, Any]]
    items: list[dict[str, Any]]
    """The SDK's output items as plain data, so a replay can hand the SDK the same reply."""


def reply_of(output: Sequence[Any]) -> Reply:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for item in output:
        data = jsonable(item)
        if not isinstance(data, dict):
            data = {"value": data}
        if isinstance(item, BaseModel) and "type" in type(item).model_fields:
            data.setdefault("type", getattr(item, "type", None))
        items.append(data)
        kind = data.get("type")
        if kind == "message":
            for part in data.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    texts.append(f"(refused) {part.get('refusal', '')}")
        elif kind == "function_call":
            calls.append(
                {
                    "id": str(data.get("call_id") or data.get("id")),
                    "name": str(data.get("name")),
                    "arguments": parse_arguments(data.get("arguments")),
                }
            )
    return Reply("\n".join(texts) if texts else None, calls, items)


def error_text(error: Any) -> str | None:
    """A span's error (the SDK's SpanError: a message and data) as one line; None when it has none."""
    if not isinstance(error, dict):
        return None
    data = error.get("data")
    detail = data.get("error") if isinstance(data, dict) else None
    return str(error.get("message")) + (f": {detail}" if detail else "")


def answer_text(final_output: Any) -> str:
    """A run's final output as the text the user got (structured outputs as canonical JSON)."""
    if isinstance(final_output, str):
        return final_output
    return canonical_json(jsonable(final_output)).decode()
