"""Models: the small interface, the scripted test double, prices, and provider adapters.

The OpenAI and Anthropic adapters import their SDKs only when used
(`agentjournal.agents.models.openai`, `.anthropic`; extras `openai`, `anthropic`).
"""

from agentjournal.agents.models.base import (
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    RealModelRequestBlocked,
    ToolCall,
    ToolSpec,
    real_requests,
    real_requests_allowed,
    set_real_requests_allowed,
)
from agentjournal.agents.models.prices import PRICES, Price, cost_usd
from agentjournal.agents.models.scripted import ScriptedModel, call

__all__ = [
    "PRICES",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "Price",
    "RealModelRequestBlocked",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "call",
    "cost_usd",
    "real_requests",
    "real_requests_allowed",
    "set_real_requests_allowed",
]
