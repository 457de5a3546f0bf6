"""The agent-steps benchmark: what recording a long agent run costs, against LangGraph and DBOS.

A run of `--steps` steps (200 by default), each adding about 1 KB to the conversation:

- agentjournal: the runtime with the scripted model; each step is a model call that asks for a
  tool, and the tool's ~1 KB result (4 events: ModelCalled, ToolProposed, ToolExecuted,
  ObservationCaptured), on SQLite and PostgreSQL;
- LangGraph: a loop graph whose node appends one ~1 KB message per step, with its SQLite and
  Postgres checkpointers ("langgraph"), with agentjournal's checkpointer (JournalSaver, on the same
  journal URLs as agentjournal: "langgraph+agentjournal"), and with no checkpointer at all
  ("langgraph-bare": what the graph costs alone, so the checkpointers' own cost shows);
- DBOS: a workflow of `--steps` steps, each returning a ~1 KB message, on SQLite and PostgreSQL.

Figures, medians over `--repeat` runs, each system in its own fresh process and database:

- overhead per step: wall time per step minus the time spent in the model and the tool (or the
  node / step body) themselves, i.e. what the recording adds; also for the first and the last
  20 steps, which shows whether the cost grows with the conversation;
- stored bytes / message bytes: the bytes the run occupies in the database (rows, page slack
  and indexes, as the database counts them) over the bytes of the messages it produced; for
  agentjournal also the payload alone (the events' data, without envelopes and indexes);
- state at step 100: the time to get the run's state as it was after step 100.

    .venv/bin/python benchmarks/agent_steps.py                 # make bench
    .venv/bin/python benchmarks/agent_steps.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import itertools
import json
import operator
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
if not console.is_terminal:
    console.width = 160

BACKENDS = ("sqlite", "postgres")
SYSTEMS = ("agentjournal", "langgraph", "langgraph+agentjournal", "langgraph-bare", "dbos")
TEXT = ("The order is delayed at the regional hub; the carrier expects it to move tomorrow. " * 13)[:1000]
STATE_STEP = 100
TAIL = 20


def message(step: int) -> str:
    return f"step {step}: {TEXT}"


# ----- measuring one system in a child process -----------------------------------------------


class Clock:
    """Sums the time spent inside the model / tool / node bodies, to subtract it from the wall time."""

    def __init__(self) -> None:
        self.inside = 0.0
        self.step_ends: list[float] = []

    @contextmanager
    def body(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.inside += time.perf_counter() - started

    def mark(self) -> None:
        self.step_ends.append(time.perf_counter() - self.inside)


def _per_step(clock: Clock, started: float, steps: int) -> dict[str, float]:
    """Overhead per step (ms): overall, over the first and over the last TAIL steps."""
    ends = [started, *clock.step_ends]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ends)]
    return {
        "overhead_ms": statistics.fmean(gaps[:steps]),
        "first_ms": statistics.fmean(gaps[:TAIL]),
        "last_ms": statistics.fmean(gaps[steps - TAIL : steps]),
    }


def _timed(fn: Callable[[], Any], times: int = 30) -> float:
    fn()  # warm: connections, caches, snapshots
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure_agentjournal(backend: str, url: str, steps: int, state_step: int) -> dict[str, Any]:
    from agentjournal.agents import Agent, RunOptions, RunState, Runtime, ScriptedModel, call, tool
    from agentjournal.journal import Journal
    from agentjournal.journal.envelope import canonical_json
    from agentjournal.model import Repository

    clock = Clock()

    @tool
    async def note(step: int) -> str:
        """Returns the step's ~1 KB note."""
        with clock.body():
            return message(step)

    def script(request: Any) -> Any:
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return call("note", step=turn + 1) if turn < steps else "done"

    class MarkingModel(ScriptedModel):
        """The scripted model, timed; a request that carries a tool result marks the end of a step."""

        async def request(self, request: Any) -> Any:
            if request.messages[-1]["role"] == "tool":
                clock.mark()
            with clock.body():
                return await super().request(request)

    journal = Journal.open(url, create=True)
    agent = Agent("bench", "You benchmark.", MarkingModel(script), tools=[note])
    runtime = Runtime(journal, options=RunOptions(max_steps=steps + 1))
    started = time.perf_counter()
    result = runtime.run_sync(agent, "go", run_id="bench")
    assert result.status == "completed", result.reason
    figures = _per_step(clock, started, steps)
    wire = [result.state.wire(m, runtime.blobs.get) for m in result.state.messages[1:]]
    message_bytes = sum(len(canonical_json(m)) for m in wire)
    events = journal.read_stream("run-bench")
    at_step = next(
        e.version for e in events if e.type == "ObservationCaptured" and e.data["call_id"] == f"call_{state_step}_1"
    )
    repository = Repository(journal, RunState)
    state = repository.load_at_version("run-bench", at_step)
    assert state.step == state_step and len(state.messages) == 1 + 2 * state_step
    figures["state_ms"] = _timed(lambda: repository.load_at_version("run-bench", at_step))
    figures["stored_bytes"] = _stored_bytes(journal, backend)
    figures["payload_bytes"] = sum(len(event.data_json) for event in events)
    figures["message_bytes"] = message_bytes
    figures["events"] = len(events)
    journal.close()
    return figures


def _stored_bytes(journal: Any, backend: str) -> int:
    """The run's rows and index entries in the journal's tables, as the database counts them."""
    if backend == "sqlite":
        rows = journal.query(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'aj_events%' OR name LIKE 'aj_streams%' "
            "OR name LIKE 'sqlite_autoindex_aj_events%' OR name LIKE 'sqlite_autoindex_aj_streams%'"
        )
        return int(rows[0][0])
    rows = journal.query(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname IN ('aj_events', 'aj_streams')"
    )
    return int(rows[0][0])


class _GraphState(TypedDict):
    messages: Annotated[list[str], operator.add]
    step: int


def measure_langgraph(backend: str, url: str, steps: int, state_step: int) -> dict[str, Any]:
    with _langgraph_saver(backend, url) as (saver, size):
        return _measure_graph(saver, lambda: {"stored_bytes": size()}, steps, state_step)


def measure_langgraph_agentjournal(backend: str, url: str, steps: int, state_step: int) -> dict[str, Any]:
    """The same graph with agentjournal's checkpointer, which also records the graph's run in the contract."""
    from agentjournal.integrations.langgraph import JournalSaver
    from agentjournal.journal import Journal

    journal = Journal.open(url, create=True)

    def stored() -> dict[str, int]:
        events = [event for stream in journal.streams() for event in journal.read_stream(stream.stream_id)]
        return {
            "stored_bytes": _stored_bytes(journal, backend),
            "payload_bytes": sum(len(event.data_json) for event in events),
            "events": len(events),
        }

    try:
        figures = _measure_graph(JournalSaver(journal), stored, steps, state_step)
        # A process that has not read the thread yet folds its stream first (the figure above reads it warm).
        cold = _graph(JournalSaver(journal), steps, Clock())
        at = next(s for s in cold.get_state_history(_CONFIG) if s.values.get("step") == state_step).config
        started = time.perf_counter()
        JournalSaver(journal).get_tuple(at)
        figures["cold_state_ms"] = (time.perf_counter() - started) * 1000
        return figures
    finally:
        journal.close()


def measure_langgraph_bare(backend: str, url: str, steps: int, state_step: int) -> dict[str, Any]:
    """The same graph with no checkpointer: nothing is stored, there is no state to go back to."""
    return _measure_graph(None, None, steps, state_step)


_CONFIG: Any = {"configurable": {"thread_id": "bench"}}


def _graph(saver: Any, steps: int, clock: Clock) -> Any:
    from langgraph.graph import END, START, StateGraph

    def node(state: _GraphState) -> dict[str, Any]:
        if state["step"]:
            clock.mark()
        with clock.body():
            return {"messages": [message(state["step"] + 1)], "step": state["step"] + 1}

    builder = StateGraph(_GraphState)
    builder.add_node("step", node)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: END if state["step"] >= steps else "step")
    return builder.compile(checkpointer=saver)


def _measure_graph(
    saver: Any, stored: Callable[[], dict[str, int]] | None, steps: int, state_step: int
) -> dict[str, Any]:
    """The loop graph on `saver` at LangGraph's default durability ("async": a step's checkpoint is saved
    while the next step runs, and `invoke` waits for every save before it returns); then, on a second
    thread, at durability "sync" (each step waits for its checkpoint), which shows the saver's own cost
    per step from the first to the last steps without the final wait (`sync_*` figures)."""
    clock = Clock()
    graph = _graph(saver, steps, clock)
    config: Any = {**_CONFIG, "recursion_limit": steps + 10}
    started = time.perf_counter()
    final = graph.invoke({"messages": [], "step": 0}, config)
    clock.mark()
    assert final["messages"][-1] == message(steps)
    figures = _per_step(clock, started, steps)
    figures["message_bytes"] = sum(len(json.dumps(message(n + 1))) for n in range(steps))
    if saver is not None and stored is not None:
        history = list(graph.get_state_history(config))
        at = next(s for s in history if s.values.get("step") == state_step)
        figures["state_ms"] = _timed(lambda: graph.get_state(at.config))
        assert graph.get_state(at.config).values["messages"] == [message(n + 1) for n in range(state_step)]
        figures.update(stored())
    if saver is None:
        return figures  # LangGraph refuses durability="sync" without a checkpointer
    clock.inside, clock.step_ends = 0.0, []
    config = {"configurable": {"thread_id": "bench-sync"}, "recursion_limit": steps + 10}
    started = time.perf_counter()
    graph.invoke({"messages": [], "step": 0}, config, durability="sync")
    clock.mark()
    figures.update({f"sync_{key}": value for key, value in _per_step(clock, started, steps).items()})
    return figures


@contextmanager
def _langgraph_saver(backend: str, url: str) -> Iterator[tuple[Any, Callable[[], int]]]:
    if backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()

        def size() -> int:
            return int(conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name NOT LIKE 'sqlite_%'").fetchone()[0])

        yield saver, size
        conn.close()
        return
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        saver = PostgresSaver(conn)
        saver.setup()

        def size() -> int:
            row = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchone()
            return int(row["bytes"]) if row else 0

        yield saver, size


def measure_dbos(backend: str, url: str, steps: int, state_step: int) -> dict[str, Any]:
    from dbos import DBOS

    clock = Clock()
    database = url if backend == "sqlite" else _postgres_database(url)
    DBOS(config={"name": "agent-steps-bench", "system_database_url": database, "run_admin_server": False})

    @DBOS.step()
    def step(n: int) -> str:
        with clock.body():
            return message(n)

    @DBOS.workflow()
    def workflow(count: int) -> int:
        for n in range(1, count + 1):
            step(n)
            clock.mark()
        return count

    DBOS.launch()
    try:
        started = time.perf_counter()
        handle = DBOS.start_workflow(workflow, steps)
        assert handle.get_result() == steps
        figures = _per_step(clock, started, steps)
        workflow_id = handle.get_workflow_id()

        def state_at_step() -> list[Any]:
            return [s["output"] for s in DBOS.list_workflow_steps(workflow_id)[:state_step]]

        figures["state_ms"] = _timed(state_at_step, times=10)
        figures["stored_bytes"] = _dbos_bytes(backend, database)
        figures["message_bytes"] = sum(len(json.dumps(message(n + 1))) for n in range(steps))
    finally:
        DBOS.destroy()
    return figures


def _postgres_database(url: str) -> str:
    import psycopg

    base = url.partition("?")[0]
    name = "dbos_bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def _dbos_bytes(backend: str, database: str) -> int:
    if backend == "sqlite":
        conn = sqlite3.connect(database.removeprefix("sqlite:///"))
        try:
            return int(conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name NOT LIKE 'sqlite_%'").fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind = 'r'"
        ).fetchone()
        return int(row[0]) if row and row[0] else 0


MEASURE = {
    "agentjournal": measure_agentjournal,
    "langgraph": measure_langgraph,
    "langgraph+agentjournal": measure_langgraph_agentjournal,
    "langgraph-bare": measure_langgraph_bare,
    "dbos": measure_dbos,
}


# ----- the parent: fresh databases, child processes, medians, the report ----------------------


@contextmanager
def fresh_url(system: str, backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="agent-steps-") as folder:
            yield f"sqlite:///{Path(folder) / (system + '.db')}"
        return
    from agentjournal.testing import databases

    with databases.postgres_schema() as url:
        yield url


def run_child(system: str, backend: str, steps: int, state_step: int) -> dict[str, Any]:
    with fresh_url(system, backend) as url:
        done = subprocess.run(
            [sys.executable, __file__, "--child", system, backend, url, str(steps), str(state_step)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def unavailable(system: str) -> str | None:
    """Why a peer cannot run here (its package is missing), or None."""
    module = {
        "agentjournal": "agentjournal",
        "langgraph": "langgraph.checkpoint.sqlite",
        "langgraph+agentjournal": "agentjournal.integrations.langgraph",
        "langgraph-bare": "langgraph.graph",
        "dbos": "dbos",
    }[system]
    try:
        __import__(module)
    except ImportError as exc:
        return f"not installed ({exc}); install the `bench` extra: pip install -e '.[bench]'"
    if system == "langgraph":
        try:
            __import__("langgraph.checkpoint.postgres")
        except ImportError as exc:
            return f"langgraph-checkpoint-postgres is not installed ({exc})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 steps, 1 repeat: a smoke run")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        system, backend, url, count, at = args.child
        print(json.dumps(MEASURE[system](backend, url, int(count), int(at))))
        return 0
    steps = 40 if args.quick else args.steps
    repeat = 1 if args.quick else args.repeat
    backends = [b for b in args.backends.split(",") if b]
    systems = [s for s in args.systems.split(",") if s]
    for name, known, kind in ((backends, BACKENDS, "backend"), (systems, SYSTEMS, "system")):
        wrong = [item for item in name if item not in known]
        if wrong:
            parser.error(f"unknown {kind}(s): {', '.join(wrong)}; choose from {', '.join(known)}")
    if steps < max(STATE_STEP, 2 * TAIL) and not args.quick:
        parser.error(f"--steps must be at least {STATE_STEP}")
    state_step = steps // 2 if args.quick else STATE_STEP
    reasons: dict[tuple[str, str], str] = {}
    if "postgres" in backends:
        from agentjournal.testing import databases

        if reason := databases.unreachable("PostgreSQL", databases.POSTGRES_URL):
            for system in systems:
                reasons[(system, "postgres")] = reason
    for system in systems:
        if reason := unavailable(system):
            for backend in backends:
                reasons[(system, backend)] = reason
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    jobs = [(b, s) for b in backends for s in systems if (s, b) not in reasons]
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"{steps}-step runs", total=len(jobs) * repeat)
        for _ in range(repeat):
            for backend, system in jobs:  # systems take turns, so machine noise hits them alike
                progress.update(task, description=f"{system} on {backend}")
                figures = run_child(system, backend, steps, state_step)
                runs.setdefault(backend, {}).setdefault(system, []).append(figures)
                progress.advance(task)
    table, medians = report(runs, reasons, backends, systems)
    console.print(table)
    console.print(
        f"{steps} steps of ~1 KB messages, medians of {repeat} run(s); overhead = wall time per step minus the "
        "time inside the model, tool, node or step body. Targets (agentjournal): <= 0.5 ms/step on SQLite, "
        "<= 2 ms on PostgreSQL, flat from the first to the last 20 steps, state at step 100 < 1 ms; "
        "(langgraph+agentjournal): stored <= 1.5x the message bytes, flat, faster per step than LangGraph's savers."
    )
    for (system, backend), reason in sorted(reasons.items()):
        console.print(f"[yellow]{system} on {backend} did not run:[/yellow] {reason}")
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "repeat": repeat, "medians": medians, "runs": runs}, indent=2))
    failed = [(s, b) for b, by in runs.items() for s, figures in by.items() if any("error" in f for f in figures)]
    return 1 if any(s in ("agentjournal", "langgraph+agentjournal") for s, _ in failed) else 0


FIELDS = (
    ("overhead_ms", "overhead ms/step", "{:.3f}"),
    ("first_ms", f"first {TAIL} ms/step", "{:.3f}"),
    ("last_ms", f"last {TAIL} ms/step", "{:.3f}"),
    ("ratio", "stored / message bytes", "{:.2f}x"),
    ("payload_ratio", "payload / message bytes", "{:.2f}x"),
    ("state_ms", "state at step 100 (ms)", "{:.3f}"),
)


def report(
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    reasons: dict[tuple[str, str], str],
    backends: list[str],
    systems: list[str],
) -> tuple[Table, dict[str, dict[str, dict[str, float]]]]:
    table = Table("backend", "system", *(title for _, title, _ in FIELDS))
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for backend in backends:
        for system in systems:
            figures = runs.get(backend, {}).get(system, [])
            errors = [f["error"] for f in figures if "error" in f]
            if (system, backend) in reasons or errors:
                why = reasons.get((system, backend)) or errors[0]
                table.add_row(backend, system, f"[yellow]did not run: {why}[/yellow]", *[""] * (len(FIELDS) - 1))
                continue
            for f in figures:
                if "stored_bytes" in f:
                    f["ratio"] = f["stored_bytes"] / f["message_bytes"]
                if "payload_bytes" in f:
                    f["payload_ratio"] = f["payload_bytes"] / f["message_bytes"]
            values = {key: statistics.median(f[key] for f in figures) for key, _, _ in FIELDS if key in figures[0]}
            medians.setdefault(backend, {})[system] = values
            cells = [fmt.format(values[key]) if key in values else "-" for key, _, fmt in FIELDS]
            table.add_row(backend, system, *cells)
    return table, medians


if __name__ == "__main__":
    sys.exit(main())
