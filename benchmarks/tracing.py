"""The tracing benchmark: what OpenTelemetry spans add to an agent step, and that off costs nothing.

Two workloads, each run of `--steps` steps in its own fresh process and SQLite database:

- runtime: benchmarks/agent_steps.py's agentjournal run (the runtime with the scripted model; per
  step a model call asking for a tool and the tool's ~1 KB result: a chat and an execute_tool
  span); overhead per step = wall time per step minus the time inside the model and the tool,
  exactly as agent_steps.py computes it;
- recorder: a hand-written loop told to a `RunRecorder` under a policy; per step one model call,
  one policy-checked tool call and its ~1 KB result (5 events, a chat and an execute_tool span);
  overhead per step = wall time per step (the model and the tool are not called at all).

Modes, taking turns in every round (each going first in turn) so the machine's noise hits them alike:

- off: no tracer provider configured (OpenTelemetry's default proxy): no span is made;
- memory: the SDK's TracerProvider with a SimpleSpanProcessor and an InMemorySpanExporter (what
  the tests use; every span is exported as it ends, on the run's thread);
- batch: the SDK's TracerProvider with a BatchSpanProcessor in front of the in-memory exporter
  (how a service exports: spans are queued and exported by a background thread);
- before: with `--baseline SRC`, mode off on another source tree (e.g. `src` of a `git worktree`
  of the commit before tracing), the child importing agentjournal from there.

The table shows medians over `--repeat` rounds and the ratio against mode off measured in the
same run.

    .venv/bin/python benchmarks/tracing.py
    .venv/bin/python benchmarks/tracing.py --quick
    .venv/bin/python benchmarks/tracing.py --baseline /tmp/before/src --repeat 9
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    console.width = 150

MODES = ("off", "memory", "batch", "before")
WORKLOADS = ("runtime", "recorder")
TEXT = ("The order is delayed at the regional hub; the carrier expects it to move tomorrow. " * 13)[:1000]
POLICY = """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
"""


# ----- one child process --------------------------------------------------------------------


def configure(mode: str) -> Any:
    """The global tracer provider of `mode`, and its exporter (None when off)."""
    if mode in ("off", "before"):
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = SimpleSpanProcessor(exporter) if mode == "memory" else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider, exporter


def measure_runtime(url: str, steps: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from agent_steps import measure_agentjournal

    figures = measure_agentjournal("sqlite", url, steps, steps // 2)
    return {"overhead_ms": figures["overhead_ms"], "events": figures["events"]}


def measure_recorder(url: str, steps: int) -> dict[str, Any]:
    from agentjournal.agents import Policy
    from agentjournal.integrations import RunRecorder
    from agentjournal.journal import Journal

    journal = Journal.open(url, create=True)
    recorder = RunRecorder(journal, policy=Policy.from_yaml(POLICY))
    conversation: list[dict[str, Any]] = [{"role": "user", "content": "Where are my orders?"}]
    started = time.perf_counter()
    with recorder.start(agent="bench", input="Where are my orders?", model="claude-sonnet-4-5") as run:
        for step in range(1, steps + 1):
            call = {"id": f"toolu_{step}", "name": "lookup_order", "arguments": {"order_id": f"ORD-{step}"}}
            run.model_call(
                model="claude-sonnet-4-5",
                messages=conversation,
                tool_calls=[call],
                input_tokens=100 + step,
                output_tokens=20,
                latency_ms=300.0,
            )
            run.tool_call("lookup_order", call["arguments"])
            output = {"order_id": f"ORD-{step}", "status": f"step {step}: {TEXT}"}
            run.tool_result(call["id"], output, latency_ms=10.0)
            conversation += [{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "content": output}]
        run.complete("Your orders are on their way.")
    elapsed = time.perf_counter() - started
    events = len(journal.read_stream(run.stream_id))
    journal.close()
    return {"overhead_ms": elapsed * 1000 / steps, "events": events}


MEASURE = {"runtime": measure_runtime, "recorder": measure_recorder}


def child(mode: str, workload: str, url: str, steps: int) -> dict[str, Any]:
    configured = configure(mode)
    figures = MEASURE[workload](url, steps)
    if configured is not None:
        provider, exporter = configured
        provider.force_flush()
        figures["spans_per_step"] = len(exporter.get_finished_spans()) / steps
        provider.shutdown()
    return figures


# ----- the parent ---------------------------------------------------------------------------


def run_child(mode: str, workload: str, steps: int, baseline: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if mode == "before" and baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(baseline), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="tracing-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, workload, url, str(steps)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise SystemExit(f"{workload} in mode {mode} failed: {lines[-1] if lines else done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 steps, 3 rounds: a smoke run")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--baseline", type=Path, help="a source tree without tracing, for mode `before`")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, workload, url, steps = args.child
        print(json.dumps(child(mode, workload, url, int(steps))))
        return 0
    steps = 40 if args.quick else args.steps
    repeat = 3 if args.quick else args.repeat
    workloads = [w for w in args.workloads.split(",") if w]
    wrong = [w for w in workloads if w not in WORKLOADS]
    if wrong:
        parser.error(f"unknown workload(s): {', '.join(wrong)}; choose from {', '.join(WORKLOADS)}")
    if args.baseline is not None and not (args.baseline / "agentjournal" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no agentjournal package there (give the tree's src folder)")
    modes = [m for m in MODES if m != "before" or args.baseline is not None]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w: {m: [] for m in modes} for w in workloads}
    with console.status("measuring") as status:
        for round_ in range(1, repeat + 1):
            for workload in workloads:
                turn = (round_ - 1) % len(modes)
                for mode in modes[turn:] + modes[:turn]:  # modes take turns, each going first in its round
                    status.update(f"round {round_}/{repeat}: {workload}, {mode}")
                    runs[workload][mode].append(run_child(mode, workload, steps, args.baseline))
    table = Table("workload", "mode", "overhead ms/step", "vs off", "spans/step", "events")
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for workload in workloads:
        off = statistics.median(f["overhead_ms"] for f in runs[workload]["off"])
        for mode in modes:
            figures = runs[workload][mode]
            value = statistics.median(f["overhead_ms"] for f in figures)
            spans = statistics.median(f.get("spans_per_step", 0.0) for f in figures)
            medians.setdefault(workload, {})[mode] = {"overhead_ms": value, "vs_off": value / off}
            table.add_row(
                workload, mode, f"{value:.3f}", f"{value / off:.2f}x", f"{spans:.1f}", str(figures[0]["events"])
            )
    console.print(table)
    console.print(
        f"{steps} steps, SQLite (WAL, synchronous=NORMAL), medians of {repeat} rounds, modes taking turns; "
        "spans/step counts every span exported (the run's own span included) over the steps."
    )
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "repeat": repeat, "medians": medians, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
