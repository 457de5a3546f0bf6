"""The tracing processor: the SDK's spans of a recorded run, as the run contract's events.

Register it once per process (`agents.add_trace_processor(journaled.processor)`, or
`set_trace_processors([...])` to drop OpenAI's exporter). Spans outside `AgentsJournal.run` /
`resume` are passed by. Inside, a span's end becomes:

- handoff → HandoffInitiated (with the call id the model's reply gave the transfer) and its
  ObservationCaptured: the active agent changes;
- guardrail → an output guardrail is OutputChecked or GuardrailTriggered (after the answer's
  ResponseDrafted), a tripped input guardrail GuardrailTriggered;
- generation / response (a model that is not wrapped in a RecordingModel) → ModelCalled with the
  tokens the span carries (the reply too, when the SDK includes data in its spans);
- function (a tool the policy could not stand in front of: it was not guarded) → ToolProposed
  (`guarded: false`), ToolExecuted or ToolFailed, ObservationCaptured;
- agent, task, turn: nothing of their own (an agent span tells the recording the spans arrive).

The SDK swallows a processor's exceptions (it logs them), so a write that fails here is kept on
the recording; the next hook of the run raises it, which stops the run, and `AgentsJournal.run`
raises it at the end. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor

from agentjournal.integrations.openai_agents._common import (
    current_recording,
    error_text,
    inside_recording_model,
    parse_arguments,
    text_of,
)
from agentjournal.integrations.openai_agents._recording import Recording

__all__ = ["JournalTracingProcessor"]

logger = logging.getLogger(__name__)

_RECORDED = frozenset({"generation", "response", "function", "handoff", "guardrail"})


class JournalTracingProcessor(TracingProcessor):
    """Records the spans of the SDK runs that `AgentsJournal` is recording; other spans pass by."""

    def __init__(self) -> None:
        self._open: dict[str, Recording] = {}
        self._lock = threading.Lock()

    def on_trace_start(self, trace: Trace) -> None:
        return None

    def on_trace_end(self, trace: Trace) -> None:
        return None

    def on_span_start(self, span: Span[Any]) -> None:
        recording = current_recording()
        if recording is None:
            return
        if recording.processor is None:
            recording.processor = self
        elif recording.processor is not self:
            return  # another of our processors is registered too and records this run
        recording.spans_seen = True
        kind = span.span_data.type
        if kind not in _RECORDED or (kind in ("generation", "response") and inside_recording_model.get()):
            return
        with self._lock:
            self._open[span.span_id] = recording

    def on_span_end(self, span: Span[Any]) -> None:
        with self._lock:
            recording = self._open.pop(span.span_id, None)
        if recording is None or recording.failure is not None or recording.state.finished:
            return
        try:
            self._record(recording, span)
        except Exception as error:
            failure = recording.fail(error)
            logger.error(
                "agentjournal could not record a %s span of run %s: %s", span.span_data.type, recording.run_id, failure
            )

    def shutdown(self) -> None:
        with self._lock:
            self._open.clear()

    def force_flush(self) -> None:
        return None

    # ----- one span --------------------------------------------------------------------------------

    def _record(self, recording: Recording, span: Span[Any]) -> None:
        data = span.span_data
        kind = data.type
        if kind == "handoff":
            if data.to_agent:
                call = _unrecorded_call(recording, data.to_agent, handoff=True)
                reason = ""
                if call is not None:
                    reason = str(call["arguments"].get("reason") or "")
                reason = (
                    reason or f"{data.from_agent or recording.state.agent} handed the conversation to {data.to_agent}"
                )
                recording.handoff(data.to_agent, call["id"] if call else None, reason)
        elif kind == "guardrail":
            recording.guardrail(data.name, bool(data.triggered), _guardrail_kind(recording, data.name))
        elif kind == "function":
            if data.name in recording.guarded_tools:
                return  # its hooks recorded it (or the SDK holds it for approval)
            call = _unrecorded_call(recording, data.name, handoff=False)
            if call is None:
                return  # a guarded call: its hooks recorded it
            text = error_text(span.error)
            arguments = call["arguments"] or parse_arguments(data.input)
            recording.unguarded_call(
                data.name, arguments, call["id"], output=data.output, error=text, latency_ms=_latency_ms(span)
            )
        elif kind == "generation":
            output = [_chat_message_item(message) for message in data.output or ()]
            usage = data.usage or {}
            recording.model_called(
                str(data.model or "unknown"),
                instructions=None,
                input=list(data.input or ()),
                tools=(),
                handoffs=(),
                output_schema=None,
                output=[item for items in output for item in items],
                input_tokens=int(usage.get("input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
                latency_ms=_latency_ms(span),
                replayable=False,
            )
        elif kind == "response":
            response = data.response
            usage = data.usage or {}
            recording.model_called(
                str(getattr(response, "model", None) or "unknown"),
                instructions=_instructions_of(response),
                input=data.input if data.input is not None else [],
                tools=(),
                handoffs=(),
                output_schema=None,
                output=list(response.output) if response is not None else [],
                input_tokens=int(usage.get("input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
                latency_ms=_latency_ms(span),
                response_id=getattr(response, "id", None),
                replayable=False,
            )


def _unrecorded_call(recording: Recording, name: str, *, handoff: bool) -> dict[str, Any] | None:
    """The call of the model's last reply a span is about: one with that tool (or handoff target) not yet recorded."""
    calls = recording.state.calls
    for call in recording.last_calls:
        if call["id"] in calls:
            continue
        if handoff and recording.handoff_tools.get(call["name"]) == name:
            return call
        if not handoff and call["name"] == name:
            return call
    if handoff:  # the request's handoffs were not seen (a model not wrapped): any transfer not yet recorded
        known = {tool.name for agent in recording.agents.values() for tool in agent.tools if hasattr(tool, "name")}
        for call in recording.last_calls:
            if call["id"] not in calls and call["name"] not in known:
                return call
    return None


def _guardrail_kind(recording: Recording, name: str) -> Any:
    is_input, is_output = name in recording.input_guardrails, name in recording.output_guardrails
    if is_input != is_output:
        return "input" if is_input else "output"
    answered = recording.last_text is not None and not recording.last_calls
    return "output" if answered else "input"


def _chat_message_item(message: Any) -> list[dict[str, Any]]:
    """A Chat Completions message (a generation span's output) as the SDK's Responses items."""
    if not isinstance(message, dict):
        return []
    items: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    if text:
        items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
            }
        )
    return items


def _latency_ms(span: Span[Any]) -> float:
    if not span.started_at or not span.ended_at:
        return 0.0
    return (datetime.fromisoformat(span.ended_at) - datetime.fromisoformat(span.started_at)).total_seconds() * 1000


def _instructions_of(response: Any) -> str | None:
    instructions = getattr(response, "instructions", None)
    return instructions if isinstance(instructions, str) else None
