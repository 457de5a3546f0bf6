"""The Anthropic adapter: the Messages API with tool use, token usage and cost (extra `anthropic`).

Tool results of one turn go back as one user message of `tool_result` blocks, as the API
requires. Clients are kept as in the OpenAI adapter: one per event loop (`PerLoop`), built from
the settings given here or copied from a ready `client=` with a connection pool of its own; a
ready `http_client=` (an AsyncClient of the httpx the SDK uses), or a `client=` holding one,
serves only the first loop it is used on, and a function returning a new one serves them all.
Connection failures surface as ConnectionError (the runtime retries them), the rest as ModelError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import anthropic
    from anthropic._base_client import AsyncHttpxClientWrapper  # the pool the SDK makes when given none
    from anthropic.types import Message as AnthropicMessage
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Anthropic adapter needs the `anthropic` extra: pip install 'agentjournal[anthropic]'"
    ) from exc


from agentjournal.agents.models.base import (
    SDK,
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ToolCall,
    check_real_request,
    sdk_clients,
)
from agentjournal.agents.models.prices import cost_usd

DEFAULT_MAX_TOKENS = 4096
_SDK: SDK[anthropic.AsyncAnthropic] = SDK(
    "Anthropic", "AnthropicModel", anthropic.AsyncAnthropic, anthropic.DefaultAsyncHttpxClient, AsyncHttpxClientWrapper
)


class AnthropicModel(Model):
    """`client` and `http_client` take a ready object or a function that returns a new one.

    `api_key`, `base_url`, `timeout` (seconds) and `max_retries` build the SDK client (left out,
    the SDK's defaults hold); with `client=` they are not used.
    """

    def __init__(
        self,
        name: str,
        *,
        client: anthropic.AsyncAnthropic | Callable[[], anthropic.AsyncAnthropic] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
    ) -> None:
        self.name = name
        self.max_tokens = max_tokens
        self.temperature = temperature
        settings: dict[str, Any] = {"api_key": api_key, "base_url": base_url}
        if timeout is not None:
            settings["timeout"] = timeout
        if max_retries is not None:
            settings["max_retries"] = max_retries
        self._clients = sdk_clients(_SDK, name, client=client, http_client=http_client, settings=settings)

    async def request(self, request: ModelRequest) -> ModelResponse:
        check_real_request("Anthropic")
        options: dict[str, Any] = {}
        if request.tools:
            options["tools"] = [
                {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}
                for spec in request.tools
            ]
        if self.temperature is not None:
            options["temperature"] = self.temperature
        try:
            client = await self._clients.get()
            reply = await client.messages.create(
                model=self.name,
                max_tokens=self.max_tokens,
                system=request.instructions,
                messages=_messages(request.messages),  # type: ignore[arg-type]
                **options,
            )
            return self._response(reply)
        except ModelError:
            raise
        except (anthropic.APIConnectionError, OSError) as exc:
            cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
            raise ConnectionError(f"Anthropic {self.name}: {exc}{cause}") from exc
        except anthropic.APIError as exc:
            raise ModelError(f"Anthropic {self.name}: {exc}") from exc
        except Exception as exc:
            raise ModelError(f"Anthropic {self.name}: unexpected {type(exc).__name__}: {exc}") from exc

    def _response(self, reply: AnthropicMessage) -> ModelResponse:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in reply.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else {}
                calls.append(ToolCall(block.id, block.name, dict(arguments)))
        input_tokens, output_tokens = reply.usage.input_tokens, reply.usage.output_tokens
        model = reply.model or self.name
        return ModelResponse(
            text="".join(texts) or None,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
            model=model,
        )


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Messages API turns: tool results merged into the following user turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "assistant":
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            for call in message.get("tool_calls") or []:
                blocks.append({"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["arguments"]})
            turns.append({"role": "assistant", "content": blocks})
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": message["content"]}
        elif role == "user":
            block = {"type": "text", "text": message["content"]}
        else:
            raise ModelError(f"Anthropic: cannot send a message with role {role!r}")
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"].append(block)
        else:
            turns.append({"role": "user", "content": [block]})
    return turns
