"""The MCP integration benchmark: what journaling adds to one `call_tool` to a stdio MCP server.

The server is an `MCPServer` started by the SDK's `stdio_client` as a child process (this file run
with `--serve`), with two tools that return their argument: `echo` (no annotations: a side effect,
so the journaled client claims it) and `echo_ro` (`readOnlyHint`: not claimed). Per round, the
calls take turns one by one on the same connection, so the server's and the machine's noise hit
them alike; each figure is the median wall time of one call, per round, and the table shows the
median over `--repeat` rounds:

- client, SDK alone: `ClientSession.call_tool("echo")`, the session not wrapped;
- client, journaled, read-only tool: the same session wrapped in `JournaledSession`, inside a
  recorded run under a policy (4 events: ToolProposed, PolicyEvaluated, ToolExecuted,
  ObservationCaptured);
- client, journaled, claimed tool: the same with ToolClaimed (5 events);
- server, SDK alone / journaled: a plain client calling `echo` on a second and a third server
  process, one plain and one with `journal_server` (a run of its own per call: 9 events, the call
  claimed before the tool runs);
- in-process server: the same client calls through `mcp.Client(server)`, the SDK's in-process
  dispatcher (no pipes, no second process), which shows the recording's cost with the least noise.

Overhead = journaled minus SDK alone, per call, measured in the same run. Target: at most 0.5 ms
per step (a call) on SQLite at the default durability.

    .venv/bin/python benchmarks/integration_mcp.py
    .venv/bin/python benchmarks/integration_mcp.py --quick --backends sqlite
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    console.width = 150

BACKENDS = ("sqlite", "postgres")
TARGET_MS = 0.5
POLICY = """
version: 1
rules:
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
"""
KINDS = (
    "client_bare",
    "client_read_only",
    "client_claimed",
    "server_bare",
    "server_journaled",
    "inproc_bare",
    "inproc_read_only",
    "inproc_claimed",
)
TITLES = {
    "client_bare": "client, SDK alone",
    "client_read_only": "client, journaled, read-only tool (4 events)",
    "client_claimed": "client, journaled, claimed tool (5 events)",
    "server_bare": "server, SDK alone",
    "server_journaled": "server, journaled: a run per call (9 events)",
    "inproc_bare": "in-process server, SDK alone",
    "inproc_read_only": "in-process server, journaled, read-only tool",
    "inproc_claimed": "in-process server, journaled, claimed tool",
}
BASELINE = {
    "client_read_only": "client_bare",
    "client_claimed": "client_bare",
    "server_journaled": "server_bare",
    "inproc_read_only": "inproc_bare",
    "inproc_claimed": "inproc_bare",
}


# ----- the server (this file with --serve) -------------------------------------------------------


def build_server() -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo_ro(text: str) -> str:
        return text

    return server


def serve(journal_url: str | None) -> None:
    server = build_server()
    if journal_url:
        from agentjournal import Journal
        from agentjournal.agents import Policy
        from agentjournal.integrations import RunRecorder
        from agentjournal.integrations.mcp import journal_server

        journal_server(server, RunRecorder(Journal.open(journal_url), policy=Policy.from_yaml(POLICY)))
    server.run()


# ----- the client --------------------------------------------------------------------------------


async def one_round(client_url: str, server_url: str, calls: int) -> dict[str, float]:
    from mcp import Client, ClientSession, StdioServerParameters, stdio_client

    from agentjournal import Journal
    from agentjournal.agents import Policy
    from agentjournal.integrations import RunRecorder
    from agentjournal.integrations.mcp import JournaledSession

    def params(*extra: str) -> StdioServerParameters:
        return StdioServerParameters(command=sys.executable, args=[__file__, "--serve", *extra])

    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    async with AsyncExitStack() as stack:
        sessions = []
        for extra in ((), (), ("--journal", server_url)):
            read, write = await stack.enter_async_context(stdio_client(params(*extra)))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions.append(session)
        client, server_bare, server_journaled = sessions
        local = await stack.enter_async_context(Client(build_server()))  # the SDK's in-process dispatcher
        wrapped_local = JournaledSession(local)
        await wrapped_local.list_tools()
        journal = stack.enter_context(Journal.open(client_url))
        wrapped = JournaledSession(client)
        await wrapped.list_tools()  # it learns that echo_ro is read-only
        recorder = RunRecorder(journal, policy=Policy.from_yaml(POLICY))

        async def timed(kind: str, session: Any, tool: str, arguments: dict[str, Any]) -> None:
            started = time.perf_counter()
            result = await session.call_tool(tool, arguments)
            samples[kind].append((time.perf_counter() - started) * 1000)
            if result.is_error:
                raise RuntimeError(f"{kind}: {result.content}")

        for warm in (True, False):
            for start in range(0, calls, 50):  # a run of 50 calls, like a long agent run's steps
                with recorder.start(agent="bench", input="benchmark the MCP integration"):
                    for index in range(start, min(calls, start + 50)):
                        text = {"text": f"call {index}"}
                        await timed("client_bare", client, "echo", text)
                        await timed("client_read_only", wrapped, "echo_ro", text)
                        await timed("client_claimed", wrapped, "echo", text)
                        await timed("server_bare", server_bare, "echo", text)
                        await timed("server_journaled", server_journaled, "echo", text)
                        await timed("inproc_bare", local, "echo", text)
                        await timed("inproc_read_only", wrapped_local, "echo_ro", text)
                        await timed("inproc_claimed", wrapped_local, "echo", text)
            if warm:
                for values in samples.values():
                    values.clear()
    return {kind: statistics.median(values) for kind, values in samples.items()}


def _fresh_url(backend: str, folder: Path, name: str, stack: Any) -> str:
    from agentjournal import Journal

    if backend == "sqlite":
        url = f"sqlite:///{folder / name}.db"
    else:
        from agentjournal.testing import databases

        url = stack.enter_context(databases.postgres_schema())
    Journal.open(url, create=True).close()
    return url


def measure(backend: str, calls: int, repeat: int) -> list[dict[str, float]]:
    from contextlib import ExitStack

    rounds = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
            client_url = _fresh_url(backend, Path(folder), "client", stack)
            server_url = _fresh_url(backend, Path(folder), "server", stack)
            rounds.append(anyio.run(one_round, client_url, server_url, calls))
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 round of 50 calls: a smoke run")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--calls", type=int, default=500, help="timed calls of each kind per round (default 500)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgres (default both)")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.journal)
        return 0
    repeat = 1 if args.quick else args.repeat
    calls = 50 if args.quick else args.calls
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    figures: dict[str, dict[str, float]] = {}
    all_rounds: dict[str, list[dict[str, float]]] = {}
    for backend in backends:
        if backend == "postgres":
            from agentjournal.testing import databases

            if reason := databases.unreachable("PostgreSQL", databases.POSTGRES_URL):
                console.print(f"[yellow]postgres skipped:[/yellow] {reason}")
                continue
        console.print(f"{backend}: {repeat} round(s) of {calls} calls of each kind ...")
        rounds = all_rounds[backend] = measure(backend, calls, repeat)
        figures[backend] = {kind: statistics.median(r[kind] for r in rounds) for kind in KINDS}
    table = Table("backend", "measurement", "median ms/call", "overhead ms/call", "vs SDK alone")
    met = True
    for backend, medians in figures.items():
        for kind in KINDS:
            base = BASELINE.get(kind)
            overhead = medians[kind] - medians[base] if base else None
            ratio = f"{medians[kind] / medians[base]:.2f}x" if base else "1.00x"
            table.add_row(
                backend, TITLES[kind], f"{medians[kind]:.3f}", "" if overhead is None else f"{overhead:.3f}", ratio
            )
            if backend == "sqlite" and kind.startswith(("client_", "inproc_")) and overhead is not None:
                met = met and overhead <= TARGET_MS
    console.print(table)
    if "sqlite" in figures:
        verdict = "met" if met else "[bold]missed[/bold]"
        console.print(f"Target: a journaled client call adds at most {TARGET_MS} ms on SQLite: {verdict}.")
    if args.json:
        args.json.write_text(json.dumps({"repeat": repeat, "calls": calls, "medians": figures, "rounds": all_rounds}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
