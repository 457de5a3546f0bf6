"""One journal with something for every table command to show, written by the real runtime, and the
app's command tree: for the CLI tests of output that fits and of errors that are messages."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import typer
from rich.console import Console
from typer.testing import Result

from agentjournal.agents import Agent, RunOptions, Runtime, ScriptedModel
from agentjournal.agents.demo import run_demo
from agentjournal.agents.demo_sagas import SAGAS, book_demo_input
from agentjournal.agents.models import ModelResponse, ToolCall
from agentjournal.api import ApiKeys
from agentjournal.cli import main  # noqa: F401  (registers every command module)
from agentjournal.cli.app import app
from agentjournal.evals import (
    Candidates,
    Thresholds,
    build_dataset,
    gate,
    read_references,
    replay_dataset_sync,
    score_evaluation_sync,
)
from agentjournal.forensics import invariants, regrade
from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.messaging import (
    Backoff,
    HandlerTransport,
    LeaseRegistry,
    Message,
    Relay,
    SagaRunner,
    append_with_outbox,
    failures,
)
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.base import Projection, Tx
from agentjournal.testing.synthetic import SYNTHETIC_POLICY, TOOLS, append_runs, synthetic_runs

INVARIANT = "agentjournal.agents.demo:refunds_within_40_usd"
"""An invariant over a run that the synthetic runs' large refunds break."""
LEASE_OWNER = "worker-node-in-eu-west-1b-0001"
OUTBOX_RELAY = "crm-and-calendar-relay"
Invoke = Callable[..., Result]


@dataclass(frozen=True)
class Sample:
    url: str
    folder: Path
    policy: Path
    """Seed 001's policy file."""
    run_stream: str
    """A synthetic run that breaks INVARIANT."""
    failing_version: int
    event_id: str
    """An event of run_stream."""
    approval_id: str
    arguments_hash: str
    waiting_run_id: str
    """The run waiting for that approval: a uuid7, as long as a run id gets."""
    eval_url: str
    """An evaluation journal holding two evaluations of the demo's runs (prompt-v42 and strict-policy)."""
    dataset: Path
    candidates: Path
    """The example project's candidates file (examples/eval-gate)."""
    evaluation_id: str
    """prompt-v42's evaluation: replayed, scored and gated."""
    dead_letter_id: str
    """The dispatch id of the outbox relay's one dead letter (a destination it has no handler for)."""
    saga_id: str
    """The demo's book-demo saga that found the slot taken and rolled back (another one completed)."""
    api_key_id: str
    """An active API key of tenant acme (roles read and approve)."""
    revoked_key_id: str
    """A revoked API key of tenant globex."""


class Poison(Projection):
    """A read model that cannot apply the first RunStarted, so it is parked as a dead letter."""

    name: ClassVar[str] = "poison"

    def setup(self, journal: Any) -> None:
        pass

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            if event.type == "RunStarted" and event.version == 1 and event.position == 1:
                raise ValueError(f"cannot apply {event.type} at position {event.position}: " + "a long reason " * 8)


def build(url: str, folder: Path) -> Sample:
    with Journal.open(url, create=True) as journal:
        append_runs(journal, synthetic_runs(12))
        model = ScriptedModel(
            [
                ModelResponse(tool_calls=[ToolCall("c1", "issue_refund", {"order_id": "ORD-7000", "amount": 44.99})]),
                ModelResponse(text="done"),
            ],
            name="gpt-4.1-mini",
        )
        crew = [Agent("refund-agent", "You resolve refunds.", model, TOOLS, policy=SYNTHETIC_POLICY)]
        runtime = Runtime(journal, agents=crew, options=RunOptions(backoff_s=0.0))
        waiting = asyncio.run(
            runtime.run(
                crew[0], "Refund ORD-7000 please: the shoes were too small", user_id="user-42", tenant_id="acme"
            )
        )
        [approval] = waiting.pending_approvals
        journal.append(
            "alerts",
            [
                NewEvent(
                    "AlertFired",
                    {
                        "rule": "policy-violations-3x",
                        "severity": "page",
                        "dimension": "model",
                        "group": "llama-3.1-70b",
                        "value": 33.3,
                        "baseline": 8.1,
                        "message": "policy violations per 100 runs are 4.1x the 7-day baseline " * 2,
                    },
                    actor="agentjournal-alerts",
                )
            ],
        )
        sagas = SagaRunner(journal, SAGAS)
        sagas.start("book-demo", book_demo_input("lead-456"), saga_id="book-demo-lead-456")
        rolled_back = sagas.start("book-demo", book_demo_input("lead-457"), saga_id="book-demo-lead-457")
        assert rolled_back.status == "compensated"
        for order, destination in (("1", "crm"), ("2", "calendar.book")):
            append_with_outbox(
                journal,
                f"order-{order}",
                [NewEvent("OrderPlaced", {"order": order})],
                expected_version=0,
                messages=[Message(destination, "BookDemo", {"order": order})],
            )
        relay = Relay(OUTBOX_RELAY, HandlerTransport({"crm": lambda dispatch: None}), backoff=Backoff(max_attempts=1))
        relay.runner(journal).catch_up()
        [dead_letter] = failures(journal)  # no handler for calendar.book
        for projection in [*builtin_projections(), Poison()]:
            ProjectionRunner(journal, projection, max_attempts=1, retry_delay=0.0).catch_up()
        assert LeaseRegistry(journal).acquire("projection:poison", LEASE_OWNER) is not None
        keys = ApiKeys(journal)
        api_key = keys.create("acme", ["read", "approve"], "support dashboard for the refunds team", by="alice")
        revoked_key = keys.create("globex", ["admin"], "old-ci", by="alice")
        keys.revoke(revoked_key.key_id, by="bob")
        [failing, *_] = regrade(journal, invariants.resolve(INVARIANT)).failed
        assert failing.failed_since is not None
        event_id = journal.read_stream(failing.stream_id)[0].event_id
    policy = folder / "seed001.yaml"
    policy.write_text(resources.files("agentjournal.agents.policies").joinpath("seed001.yaml").read_text())
    evaluation_id = _evaluate(folder)
    return Sample(
        url=url,
        folder=folder,
        policy=policy,
        run_stream=failing.stream_id,
        failing_version=failing.failed_since,
        event_id=event_id,
        approval_id=approval.approval_id,
        arguments_hash=approval.arguments_hash,
        waiting_run_id=waiting.run_id,
        eval_url=f"sqlite:///{folder / 'evals.db'}",
        dataset=folder / "runs.jsonl",
        candidates=folder / "eval" / "candidates.yaml",
        evaluation_id=evaluation_id,
        dead_letter_id=dead_letter.dispatch.dispatch_id,
        saga_id=rolled_back.saga_id,
        api_key_id=api_key.key_id,
        revoked_key_id=revoked_key.key_id,
    )


EXAMPLE = Path(__file__).parents[2] / "examples" / "eval-gate"


def _evaluate(folder: Path) -> str:
    """The demo's runs as a dataset, replayed, scored and gated with two of the example's candidates."""
    shutil.copytree(EXAMPLE / "eval", folder / "eval")
    with Journal.open(f"sqlite:///{folder / 'demo.db'}", create=True) as production:
        run_demo(production, Console(file=io.StringIO()))
        references = read_references(folder / "eval" / "references.jsonl")
        dataset = build_dataset(production, None, references=references)
    dataset.write(folder / "runs.jsonl")
    candidates = Candidates.load(folder / "eval" / "candidates.yaml")
    crew = candidates.base_agents() or []
    found = []
    with Journal.open(f"sqlite:///{folder / 'evals.db'}", create=True) as evals:
        for name in ("prompt-v42", "strict-policy"):
            evaluation = replay_dataset_sync(evals, dataset, candidates.get(name), crew)
            score_evaluation_sync(evals, evaluation.evaluation_id)
            gate(evals, evaluation.evaluation_id, Thresholds(min_quality=0.5))
            found.append(evaluation.evaluation_id)
    return found[0]


def command_tree() -> list[tuple[str, Any]]:
    """Every command of the app as ("runs list", command), from Typer's own tree: a new command is in it."""
    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            found.append((path, command))
            return
        for name, sub in subcommands.items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found
