"""MCP (extra `mcp`): tool calls to and from Model Context Protocol servers, recorded as runs under policy.

- client side, `JournaledSession(session)`: every `call_tool` of a `ClientSession` or `mcp.Client`, to
  any MCP server, is proposed in the current run, decided by its policy, sent, and its result recorded;
- server side, `journal_server(server, recorder)` (a `JournalMiddleware` in the SDK's middleware chain):
  every tool call an MCP server written with the SDK receives, from any client, is a run of its own,
  policy-gated before the tool function runs.

See docs/integrations/mcp.md.
"""

try:
    import mcp as _mcp  # noqa: F401 (the guard: the SDK is an optional extra)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the MCP integration needs the `mcp` extra: pip install 'agentjournal[mcp]'") from exc

from agentjournal.integrations.mcp._calls import (
    APPROVAL_META_KEY,
    DECISION_META_KEY,
    RUN_META_KEY,
    ResultNotRecorded,
    Withheld,
    withheld,
)
from agentjournal.integrations.mcp.client import JournaledSession
from agentjournal.integrations.mcp.server import JournalMiddleware, journal_server

__all__ = [
    "APPROVAL_META_KEY",
    "DECISION_META_KEY",
    "RUN_META_KEY",
    "JournalMiddleware",
    "JournaledSession",
    "ResultNotRecorded",
    "Withheld",
    "journal_server",
    "withheld",
]
