"""Realistic synthetic agent runs, for the read-model tests, the benchmarks and demos, written by the real runtime.

Each run is seed 001/002's support agent, driven by the agents runtime with a scripted model on
an in-memory journal: it starts, calls the model, proposes tools that the policy allows, denies or
sends to a human (who approves or rejects), executes them or fails, maybe hands off, and answers
or aborts (a budget overrun). A seeded random source picks each run's shape, so the same seed
gives runs of the same shapes (event ids and times are new each time). Every event is the run
contract's, exactly as the runtime writes it.

`append_runs` appends them now (recorded_at is the wall clock); `import_runs` stores them as
history with chosen times through the journal's import, hashes and all, which is how tests and
demos get runs spread over several days.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.approvals import record_decision
from agentjournal.agents.models.base import ModelRequest, ModelResponse, ToolCall
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.agents.policy import Policy
from agentjournal.agents.runtime import Runtime
from agentjournal.agents.tools import Tool, tool
from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.journal.envelope import GENESIS_HASH

AGENTS = ("triage-agent", "refund-agent", "billing-agent")
MODELS = ("gpt-4.1-mini", "claude-sonnet-4", "llama-3.1-70b")
ROUTES = ("support/refund", "support/billing", "support/shipping")
TENANTS = ("acme", "globex", "initech")
HUMAN = "human"
"""The agent a run hands off to when a person takes over."""
POLICY = """
version: 1
rules:
  - name: rate-limit
    when: {input: {order_id_matches_regex: "-X$"}}
    action: deny
    reason: the order service is rate-limiting this account
  - name: read-only-tools
    when: {tool: [lookup_order, check_refund_policy]}
    action: allow
  - name: refunds-over-limit
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
  - name: refunds-under-limit
    when: {tool: issue_refund, input: {amount_lte: 40}}
    action: allow
  - name: external-email
    when: {tool: send_email, input: {to_domain_not_in: [example.com]}}
    action: deny
"""


@dataclass
class SyntheticRun:
    stream_id: str
    tenant_id: str
    events: list[RecordedEvent] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    """Seconds after the run started, per event (for `import_runs`)."""


@dataclass(frozen=True)
class RunMix:
    """Knobs of the generator: how often runs deny, fail or abort, and how costly they are."""

    deny_rate: float = 0.05
    escalation_rate: float = 0.3
    failure_rate: float = 0.05
    abort_rate: float = 0.05
    handoff_rate: float = 0.3
    cost_scale: float = 1.0


@dataclass(frozen=True)
class _Shape:
    """What one run will do, drawn before it runs."""

    run_id: str
    tenant: str
    agent: str
    model: str
    route: str
    order: str
    tools: tuple[tuple[str, dict[str, Any]], ...]
    handoff: str | None
    approve: bool
    aborts: bool
    usage: tuple[tuple[int, int], ...]
    cost_scale: float


def synthetic_runs(count: int, *, seed: int = 7, mix: RunMix | None = None, first: int = 0) -> Iterator[SyntheticRun]:
    """`count` runs named run-syn-<seed>-<n>, each driven by the runtime; about 14 events each."""
    rng = random.Random(seed * 1_000_003 + first)
    mix = mix or RunMix()
    shapes = [_shape(rng, mix, f"syn-{seed}-{n:07d}", n) for n in range(first, first + count)]
    yield from asyncio.run(_drive(shapes, rng))


def _shape(rng: random.Random, mix: RunMix, run_id: str, n: int) -> _Shape:
    order = f"ORD-{1000 + n % 9000}"
    tools: list[tuple[str, dict[str, Any]]] = []
    for name in rng.sample(("lookup_order", "check_refund_policy", "issue_refund", "send_email"), rng.randint(2, 4)):
        key = f"{order}-X" if rng.random() < mix.deny_rate else order
        if rng.random() < mix.failure_rate and name in ("lookup_order", "check_refund_policy"):
            key = f"{order}-DOWN"
        if name == "lookup_order":
            tools.append((name, {"order_id": key}))
        elif name == "check_refund_policy":
            tools.append((name, {"order_id": key, "reason": "customer_request"}))
        elif name == "issue_refund":
            amount = 44.99 if rng.random() < mix.escalation_rate else 24.99
            tools.append((name, {"order_id": key, "amount": amount}))
        else:
            domain = "partner.io" if rng.random() < mix.deny_rate else "example.com"
            tools.append((name, {"to": f"customer-{n}@{domain}", "template": "refund_confirmation"}))
    agent = rng.choice(AGENTS)
    handoff = None
    if rng.random() < mix.handoff_rate:
        handoff = HUMAN if rng.random() < 0.1 else rng.choice([a for a in AGENTS if a != agent])
    usage = tuple((rng.randint(400, 3000), rng.randint(50, 600)) for _ in range(len(tools) + 2))
    return _Shape(
        run_id=run_id,
        tenant=rng.choice(TENANTS),
        agent=agent,
        model=rng.choice(MODELS),
        route=rng.choice(ROUTES),
        order=order,
        tools=tuple(tools),
        handoff=handoff,
        approve=rng.random() >= 0.2,
        aborts=rng.random() < mix.abort_rate,
        usage=usage,
        cost_scale=mix.cost_scale,
    )


async def _drive(shapes: list[_Shape], rng: random.Random) -> list[SyntheticRun]:
    by_input = {_input(shape): shape for shape in shapes}
    runs = []
    with Journal.open("memory://") as journal:
        runtimes = {model: Runtime(journal, agents=_agents(by_input, model)) for model in MODELS}
        for shape in shapes:
            runtime = runtimes[shape.model]
            options = RunOptions(budget_usd=0.0001 if shape.aborts else None, backoff_s=0.0)
            result = await runtime.run(
                runtime.agent(shape.agent),
                _input(shape),
                run_id=shape.run_id,
                user_id=f"user-{shape.run_id[-4:]}",
                tenant_id=shape.tenant,
                route=shape.route,
                options=options,
            )
            while result.status == "waiting_approval":
                for approval in result.pending_approvals:
                    reason = "checked the order" if shape.approve else "too large"
                    record_decision(
                        journal,
                        result.run_id,
                        approval.approval_id,
                        by="ops@example.com",
                        reason=reason,
                        approved=shape.approve,
                    )
                result = await runtime.resume(result.run_id, options=options)
            events = journal.read_stream(result.stream_id)
            runs.append(SyntheticRun(result.stream_id, shape.tenant, events, _offsets(rng, events)))
    return runs


def _input(shape: _Shape) -> str:
    return f"I want a refund for order {shape.order} (conversation {shape.run_id})"


def _agents(by_input: dict[str, _Shape], model_name: str) -> list[Agent]:
    """The support crew on one model; the scripted model plays each run's shape (found by its input)."""

    def script(request: ModelRequest) -> ModelResponse:
        shape = by_input[request.messages[0]["content"]]
        turn = sum(1 for message in request.messages if message["role"] == "assistant")
        input_tokens, output_tokens = shape.usage[min(turn, len(shape.usage) - 1)]
        cost = (input_tokens * 2.5 + output_tokens * 10) / 1_000_000 * shape.cost_scale
        usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
        steps: list[ToolCall] = [ToolCall(f"call_{i + 1}", name, args) for i, (name, args) in enumerate(shape.tools)]
        if shape.handoff is not None:
            reason = "the customer asked for a person" if shape.handoff == HUMAN else "a refund question"
            steps.insert(1, ToolCall("handoff", "transfer_to_" + shape.handoff, {"reason": reason}))
        if turn < len(steps):
            return ModelResponse(tool_calls=[steps[turn]], **usage)
        return ModelResponse(text=f"Your refund for {shape.order} is on its way.", **usage)

    crew = []
    for name in (*AGENTS, HUMAN):
        handoffs = [other for other in (*AGENTS, HUMAN) if other != name] if name != HUMAN else []
        instructions = f"You are the {name}. Resolve the request within policy."
        model = ScriptedModel(script, name=model_name)
        crew.append(Agent(name, instructions, model, TOOLS, policy=SYNTHETIC_POLICY, handoffs=handoffs))
    return crew


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    if order_id.endswith("-DOWN"):
        raise ConnectionRefusedError("the order service did not answer")
    return {"order_id": order_id, "status": "delivered", "amount": 89.99}


@tool
def check_refund_policy(order_id: str, reason: str) -> dict[str, Any]:
    """What refund the policy allows."""
    if order_id.endswith("-DOWN"):
        raise ValueError("the policy service returned an error")
    return {"eligible": True, "max_refund": 44.99, "type": "partial"}


@tool(side_effecting=True, cost_usd=0.002)
def issue_refund(order_id: str, amount: float, idempotency_key: str = "") -> dict[str, Any]:
    """Issue a refund."""
    return {"refund_id": f"REF-{idempotency_key[:6]}", "amount": amount, "status": "processed"}


@tool(side_effecting=True)
def send_email(to: str, template: str, idempotency_key: str = "") -> dict[str, Any]:
    """Send an e-mail from a template."""
    return {"sent": True, "message_id": f"msg-{idempotency_key[:8]}"}


TOOLS: list[Tool] = [lookup_order, check_refund_policy, issue_refund, send_email]
SYNTHETIC_POLICY = Policy.from_yaml(POLICY, source="synthetic-policy")


_PAUSES: dict[str, tuple[float, float]] = {
    "ModelCalled": (0.3, 1.8),
    "ToolExecuted": (0.05, 0.6),
    "ToolFailed": (0.5, 2.0),
    "ToolApproved": (5.0, 60.0),
    "ToolRejected": (5.0, 60.0),
}


def _offsets(rng: random.Random, events: list[RecordedEvent]) -> list[float]:
    """Seconds after the start for each event: model calls and tools take time, humans take longer."""
    clock, offsets = 0.0, []
    for event in events:
        low, high = _PAUSES.get(event.type, (0.001, 0.02))
        clock += 0.0 if event.version == 1 else rng.uniform(low, high)
        offsets.append(round(clock, 6))
    return offsets


def append_runs(journal: Journal, runs: Iterable[SyntheticRun]) -> int:
    """Append each run as one batch (a new stream), recorded now; returns the number of events."""
    count = 0
    for run in runs:
        journal.append(run.stream_id, [copy_of(event) for event in run.events], expected_version=0)
        count += len(run.events)
    return count


def copy_of(event: RecordedEvent) -> NewEvent:
    """The same event (ids, envelope, data), to append to another journal."""
    return NewEvent(
        event.type,
        event.data,
        event_id=event.event_id,
        schema_version=event.schema_version,
        actor=event.actor,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        closes_stream=event.closes_stream,
    )


def import_runs(
    journal: Journal,
    runs: Iterable[SyntheticRun],
    *,
    start: datetime,
    spacing: timedelta,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Store runs as history: run i starts at `start + i * spacing`. Returns the number of events."""
    return journal.import_events(_exported(runs, start, spacing), progress=progress).imported


def _exported(runs: Iterable[SyntheticRun], start: datetime, spacing: timedelta) -> Iterator[dict[str, Any]]:
    for index, run in enumerate(runs):
        began = start + index * spacing
        prev_hash = GENESIS_HASH
        for event, offset in zip(run.events, run.offsets, strict=True):
            copy = RecordedEvent(
                event_id=event.event_id,
                stream_id=run.stream_id,
                version=event.version,
                position=0,
                type=event.type,
                schema_version=event.schema_version,
                recorded_at=began + timedelta(seconds=offset),
                actor=event.actor,
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                causation_id=event.causation_id,
                traceparent=event.traceparent,
                data_json=event.data_json,
                metadata_json=event.metadata_json,
                prev_hash=prev_hash,
                hash="",
            )
            copy.hash = prev_hash = copy.compute_hash()
            yield copy.to_dict()
