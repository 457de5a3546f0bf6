"""The evaluator benchmark: replay and score 1,000 recorded runs with a scripted candidate model.

The production journal holds `--runs` synthetic runs (testing.synthetic: the runtime with the
scripted support crew, about 14 events each). They are selected into a dataset once (timed
apart), then each round, on a fresh evaluation journal:

- reading: `Dataset.read` of the JSONL file (validating every line, the trajectory re-folded);
- replaying: `replay_dataset` with a candidate whose model makes each run's recorded calls again
  under another name (evals.recorded_replies), so every item diverges at its first model call,
  the model answers live and every tool call is answered from the recording;
- scoring: `score_evaluation` on quality (normalized match, tool trajectory), cost, latency and
  policy, for the baseline and the candidate of every item.

The floor, measured in the same round on the same backend and durability: the runtime running
the same runs live (the same crew and scripted model, tools executed) into a fresh journal, which
is what an evaluation replaces. Medians over `--repeat` rounds.

    .venv/bin/python benchmarks/evals.py                  # 1,000 runs, SQLite
    .venv/bin/python benchmarks/evals.py --quick          # 100 runs
    .venv/bin/python benchmarks/evals.py --url 'postgresql://postgres@127.0.0.1/test'
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentjournal import Journal
from agentjournal.agents import Agent, Runtime
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.evals import (
    Candidate,
    Dataset,
    ExactMatch,
    ReplaySettings,
    TrajectoryMatch,
    build_dataset,
    recorded_replies,
    replay_dataset,
    score_evaluation,
)
from agentjournal.testing import databases, synthetic

console = Console()
if not console.is_terminal:
    console.width = 120

TARGET_RUNS_PER_SECOND = 200
TARGET_EVENTS_PER_RUN = 14
"""The issue's target: 200 runs a second of about 14 events each; the synthetic runs are longer
(2 to 4 tool calls, approvals, handoffs), so the verdict compares events a second as well."""


def crew(model: ScriptedModel) -> list[Agent]:
    """The synthetic runs' agent code on `model` (the crew testing.synthetic runs)."""
    everyone = (*synthetic.AGENTS, synthetic.HUMAN)
    return [
        Agent(
            name,
            f"You are the {name}. Resolve the request within policy.",
            model,
            synthetic.TOOLS,
            policy=synthetic.SYNTHETIC_POLICY,
            handoffs=[other for other in everyone if other != name] if name != synthetic.HUMAN else [],
        )
        for name in everyone
    ]


@contextmanager
def fresh_journal(url: str | None, folder: Path, name: str) -> Iterator[Journal]:
    if url is None:
        with Journal.open(f"sqlite:///{folder / f'{name}.db'}", create=True) as journal:
            yield journal
        return
    with databases.postgres_schema(url) as schema_url, Journal.open(schema_url, create=True) as journal:
        yield journal


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


async def live(journal: Journal, dataset: Dataset, model: ScriptedModel) -> None:
    """The same runs, run for real by the runtime: the floor an evaluation replaces."""
    runtime = Runtime(journal, agents=crew(model))
    for item in dataset.items:
        await runtime.run(
            runtime.agent(item.agent), item.input, user_id=item.user_id, tenant_id=item.tenant_id, route=item.route
        )


def one_round(url: str | None, folder: Path, path: Path, round_: int) -> dict[str, float]:
    dataset, reading = timed(lambda: Dataset.read(path))
    model = recorded_replies(dataset, name="gpt-5-mini")
    with fresh_journal(url, folder, f"evals-{round_}") as evals:
        evaluation, replaying = timed(
            lambda: asyncio.run(replay_dataset(evals, dataset, Candidate("clone"), crew(model), ReplaySettings()))
        )
        quality = [ExactMatch(normalized=True), TrajectoryMatch()]
        _, scoring = timed(lambda: asyncio.run(score_evaluation(evals, evaluation.evaluation_id, quality=quality)))
    with fresh_journal(url, folder, f"live-{round_}") as journal:
        _, running = timed(lambda: asyncio.run(live(journal, dataset, recorded_replies(dataset, name="gpt-5-mini"))))
    return {"reading": reading, "replaying": replaying, "scoring": scoring, "live": running}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 runs, 3 rounds")
    parser.add_argument("--url", help="a PostgreSQL URL (default: SQLite files in a temporary folder)")
    args = parser.parse_args(argv)
    runs, repeat = (100, 3) if args.quick else (args.runs, args.repeat)
    with tempfile.TemporaryDirectory(prefix="aj-bench-evals-") as tmp:
        folder = Path(tmp)
        with fresh_journal(args.url, folder, "production") as production:
            console.print(f"recording {runs} synthetic runs…", highlight=False)
            synthetic.append_runs(production, synthetic.synthetic_runs(runs))
            dataset, selecting = timed(lambda: build_dataset(production))
        path = dataset.write(folder / "runs.jsonl")
        events = sum(len(item.recording) for item in dataset.items)
        rounds = []
        for round_ in range(repeat):
            rounds.append(one_round(args.url, folder, path, round_))
            console.print(f"round {round_ + 1}/{repeat}: " + ", ".join(f"{k} {v:.2f}s" for k, v in rounds[-1].items()))
    items = len(dataset.items)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    evaluating = median["reading"] + median["replaying"] + median["scoring"]
    table = Table(title=f"{items} runs ({events / items:.1f} events each), medians of {repeat} rounds")
    for column in ("step", "seconds", "share", "runs/s"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for key in ("reading", "replaying", "scoring"):
        table.add_row(key, f"{median[key]:.3f}", f"{median[key] / evaluating:.0%}", f"{items / median[key]:,.0f}")
    table.add_row("evaluation", f"{evaluating:.3f}", "100%", f"{items / evaluating:,.0f}", style="bold")
    table.add_row("live runs (floor)", f"{median['live']:.3f}", "", f"{items / median['live']:,.0f}")
    console.print(table)
    rate = items / evaluating
    per_event = events / evaluating
    needed = TARGET_RUNS_PER_SECOND * TARGET_EVENTS_PER_RUN
    console.print(
        f"dataset selection (once): {selecting:.2f}s; the evaluation takes {evaluating / median['live']:.2f}x "
        f"the live runs; {rate:,.0f} runs/s of {events / items:.1f} events = {per_event:,.0f} events/s, "
        f"against the target of {TARGET_RUNS_PER_SECOND} runs/s of {TARGET_EVENTS_PER_RUN} events = {needed:,} "
        f"events/s ({'met' if per_event >= needed else 'missed'})",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
