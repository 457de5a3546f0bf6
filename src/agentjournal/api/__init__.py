"""The gateway's foundation: API keys per tenant, with roles (the HTTP gateway itself is still to come).

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.api.keys import API_KEY_CREATED as API_KEY_CREATED
    from agentjournal.api.keys import API_KEY_REVOKED as API_KEY_REVOKED
    from agentjournal.api.keys import KEYS_STREAM as KEYS_STREAM
    from agentjournal.api.keys import ROLES as ROLES
    from agentjournal.api.keys import ApiKeyError as ApiKeyError
    from agentjournal.api.keys import ApiKeys as ApiKeys
    from agentjournal.api.keys import AuthError as AuthError
    from agentjournal.api.keys import CreatedKey as CreatedKey
    from agentjournal.api.keys import KeyInfo as KeyInfo
    from agentjournal.api.keys import Principal as Principal
    from agentjournal.api.keys import Role as Role

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.api.keys": (
            "API_KEY_CREATED",
            "API_KEY_REVOKED",
            "KEYS_STREAM",
            "ROLES",
            "ApiKeyError",
            "ApiKeys",
            "AuthError",
            "CreatedKey",
            "KeyInfo",
            "Principal",
            "Role",
        ),
    },
)
