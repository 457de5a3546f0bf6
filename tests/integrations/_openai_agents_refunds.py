"""Seed 002's refund conversation for the OpenAI Agents SDK tests: agents, tools, a policy and a fake model.

Not collected (no test_ prefix). `RefundModel` implements the SDK's own `Model` interface and plays
the conversation offline the way a model would: it reads the request (its instructions say which
agent asks, the tool outputs in the input say what is known) and answers the next step, with
token usage and a generation span carrying the data, as OpenAI's Chat Completions model does.
The tools write what they did to a ledger file, so a test (or another process) can count effects.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.testing import assistant_message, function_call
from agents.tracing import generation_span

from agentjournal.agents import Policy
from agents import (
    Agent,
    GuardrailFunctionOutput,
    Model,
    ModelResponse,
    Usage,
    function_tool,
    output_guardrail,
)

POLICY_YAML = """
version: 1
rules:
  - name: refunds_over_40_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
    reason: refunds above $40 need a person
  - name: orders_are_never_deleted
    when: {tool: delete_order}
    action: deny
    reason: deleting an order destroys the customer's history
"""
ASK = "I want a refund for order ORD-5521"
TRIAGE_INSTRUCTIONS = "You are the triage agent. Look the order up, then hand refunds to the refund agent."
REFUND_INSTRUCTIONS = "You are the refund agent. Check the refund policy, then issue the refund it allows."


def policy() -> Policy:
    return Policy.from_yaml(POLICY_YAML, source="seed-002-refunds")


@dataclass
class RefundModel(Model):
    """Plays seed 002: triage looks the order up and hands off; refund checks the policy and refunds."""

    name: str = "gpt-4o-mini"
    try_delete: bool = False
    """Triage first tries to delete the order (the policy denies it)."""
    requests: list[list[Any]] = field(default_factory=list)
    """The input of every request, as the SDK sent it."""

    @property
    def model(self) -> str:
        return self.name

    async def get_response(  # noqa: PLR0917 (the SDK's Model interface)
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.requests.append(items)
        with generation_span(model=self.name, disabled=tracing.is_disabled()) as span:
            output = self._next(system_instructions or "", items, [h.tool_name for h in handoffs])
            usage = Usage(
                requests=1,
                input_tokens=40 + 10 * len(items),
                output_tokens=12,
                total_tokens=52 + 10 * len(items),
            )
            span.span_data.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            if tracing.include_data():
                span.span_data.input = items
                span.span_data.output = [_chat_message(output)]
            return ModelResponse(output=output, usage=usage, response_id=f"resp-{len(self.requests)}")

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the refund conversation is not streamed")

    def _next(self, instructions: str, items: list[Any], handoffs: list[str]) -> list[Any]:
        seen = _outputs(items)
        turn = sum(1 for item in items if isinstance(item, dict) and item.get("type") == "function_call") + 1
        if instructions.startswith("You are the triage agent"):
            if self.try_delete and "delete_order" not in seen:
                return [function_call("delete_order", {"order_id": "ORD-5521"}, call_id=f"call_{turn}_delete")]
            if "lookup_order" not in seen:
                return [function_call("lookup_order", {"order_id": "ORD-5521"}, call_id=f"call_{turn}_lookup")]
            return [function_call(handoffs[0], {}, call_id=f"call_{turn}_handoff")]
        if "check_refund_policy" not in seen:
            arguments = {"order_id": "ORD-5521", "reason": "customer_request"}
            return [function_call("check_refund_policy", arguments, call_id=f"call_{turn}_policy")]
        if "issue_refund" not in seen:
            amount = _parse(seen["check_refund_policy"])["max_refund"]
            arguments = {"order_id": "ORD-5521", "amount": amount}
            return [function_call("issue_refund", arguments, call_id=f"call_{turn}_refund")]
        refund = _parse(seen["issue_refund"])
        if isinstance(refund, dict) and refund.get("refund_id"):
            amount = refund["amount"]
            text = f"I have issued a partial refund of ${amount:.2f} ({refund['refund_id']}) for ORD-5521."
        else:
            text = f"I could not issue the refund for ORD-5521: {refund}"
        return [assistant_message(text, item_id=f"msg_{turn}")]


def _outputs(items: list[Any]) -> dict[str, Any]:
    """Tool name -> the output the model was given for it, from the conversation."""
    names = {
        item["call_id"]: item["name"]
        for item in items
        if isinstance(item, dict) and item.get("type") == "function_call"
    }
    return {
        names[item["call_id"]]: item.get("output")
        for item in items
        if isinstance(item, dict) and item.get("type") == "function_call_output" and item["call_id"] in names
    }


def _parse(output: Any) -> Any:
    if not isinstance(output, str):
        return output
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(output)
        except (ValueError, SyntaxError):
            continue
    return output


def _chat_message(output: list[Any]) -> dict[str, Any]:
    """The reply as a Chat Completions message (what OpenAI's model puts in its generation span)."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    for item in output:
        if item.type == "message":
            message["content"] = item.content[0].text
        else:
            message.setdefault("tool_calls", []).append(
                {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            )
    return message


class Ledger:
    """What the tools did, one JSON line each, in a file any process can read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **entry: Any) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(entry) + "\n")

    def entries(self, action: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = [json.loads(line) for line in self.path.read_text().splitlines()]
        return [entry for entry in found if action is None or entry["action"] == action]


def refund_agents(
    ledger: Ledger,
    *,
    model: Model | str | None = None,
    max_refund: float = 44.99,
    output_check: bool | None = None,
) -> Agent[Any]:
    """Seed 002's triage agent, which hands refunds to the refund agent (fresh agents and tools each call).

    `output_check`: None, or whether the refund agent's output guardrail lets the answer through."""
    model = model or RefundModel()

    @function_tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look an order up."""
        ledger.write(action="lookup", order_id=order_id)
        return {"order_id": order_id, "status": "delivered", "amount": 89.99}

    @function_tool
    def delete_order(order_id: str) -> str:
        """Delete an order."""
        ledger.write(action="delete", order_id=order_id)
        return "deleted"

    @function_tool
    def check_refund_policy(order_id: str, reason: str) -> dict[str, Any]:
        """What refund the policy allows for an order."""
        ledger.write(action="check", order_id=order_id)
        return {"eligible": True, "max_refund": max_refund, "type": "partial"}

    @function_tool
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund an order (a side effect: money leaves)."""
        ledger.write(action="refund", order_id=order_id, amount=amount)
        return {"refund_id": "REF-3301", "status": "processed", "amount": amount}

    guardrails = []
    if output_check is not None:

        @output_guardrail
        def no_promises(context: Any, agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
            return GuardrailFunctionOutput(output_info={"checked": True}, tripwire_triggered=not output_check)

        guardrails.append(no_promises)

    refund = Agent(
        name="refund_agent",
        instructions=REFUND_INSTRUCTIONS,
        tools=[check_refund_policy, issue_refund],
        model=model,
        output_guardrails=guardrails,
    )
    return Agent(
        name="triage_agent",
        instructions=TRIAGE_INSTRUCTIONS,
        tools=[lookup_order, delete_order],
        handoffs=[refund],
        model=model,
    )
