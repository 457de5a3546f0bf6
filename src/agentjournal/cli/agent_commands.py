"""Agent commands: the demo, human approvals, and listing, resuming, cancelling and replaying runs.

Each command opens the journal named by --db and calls one function of `agentjournal.agents`
(or `agentjournal.projections.queries`); the library is imported inside the command, so
`agentjournal --help` does not load it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import app, console, errors, open_journal
from agentjournal.cli.output import Col, JsonOption, print_json
from agentjournal.cli.params import duration, moment, one_of, parse_time

if TYPE_CHECKING:
    from agentjournal.agents.runtime import RunResult

DEMO_AGENTS = "agentjournal.agents.demo:agents"

approvals_app = typer.Typer(no_args_is_help=True, help="Tool calls a policy sent to a human: list, approve, reject.")
runs_app = typer.Typer(no_args_is_help=True, help="Agent runs: list, show, resume, cancel, replay.")
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


@app.command("demo")
def demo_command(
    db_file: Annotated[
        str | None, typer.Option("--db-file", help="Write the demo journal here (default: a fresh temporary file)")
    ] = None,
) -> None:
    """Two agent runs from the seeds, offline on SQLite: timelines, state at a step, lineage, bisect.

    Example: agentjournal demo
    """
    from agentjournal.agents.demo import demo

    demo(db_file, console)


# ----- approvals -----------------------------------------------------------------------------


@approvals_app.command("list")
def approvals_list(
    all_: Annotated[bool, typer.Option("--all", help="Also decided, expired and closed approvals")] = False,
    as_json: JsonOption = False,
) -> None:
    """Approvals waiting for a human (with --all: every approval), oldest first.

    The approval id, its status, the tool and the first 12 digits of the arguments hash (what
    `approve --hash` takes) are always shown whole; on a narrow terminal the arguments are cut
    and the run, the expiry and the reviewer are left out. --json prints one object per approval,
    everything whole: approval_id, run_id, agent, user_id, tenant_id, tool, arguments,
    arguments_hash, requested_at, expires_at, status, by, reason.

    Example: agentjournal approvals list
    """
    from agentjournal.agents.approvals import MIN_HASH_PREFIX, list_approvals

    found = list_approvals(open_journal(), status=None if all_ else "pending")
    if as_json:
        print_json(found)
        return
    columns = (
        Col("approval", "key"),
        Col("status", "key"),
        Col("tool", "key"),
        Col("args hash", "key"),
        Col("arguments", "text", drop=1),
        Col("run", drop=2),
        Col("expires (UTC)", drop=3),
        Col("decided by", drop=4),
    )
    output.print_table(
        columns,
        [
            (
                item.approval_id,
                item.status,
                item.tool,
                item.arguments_hash[:MIN_HASH_PREFIX],
                json.dumps(item.arguments, sort_keys=True),
                item.run_id,
                (item.expires_at or "never")[:16].replace("T", " "),
                item.by or "",
            )
            for item in found
        ],
    )
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
    from agentjournal.agents.approvals import approve

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
    from agentjournal.agents.approvals import reject

    decided = reject(open_journal(), approval_id, by=by, reason=reason)
    console.print(f"rejected {decided.approval_id} ({decided.tool} in run {decided.run_id}) by {decided.by}")


# ----- runs ----------------------------------------------------------------------------------


def _report(result: RunResult) -> None:
    line = f"run {result.run_id}: {result.status}"
    if result.superseded:
        line += " (another worker advanced it; this one stopped)"
    elif result.waiting and result.status == "running":
        line += f" (waiting: {result.waiting})"
    if result.reason:
        line += f": {result.reason}"
    console.print(line, highlight=False)
    if result.output:
        console.print(f"  answer: {result.output}", highlight=False)
    for approval in result.pending_approvals:
        console.print(f"  waiting for approval {approval.approval_id} ({approval.tool})", highlight=False)


@runs_app.command("list")
def runs_list(
    status: Annotated[
        str | None,
        typer.Option(
            help="Only runs in this status: new, running, waiting_approval, completed, aborted, cancelled, unfinished",
            callback=one_of("new", "running", "waiting_approval", "completed", "aborted", "cancelled", "unfinished"),
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started since: ISO 8601 or ago, e.g. 24h, 7d", callback=moment)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Runs, most recently active first: status, agent, user, when it started and last moved, what it waits for.

    The run id and status are always whole; on a narrow terminal the other columns are left out
    (the user and the start time first). --json prints one object per run: run_id, status, agent,
    root_agent, user_id, tenant_id, started_at, last_event_at, waiting_for, waiting_on, events,
    cost_usd, end_reason.

    Example: agentjournal runs list --status unfinished --since 24h
    """
    from agentjournal.projections.queries import list_runs

    rows = list_runs(open_journal(), status=status, since=parse_time(since, "--since"), limit=limit)
    if as_json:
        print_json(rows)
        return
    columns = (
        Col("run", "key"),
        Col("status", "key"),
        Col("agent", drop=4),
        Col("user", drop=5),
        Col("started", drop=6),
        Col("last event", drop=2),
        Col("waiting for", drop=1),
        Col("reason", "text", drop=3),
    )
    output.print_table(
        columns,
        [
            (
                row.run_id,
                row.status,
                row.agent or "",
                row.user_id or "",
                _when(row.started_at),
                _when(row.last_event_at),
                f"{row.waiting_for}: {row.waiting_on}" if row.waiting_for and row.waiting_on else row.waiting_for or "",
                (row.end_reason or "") if row.status == "aborted" else "",
            )
            for row in rows
        ],
    )
    console.print(f"{len(rows)} run(s)")


def _when(moment: Any) -> str:
    return moment.strftime("%m-%d %H:%M:%S") if moment else ""


@runs_app.command("resume")
def runs_resume(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to resume (default: every run a human unblocked)")
    ] = None,
    agents: AgentsOption = DEMO_AGENTS,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running: resume runs as humans decide, until Ctrl-C or SIGTERM")
    ] = False,
    every: Annotated[
        float, typer.Option(min=0.01, help="With --follow: look for runs to resume every N seconds")
    ] = 1.0,
    stalled_after: Annotated[
        str | None,
        typer.Option(
            help="Also resume runs with no progress for this long (a crashed worker's), e.g. 5m", callback=duration
        ),
    ] = None,
) -> None:
    """Continue runs from the journal: after a crash, a restart, or a human decision.

    Without ids: every run a human unblocked, and with --stalled-after every run that stalled.
    With --follow this is the approvals worker: it resumes each run as soon as a human decides.

    Example: agentjournal runs resume --stalled-after 5m --agents myapp.agents:all_agents
    """
    import asyncio

    from agentjournal.agents.runtime import Runtime, load_agents
    from agentjournal.projections.metrics import parse_duration

    stalled = parse_duration(stalled_after).total_seconds() if stalled_after else None
    runtime = Runtime(open_journal(), agents=load_agents(agents))
    if follow:
        _follow(runtime, every, stalled)
        return
    if run_ids:
        results = [runtime.resume_sync(run_id) for run_id in run_ids]
    else:
        results = asyncio.run(runtime.resume_ready(stalled_after=stalled))
    if not results:
        console.print("no run is waiting to be resumed")
    for result in results:
        _report(result)


def _follow(runtime: Any, every: float, stalled: float | None) -> None:
    import asyncio
    import signal
    import threading

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    errors.print(f"resuming runs as humans decide (every {every:g}s); Ctrl-C stops", highlight=False)

    def report(run_id: str, outcome: Any) -> None:
        if isinstance(outcome, Exception):
            errors.print(f"run {run_id}: cannot resume here: {outcome}", highlight=False)
        else:
            _report(outcome)

    asyncio.run(runtime.serve(stopping.is_set, every_s=every, stalled_after=stalled, report=report))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run, e.g. refund-8842")],
    step: Annotated[int | None, typer.Option("--step", min=0, help="As it was at the end of this step")] = None,
    as_json: JsonOption = False,
) -> None:
    """What a run knew and did, now or at the end of a step: agent, calls, spend, answer.

    One line per tool call, cut to the terminal's width. --json prints one object, everything
    whole: run_id, stream_id, version, status, step and state (the run's whole state, as `state --json`).

    Example: agentjournal runs show refund-8842 --step 2
    """
    from agentjournal.agents.runtime import Runtime

    runtime = Runtime(open_journal())
    state = runtime.load(run_id) if step is None else runtime.load_at_step(run_id, step)
    if as_json:
        print_json(
            [
                {
                    "run_id": state.run_id,
                    "stream_id": state.stream_id,
                    "version": state.version,
                    "status": state.status,
                    "step": state.step,
                    "state": state.snapshot_state(),
                }
            ]
        )
        return
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
        result = call.error or json.dumps(call.output, sort_keys=True)
        if call.output_ref:
            result = f"(stored once as {call.output_ref[:17]}…)"
        status = call.status if not call.decision else f"{call.status}, {call.decision}"
        line = f"  step {call.step:>2}  {call.tool}({json.dumps(call.arguments)}) [{status}] → {result}"
        console.print(Text(line), no_wrap=True, overflow="ellipsis")
    for approval in state.pending_approvals():
        console.print(f"  waiting for approval {approval.approval_id} ({approval.tool})", highlight=False)
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
    """Cancel a run: RunCancelled is appended, its pending approvals close, and any worker stops at its next step.

    Example: agentjournal runs cancel ops-7731 --reason "duplicate ticket" --by alice
    """
    from agentjournal.agents.runtime import Runtime

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

    A request the recording does not have stops the replay, naming what changed, with both calls side by side.

    Example: agentjournal runs replay refund-8842 --agents myapp.agents:all_agents
    """
    from agentjournal.agents.replay import replay_sync
    from agentjournal.agents.runtime import load_agents

    result = replay_sync(open_journal(), run_id, load_agents(agents))
    same = "the same answer" if result.same_response else "a different answer"
    console.print(
        f"replayed run {run_id}: {result.replayed.status} with {same}, "
        f"{result.replayed.state.version} events (recorded: {result.original.version})"
    )
