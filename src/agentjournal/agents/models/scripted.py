"""ScriptedModel: a model that plays a script, so agents run offline and deterministically.

Public on purpose: users test their own agents the way this project tests its runtime.
The reply to a request is chosen by the conversation itself (the number of assistant
replies it already holds), not by a counter, so a run resumed in another process, or
replayed, gets the same reply at the same point.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Union

from agentjournal.agents.models.base import Model, ModelError, ModelRequest, ModelResponse, ToolCall
from agentjournal.agents.models.prices import Price

Reply = Union[str, ToolCall, "list[ToolCall]", ModelResponse, dict[str, Any]]
"""Text (a final answer), one or more tool calls, a full ModelResponse, or a dict:
{"text": ...}, {"tool": name, "arguments": {...}}, {"tool_calls": [...]} or {"json": {...}}."""

ScriptFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]


def call(tool: str, /, **arguments: Any) -> dict[str, Any]:
    """A scripted tool call: `call("lookup_order", order_id="ORD-5521")`."""
    return {"tool": tool, "arguments": arguments}


class ScriptedModel(Model):
    """Replies from a list (reply N answers the request holding N assistant replies) or a function.

    Token usage is estimated at four characters per token; cost follows `price` (free by default).
    """

    def __init__(
        self,
        script: Sequence[Reply] | ScriptFunction,
        *,
        name: str = "scripted",
        price: Price | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.name = name
        self.price = price
        self.latency_s = latency_s
        self._function: ScriptFunction | None = script if callable(script) else None
        self._script: list[Reply] = [] if callable(script) else list(script)
        self.requests: list[ModelRequest] = []
        """Every request this model answered, for assertions in tests."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        turn = sum(1 for message in request.messages if message.get("role") == "assistant")
        if self._function is not None:
            reply = self._function(request)
            if inspect.isawaitable(reply):
                reply = await reply
        elif turn < len(self._script):
            reply = self._script[turn]
        else:
            raise ModelError(
                f"ScriptedModel {self.name!r}: the script has {len(self._script)} replies, "
                f"but the conversation asks for reply {turn + 1}"
            )
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        response = _response(reply, turn)
        input_tokens = _tokens(request)
        output_tokens = max(1, len(json.dumps(response.to_dict())) // 4)
        cost = self.price.cost(input_tokens, output_tokens) if self.price else 0.0
        return ModelResponse(
            text=response.text,
            tool_calls=response.tool_calls,
            input_tokens=response.input_tokens or input_tokens,
            output_tokens=response.output_tokens or output_tokens,
            cost_usd=response.cost_usd or cost,
            model=self.name,
        )


def _response(reply: Reply, turn: int) -> ModelResponse:
    if isinstance(reply, ModelResponse):
        return reply
    if isinstance(reply, str):
        return ModelResponse(text=reply)
    if isinstance(reply, ToolCall):
        return ModelResponse(tool_calls=[reply])
    if isinstance(reply, list):
        return ModelResponse(tool_calls=[_tool_call(item, turn, index) for index, item in enumerate(reply)])
    if isinstance(reply, dict):
        if "json" in reply:
            return ModelResponse(text=json.dumps(reply["json"]))
        if "tool" in reply:
            return ModelResponse(tool_calls=[_tool_call(reply, turn, 0)])
        if "tool_calls" in reply:
            calls = [_tool_call(item, turn, index) for index, item in enumerate(reply["tool_calls"])]
            return ModelResponse(text=reply.get("text"), tool_calls=calls)
        if "text" in reply:
            return ModelResponse(text=str(reply["text"]))
    raise ModelError(f"ScriptedModel: reply {turn + 1} is not a text, a tool call or a ModelResponse: {reply!r}")


def _tool_call(item: Any, turn: int, index: int) -> ToolCall:
    if isinstance(item, ToolCall):
        return item
    if isinstance(item, dict) and isinstance(item.get("tool", item.get("name")), str):
        name = item.get("tool", item.get("name"))
        return ToolCall(
            str(item.get("id") or f"call_{turn + 1}_{index + 1}"), str(name), dict(item.get("arguments") or {})
        )
    raise ModelError(f"ScriptedModel: reply {turn + 1}, call {index + 1} is not a tool call: {item!r}")


def _tokens(request: ModelRequest) -> int:
    """About four characters a token; a tool call counts as 16 tokens."""
    chars = len(request.instructions)
    for message in request.messages:
        content = message.get("content")
        chars += (len(content) if isinstance(content, str) else 0) + 64 * len(message.get("tool_calls", ()))
    return max(1, chars // 4)
