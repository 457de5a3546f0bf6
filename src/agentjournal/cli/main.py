"""Entry point: import every command module so it registers on the app, then run it."""

from __future__ import annotations

from agentjournal.cli import (
    agent_commands,  # noqa: F401  (registers commands)
    eval_commands,  # noqa: F401  (registers commands)
    forensics_commands,  # noqa: F401  (registers commands)
    journal_commands,  # noqa: F401  (registers commands)
    key_commands,  # noqa: F401  (registers commands)
    messaging_commands,  # noqa: F401  (registers commands)
    policy_commands,  # noqa: F401  (registers commands)
    projection_commands,  # noqa: F401  (registers commands)
    saga_commands,  # noqa: F401  (registers commands)
)
from agentjournal.cli.app import app, close_journal


def main() -> None:
    try:
        app()
    finally:
        close_journal()
