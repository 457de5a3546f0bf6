"""The Anthropic adapter: the Messages API with tool use, token usage and cost (extra `anthropic`).

Tool results of one turn go back as one user message of `tool_result` blocks, as the API
requires. Pass `http_client=` an AsyncClient of the httpx the SDK uses (or a ready `client`)
to route requests anywhere, e.g. a mock transport in tests.
"""

from __future__ import annotations

from typing import Any

try:
    import anthropic
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Anthropic adapter needs the `anthropic` extra: pip install 'agentjournal[anthropic]'"
    ) from exc


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

DEFAULT_MAX_TOKENS = 4096


class AnthropicModel(Model):
    def __init__(
        self,
        name: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
    ) -> None:
        self.name = name
        self.client = client or anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, http_client=http_client)
        self.max_tokens = max_tokens
        self.temperature = temperature

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
            reply = await self.client.messages.create(
                model=self.name,
                max_tokens=self.max_tokens,
                system=request.instructions,
                messages=_messages(request.messages),  # type: ignore[arg-type]
                **options,
            )
        except anthropic.APIConnectionError as exc:
            raise ConnectionError(f"Anthropic: {exc}") from exc
        except anthropic.APIError as exc:
            raise ModelError(f"Anthropic {self.name}: {exc}") from exc
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
