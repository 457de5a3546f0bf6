"""Messaging: side effects and coordination between nodes. The lease registry lives here."""

from agentjournal.messaging.leases import DEFAULT_TTL, Lease, LeaseInfo, LeaseLostError, LeaseRegistry, default_node

__all__ = ["DEFAULT_TTL", "Lease", "LeaseInfo", "LeaseLostError", "LeaseRegistry", "default_node"]
