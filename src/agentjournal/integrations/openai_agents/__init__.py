"""The OpenAI Agents SDK integration (extra `openai-agents`): SDK runs recorded as runs, under policy.

    from agentjournal.integrations.openai_agents import AgentsJournal

    journaled = AgentsJournal(journal, policy=policy)
    agents.add_trace_processor(journaled.processor)        # once per process
    result = await journaled.run(triage_agent, "I want a refund for ORD-5521", user_id="u-7")

- `AgentsJournal`: `run` (the SDK's `Runner.run`, recorded as one run), `resume` (after a human
  decided, in any process), `replay`;
- `JournalTracingProcessor`: the SDK's trace spans (handoffs, guardrails, models and tools that are
  not wrapped) as run events;
- `guard`: the policy in front of every function tool, through `needs_approval` and tool guardrails;
- `RecordingModel` / `RecordingModelProvider`: any SDK Model whose replies are recorded;
  `ReplayModel` and `replay`: a run answered from its recording.

docs/integrations/openai-agents.md says what is recorded, enforced and replayed.
"""

from typing import TYPE_CHECKING

try:
    import agents as _sdk  # noqa: F401  (the SDK's package is named `agents`)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the OpenAI Agents SDK integration needs the `openai-agents` extra: pip install 'agentjournal[openai-agents]'"
    ) from exc

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.integrations.openai_agents._common import ApprovalPending as ApprovalPending
    from agentjournal.integrations.openai_agents._common import RecordingFailed as RecordingFailed
    from agentjournal.integrations.openai_agents._common import RunMoved as RunMoved
    from agentjournal.integrations.openai_agents.models import NotReplayable as NotReplayable
    from agentjournal.integrations.openai_agents.models import RecordingModel as RecordingModel
    from agentjournal.integrations.openai_agents.models import RecordingModelProvider as RecordingModelProvider
    from agentjournal.integrations.openai_agents.models import ReplayModel as ReplayModel
    from agentjournal.integrations.openai_agents.processor import JournalTracingProcessor as JournalTracingProcessor
    from agentjournal.integrations.openai_agents.replaying import ReplayResult as ReplayResult
    from agentjournal.integrations.openai_agents.replaying import replay as replay
    from agentjournal.integrations.openai_agents.runner import STATE_SAVED as STATE_SAVED
    from agentjournal.integrations.openai_agents.runner import AgentsJournal as AgentsJournal
    from agentjournal.integrations.openai_agents.runner import state_stream as state_stream
    from agentjournal.integrations.openai_agents.tool_guard import guard as guard

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.integrations.openai_agents._common": ("ApprovalPending", "RecordingFailed", "RunMoved"),
        "agentjournal.integrations.openai_agents.tool_guard": ("guard",),
        "agentjournal.integrations.openai_agents.models": (
            "NotReplayable",
            "RecordingModel",
            "RecordingModelProvider",
            "ReplayModel",
        ),
        "agentjournal.integrations.openai_agents.processor": ("JournalTracingProcessor",),
        "agentjournal.integrations.openai_agents.replaying": ("ReplayResult", "replay"),
        "agentjournal.integrations.openai_agents.runner": ("STATE_SAVED", "AgentsJournal", "state_stream"),
    },
)
