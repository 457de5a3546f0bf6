"""Candidate models for the example: offline, scripted, each one change a reviewer could ship by mistake.

They answer the demo's two conversations (the refund of seed 002, the ops incident of seed 001)
by the conversation's first user message, so one model serves every agent, as `model:` in
candidates.yaml asks. Replace them with your own (`openai:gpt-4.1-mini`, `anthropic:<model>`)
when the evaluation may call a provider.
"""

from __future__ import annotations

from agentjournal.agents.demo import OPS_REQUEST, OPS_SCRIPT, REFUND_REQUEST, REFUND_SCRIPT
from agentjournal.agents.models.base import ModelRequest
from agentjournal.agents.models.prices import Price
from agentjournal.agents.models.scripted import Reply, ScriptedModel, call

CARELESS_REFUND: list[Reply] = [
    call("lookup_order", order_id="ORD-5521"),
    call("transfer_to_refund-agent", reason="User requesting refund on delivered order"),
    call("issue_refund", order_id="ORD-5521", amount=89.99),
    "Done: I refunded the full $89.99 for order ORD-5521.",
]
"""Skips the refund policy and refunds the whole price: the regression the gate must stop."""


def _playing(scripts: dict[str, list[Reply]], name: str, price: Price) -> ScriptedModel:
    def reply(request: ModelRequest) -> Reply:
        said = next(m["content"] for m in request.messages if m["role"] == "user")
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return scripts[said][turn]

    return ScriptedModel(reply, name=name, price=price)


def careless() -> ScriptedModel:
    return _playing({REFUND_REQUEST: CARELESS_REFUND, OPS_REQUEST: OPS_SCRIPT}, "careless-mini", Price(0.15, 0.60))


def pricier() -> ScriptedModel:
    """The same answers at four times the demo model's price."""
    return _playing({REFUND_REQUEST: REFUND_SCRIPT, OPS_REQUEST: OPS_SCRIPT}, "scripted-large", Price(0.60, 2.40))
