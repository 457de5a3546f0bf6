"""Integrations: agents written with other code (your own loop, a framework) recorded as runs of the contract.

Names load on first use (PEP 562); a framework's adapter imports that framework only when used.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.integrations.clients import record_anthropic as record_anthropic
    from agentjournal.integrations.clients import record_openai as record_openai
    from agentjournal.integrations.recorder import RecordedRun as RecordedRun
    from agentjournal.integrations.recorder import RecorderError as RecorderError
    from agentjournal.integrations.recorder import RunRecorder as RunRecorder
    from agentjournal.integrations.recorder import ToolDecision as ToolDecision
    from agentjournal.integrations.recorder import current_run as current_run
    from agentjournal.integrations.replay import RecordedToolError as RecordedToolError
    from agentjournal.integrations.replay import Replay as Replay
    from agentjournal.integrations.tools import ApprovalRequired as ApprovalRequired
    from agentjournal.integrations.tools import InvalidToolArguments as InvalidToolArguments
    from agentjournal.integrations.tools import JournaledTool as JournaledTool
    from agentjournal.integrations.tools import ToolBlocked as ToolBlocked
    from agentjournal.integrations.tools import ToolDenied as ToolDenied
    from agentjournal.integrations.tools import journaled as journaled

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.integrations.recorder": (
            "RecordedRun",
            "RecorderError",
            "RunRecorder",
            "ToolDecision",
            "current_run",
        ),
        "agentjournal.integrations.clients": ("record_anthropic", "record_openai"),
        "agentjournal.integrations.replay": ("RecordedToolError", "Replay"),
        "agentjournal.integrations.tools": (
            "ApprovalRequired",
            "InvalidToolArguments",
            "JournaledTool",
            "ToolBlocked",
            "ToolDenied",
            "journaled",
        ),
    },
)
