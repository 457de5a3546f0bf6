"""Runs written by the real runtime, stored as history, and catch-up for the read-side tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agentjournal.agents import Agent, RunOptions, Runtime, ScriptedModel
from agentjournal.agents.approvals import record_decision
from agentjournal.agents.models import ModelResponse, ToolCall
from agentjournal.journal import Journal
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.testing.synthetic import SYNTHETIC_POLICY, TOOLS, SyntheticRun, import_runs

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
Decision = Literal["approve", "reject"] | None


def catch_up_all(journal: Journal, batch_size: int = 1000) -> None:
    for projection in builtin_projections():
        ProjectionRunner(journal, projection, batch_size=batch_size).catch_up()


def reply(
    *calls: tuple[str, dict[str, Any]],
    text: str | None = None,
    tokens: tuple[int, int] = (1000, 200),
    cost: float = 0.0,
) -> ModelResponse:
    """One scripted model reply: tool calls (name, arguments) or a text, with its usage."""
    tool_calls = [ToolCall(f"c{index}-{name}", name, arguments) for index, (name, arguments) in enumerate(calls)]
    return ModelResponse(
        text=text, tool_calls=tool_calls, input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=cost
    )


def record(
    run_id: str,
    script: Sequence[Any],
    *,
    model: str = "gpt-4.1-mini",
    agent: str = "refund-agent",
    tenant: str = "acme",
    user: str | None = "user-1",
    decide: Decision = "approve",
    handoffs: Sequence[str] = (),
    options: RunOptions | None = None,
    seconds: float = 1.0,
    input: str = "I want a refund for ORD-5521",
) -> SyntheticRun:
    """Run `script` through the runtime (synthetic tools, synthetic policy) on a throwaway journal.

    Humans decide every approval as `decide` says (None: the run is left waiting). Event i of the
    run is given the time i * `seconds` after its start, for `store`.
    """
    model_ = ScriptedModel(list(script), name=model)
    crew = [
        Agent(agent, "You resolve refunds within policy.", model_, TOOLS, policy=SYNTHETIC_POLICY, handoffs=handoffs)
    ]
    crew += [Agent(name, "You take over.", model_, TOOLS, policy=SYNTHETIC_POLICY) for name in handoffs]

    async def run(journal: Journal) -> str:
        runtime = Runtime(journal, agents=crew, options=options or RunOptions(backoff_s=0.0))
        result = await runtime.run(
            crew[0], input, run_id=run_id, user_id=user, tenant_id=tenant, route="support/refund"
        )
        while result.status == "waiting_approval" and decide is not None:
            for approval in result.pending_approvals:
                record_decision(
                    journal,
                    run_id,
                    approval.approval_id,
                    by="ops@example.com",
                    reason="checked",
                    approved=decide == "approve",
                )
            result = await runtime.resume(run_id)
        return result.stream_id

    with Journal.open("memory://") as journal:
        stream = asyncio.run(run(journal))
        events = journal.read_stream(stream)
    return SyntheticRun(stream, tenant, events, [index * seconds for index in range(len(events))])


def store(journal: Journal, run: SyntheticRun, *, at: datetime) -> SyntheticRun:
    """Store a recorded run as history starting at `at`."""
    import_runs(journal, [run], start=at, spacing=timedelta(0))
    return run


def refund_script(*, order: str = "ORD-5521", cost: float = 0.01) -> list[ModelResponse]:
    """A refund: a lookup the policy allows, a refund over the limit a human must approve, the answer."""
    return [
        reply(("lookup_order", {"order_id": order}), cost=cost),
        reply(("issue_refund", {"order_id": order, "amount": 44.99})),
        reply(text=f"Refunded {order}"),
    ]


def types(run: SyntheticRun) -> list[str]:
    return [event.type for event in run.events]


def offset_of(run: SyntheticRun, kind: str, nth: int = 0) -> float:
    """Seconds from the run's start to its `nth` event of type `kind`."""
    return [offset for event, offset in zip(run.events, run.offsets, strict=True) if event.type == kind][nth]
