"""Messaging: side effects and coordination between nodes. The lease registry lives here.

Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.messaging.leases import DEFAULT_TTL as DEFAULT_TTL
    from agentjournal.messaging.leases import Lease as Lease
    from agentjournal.messaging.leases import LeaseInfo as LeaseInfo
    from agentjournal.messaging.leases import LeaseLostError as LeaseLostError
    from agentjournal.messaging.leases import LeaseRegistry as LeaseRegistry
    from agentjournal.messaging.leases import default_node as default_node

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.messaging.leases": (
            "DEFAULT_TTL",
            "Lease",
            "LeaseInfo",
            "LeaseLostError",
            "LeaseRegistry",
            "default_node",
        ),
    },
)
