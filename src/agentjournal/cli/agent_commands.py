"""Agent commands: the demo, human approvals, and resuming, cancelling and replaying runs.

Each command opens the journal named by --db and calls one function of `agentjournal.agents`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agentjournal.agents.agent import Agent
from agentjournal.agents.approvals import approve, list_approvals, reject
from agentjournal.agents.demo import demo
from agentjournal.agents.replay import replay_sync
from agentjournal.agents.runtime import RunError, RunResult, Runtime
from agentjournal.cli.app import app, console, errors, open_journal
from agentjournal.model import import_object

DEMO_AGENTS = "agentjournal.agents.demo:agents"

approvals_app = typer.Typer(no_args_is_help=True, help="Tool calls a policy sent to a human: list, approve, reject.")
runs_app = typer.Typer(no_args_is_help=True, help="Agent runs: resume, cancel, replay.")
app.add_typer(approvals_app, name="approvals")
app.add_typer(runs_app, name="runs")

AgentsOption = Annotated[
    str,
    typer.Option(
        "--agents",
        envvar="AGENTJOURNAL_AGENTS",
        help="package.module:attr naming your agents (a list of Agent, or a function returning one)",
    ),
]


def load_agents(path: str) -> list[Agent]:
    """The agents named by `package.module:attr` (a list of Agent or a function returning one)."""
    found: Any = import_object(path, "agents")
    if callable(found) and not isinstance(found, Agent):
        try:
            found = found()
        except TypeError as exc:
            raise RunError(f"agents {path!r} is a function that cannot be called without arguments: {exc}") from None
    items = [found] if isinstance(found, Agent) else list(found) if isinstance(found, list | tuple) else None
    if not items or not all(isinstance(item, Agent) for item in items):
        raise RunError(f"agents {path!r} is {found!r}, not an Agent or a list of Agent")
    return items


@app.command("demo")
def demo_command(
    db_file: Annotated[
        str | None, typer.Option("--db-file", help="Write the demo journal here (default: a fresh temporary file)")
    ] = None,
) -> None:
    """Two agent runs from the seeds, offline on SQLite: timelines, state at a step, lineage, bisect.

    Example: agentjournal demo
    """
    demo(db_file, console)


@approvals_app.command("list")
def approvals_list(
    all_: Annotated[bool, typer.Option("--all", help="Also decided and expired approvals")] = False,
) -> None:
    """Approvals waiting for a human (with --all: every approval), oldest first.

    Example: agentjournal approvals list
    """
    found = list_approvals(open_journal(), status=None if all_ else "pending")
    table = Table("approval", "run", "agent", "tool", "arguments", "args hash", "status", "expires (UTC)")
    for column in table.columns[:4]:
        column.no_wrap = True
    for item in found:
        status = item.status if item.by is None else f"{item.status} by {item.by}"
        table.add_row(
            item.approval_id,
            item.run_id,
            item.agent,
            item.tool,
            json.dumps(item.arguments, sort_keys=True)[:80],
            item.arguments_hash[:12],
            status,
            (item.expires_at or "never")[:19],
        )
    console.print(table)
    console.print(f"{len(found)} approval(s)" + ("" if all_ else " pending"))


ById = Annotated[str, typer.Option("--by", help="Who decides (recorded with the decision)")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded with the decision)")]


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id, e.g. apr-3f9a2c1b0d4e")],
    by: ById,
    reason: Reason,
    arguments_hash: Annotated[
        str | None, typer.Option("--hash", help="The arguments hash you were shown (12+ digits); refused if it differs")
    ] = None,
) -> None:
    """Approve a held tool call; the run's worker executes exactly that call, once, when it resumes.

    Example: agentjournal approvals approve apr-3f9a2c1b0d4e --by alice --reason "partner confirmed"
    """
    decided = approve(open_journal(), approval_id, by=by, reason=reason, arguments_hash=arguments_hash)
    console.print(f"approved {decided.approval_id} ({decided.tool} in run {decided.run_id}) by {decided.by}")
    console.print(f"resume it with: agentjournal runs resume {decided.run_id}")


@approvals_app.command("reject")
def approvals_reject(
    approval_id: Annotated[str, typer.Argument(help="The approval id")],
    by: ById,
    reason: Reason,
) -> None:
    """Reject a held tool call; the agent is told it was rejected and why.

    Example: agentjournal approvals reject apr-3f9a2c1b0d4e --by bob --reason "not our customer"
    """
    decided = reject(open_journal(), approval_id, by=by, reason=reason)
    console.print(f"rejected {decided.approval_id} ({decided.tool} in run {decided.run_id}) by {decided.by}")


def _report(result: RunResult) -> None:
    line = f"run {result.run_id}: {result.status}"
    if result.superseded:
        line += " (another worker advanced it; this one stopped)"
    if result.reason:
        line += f": {result.reason}"
    console.print(line)
    if result.output:
        console.print(f"  answer: {result.output}")
    for approval in result.pending_approvals:
        console.print(f"  waiting for approval {approval['approval_id']} ({approval['tool']})")


@runs_app.command("resume")
def runs_resume(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to resume (default: every run a human unblocked)")
    ] = None,
    agents: AgentsOption = DEMO_AGENTS,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running: resume runs as humans decide, until Ctrl-C or SIGTERM")
    ] = False,
    every: Annotated[float, typer.Option(help="With --follow: look for unblocked runs every N seconds")] = 1.0,
) -> None:
    """Continue runs from the journal: after a crash, a restart, or a human decision.

    With --follow this is the approvals worker: it resumes each run as soon as a human decides.

    Example: agentjournal runs resume ops-7731 --agents myapp.agents:all_agents
    """
    runtime = Runtime(open_journal(), agents=load_agents(agents))
    if follow:
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        errors.print(f"resuming runs as humans decide (every {every:g}s); Ctrl-C stops", highlight=False)

        def report(run_id: str, outcome: RunResult | Exception) -> None:
            if isinstance(outcome, Exception):
                errors.print(f"run {run_id}: cannot resume here: {outcome}", highlight=False)
            else:
                _report(outcome)

        asyncio.run(runtime.serve(stopping.is_set, every_s=every, report=report))
        return
    results = [runtime.resume_sync(run_id) for run_id in run_ids] if run_ids else asyncio.run(runtime.resume_ready())
    if not results:
        console.print("no run is waiting to be resumed")
    for result in results:
        _report(result)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run, e.g. refund-8842")],
    step: Annotated[int | None, typer.Option("--step", min=0, help="As it was at the end of this step")] = None,
) -> None:
    """What a run knew and did, now or at the end of a step: agent, calls, spend, answer.

    Example: agentjournal runs show refund-8842 --step 2
    """
    runtime = Runtime(open_journal())
    state = runtime.load(run_id) if step is None else runtime.load_at_step(run_id, step)
    at = (
        f"at the end of step {step} (version {state.version})" if step is not None else f"now (version {state.version})"
    )
    console.print(f"[bold]run {state.run_id}[/bold] {at}: {state.status}", highlight=False)
    console.print(
        f"  agent {state.agent} (started by {state.root_agent} v{state.agent_version}, model {state.model}); "
        f"step {state.step}; {state.tokens} tokens, ${state.cost_usd:.6f}",
        highlight=False,
    )
    console.print(f"  user {state.user_id or '-'} said: {state.input}", highlight=False)
    for call in state.calls.values():  # one line per call, cut to the terminal's width
        result = call.get("error") or json.dumps(call.get("output"), sort_keys=True)
        if call.get("output_ref"):
            result = f"(stored once as {call['output_ref'][:17]}…)"
        status = call["status"] if not call.get("decision") else f"{call['status']}, {call['decision']}"
        line = f"  step {call['step']:>2}  {call['tool']}({json.dumps(call['arguments'])}) [{status}] → {result}"
        console.print(Text(line), no_wrap=True, overflow="ellipsis")
    for approval in state.pending_approvals():
        console.print(f"  waiting for approval {approval['approval_id']} ({approval['tool']})", highlight=False)
    if state.final_response:
        console.print(f"  answer: {state.final_response}", highlight=False)
    if state.reason:
        console.print(f"  reason: {state.reason}", highlight=False)


@runs_app.command("cancel")
def runs_cancel(
    run_id: Annotated[str, typer.Argument(help="The run to cancel")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded)")] = "cancelled from the command line",
    by: Annotated[str | None, typer.Option("--by", help="Who cancels (recorded)")] = None,
) -> None:
    """Cancel a run: RunCancelled is appended and any worker advancing it stops at its next step.

    Example: agentjournal runs cancel ops-7731 --reason "duplicate ticket" --by alice
    """
    runtime = Runtime(open_journal())
    if runtime.cancel(run_id, reason, by=by):
        console.print(f"run {run_id}: cancelled")
    else:
        console.print(f"run {run_id}: already {runtime.load(run_id).status}; nothing to cancel")


@runs_app.command("replay")
def runs_replay(
    run_id: Annotated[str, typer.Argument(help="The recorded run to re-execute")],
    agents: AgentsOption = DEMO_AGENTS,
) -> None:
    """Re-execute a run's agent code with its recorded model replies and tool results (nothing is called).

    A request the recording does not have stops the replay with both calls side by side.

    Example: agentjournal runs replay refund-8842 --agents myapp.agents:all_agents
    """
    result = replay_sync(open_journal(), run_id, load_agents(agents))
    same = "the same answer" if result.same_response else "a different answer"
    console.print(
        f"replayed run {run_id}: {result.replayed.status} with {same}, "
        f"{result.replayed.state.version} events (recorded: {result.original.version})"
    )
