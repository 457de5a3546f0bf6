"""Helpers for the tests that need a server to be absent, or present and silent."""

from __future__ import annotations

import socket

from agentjournal.testing.databases import hung_port

__all__ = ["closed_port", "hung_port"]


def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
