"""Client wrappers: an `anthropic` or `openai` SDK client whose model calls land in the current run.

    client = record_anthropic(anthropic.Anthropic())      # once, where the client is made
    with recorder.start(agent="refunds", input=question) as run:
        reply = client.messages.create(model=..., max_tokens=1024, messages=[...], tools=[...])

Wrapping patches that client object (never the SDK's classes): Anthropic's `messages.create`, OpenAI's
`chat.completions.create` / `.parse` and `responses.create` / `.parse`, sync or async, and the same on
the clients its `with_options()` / `copy()` make. Inside a recorded run (`current_run()`) each call is
one ModelCalled: the messages the request adds, the reply's text and tool calls (tool_use blocks,
tool_calls, function_call items), tokens, cost from the price table, latency, the request's
fingerprint, and the provider's reply as JSON, so the run can be replayed. Outside a run a call passes
through untouched. `stream=True` is recorded when the stream has been read to its end or is closed.

In a replayed run (a recorder made by `Replay`) the wrapped client sends nothing: each call is answered
with the recorded reply, rebuilt as the SDK's own object, after its fingerprint is checked against the
recording (a mismatch raises DivergenceError naming what changed).

A call the journal cannot take fails loudly: a closed journal before anything is sent, a database that
fails while recording after the model answered (RecorderError; the answer is not returned).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from agentjournal.integrations.recorder import RecordedRun, RecorderError, current_run
from agentjournal.journal.errors import AgentJournalError

__all__ = ["record_anthropic", "record_openai"]

ClientT = TypeVar("ClientT")

_MARK = "__agentjournal_recorded__"
_RAW_HEADER = "X-Stainless-Raw-Response"  # both SDKs: with_raw_response sends "raw", with_streaming_response "stream"
_TRANSPORT = frozenset({"extra_headers", "extra_query", "timeout", "stream", "stream_options"})
"""Request options that change how a reply travels, not what is asked: left out of the fingerprint."""
_SYSTEM_ROLES = frozenset({"system", "developer"})


def _sdk(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"recording {name} clients needs the `{name}` extra: pip install 'agentjournal[{name}]'"
        ) from exc


# ----- what each API looks like ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    text: str | None
    tool_calls: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    model: str
    raw: dict[str, Any]
    """The reply as the provider sent it (the SDK object's JSON), to rebuild it on replay."""


@dataclass(frozen=True)
class _Endpoint:
    """One model-calling method of an SDK, as the recorder sees it."""

    api: str
    """Its name in the record, e.g. `anthropic.messages`."""
    conversation: str
    """The request field holding the conversation."""
    prompt: str | None
    """The request field holding the instructions (None: system messages inside the conversation)."""
    reply: Callable[[Any], _Reply]
    reply_type: Any
    """The SDK's class of a reply, to rebuild a recorded one (replay) or one gathered from a stream."""
    stream: Callable[[], _Accumulator]
    """What gathers a `stream=True` reply's events into the reply."""
    parses: bool = False
    """A `.parse` method (structured output): recorded, not replayed."""

    def rebuild(self, raw: dict[str, Any]) -> Any:
        """The SDK object of a reply's JSON, built as the SDK builds it from a response body."""
        return self.reply_type.construct(**raw)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_jsonable, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _digest(value: Any) -> str:
    return hashlib.sha256(_dumps(value)).hexdigest()


def _arguments(text: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments; text that is not a JSON object is kept as it came, never dropped."""
    try:
        parsed = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {"invalid_json": text}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _anthropic_reply(message: Any) -> _Reply:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.content or ():
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else {"input": block.input}
            calls.append({"id": block.id, "name": block.name, "arguments": dict(arguments)})
    usage = message.usage
    return _Reply(
        "".join(texts) or None,
        calls,
        int(getattr(usage, "input_tokens", 0) or 0),
        int(getattr(usage, "output_tokens", 0) or 0),
        message.model or "",
        message.to_dict(mode="json"),
    )


def _chat_reply(completion: Any) -> _Reply:
    text: str | None = None
    calls: list[dict[str, Any]] = []
    if completion.choices:
        message = completion.choices[0].message
        text = message.content
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None:
                calls.append({"id": call.id, "name": function.name, "arguments": _arguments(function.arguments)})
    usage = completion.usage
    return _Reply(
        text,
        calls,
        int(getattr(usage, "prompt_tokens", 0) or 0),
        int(getattr(usage, "completion_tokens", 0) or 0),
        completion.model or "",
        completion.to_dict(mode="json"),
    )


def _responses_reply(response: Any) -> _Reply:
    calls = [
        {"id": item.call_id, "name": item.name, "arguments": _arguments(item.arguments)}
        for item in response.output or ()
        if item.type == "function_call"
    ]
    usage = response.usage
    return _Reply(
        response.output_text or None,
        calls,
        int(getattr(usage, "input_tokens", 0) or 0),
        int(getattr(usage, "output_tokens", 0) or 0),
        response.model or "",
        response.to_dict(mode="json"),
    )


# ----- streams: events gathered into the reply they make ----------------------------------------------


class _Accumulator:
    """Gathers a stream's events (as JSON) into the reply's JSON; `reply()` is None before any event."""

    def feed(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def reply(self) -> dict[str, Any] | None:
        raise NotImplementedError


class _AnthropicStream(_Accumulator):
    """Messages API server-sent events: message_start, content_block_start/delta/stop, message_delta."""

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.partial_json: dict[int, str] = {}

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.message = dict(event["message"])
            self.message["content"] = list(self.message.get("content") or [])
            return
        message = self.message
        if message is None:
            return
        if kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block = message["content"][event["index"]]
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta.get("type") == "input_json_delta":
                self.partial_json[event["index"]] = self.partial_json.get(event["index"], "") + delta["partial_json"]
        elif kind == "content_block_stop":
            text = self.partial_json.pop(event["index"], None)
            if text is not None:
                message["content"][event["index"]]["input"] = _arguments(text)
        elif kind == "message_delta":
            message.update({k: v for k, v in (event.get("delta") or {}).items() if v is not None})
            usage = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            message["usage"] = {**(message.get("usage") or {}), **usage}

    def reply(self) -> dict[str, Any] | None:
        return self.message


class _ChatStream(_Accumulator):
    """Chat Completions chunks: deltas of the first choice's content and tool calls, usage at the end."""

    def __init__(self) -> None:
        self.completion: dict[str, Any] | None = None
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None

    def feed(self, event: dict[str, Any]) -> None:
        if self.completion is None:
            self.completion = {key: event.get(key) for key in ("id", "created", "model", "system_fingerprint")}
        if event.get("usage"):
            self.completion["usage"] = event["usage"]
        for choice in event.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                gathered = self.calls.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                function = call.get("function") or {}
                gathered["id"] = call.get("id") or gathered["id"]
                gathered["name"] += function.get("name") or ""
                gathered["arguments"] += function.get("arguments") or ""
            self.finish = choice.get("finish_reason") or self.finish

    def reply(self) -> dict[str, Any] | None:
        if self.completion is None:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(self.calls.items())
            ]
        choice = {"index": 0, "message": message, "finish_reason": self.finish or "stop"}
        return {**self.completion, "object": "chat.completion", "choices": [choice]}


class _ResponsesStream(_Accumulator):
    """Responses API events: the final `response.completed` (or incomplete, failed) holds the whole reply."""

    def __init__(self) -> None:
        self.response: dict[str, Any] | None = None

    def feed(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("response"), dict):
            self.response = event["response"]

    def reply(self) -> dict[str, Any] | None:
        return self.response


def _anthropic_endpoint() -> _Endpoint:
    message = _sdk("anthropic").types.Message
    return _Endpoint("anthropic.messages", "messages", "system", _anthropic_reply, message, _AnthropicStream)


def _chat_endpoint(parses: bool = False) -> _Endpoint:
    completion = _sdk("openai").types.chat.ChatCompletion
    name = "openai.chat.completions"
    return _Endpoint(name, "messages", None, _chat_reply, completion, _ChatStream, parses)


def _responses_endpoint(parses: bool = False) -> _Endpoint:
    response = importlib.import_module("openai.types.responses").Response
    return _Endpoint("openai.responses", "input", "instructions", _responses_reply, response, _ResponsesStream, parses)


# ----- one call ---------------------------------------------------------------------------------------


def _lazy(value: Any) -> bool:
    """An iterable the SDK would consume once (a generator): read into a list before it is used twice."""
    return not isinstance(value, str | bytes | dict | list | tuple | BaseModel) and hasattr(value, "__iter__")


def _omitted(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit")


class _Call:
    """A model request inside a run: its fingerprint and what the record needs, prepared before it is sent."""

    def __init__(self, endpoint: _Endpoint, run: RecordedRun, kwargs: dict[str, Any]) -> None:
        try:
            run.journal._check_open()  # a closed journal fails before the model is asked (and paid)
        except AgentJournalError as exc:
            raise RecorderError(f"run {run.run_id}: {exc}; the model call was not sent") from exc
        headers = kwargs.get("extra_headers") or {}
        self.raw_mode = headers.get(_RAW_HEADER) if isinstance(headers, dict) else None
        if self.raw_mode not in (None, "raw"):
            raise RecorderError(
                f"run {run.run_id}: {endpoint.api} with_streaming_response is not recorded; inside a recorded run "
                "use create(..., stream=True) or with_raw_response"
            )
        self.endpoint = endpoint
        self.run = run
        self.kwargs = {key: list(value) if _lazy(value) else value for key, value in kwargs.items()}
        self.streaming = self.kwargs.get("stream") is True
        request = {k: v for k, v in self.kwargs.items() if k not in _TRANSPORT and not _omitted(v)}
        try:
            dumped = _dumps({"api": endpoint.api, **request})
        except TypeError as exc:
            raise RecorderError(f"run {run.run_id}: {endpoint.api}: the request cannot be recorded: {exc}") from None
        self.fingerprint = hashlib.sha256(dumped).hexdigest()
        plain: dict[str, Any] = orjson.loads(dumped)
        del plain["api"]
        conversation = plain.pop(endpoint.conversation, None)
        if isinstance(conversation, str):
            conversation = [{"role": "user", "content": conversation}]
        self.messages: list[dict[str, Any]] = [m if isinstance(m, dict) else {"item": m} for m in conversation or ()]
        self.continued = bool(plain.get("previous_response_id"))
        """The Responses API keeps the conversation: this request sends only what is new."""
        if endpoint.prompt is not None:
            prompt = plain.pop(endpoint.prompt, None)
        else:
            prompt = [m for m in self.messages if m.get("role") in _SYSTEM_ROLES] or None
        tools = plain.pop("tools", None)
        self.prompt_hash = _digest(prompt) if prompt is not None else None
        self.tools_hash = _digest(tools) if tools is not None else None
        self.settings = plain
        """What else the request says: model, max_tokens, temperature, tool_choice, ..."""

    def new_messages(self) -> list[dict[str, Any]]:
        return list(self.messages) if self.continued else self.run.unsent(self.messages)

    def view(self) -> dict[str, Any]:
        """The request as a divergence error compares it with the recorded one."""
        return {
            "api": self.endpoint.api,
            "settings": self.settings,
            "prompt_hash": self.prompt_hash,
            "tools_hash": self.tools_hash,
            "new_messages": self.new_messages(),
        }

    def record(self, reply: _Reply, latency_ms: float, **fields: Any) -> None:
        run = self.run
        model = reply.model or str(self.settings.get("model") or "")
        try:
            run.model_call(
                model=model,
                messages=self.messages,
                new_messages=self.messages if self.continued else None,
                text=reply.text,
                tool_calls=reply.tool_calls,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                latency_ms=round(latency_ms, 3),
                stage="act" if reply.tool_calls else "respond",
                fingerprint=self.fingerprint,
                prompt_hash=self.prompt_hash,
                tools_hash=self.tools_hash,
                api=self.endpoint.api,
                settings=self.settings,
                provider_reply=reply.raw,
                **fields,
            )
        except RecorderError:
            raise
        except AgentJournalError as exc:
            raise RecorderError(
                f"run {run.run_id}: {model} answered, but the answer could not be recorded "
                f"({type(exc).__name__}: {exc}); the call fails so that the run is never silently incomplete"
            ) from exc

    def replayed(self) -> Any:
        """The recorded reply, as the SDK's object, recorded again in the replayed run."""
        replay = self.run.recorder.replay
        assert replay is not None
        where = f"replay of run {replay.run_id}: {self.endpoint.api}"
        if self.streaming or self.raw_mode or self.endpoint.parses:
            kind = "stream=True" if self.streaming else "with_raw_response" if self.raw_mode else ".parse()"
            raise RecorderError(f"{where}: a {kind} call cannot be replayed; replay answers create() calls")
        recorded = replay.model_reply(self.run.state.metrics.model_calls, self.fingerprint, self.view())
        raw = recorded.get("provider_reply")
        if not isinstance(raw, dict):
            raise RecorderError(
                f"{where}: model call {recorded.get('step')} was recorded without the provider's reply "
                "(not through record_anthropic / record_openai), so there is nothing to answer with"
            )
        result = self.endpoint.rebuild(raw)
        self.record(self.endpoint.reply(result), float(recorded.get("latency_ms") or 0.0))
        return result

    def recorded(self, result: Any, started: float) -> None:
        self.record(self.endpoint.reply(result), (time.perf_counter() - started) * 1000)


def _sync_method(endpoint: _Endpoint, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return original(*args, **kwargs)
        prepared = _Call(endpoint, run, kwargs)
        if run.recorder.replay is not None:
            return prepared.replayed()
        started = time.perf_counter()
        result = original(*args, **prepared.kwargs)
        if prepared.streaming:
            return _RecordedStream(result, prepared, started)
        prepared.recorded(result.parse() if prepared.raw_mode else result, started)
        return result

    setattr(call, _MARK, True)
    return call


def _async_method(endpoint: _Endpoint, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return await original(*args, **kwargs)
        prepared = _Call(endpoint, run, kwargs)
        if run.recorder.replay is not None:
            return prepared.replayed()
        started = time.perf_counter()
        result = await original(*args, **prepared.kwargs)
        if prepared.streaming:
            return _AsyncRecordedStream(result, prepared, started)
        if prepared.raw_mode:
            parsed = result.parse()
            prepared.recorded(await parsed if inspect.isawaitable(parsed) else parsed, started)
        else:
            prepared.recorded(result, started)
        return result

    setattr(call, _MARK, True)
    return call


def _refuse_inside_a_run(api: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The SDKs' `.stream()` helpers: untouched outside a run, refused inside one (they would go unrecorded)."""

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is not None:
            raise RecorderError(
                f"run {run.run_id}: {api}.stream() is not recorded; inside a recorded run use "
                "create(..., stream=True), which is"
            )
        return original(*args, **kwargs)

    setattr(call, _MARK, True)
    return call


# ----- recorded streams --------------------------------------------------------------------------------


class _StreamRecord:
    """What both stream wrappers share: the events gathered so far, recorded once."""

    def __init__(self, stream: Any, call: _Call, started: float) -> None:
        self._stream = stream
        self._call = call
        self._started = started
        self._gathered = call.endpoint.stream()
        self._done = False

    def _feed(self, event: Any) -> None:
        plain = event.model_dump(mode="json", exclude_unset=True) if isinstance(event, BaseModel) else dict(event)
        self._gathered.feed(plain)

    def _finish(self, complete: bool) -> None:
        if self._done:
            return
        self._done = True
        raw = self._gathered.reply()
        if raw is None:
            return  # no event arrived: the model answered nothing
        result = self._call.endpoint.rebuild(raw)
        latency_ms = (time.perf_counter() - self._started) * 1000
        self._call.record(self._call.endpoint.reply(result), latency_ms, streamed=True, stream_complete=complete)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _RecordedStream(_StreamRecord):
    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._stream:
                self._feed(event)
                yield event
        finally:
            self._finish(complete=True)

    def __next__(self) -> Any:
        try:
            event = next(self._stream)
        except StopIteration:
            self._finish(complete=True)
            raise
        self._feed(event)
        return event

    def __enter__(self) -> _RecordedStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._stream.close()
        finally:
            self._finish(complete=False)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._finish(complete=False)


class _AsyncRecordedStream(_StreamRecord):
    async def __aiter__(self) -> Any:
        try:
            async for event in self._stream:
                self._feed(event)
                yield event
        finally:
            self._finish(complete=True)

    async def __anext__(self) -> Any:
        try:
            event = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finish(complete=True)
            raise
        self._feed(event)
        return event

    async def __aenter__(self) -> _AsyncRecordedStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._finish(complete=False)


# ----- wrapping a client ---------------------------------------------------------------------------------


def _patch(resource: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    original = getattr(resource, name, None)
    if original is None or getattr(original, _MARK, False):
        return
    setattr(resource, name, make(original))
    for cached in ("with_raw_response", "with_streaming_response"):  # rebuilt on use, around the new method
        resource.__dict__.pop(cached, None)


def _patch_copies(client: Any, wrap: Callable[[Any], Any]) -> None:
    """`client.with_options(...)` and `client.copy(...)` return clients that are recorded too."""
    original = client.copy
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return wrap(original(*args, **kwargs))

    setattr(copy, _MARK, True)
    client.copy = copy
    client.with_options = copy


def _method(endpoint: _Endpoint, is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return functools.partial(_async_method if is_async else _sync_method, endpoint)


def record_anthropic(client: ClientT) -> ClientT:
    """Record `client.messages.create` (an `anthropic.Anthropic` or `AsyncAnthropic`) into the current run.

    Returns the same client. Wrapping twice is harmless; outside a run nothing changes.
    """
    anthropic = _sdk("anthropic")
    if not isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic):
        raise TypeError(f"record_anthropic wraps an anthropic.Anthropic or AsyncAnthropic, got {type(client).__name__}")
    is_async = isinstance(client, anthropic.AsyncAnthropic)
    messages = client.messages
    _patch(messages, "create", _method(_anthropic_endpoint(), is_async))
    _patch(messages, "stream", functools.partial(_refuse_inside_a_run, "anthropic.messages"))
    _patch_copies(client, record_anthropic)
    return client


def record_openai(client: ClientT) -> ClientT:
    """Record `chat.completions.create` / `.parse` and `responses.create` / `.parse` of an `openai.OpenAI`
    or `AsyncOpenAI` into the current run. Returns the same client; outside a run nothing changes."""
    openai = _sdk("openai")
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise TypeError(f"record_openai wraps an openai.OpenAI or AsyncOpenAI, got {type(client).__name__}")
    is_async = isinstance(client, openai.AsyncOpenAI)
    completions = client.chat.completions
    _patch(completions, "create", _method(_chat_endpoint(), is_async))
    _patch(completions, "parse", _method(_chat_endpoint(parses=True), is_async))
    _patch(completions, "stream", functools.partial(_refuse_inside_a_run, "openai.chat.completions"))
    responses = getattr(client, "responses", None)
    if responses is not None:
        _patch(responses, "create", _method(_responses_endpoint(), is_async))
        _patch(responses, "parse", _method(_responses_endpoint(parses=True), is_async))
        _patch(responses, "stream", functools.partial(_refuse_inside_a_run, "openai.responses"))
    _patch_copies(client, record_openai)
    return client
