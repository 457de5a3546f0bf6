"""The OpenAI and Anthropic adapters, with the real SDK clients over a mock HTTP transport.

The transport answers like the provider's API (the JSON shapes of Chat Completions and the
Messages API), so the SDKs' own request building and response parsing run, with no network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentjournal.agents import Agent, ModelRequest, Runtime
from agentjournal.agents.models import RealModelRequestBlocked, ToolSpec, real_requests
from agentjournal.journal import Journal

from ._run_helpers import lookup, of_type

pytest.importorskip("openai")
pytest.importorskip("anthropic")

from agentjournal.agents.models.anthropic import AnthropicModel
from agentjournal.agents.models.openai import OpenAIModel

try:  # the SDKs bring their own httpx (httpx2 in recent releases)
    import httpx2 as sdk_httpx  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import httpx as sdk_httpx

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Provider:
    """A mock transport that records each request body and answers from a list of replies."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = replies
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []

    def handle(self, request: Any) -> Any:
        self.paths.append(request.url.path)
        self.requests.append(json.loads(request.content))
        return sdk_httpx.Response(200, json=self.replies[len(self.requests) - 1])

    def client(self) -> Any:
        return sdk_httpx.AsyncClient(transport=sdk_httpx.MockTransport(self.handle))


def openai_reply(message: dict[str, Any], prompt: int = 120, completion: int = 30) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def anthropic_reply(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 200, "output_tokens": 40},
    }


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


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


def test_openai_request_shape_tool_calls_usage_and_cost() -> None:
    provider = Provider(
        [
            openai_reply(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"key": "b"}'},
                        }
                    ],
                }
            )
        ]
    )
    model = OpenAIModel("gpt-4o-mini", api_key="test-key", http_client=provider.client())
    with real_requests(True):
        response = asyncio.run(model.request(REQUEST))
    sent = provider.requests[0]
    assert provider.paths == ["/v1/chat/completions"]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "You help."}
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"key": "a"}'}
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": '{"value":1}'}
    assert sent["tools"][0]["function"]["name"] == "lookup"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_9", "lookup", {"key": "b"})]
    assert (response.input_tokens, response.output_tokens) == (120, 30)
    assert response.cost_usd == pytest.approx((120 * 0.15 + 30 * 0.60) / 1_000_000)
    assert response.model == "gpt-4o-mini-2024-07-18"


def test_anthropic_request_shape_tool_use_usage_and_cost() -> None:
    provider = Provider(
        [anthropic_reply([{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"key": "c"}}], "tool_use")]
    )
    model = AnthropicModel("claude-haiku-4-5", api_key="test-key", http_client=provider.client())
    with real_requests(True):
        response = asyncio.run(model.request(REQUEST))
    sent = provider.requests[0]
    assert provider.paths == ["/v1/messages"]
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


def test_a_run_with_the_openai_adapter_is_recorded_like_any_other(journal: Journal) -> None:
    provider = Provider(
        [
            openai_reply(
                {
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"key":"a"}'}}
                    ],
                }
            ),
            openai_reply({"content": "a is known"}, prompt=300, completion=10),
        ]
    )
    helper = Agent(
        "helper", "You help.", OpenAIModel("gpt-4o-mini", api_key="k", http_client=provider.client()), [lookup]
    )
    with real_requests(True):
        result = Runtime(journal).run_sync(helper, "what is a?")
    assert result.output == "a is known"
    calls = of_type(journal, result.stream_id, "ModelCalled")
    assert [c.data["input_tokens"] for c in calls] == [120, 300]
    assert calls[0].data["model"] == "gpt-4o-mini-2024-07-18"
    assert result.state.cost_usd == pytest.approx(sum(c.data["cost_usd"] for c in calls))
    assert provider.requests[1]["messages"][-1]["content"] == '{"key":"a","value":"value of a"}'


def test_a_run_with_the_anthropic_adapter_is_recorded_like_any_other(journal: Journal) -> None:
    provider = Provider(
        [
            anthropic_reply(
                [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"key": "a"}}], "tool_use"
            ),
            anthropic_reply([{"type": "text", "text": "a is known"}]),
        ]
    )
    model = AnthropicModel("claude-haiku-4-5", api_key="k", http_client=provider.client())
    with real_requests(True):
        result = Runtime(journal).run_sync(Agent("helper", "You help.", model, [lookup]), "what is a?")
    assert result.output == "a is known"
    assert result.state.tokens == 480


def test_adapters_refuse_real_requests_inside_the_test_suite() -> None:
    provider = Provider([])
    for model in (
        OpenAIModel("gpt-4o-mini", api_key="k", http_client=provider.client()),
        AnthropicModel("claude-haiku-4-5", api_key="k", http_client=provider.client()),
    ):
        with pytest.raises(RealModelRequestBlocked):
            asyncio.run(model.request(REQUEST))
    assert provider.requests == []


def test_a_provider_error_aborts_the_run_with_its_message(journal: Journal) -> None:
    def fail(request: Any) -> Any:
        return sdk_httpx.Response(400, json={"error": {"message": "model not found", "type": "invalid_request_error"}})

    client = sdk_httpx.AsyncClient(transport=sdk_httpx.MockTransport(fail))
    model = OpenAIModel("gpt-nope", api_key="k", http_client=client)
    with real_requests(True):
        result = Runtime(journal).run_sync(Agent("helper", "You help.", model, [lookup]), "hi")
    assert result.status == "aborted"
    assert result.reason is not None and "model not found" in result.reason
