"""Journal commands: migrate, streams, events, tail, verify, export, import."""

from __future__ import annotations

from agentjournal.cli.app import app  # noqa: F401
