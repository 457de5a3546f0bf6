"""Realistic synthetic agent runs, for the read-model tests, the benchmark and demos.

A run looks like seed 001/002's support agent: it starts, plans, calls the model, proposes
tools that the policy allows, denies or sends to a human, executes or fails them, maybe hands
off, drafts and finalizes a response, and completes or aborts. Runs are generated with a
seeded random source, so the same seed gives the same journal.

`append_runs` appends them now (recorded_at is the wall clock); `import_runs` stores them as
history with chosen times through the journal's import, hashes and all, which is how tests
and demos get runs spread over several days.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.journal.envelope import GENESIS_HASH, canonical_json

AGENTS = ("triage-agent", "refund-agent", "billing-agent")
MODELS = ("gpt-4.1-mini", "claude-sonnet-4", "llama-3.1-70b")
ROUTES = ("support/refund", "support/billing", "support/shipping")
TENANTS = ("acme", "globex", "initech")
TOOLS: dict[str, dict[str, Any]] = {
    "lookup_order": {"order_id": "ORD-{n}"},
    "check_refund_policy": {"order_id": "ORD-{n}", "reason": "customer_request"},
    "issue_refund": {"order_id": "ORD-{n}", "amount": 44.99},
    "send_email": {"to": "customer-{n}@example.com", "template": "refund_confirmation"},
}
RULES = {
    "lookup_order": ("read-only-tools", "allow"),
    "check_refund_policy": ("read-only-tools", "allow"),
    "issue_refund": ("refunds-over-limit", "require_human_approval"),
    "send_email": ("external-email", "allow"),
}


@dataclass
class SyntheticRun:
    stream_id: str
    tenant_id: str
    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    """(type, data, seconds after the run started)"""


@dataclass(frozen=True)
class RunMix:
    """Knobs of the generator: how often runs deny, fail or abort, and how costly they are."""

    deny_rate: float = 0.05
    escalation_rate: float = 0.3
    failure_rate: float = 0.05
    abort_rate: float = 0.05
    handoff_rate: float = 0.3
    cost_scale: float = 1.0


def synthetic_runs(count: int, *, seed: int = 7, mix: RunMix | None = None, first: int = 0) -> Iterator[SyntheticRun]:
    """`count` runs named run-syn-<seed>-<n>; about 14 events each."""
    rng = random.Random(seed * 1_000_003 + first)
    mix = mix or RunMix()
    for n in range(first, first + count):
        yield _one_run(rng, mix, f"run-syn-{seed}-{n:07d}", n)


def _one_run(rng: random.Random, mix: RunMix, stream_id: str, n: int) -> SyntheticRun:
    run = SyntheticRun(stream_id, rng.choice(TENANTS))
    model = rng.choice(MODELS)
    clock = 0.0

    def add(kind: str, data: dict[str, Any], took: float = 0.0) -> None:
        nonlocal clock
        clock += took
        run.events.append((kind, data, clock))

    order = 1000 + n % 9000
    add(
        "RunStarted",
        {
            "agent": rng.choice(AGENTS),
            "agent_version": "1.4.2",
            "model": model,
            "prompt_version": rng.choice(("prompt-v41", "prompt-v42")),
            "route": rng.choice(ROUTES),
            "policy_version": "policy-2026-03",
            "input": f"I want a refund for order ORD-{order}",
        },
    )
    add("ModelCalled", _model_call(rng, model, mix), rng.uniform(0.3, 1.5))
    add("PlanGenerated", {"steps": ["lookup_order", "check_refund_policy", "issue_refund"]}, 0.01)
    aborted = rng.random() < mix.abort_rate
    for tool in rng.sample(list(TOOLS), rng.randint(2, 4)):
        arguments = {
            key: value.format(n=order) if isinstance(value, str) else value for key, value in TOOLS[tool].items()
        }
        call_id = str(uuid.UUID(int=rng.getrandbits(128)))
        add("ToolProposed", {"tool": tool, "arguments": arguments, "call_id": call_id}, 0.02)
        rule, action = RULES[tool]
        if action == "require_human_approval" and rng.random() > mix.escalation_rate:
            rule, action = "refunds-under-limit", "allow"
        if rng.random() < mix.deny_rate:
            rule, action = "external-email" if tool == "send_email" else "rate-limit", "deny"
        add("PolicyEvaluated", {"tool": tool, "rule": rule, "action": action, "call_id": call_id}, 0.001)
        if action == "deny":
            continue
        if action == "require_human_approval":
            if rng.random() < 0.2:
                add("ToolRejected", {"call_id": call_id, "rejected_by": "ops@example.com", "reason": "too large"}, 30)
                continue
            add("ToolApproved", {"call_id": call_id, "approved_by": "ops@example.com"}, rng.uniform(5, 60))
        if rng.random() < mix.failure_rate:
            add("ToolFailed", {"tool": tool, "call_id": call_id, "error": "upstream timeout"}, rng.uniform(0.5, 2))
            continue
        latency = rng.lognormvariate(4.5, 0.6)
        add("ToolExecuted", {"tool": tool, "call_id": call_id, "latency_ms": round(latency, 1)}, latency / 1000)
        add("ObservationCaptured", {"tool": tool, "summary": f"{tool} ok for ORD-{order}"}, 0.001)
    if rng.random() < mix.handoff_rate:
        to_agent = "human" if rng.random() < 0.1 else "refund-agent"
        add("HandoffInitiated", {"from_agent": "triage-agent", "to_agent": to_agent, "reason": "refund"}, 0.01)
    if aborted:
        add("RunAborted", {"reason": "budget exceeded"}, 0.01)
        return run
    add("ModelCalled", _model_call(rng, model, mix), rng.uniform(0.5, 2.0))
    add("ResponseDrafted", {"text": f"Your refund for ORD-{order} is on its way."}, 0.01)
    add("ResponseFinalized", {"text": f"Your refund for ORD-{order} is on its way."}, 0.01)
    add("RunCompleted", {"outcome": "resolved"}, 0.01)
    return run


def _model_call(rng: random.Random, model: str, mix: RunMix) -> dict[str, Any]:
    input_tokens, output_tokens = rng.randint(400, 3000), rng.randint(50, 600)
    cost = (input_tokens * 2.5 + output_tokens * 10) / 1_000_000 * mix.cost_scale
    return {
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(cost, 6),
        "latency_ms": rng.randint(300, 2000),
    }


def append_runs(journal: Journal, runs: Sequence[SyntheticRun] | Iterator[SyntheticRun]) -> int:
    """Append each run as one batch, recorded now; returns the number of events."""
    count = 0
    for run in runs:
        journal.append(run.stream_id, [NewEvent(kind, data, tenant_id=run.tenant_id) for kind, data, _ in run.events])
        count += len(run.events)
    return count


def import_runs(
    journal: Journal,
    runs: Sequence[SyntheticRun] | Iterator[SyntheticRun],
    *,
    start: datetime,
    spacing: timedelta,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Store runs as history: run i starts at `start + i * spacing`. Returns the number of events."""
    return journal.import_events(_exported(runs, start, spacing), progress=progress)


def _exported(
    runs: Sequence[SyntheticRun] | Iterator[SyntheticRun], start: datetime, spacing: timedelta
) -> Iterator[dict[str, Any]]:
    for index, run in enumerate(runs):
        began = start + index * spacing
        prev_hash = GENESIS_HASH
        first_id: str | None = None
        for version, (kind, data, offset) in enumerate(run.events, start=1):
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run.stream_id}/{version}"))
            first_id = first_id or event_id
            event = RecordedEvent(
                event_id=event_id,
                stream_id=run.stream_id,
                version=version,
                position=0,
                type=kind,
                schema_version=1,
                recorded_at=began + timedelta(seconds=offset),
                actor="synthetic",
                tenant_id=run.tenant_id,
                correlation_id=first_id,
                causation_id=None,
                traceparent=None,
                data_json=canonical_json(data),
                metadata_json=b"{}",
                prev_hash=prev_hash,
                hash="",
                data=data,
            )
            event.hash = prev_hash = event.compute_hash()
            yield event.to_dict()
