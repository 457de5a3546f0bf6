"""The OpenAI adapter: Chat Completions with tool calls, token usage and cost (extra `openai`).

Pass `http_client=` an AsyncClient of the httpx the SDK uses (or a ready `client`) to route
requests anywhere, e.g. a mock transport in tests. Connection failures surface as ConnectionError, which the
runtime retries with backoff; other API errors as ModelError.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import openai
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the OpenAI adapter needs the `openai` extra: pip install 'agentjournal[openai]'") from exc


from agentjournal.agents.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ToolCall,
    check_real_request,
)
from agentjournal.agents.models.prices import cost_usd


class OpenAIModel(Model):
    def __init__(
        self,
        name: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        self.name = name
        self.client = client or openai.AsyncOpenAI(api_key=api_key, base_url=base_url, http_client=http_client)
        self.max_tokens = max_tokens
        self.temperature = temperature

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
            completion = await self.client.chat.completions.create(
                model=self.name,
                messages=messages,  # type: ignore[arg-type]
                **options,
            )
        except openai.APIConnectionError as exc:
            raise ConnectionError(f"OpenAI: {exc}") from exc
        except openai.APIError as exc:
            raise ModelError(f"OpenAI {self.name}: {exc}") from exc
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
