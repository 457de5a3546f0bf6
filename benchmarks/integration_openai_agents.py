"""What recording an OpenAI Agents SDK run costs per step: the SDK alone against the SDK under agentjournal.

A run of `--steps` steps: each step the (fake) model asks for a tool and the tool returns ~1 KB, then
the model answers. Both variants run the SDK's `Runner.run` with the same fake `Model` (no network),
tracing on:

- the SDK alone: no trace processor registered, the tool as it is;
- with agentjournal: `AgentsJournal.run` with a one-rule policy, its trace processor registered, the
  tool guarded (`needs_approval` and tool guardrails) and the model wrapped in a RecordingModel; each
  step writes 5 events (ToolProposed, PolicyEvaluated, ToolExecuted and ObservationCaptured of the
  read-only tool, with the next ModelCalled) in one append to a journal on SQLite (its default
  durability) or PostgreSQL.

The variants take turns run by run, in one process, on fresh journals; figures are medians over
`--repeat` runs of the wall time per step and of the process's CPU time per step (every thread;
other work on the machine disturbs it less), and the overhead is their difference.

    .venv/bin/python benchmarks/integration_openai_agents.py
    .venv/bin/python benchmarks/integration_openai_agents.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

BACKENDS = ("sqlite", "postgres")
TARGET_MS = {"sqlite": 0.5}
TEXT = ("The order is delayed at the regional hub; the carrier expects it to move tomorrow. " * 13)[:1000]
POLICY = """
version: 1
rules:
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
"""


def _agent(steps: int) -> Any:
    """A fresh agent (the guarded variant changes its tool in place) with the step-counting fake model."""
    from agents.testing import assistant_message, function_call

    from agents import Agent, Model, ModelResponse, Usage, function_tool

    class StepModel(Model):
        """Asks for `note` until `steps` results are in the conversation, then answers."""

        async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> Any:
            done = sum(1 for item in input if isinstance(item, dict) and item.get("type") == "function_call_output")
            if done < steps:
                output = [function_call("note", {"step": done + 1}, call_id=f"call_{done + 1}")]
            else:
                output = [assistant_message("done")]
            usage = Usage(requests=1, input_tokens=100, output_tokens=20, total_tokens=120)
            return ModelResponse(output=output, usage=usage, response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    @function_tool
    def note(step: int) -> str:
        """The step's ~1 KB note."""
        return f"step {step}: {TEXT}"

    return Agent(name="bench", instructions="You benchmark.", tools=[note], model=StepModel())


@contextmanager
def _journal_url(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'journal.db'}"
        return
    from agentjournal.testing import databases

    with databases.postgres_schema() as url:
        yield url


async def _alone(steps: int) -> tuple[float, float]:
    """Wall and CPU ms per step of the SDK alone."""
    from agents import RunConfig, Runner, set_trace_processors

    set_trace_processors([])
    agent = _agent(steps)
    started, cpu = time.perf_counter(), time.process_time()
    result = await Runner.run(agent, "go", run_config=RunConfig(), max_turns=steps + 2)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.final_output == "done"
    return elapsed * 1000 / steps, cpu * 1000 / steps


async def _recorded(backend: str, steps: int) -> tuple[float, float, int]:
    """Wall and CPU ms per step under AgentsJournal, and the events the run has."""
    from agentjournal.agents import Policy
    from agentjournal.integrations.openai_agents import AgentsJournal
    from agentjournal.journal import Journal
    from agents import set_trace_processors

    with _journal_url(backend) as url, Journal.open(url, create=True) as journal:
        journaled = AgentsJournal(journal, policy=Policy.from_yaml(POLICY))
        set_trace_processors([journaled.processor])
        agent = _agent(steps)
        started, cpu = time.perf_counter(), time.process_time()
        result = await journaled.run(agent, "go", run_id="bench", max_turns=steps + 2)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        set_trace_processors([])
        assert result.final_output == "done"
        events = journal.read_stream("run-bench")
        assert events[-1].type == "RunCompleted", events[-1]
        return elapsed * 1000 / steps, cpu * 1000 / steps, len(events)


def measure(backend: str, steps: int, repeat: int) -> dict[str, Any]:
    asyncio.run(_alone(steps))  # warm: imports, the SDK's caches
    asyncio.run(_recorded(backend, steps))
    alone: list[tuple[float, float]] = []
    recorded: list[tuple[float, float]] = []
    events = 0
    for _ in range(repeat):  # the variants take turns, so noise hits both alike
        alone.append(asyncio.run(_alone(steps)))
        wall, cpu, events = asyncio.run(_recorded(backend, steps))
        recorded.append((wall, cpu))
    sdk, with_aj = statistics.median(w for w, _ in alone), statistics.median(w for w, _ in recorded)
    sdk_cpu, with_aj_cpu = statistics.median(c for _, c in alone), statistics.median(c for _, c in recorded)
    return {
        "backend": backend,
        "steps": steps,
        "repeat": repeat,
        "sdk_ms_per_step": sdk,
        "recorded_ms_per_step": with_aj,
        "overhead_ms_per_step": with_aj - sdk,
        "ratio": with_aj / sdk,
        "sdk_cpu_ms_per_step": sdk_cpu,
        "recorded_cpu_ms_per_step": with_aj_cpu,
        "cpu_overhead_ms_per_step": with_aj_cpu - sdk_cpu,
        "events": events,
    }


def _reachable(backend: str) -> str | None:
    if backend == "sqlite":
        return None
    from agentjournal.testing import databases

    return databases.unreachable("PostgreSQL", databases.POSTGRES_URL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, 3 repeats: a smoke run")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args(argv)
    steps, repeat = (20, 3) if args.quick else (args.steps, args.repeat)
    import agents

    figures = []
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        why = _reachable(backend)
        if why is not None:
            console.print(f"[yellow]skipping {backend}: {why}[/]")
            continue
        figures.append(measure(backend, steps, repeat))
    table = Table(
        title=f"OpenAI Agents SDK {agents.__version__}: {steps} steps, medians of {repeat} runs",
        caption="ms per step (wall, and the process's CPU time); overhead = with agentjournal - the SDK alone",
    )
    columns = (
        "backend",
        "SDK alone",
        "with agentjournal",
        "overhead",
        "ratio",
        "CPU alone",
        "CPU with",
        "CPU overhead",
    )
    for column in (*columns, "events", "target"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    missed = False
    for row in figures:
        target = TARGET_MS.get(row["backend"])
        verdict = ""
        if target is not None:
            met = row["overhead_ms_per_step"] <= target
            missed = missed or not met
            verdict = f"≤ {target} ms: {'met' if met else 'missed'}"
        table.add_row(
            row["backend"],
            f"{row['sdk_ms_per_step']:.3f}",
            f"{row['recorded_ms_per_step']:.3f}",
            f"{row['overhead_ms_per_step']:.3f}",
            f"{row['ratio']:.2f}x",
            f"{row['sdk_cpu_ms_per_step']:.3f}",
            f"{row['recorded_cpu_ms_per_step']:.3f}",
            f"{row['cpu_overhead_ms_per_step']:.3f}",
            str(row["events"]),
            verdict,
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main())
