"""SDK `Model`s around any other: one that records each reply in the run, one that answers from a recording.

`RecordingModel(model)` wraps any SDK Model (OpenAI's, LiteLLM's, a fake): inside a recorded run
each reply becomes one ModelCalled, with the tokens, the cost from the price table, the request's
fingerprint and the reply's SDK output items, so a replay can hand the SDK the same reply. Outside
a recorded run it is the model it wraps. `RecordingModelProvider` does the same for every model a
provider resolves by name (`AgentsJournal.run` puts one in front of the run's provider).

`ReplayModel` answers the i-th request with the i-th recorded reply, after checking the request
is the recorded one (its fingerprint); a request the recording does not have raises
DivergenceError, which says what changed (the instructions, the tools, the conversation).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.tool import Tool
from openai.types.responses.response_prompt_param import ResponsePromptParam
from pydantic import TypeAdapter

from agentjournal.integrations.openai_agents._common import current_recording, inside_recording_model
from agentjournal.integrations.openai_agents._request import RequestHasher
from agentjournal.integrations.recorder import RecorderError
from agentjournal.journal import Journal
from agentjournal.runs import run_stream, upcast
from agents import Model, ModelProvider, ModelResponse, ModelSettings, ModelTracing, Usage

if TYPE_CHECKING:
    from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest

__all__ = ["NotReplayable", "RecordingModel", "RecordingModelProvider", "ReplayModel", "model_name"]


class NotReplayable(RecorderError):
    """The recording cannot answer a replay: a reply was recorded from a trace span, without its SDK items."""


def model_name(model: Model | str | None) -> str:
    """The name a model is recorded under: its `model` (as OpenAI's models hold it), else its class."""
    if isinstance(model, str):
        return model
    if isinstance(model, RecordingModel):
        return model.name
    named = getattr(model, "model", None) or getattr(model, "name", None)
    return str(named) if isinstance(named, str) else type(model).__name__


class RecordingModel(Model):
    """Any SDK Model, whose replies inside a recorded run are ModelCalled events."""

    def __init__(self, model: Model, *, name: str | None = None) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"RecordingModel wraps an agents.Model, got {type(model).__name__}")
        self.model = model
        self.name = name or model_name(model)

    async def get_response(  # noqa: PLR0917 (the SDK's Model interface)
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        recording = current_recording()
        if recording is not None:
            recording.check()
        began = time.perf_counter()
        token = inside_recording_model.set(recording is not None)
        try:
            response = await self.model.get_response(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            )
        finally:
            inside_recording_model.reset(token)
        if recording is not None:
            recording.model_called(
                self.name,
                instructions=system_instructions,
                input=input,
                tools=tools,
                handoffs=handoffs,
                output_schema=output_schema,
                output=response.output,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                latency_ms=(time.perf_counter() - began) * 1000,
                response_id=response.response_id,
            )
            await recording.settle()  # the reply is in the journal before the SDK acts on it
        return response

    async def stream_response(  # noqa: PLR0917 (the SDK's Model interface)
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        recording = current_recording()
        if recording is not None:
            recording.check()
        began = time.perf_counter()
        stream = self.model.stream_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )
        final: Any = None
        while True:
            token = inside_recording_model.set(recording is not None)
            try:
                event = await anext(stream)
            except StopAsyncIteration:
                break
            finally:
                inside_recording_model.reset(token)
            if getattr(event, "type", None) == "response.completed":
                final = getattr(event, "response", None)
            yield event
        if recording is not None and final is not None:
            usage = getattr(final, "usage", None)
            recording.model_called(
                self.name,
                instructions=system_instructions,
                input=input,
                tools=tools,
                handoffs=handoffs,
                output_schema=output_schema,
                output=list(final.output),
                input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
                latency_ms=(time.perf_counter() - began) * 1000,
                response_id=getattr(final, "id", None),
            )
            await recording.settle()

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self.model.get_retry_advice(request)

    async def close(self) -> None:
        await self.model.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.model._cleanup_on_run_end(owner)


class RecordingModelProvider(ModelProvider):
    """A provider whose models record their replies (RecordingModel around each model it resolves)."""

    def __init__(self, provider: ModelProvider) -> None:
        self.provider = provider

    def get_model(self, model_name: str | None) -> Model:
        model = self.provider.get_model(model_name)
        if isinstance(model, RecordingModel):
            return model
        return RecordingModel(model, name=model_name or None)

    async def aclose(self) -> None:
        await self.provider.aclose()


_OUTPUT_ITEM: TypeAdapter[TResponseOutputItem] = TypeAdapter(TResponseOutputItem)


class ReplayModel(Model):
    """Answers a run's model requests from its recording, checking each request against the recorded one."""

    def __init__(self, run_id: str, calls: Sequence[Mapping[str, Any]]) -> None:
        self.run_id = run_id
        self.calls = list(calls)
        self.used = 0
        self._hasher = RequestHasher()

    @classmethod
    def from_journal(cls, journal: Journal, run_id: str) -> ReplayModel:
        """The model calls recorded on run `run_id`, in order."""
        events = journal.read_stream(run_stream(run_id))
        if not events or events[0].type != "RunStarted":
            raise RecorderError(f"there is no run {run_id!r} in {journal.url}")
        return cls(run_id, [upcast(event).data for event in events if event.type == "ModelCalled"])

    @property
    def remaining(self) -> int:
        return len(self.calls) - self.used

    async def get_response(  # noqa: PLR0917 (the SDK's Model interface)
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        from agentjournal.agents.replay import DivergenceError

        digest = self._hasher.digest(system_instructions, input, tools, handoffs, output_schema)
        number = self.used + 1
        requested = {
            "instructions (sha256)": digest.prompt_hash,
            "tools and handoffs (sha256)": digest.tools_hash,
            "input items": digest.items,
            "input (sha256)": digest.input_hash,
        }
        if self.used >= len(self.calls):
            changes = [f"the recording has {len(self.calls)} model call(s); the replay asked for call {number}"]
            raise DivergenceError(self.run_id, f"model call {number}", None, requested, changes)
        recorded = self.calls[self.used]
        shown = {
            "instructions (sha256)": recorded.get("prompt_hash"),
            "tools and handoffs (sha256)": recorded.get("tools_hash"),
            "input items": recorded.get("input_items"),
            "input (sha256)": recorded.get("input_hash"),
        }
        output = recorded.get("sdk_output")
        if output is None:
            raise NotReplayable(
                f"run {self.run_id}: model call {number} was recorded from a trace span, without the SDK's "
                "reply items; record with RecordingModel (AgentsJournal(record_models=True)) to replay"
            )
        if recorded.get("request_fingerprint") != digest.fingerprint:
            changes = [
                what
                for what, key in (
                    ("the instructions changed", "instructions (sha256)"),
                    ("the tools or handoffs offered changed", "tools and handoffs (sha256)"),
                    ("the conversation sent changed", "input (sha256)"),
                )
                if shown[key] != requested[key]
            ] or ["the output schema changed"]
            where = f"model call {number} (step {recorded.get('step')}, agent {recorded.get('agent')})"
            raise DivergenceError(self.run_id, where, shown, requested, changes)
        self.used += 1
        input_tokens, output_tokens = int(recorded.get("input_tokens", 0)), int(recorded.get("output_tokens", 0))
        return ModelResponse(
            output=[_OUTPUT_ITEM.validate_python(item) for item in output],
            usage=Usage(
                requests=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
            response_id=recorded.get("response_id"),
        )

    async def stream_response(  # noqa: PLR0917 (the SDK's Model interface)
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotReplayable("a replay drives Runner.run; streamed runs (Runner.run_streamed) are not replayed")
        yield  # pragma: no cover - makes this an async generator, as the interface is
