"""Models: the small interface, the scripted test double, prices, and provider adapters.

The OpenAI and Anthropic adapters import their SDKs only when used
(`agentjournal.agents.models.openai`, `.anthropic`; extras `openai`, `anthropic`).

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.agents.models.base import Model as Model
    from agentjournal.agents.models.base import ModelError as ModelError
    from agentjournal.agents.models.base import ModelRequest as ModelRequest
    from agentjournal.agents.models.base import ModelResponse as ModelResponse
    from agentjournal.agents.models.base import RealModelRequestBlocked as RealModelRequestBlocked
    from agentjournal.agents.models.base import ToolCall as ToolCall
    from agentjournal.agents.models.base import ToolSpec as ToolSpec
    from agentjournal.agents.models.base import real_requests as real_requests
    from agentjournal.agents.models.base import real_requests_allowed as real_requests_allowed
    from agentjournal.agents.models.base import set_real_requests_allowed as set_real_requests_allowed
    from agentjournal.agents.models.prices import PRICES as PRICES
    from agentjournal.agents.models.prices import Price as Price
    from agentjournal.agents.models.prices import cost_usd as cost_usd
    from agentjournal.agents.models.scripted import ScriptedModel as ScriptedModel
    from agentjournal.agents.models.scripted import call as call

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.agents.models.base": (
            "Model",
            "ModelError",
            "ModelRequest",
            "ModelResponse",
            "RealModelRequestBlocked",
            "ToolCall",
            "ToolSpec",
            "real_requests",
            "real_requests_allowed",
            "set_real_requests_allowed",
        ),
        "agentjournal.agents.models.prices": (
            "PRICES",
            "Price",
            "cost_usd",
        ),
        "agentjournal.agents.models.scripted": (
            "ScriptedModel",
            "call",
        ),
    },
)
