"""The OpenAI and Anthropic adapters, with the real SDK clients against a local HTTP server.

The server (`_fake_providers`) answers like the provider's API (the JSON shapes of Chat
Completions and the Messages API) over TCP with HTTP/1.1 keep-alive, so the SDKs' request
building, response parsing, connection pools and event-loop binding all run, with no network.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentjournal.agents import Agent, ModelRequest, Runtime
from agentjournal.agents.models import Model, ModelError, RealModelRequestBlocked, ToolSpec, real_requests
from agentjournal.journal import Journal

from ._fake_providers import (
    Drop,
    FakeProvider,
    Raw,
    Reply,
    Script,
    Status,
    anthropic_reply,
    anthropic_tool_use,
    openai_reply,
    openai_tool_call,
    serving,
)
from ._run_helpers import lookup, of_type

pytest.importorskip("openai")
pytest.importorskip("anthropic")

import anthropic
import openai

from agentjournal.agents.models.anthropic import AnthropicModel
from agentjournal.agents.models.openai import OpenAIModel

try:  # the httpx the SDKs are built on (httpx2 in recent releases)
    import httpx2
except ImportError:  # pragma: no cover
    import httpx as httpx2  # type: ignore[no-redef,import-not-found]


@dataclass(frozen=True)
class Adapter:
    """One provider as the tests see it: how to build its model and SDK client, and its reply shapes."""

    provider: str
    model: str
    path: str
    """What `base_url` adds to the server's address (the SDKs disagree on who adds `/v1`)."""
    model_class: Callable[..., Model]
    sdk_client: Callable[..., Any]
    text: Callable[[str], dict[str, Any]]
    tool_call: Callable[[str, dict[str, Any]], dict[str, Any]]
    has_tool_result: Callable[[dict[str, Any]], bool]

    def base_url(self, server: FakeProvider) -> str:
        return server.url + self.path

    def build(self, server: FakeProvider, **options: Any) -> Any:
        options.setdefault("max_retries", 0)
        return self.model_class(self.model, api_key="test-key", base_url=self.base_url(server), **options)

    def client(self, server: FakeProvider, **options: Any) -> Any:
        return self.sdk_client(api_key="test-key", base_url=self.base_url(server), max_retries=0, **options)

    def tool_then_text(self, text: str) -> Callable[[dict[str, Any]], Reply]:
        """Answer a request holding a tool result with `text`, any other with a call of `lookup`."""
        return lambda body: self.text(text) if self.has_tool_result(body) else self.tool_call("lookup", {"key": "a"})


OPENAI = Adapter(
    "OpenAI",
    "gpt-4o-mini",
    "/v1",
    OpenAIModel,
    openai.AsyncOpenAI,
    lambda text: openai_reply({"content": text}),
    openai_tool_call,
    lambda body: body["messages"][-1]["role"] == "tool",
)
ANTHROPIC = Adapter(
    "Anthropic",
    "claude-haiku-4-5",
    "",
    AnthropicModel,
    anthropic.AsyncAnthropic,
    lambda text: anthropic_reply([{"type": "text", "text": text}]),
    anthropic_tool_use,
    lambda body: any(block.get("type") == "tool_result" for block in body["messages"][-1]["content"]),
)
ADAPTERS = pytest.mark.parametrize("adapter", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])

HELLO = ModelRequest("You help.", [{"role": "user", "content": "hi"}])

REQUEST = ModelRequest(
    "You help.",
    [
        {"role": "user", "content": "look up a"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"key": "a"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": '{"value":1}'},
    ],
    [ToolSpec("lookup", "Look up.", {"type": "object", "properties": {"key": {"type": "string"}}})],
)


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


Serve = Callable[[Script], FakeProvider]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """`serve(script)` starts a fake provider on a free port of 127.0.0.1, stopped after the test."""
    with ExitStack() as servers:
        yield lambda script: servers.enter_context(serving(script))


@pytest.fixture
def sqlite_journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(f"sqlite:///{tmp_path}/j.db", create=True) as opened:
        yield opened


def ask(model: Model, request: ModelRequest = HELLO) -> Any:
    """One request on a new event loop, as `Runtime.run_sync` makes it."""
    with real_requests(True):
        return asyncio.run(model.request(request))


def ask_then_close(model: Model, close: Callable[[], Awaitable[None]]) -> str | None:
    """One request on a new loop, then the caller closes what it passed in (the adapter never does)."""

    async def run() -> str | None:
        try:
            return (await model.request(HELLO)).text
        finally:
            await close()

    with real_requests(True):
        return asyncio.run(run())


def texts(adapter: Adapter, *replies: str) -> Script:
    return [adapter.text(reply) for reply in replies]


# --- request and reply shapes ---------------------------------------------------------------


def test_openai_request_shape_tool_calls_usage_and_cost(serve: Serve) -> None:
    server = serve([openai_tool_call("lookup", {"key": "b"}, "call_9")])
    response = ask(OPENAI.build(server), REQUEST)
    sent = server.requests[0]
    assert server.paths == ["/v1/chat/completions"]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "You help."}
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"key": "a"}'}
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": '{"value":1}'}
    assert sent["tools"][0]["function"]["name"] == "lookup"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_9", "lookup", {"key": "b"})]
    assert (response.input_tokens, response.output_tokens) == (120, 30)
    assert response.cost_usd == pytest.approx((120 * 0.15 + 30 * 0.60) / 1_000_000)
    assert response.model == "gpt-4o-mini-2024-07-18"


def test_anthropic_request_shape_tool_use_usage_and_cost(serve: Serve) -> None:
    server = serve([anthropic_tool_use("lookup", {"key": "c"})])
    response = ask(ANTHROPIC.build(server), REQUEST)
    sent = server.requests[0]
    assert server.paths == ["/v1/messages"]
    headers = server.headers[0]  # older SDKs send x-api-key, newer ones a bearer token
    assert headers.get("x-api-key") == "test-key" or headers.get("authorization") == "Bearer test-key"
    assert sent["system"] == "You help." and sent["max_tokens"] == 4096
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "c1", "name": "lookup", "input": {"key": "a"}}],
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c1", "content": '{"value":1}'}],
    }
    assert sent["tools"][0]["input_schema"]["properties"] == {"key": {"type": "string"}}
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("toolu_1", "lookup", {"key": "c"})]
    assert response.cost_usd == pytest.approx((200 * 1.0 + 40 * 5.0) / 1_000_000)


@ADAPTERS
def test_adapters_refuse_real_requests_inside_the_test_suite(adapter: Adapter, serve: Serve) -> None:
    server = serve([])
    model = adapter.build(server)
    with pytest.raises(RealModelRequestBlocked):
        asyncio.run(model.request(HELLO))
    assert server.requests == []
    assert server.connections == 0


# --- event loops ------------------------------------------------------------------------------


@ADAPTERS
def test_one_model_serves_two_event_loops_in_a_row(adapter: Adapter, serve: Serve) -> None:
    server = serve(texts(adapter, "first", "second"))
    model = adapter.build(server)
    assert ask(model).text == "first"
    assert ask(model).text == "second"
    assert server.connections == 2  # one pool per loop


@ADAPTERS
def test_a_user_supplied_client_serves_two_event_loops_in_a_row(adapter: Adapter, serve: Serve) -> None:
    server = serve(texts(adapter, "first", "second"))
    client = adapter.client(server, default_headers={"X-Team": "kept"})
    model = adapter.model_class(adapter.model, client=client)
    assert ask_then_close(model, client.close) == "first"
    assert ask(model).text == "second"  # a copy of the client, with a pool of its own
    assert server.wait_closed(2)  # the copy was the adapter's, so it closed with its loop
    assert [headers["x-team"] for headers in server.headers] == ["kept", "kept"]  # the copy keeps the options


@ADAPTERS
def test_two_requests_in_one_loop_reuse_one_connection_and_it_closes_with_the_loop(
    adapter: Adapter, serve: Serve
) -> None:
    async def twice(model: Model) -> list[str | None]:
        return [(await model.request(HELLO)).text for _ in range(2)]

    server = serve(texts(adapter, "1", "2", "3"))
    model = adapter.build(server)
    with real_requests(True):
        assert asyncio.run(twice(model)) == ["1", "2"]
    assert server.connections == 1
    assert server.wait_closed(1), "the loop's connection was left open when the loop ended"
    assert ask(model).text == "3"
    assert server.connections == 2
    assert server.wait_closed(2)


@ADAPTERS
def test_clients_of_finished_loops_are_closed_and_released(adapter: Adapter, serve: Serve) -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one(model: Model) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await model.request(HELLO)

    server = serve(texts(adapter, *"abcde"))
    model = adapter.build(server)
    with real_requests(True):
        for _ in range(5):
            asyncio.run(one(model))
    assert server.wait_closed(5)
    gc.collect()
    assert [ref() for ref in loops] == [None] * 5  # the model holds on to no finished loop


@ADAPTERS
def test_loops_in_several_threads_at_once_get_a_client_each(adapter: Adapter, serve: Serve) -> None:
    server = serve(lambda body: adapter.text("ok"))
    model = adapter.build(server)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ask(model).text, range(8)))
    assert answers == ["ok"] * 8
    assert server.connections == 8
    assert server.wait_closed(8)


@ADAPTERS
def test_an_http_client_factory_is_called_once_per_loop(adapter: Adapter, serve: Serve) -> None:
    made: list[Any] = []

    def factory() -> Any:
        made.append(httpx2.AsyncClient())
        return made[-1]

    server = serve(texts(adapter, "1", "2", "3"))
    model = adapter.build(server, http_client=factory)

    async def twice() -> None:
        await model.request(HELLO)
        await model.request(HELLO)

    with real_requests(True):
        asyncio.run(twice())
    ask(model)
    assert len(made) == 2
    assert all(client.is_closed for client in made)  # made by the adapter, so closed by it with their loop


@ADAPTERS
def test_a_client_factory_is_called_once_per_loop(adapter: Adapter, serve: Serve) -> None:
    made: list[Any] = []

    server = serve(texts(adapter, "1", "2"))

    def factory() -> Any:
        made.append(adapter.client(server))
        return made[-1]

    model = adapter.model_class(adapter.model, client=factory)
    assert [ask(model).text, ask(model).text] == ["1", "2"]
    assert len(made) == 2
    assert all(client.is_closed() for client in made)  # made for the adapter, so closed by it with their loop


@ADAPTERS
def test_a_ready_http_client_on_a_second_loop_says_what_to_pass_instead(adapter: Adapter, serve: Serve) -> None:
    server = serve(texts(adapter, "first"))
    http_client = httpx2.AsyncClient()
    model = adapter.build(server, http_client=http_client)
    assert ask_then_close(model, http_client.aclose) == "first"
    with pytest.raises(ModelError, match="pass http_client= a function") as raised:
        ask(model)
    message = str(raised.value)
    assert adapter.provider in message and adapter.model in message and "event loop" in message
    assert len(server.requests) == 1


@ADAPTERS
def test_a_client_with_its_own_http_client_on_a_second_loop_says_what_to_pass_instead(
    adapter: Adapter, serve: Serve
) -> None:
    server = serve(texts(adapter, "first"))
    client = adapter.client(server, http_client=httpx2.AsyncClient())
    model = adapter.model_class(adapter.model, client=client)
    assert ask_then_close(model, client.close) == "first"
    with pytest.raises(ModelError, match="pass client= a function") as raised:
        ask(model)
    assert adapter.provider in str(raised.value) and "event loop" in str(raised.value)
    assert len(server.requests) == 1


# --- errors -----------------------------------------------------------------------------------

ERRORS = [
    (Status(500, {"error": {"message": "overloaded", "type": "server_error"}}), ModelError, ("500", "overloaded")),
    # the SDKs let a JSONDecodeError through, a body the SDK did not check fails where it is read
    (Raw(b'{"id": "chatcmpl-1", "choices": [tru'), ModelError, ("unexpected JSONDecodeError",)),
    (Raw(b'{"choices": "none", "content": 7}'), ModelError, ("unexpected ", "object")),
    (Drop(), ConnectionError, ("Connection error", "Server disconnected")),
]


@ADAPTERS
@pytest.mark.parametrize(("reply", "error", "words"), ERRORS, ids=["http-500", "bad-json", "bad-shape", "dropped"])
def test_provider_failures_surface_as_model_or_connection_errors(
    adapter: Adapter, reply: Reply, error: type[Exception], words: tuple[str, ...], serve: Serve
) -> None:
    model = adapter.build(serve([reply]))
    with pytest.raises(Exception) as raised:
        ask(model)
    assert type(raised.value) is error, repr(raised.value)
    message = str(raised.value)
    assert message.startswith(f"{adapter.provider} {adapter.model}: ")
    assert all(word in message for word in words), message
    assert raised.value.__cause__ is not None  # the SDK's exception, for the traceback


class _BrokenTransport(httpx2.AsyncBaseTransport):
    async def handle_async_request(self, request: Any) -> Any:
        raise RuntimeError("the transport fell over")


@pytest.mark.parametrize(
    ("adapter", "error"),
    [(OPENAI, ModelError), (ANTHROPIC, ConnectionError)],  # the Anthropic SDK calls any failure to send one
    ids=["openai", "anthropic"],
)
def test_an_exception_in_the_transport_never_escapes_bare(
    adapter: Adapter, error: type[Exception], serve: Serve
) -> None:
    server = serve([])
    broken = adapter.build(server, http_client=lambda: httpx2.AsyncClient(transport=_BrokenTransport()))
    with pytest.raises(Exception) as raised:
        ask(broken)
    assert type(raised.value) is error
    message = str(raised.value)
    assert adapter.provider in message and adapter.model in message
    assert "RuntimeError" in message and "the transport fell over" in message


# --- through the runtime ----------------------------------------------------------------------


@ADAPTERS
def test_two_agent_runs_in_a_row_with_one_model(adapter: Adapter, sqlite_journal: Journal, serve: Serve) -> None:
    server = serve(adapter.tool_then_text("a is known"))
    helper = Agent("helper", "You help.", adapter.build(server), [lookup])
    with real_requests(True):
        first = Runtime(sqlite_journal).run_sync(helper, "what is a?")
        second = Runtime(sqlite_journal).run_sync(helper, "what is a, again?")
    assert [first.status, second.status] == ["completed", "completed"], (first.reason, second.reason)
    assert first.output == second.output == "a is known"
    assert len(server.requests) == 4
    assert server.connections == 2  # each run kept its one connection alive for both of its calls


def test_a_run_with_the_openai_adapter_is_recorded_like_any_other(journal: Journal, serve: Serve) -> None:
    replies: Script = [
        openai_tool_call("lookup", {"key": "a"}),
        openai_reply({"content": "a is known"}, prompt=300, completion=10),
    ]
    server = serve(replies)
    helper = Agent("helper", "You help.", OPENAI.build(server), [lookup])
    with real_requests(True):
        result = Runtime(journal).run_sync(helper, "what is a?")
    assert result.output == "a is known"
    calls = of_type(journal, result.stream_id, "ModelCalled")
    assert [c.data["input_tokens"] for c in calls] == [120, 300]
    assert calls[0].data["model"] == "gpt-4o-mini-2024-07-18"
    assert result.state.cost_usd == pytest.approx(sum(c.data["cost_usd"] for c in calls))
    assert server.requests[1]["messages"][-1]["content"] == '{"key":"a","value":"value of a"}'


def test_a_run_with_the_anthropic_adapter_is_recorded_like_any_other(journal: Journal, serve: Serve) -> None:
    server = serve([anthropic_tool_use("lookup", {"key": "a"}), ANTHROPIC.text("a is known")])
    helper = Agent("helper", "You help.", ANTHROPIC.build(server), [lookup])
    with real_requests(True):
        result = Runtime(journal).run_sync(helper, "what is a?")
    assert result.output == "a is known"
    assert result.state.tokens == 480


def test_a_provider_error_aborts_the_run_with_its_message(journal: Journal, serve: Serve) -> None:
    error = Status(400, {"error": {"message": "model not found", "type": "invalid_request_error"}})
    server = serve([error])
    model = OPENAI.build(server)
    with real_requests(True):
        result = Runtime(journal).run_sync(Agent("helper", "You help.", model, [lookup]), "hi")
    assert result.status == "aborted"
    assert result.reason is not None and "model not found" in result.reason


@ADAPTERS
def test_a_reply_that_does_not_parse_aborts_the_run_with_the_provider_and_model(
    adapter: Adapter, sqlite_journal: Journal, serve: Serve
) -> None:
    server = serve([Raw(b"not json")])
    model = adapter.build(server)
    with real_requests(True):
        result = Runtime(sqlite_journal).run_sync(Agent("helper", "You help.", model, [lookup]), "hi")
    assert result.status == "aborted"
    assert result.reason is not None and adapter.provider in result.reason and adapter.model in result.reason
