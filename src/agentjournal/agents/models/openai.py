"""The OpenAI adapter: Chat Completions with tool calls, token usage and cost (extra `openai`).

An SDK client's connection pool belongs to one event loop, and every `Runtime.run_sync` starts a
new one, so the adapter keeps one client per loop (`PerLoop`): built from the settings given
here, or, for a ready `client=`, a copy of it with a connection pool of its own. What cannot be
rebuilt for another loop, a ready `http_client=` (an AsyncClient of the httpx the SDK uses) or a
`client=` holding one, serves the first loop it is used on; on any other the request fails with
a ModelError that says to pass a function returning a new one instead, which is called once per
loop. Clients the adapter made are closed when their loop ends; the ones passed in are yours.

Connection failures surface as ConnectionError, which the runtime retries with backoff; every
other failure, from the API or from inside the SDK, as a ModelError naming the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import openai
    from openai._base_client import AsyncHttpxClientWrapper  # the pool the SDK makes when given none
    from openai.types.chat import ChatCompletion
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the OpenAI adapter needs the `openai` extra: pip install 'agentjournal[openai]'") from exc


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

_SDK: SDK[openai.AsyncOpenAI] = SDK(
    "OpenAI", "OpenAIModel", openai.AsyncOpenAI, openai.DefaultAsyncHttpxClient, AsyncHttpxClientWrapper
)


class OpenAIModel(Model):
    """`client` and `http_client` take a ready object or a function that returns a new one.

    `api_key`, `base_url`, `timeout` (seconds) and `max_retries` build the SDK client (left out,
    the SDK's defaults hold); with `client=` they are not used.
    """

    def __init__(
        self,
        name: str,
        *,
        client: openai.AsyncOpenAI | Callable[[], openai.AsyncOpenAI] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_tokens: int | None = None,
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
        check_real_request("OpenAI")
        options: dict[str, Any] = {}
        if request.tools:
            options["tools"] = [
                {
                    "type": "function",
                    "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
                }
                for spec in request.tools
            ]
        if request.json_output:
            options["response_format"] = {"type": "json_object"}
        if self.max_tokens is not None:
            options["max_completion_tokens"] = self.max_tokens
        if self.temperature is not None:
            options["temperature"] = self.temperature
        messages = [{"role": "system", "content": request.instructions}, *map(_message, request.messages)]
        try:
            client = await self._clients.get()
            completion = await client.chat.completions.create(
                model=self.name,
                messages=messages,  # type: ignore[arg-type]
                **options,
            )
            return self._response(completion)
        except ModelError:
            raise
        except (openai.APIConnectionError, OSError) as exc:
            cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
            raise ConnectionError(f"OpenAI {self.name}: {exc}{cause}") from exc
        except openai.APIError as exc:
            raise ModelError(f"OpenAI {self.name}: {exc}") from exc
        except Exception as exc:
            raise ModelError(f"OpenAI {self.name}: unexpected {type(exc).__name__}: {exc}") from exc

    def _response(self, completion: ChatCompletion) -> ModelResponse:
        if not completion.choices:
            raise ModelError(f"OpenAI {self.name}: the reply has no choices")
        reply = completion.choices[0].message
        calls = []
        for tool_call in reply.tool_calls or []:
            function = getattr(tool_call, "function", None)
            if function is None:
                continue
            try:
                arguments = json.loads(function.arguments or "{}")
            except json.JSONDecodeError as exc:
                raise ModelError(
                    f"OpenAI {self.name}: the arguments of tool call {function.name} are not JSON: {exc}"
                ) from None
            calls.append(ToolCall(tool_call.id, function.name, arguments if isinstance(arguments, dict) else {}))
        usage = completion.usage
        input_tokens = usage.prompt_tokens if usage else 0
        output_tokens = usage.completion_tokens if usage else 0
        model = completion.model or self.name
        return ModelResponse(
            text=reply.content,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
            model=model,
        )


def _message(message: Message) -> dict[str, Any]:
    """A neutral message as Chat Completions expects it."""
    if message["role"] == "assistant":
        converted: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            converted["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
                for call in message["tool_calls"]
            ]
        return converted
    if message["role"] == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message["content"]}
    return {"role": message["role"], "content": message["content"]}
