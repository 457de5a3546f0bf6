"""What recording a pydantic-ai agent costs per step: the same `Agent` run alone and with `AgentJournal`.

One run is `--steps` steps and an answer. A step is one model request (a `FunctionModel` that asks for
the `note` tool) and the tool's ~1 KB result, so pydantic-ai does all of its own work (the graph, the
message history, tool validation and execution) and only the model's thinking is free. Each system
runs the same agent in the same process, taking turns run by run, `--repeat` times, each recording
run on a fresh database (a new SQLite file, a new PostgreSQL schema):

- pydantic-ai alone;
- with `AgentJournal` on SQLite (the journal's default durability, WAL with `synchronous=NORMAL`);
- the same with seed 001's policy (each call also gets its PolicyEvaluated);
- with `AgentJournal` on PostgreSQL 127.0.0.1.

Figures: medians over the repeats of the wall time per step, and overhead = that minus pydantic-ai
alone's median, per step; `appends/step` is how many journal appends (transactions) a step makes,
and `append p50` one ~600-byte append on the same journal, measured in the same run.

    .venv/bin/python benchmarks/integration_pydantic_ai.py
    .venv/bin/python benchmarks/integration_pydantic_ai.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    console.width = 160

TEXT = ("The order is delayed at the regional hub; the carrier expects it to move tomorrow. " * 13)[:1000]
POLICY = """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
"""
SYSTEMS = ("alone", "sqlite", "sqlite+policy", "postgres")


def build_agent(steps: int, capabilities: list[Any]) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.usage import RequestUsage

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        step = sum(isinstance(message, ModelResponse) for message in messages)
        usage = RequestUsage(input_tokens=100 + 250 * step, output_tokens=20)
        if step < steps:
            return ModelResponse(parts=[ToolCallPart("note", {"step": step + 1}, tool_call_id=f"c{step}")], usage=usage)
        return ModelResponse(parts=[TextPart("done")], usage=usage)

    agent = Agent(FunctionModel(model, model_name="claude-sonnet-4-5"), name="bench", capabilities=capabilities)

    @agent.tool_plain
    def note(step: int) -> str:
        """Returns the step's ~1 KB note."""
        return f"step {step}: {TEXT}"

    return agent


@contextmanager
def fresh_url(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="aj-bench-pai-") as folder:
            yield f"sqlite:///{Path(folder) / 'journal.db'}"
        return
    from agentjournal.testing import databases

    with databases.postgres_schema() as url:
        yield url


def timed_run(agent: Any, steps: int) -> dict[str, float]:
    """Wall time and CPU time (this process, every thread) per step, in ms."""
    from pydantic_ai.usage import UsageLimits

    limits = UsageLimits(request_limit=steps + 1)  # pydantic-ai stops a run at 50 requests by default

    async def main() -> dict[str, float]:
        started, cpu = time.perf_counter(), time.process_time()
        result = await agent.run("go", usage_limits=limits)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result.output == "done", result.output
        return {"ms_step": wall * 1000 / steps, "cpu_ms_step": cpu * 1000 / steps}

    return asyncio.run(main())


def append_p50(journal: Any, times: int = 200) -> float:
    """One append of a ModelCalled-sized event to a fresh stream of this journal, p50 in ms."""
    from agentjournal.journal import NewEvent

    payload = {"text": TEXT[:500], "n": 0}
    samples = []
    for n in range(times + 20):
        started = time.perf_counter()
        journal.append(f"bench-append-{n}", [NewEvent(type="Probe", data=payload)], expected_version=0)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples[20:])


def measure(system: str, steps: int) -> dict[str, float]:
    if system == "alone":
        return timed_run(build_agent(steps, []), steps)
    from agentjournal.agents import Policy
    from agentjournal.integrations import RunRecorder
    from agentjournal.integrations.pydantic_ai import AgentJournal
    from agentjournal.journal import Journal

    backend = "postgres" if system == "postgres" else "sqlite"
    policy = Policy.from_yaml(POLICY, source="seed-001") if system.endswith("+policy") else None
    with fresh_url(backend) as url, Journal.open(url, create=True) as journal:
        recorder = RunRecorder(journal, policy=policy)
        figures = timed_run(build_agent(steps, [AgentJournal(recorder)]), steps)
        [start] = [event for event in journal.read_all() if event.type == "RunStarted"]
        events = journal.read_stream(start.stream_id)
        assert events[-1].type == "RunCompleted", events[-1].type
        appends = len({event.recorded_at for event in events})  # the events of one append share its time
        figures.update(events_step=len(events) / steps, appends_step=appends / steps)
        return {**figures, "append_p50_ms": append_p50(journal)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--quick", action="store_true", help="20 steps, 2 repeats")
    args = parser.parse_args(argv)
    steps, repeat = (20, 2) if args.quick else (args.steps, args.repeat)
    systems = [s for s in SYSTEMS if s == "alone" or s.split("+")[0] in args.backends]
    if "postgres" in systems:
        from agentjournal.testing import databases

        if reason := databases.unreachable("PostgreSQL", databases.POSTGRES_URL):
            console.print(f"[yellow]skipping PostgreSQL: {reason}")
            systems.remove("postgres")
    measure("alone", 5)  # warm: imports, pydantic-ai's schemas
    samples: dict[str, list[dict[str, float]]] = {system: [] for system in systems}
    for turn in range(repeat):
        order = systems[turn % len(systems) :] + systems[: turn % len(systems)]  # take turns
        for system in order:
            samples[system].append(measure(system, steps))
    report(samples, steps, repeat)
    return 0


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


NAMES = {
    "alone": "pydantic-ai alone",
    "sqlite": "+ AgentJournal, SQLite",
    "sqlite+policy": "+ AgentJournal and policy, SQLite",
    "postgres": "+ AgentJournal, PostgreSQL",
}


def report(samples: dict[str, list[dict[str, float]]], steps: int, repeat: int) -> None:
    import pydantic_ai

    wall, cpu = median(samples["alone"], "ms_step"), median(samples["alone"], "cpu_ms_step")
    table = Table(title=f"pydantic-ai {pydantic_ai.__version__}: {steps} steps, medians of {repeat} runs")
    columns = ["system", "wall ms/step", "overhead", "x alone", "CPU ms/step", "CPU overhead"]
    for column in [*columns, "events/step", "appends/step", "append p50 ms", "target (overhead ≤ 0.5 ms on SQLite)"]:
        table.add_column(column, justify="left" if column.startswith(("system", "target")) else "right")
    for system, rows in samples.items():
        ms, cpu_ms = median(rows, "ms_step"), median(rows, "cpu_ms_step")
        if system == "alone":
            table.add_row(NAMES[system], f"{ms:.3f}", "-", "-", f"{cpu_ms:.3f}", "-", "-", "-", "-", "")
            continue
        overhead = ms - wall
        target = ("met" if overhead <= 0.5 else "missed") if system.startswith("sqlite") else ""
        table.add_row(
            NAMES[system],
            f"{ms:.3f}",
            f"{overhead:.3f}",
            f"{ms / wall:.2f}x",
            f"{cpu_ms:.3f}",
            f"{cpu_ms - cpu:.3f}",
            f"{median(rows, 'events_step'):.2f}",
            f"{median(rows, 'appends_step'):.2f}",
            f"{median(rows, 'append_p50_ms'):.3f}",
            target,
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
