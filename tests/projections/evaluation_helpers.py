"""Evaluations written by the real evaluator, for the replay-delta read model, its metric and its alert.

Four recorded refunds make the dataset: two for acme, answered well ("Refunded ORD-…"), and
two for globex, answered badly ("Please wait."), one of those on another model. Candidates
replay them with a scripted model (`recorded_replies`) that answers the way the recording did,
except where a test changes the answer, the cost or the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentjournal.agents import Agent
from agentjournal.agents.policy import Policy
from agentjournal.evals import (
    Assertion,
    Candidate,
    Dataset,
    DatasetItem,
    ReplaySettings,
    Scorer,
    Subject,
    build_dataset,
    recorded_replies,
    replay_dataset_sync,
    score_evaluation_sync,
)
from agentjournal.journal import Journal
from agentjournal.testing.synthetic import POLICY, SYNTHETIC_POLICY, TOOLS

from .projection_helpers import record, refund_script, reply, store

INSTRUCTIONS = "You resolve refunds within policy."
RUNS = (
    ("acme-1", "acme", "gpt-4.1-mini", "ORD-1001", True),
    ("acme-2", "acme", "gpt-4.1-mini", "ORD-1002", True),
    ("globex-1", "globex", "gpt-4.1-mini", "ORD-2001", False),
    ("globex-2", "globex", "claude-sonnet-4", "ORD-2002", False),
)
"""run id, tenant, model, order, answered well. Each run's first model call costs $0.01, the others nothing."""
STRICTER = Policy.from_yaml(
    POLICY.replace(
        "when: {tool: [lookup_order, check_refund_policy]}\n    action: allow",
        "when: {tool: [lookup_order, check_refund_policy]}\n    action: deny",
    ),
    source="stricter.yaml",
)
"""Denies the order lookups the recorded runs were allowed: one call per item decided stricter."""


def refunded(subject: Subject) -> bool:
    """The quality scorer of these tests: 1 when the answer says the refund was made."""
    return subject.response.startswith("Refunded")


def refund_dataset(folder: Path) -> Dataset:
    """The four recorded refunds (a production journal of their own), as a dataset."""
    started = datetime.now(UTC) - timedelta(hours=2)
    with Journal.open(f"sqlite:///{folder / 'production.db'}", create=True) as production:
        for index, (run_id, tenant, model, order, good) in enumerate(RUNS):
            script = refund_script(order=order)
            if not good:
                script[-1] = reply(text="Please wait.")
            said = f"I want a refund for {order}"
            store(
                production,
                record(run_id, script, tenant=tenant, model=model, input=said),
                at=started + index * timedelta(minutes=1),
            )
        return build_dataset(production, None)


def answer_well(item: DatasetItem, text: str | None) -> str:
    return f"Refunded {item.input.rsplit(' ', 1)[-1]}"


def answer_badly(item: DatasetItem, text: str | None) -> str:
    return "Please wait."


def evaluate(
    evals: Journal,
    dataset: Dataset,
    name: str,
    *,
    answer: Callable[[DatasetItem, str | None], str | None] | None = None,
    cost_factor: float = 1.0,
    policy: Policy | None = None,
    quality: Sequence[Scorer] | None = (Assertion(refunded),),
    **settings: Any,
) -> str:
    """Replay the dataset with candidate `name` (model gpt-5-mini) and score it (unless `quality` is None)."""
    model = recorded_replies(dataset, name="gpt-5-mini", answer=answer, cost_factor=cost_factor)
    crew = [Agent("refund-agent", INSTRUCTIONS, model, TOOLS, policy=SYNTHETIC_POLICY)]
    candidate = Candidate(name, policy=policy)
    evaluation = replay_dataset_sync(evals, dataset, candidate, crew, ReplaySettings(**settings)).evaluation_id
    if quality is not None:
        score_evaluation_sync(evals, evaluation, quality=list(quality))
    return evaluation
