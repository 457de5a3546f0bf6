"""Policy commands: check a policy file, try one call against it, judge past runs again under it.

`policy replay` is seed 001's "policy regression checks in CI": every past tool call in the
journal is decided again under a new policy file, and the calls it would decide differently are
listed (with `--fail-on-change`, the command fails when there is one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from agentjournal.cli.app import app, console, fail, open_journal, progress_bar

if TYPE_CHECKING:
    from agentjournal.agents.policy import Policy

policy_app = typer.Typer(no_args_is_help=True, help="Policy-as-code files: check one, try a call, judge past runs.")
app.add_typer(policy_app, name="policy")

PolicyFile = Annotated[Path, typer.Argument(help="The policy file (YAML)", show_default=False)]
_STYLE = {"allow": "green", "deny": "bold red", "require_human_approval": "yellow"}


def _load(path: Path) -> Policy:
    from agentjournal.agents.policy import Policy, PolicyError

    try:
        return Policy.load(path)
    except PolicyError as exc:
        fail(str(exc))


def _action(action: str | None) -> str:
    return f"[{_STYLE.get(action or '', 'dim')}]{action or '-'}[/]"


@policy_app.command("check")
def check_command(
    path: PolicyFile,
    agents: Annotated[
        str | None,
        typer.Option("--agents", help="package.module:attr naming your agents: also check rules against their tools"),
    ] = None,
) -> None:
    """Load a policy file and list its rules; a malformed file fails with its line and the problem.

    With --agents, a rule naming a tool or an input field that no agent has fails too.

    Example: agentjournal policy check policy.yaml --agents myapp.agents:agents
    """
    from agentjournal.agents.policy import PolicyError

    policy = _load(path)
    if agents is not None:
        from agentjournal.cli.agent_commands import load_agents

        tools: dict[str, list[str]] = {}
        for agent in load_agents(agents):
            tools.update(agent.registry.argument_names())
        try:
            policy.check_tools(tools)
        except PolicyError as exc:
            fail(str(exc))
    table = Table(title=f"{path}: {len(policy.rules)} rule(s), default {policy.default_action}", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("rule", overflow="fold")
    table.add_column("tools", overflow="fold")
    table.add_column("when", overflow="fold", min_width=16)
    table.add_column("action", overflow="fold")
    for rule in policy.rules:
        when = " and ".join(condition.describe() for condition in rule.conditions) or "always"
        table.add_row(str(rule.line), rule.name, ", ".join(rule.tools or ["(any)"]), when, _action(rule.action))
    console.print(table)
    console.print(f"version {policy.version[:16]}…  ok", highlight=False)


@policy_app.command("eval")
def eval_command(
    path: PolicyFile,
    tool: Annotated[str, typer.Argument(help="The tool called", show_default=False)],
    arguments: Annotated[str, typer.Argument(help="Its arguments, a JSON object")] = "{}",
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A run metric as name=value (repeatable)")
    ] = None,
) -> None:
    """Decide one tool call under a policy file, as the policy guard would.

    Example: agentjournal policy eval policy.yaml query_sql '{"sql": "drop table users"}'
    """
    from agentjournal.agents.policy import RunMetrics

    policy = _load(path)
    try:
        parsed: Any = json.loads(arguments)
    except json.JSONDecodeError as exc:
        fail(f"arguments are not JSON: {exc}")
    if not isinstance(parsed, dict):
        fail(f"arguments must be a JSON object, got {type(parsed).__name__}")
    metrics = RunMetrics()
    for item in metric or []:
        name, _, value = item.partition("=")
        if not RunMetrics.is_known(name.strip()):
            fail(f"--metric {item!r}: unknown run metric; known: {', '.join(RunMetrics.NAMES)}, calls_<tool>")
        try:
            number = float(value)
        except ValueError:
            fail(f"--metric {item!r}: expected name=number")
        name = name.strip()
        if name.startswith("calls_") and name not in RunMetrics.NAMES:
            metrics.calls_by_tool[name.removeprefix("calls_")] = int(number)
        else:
            setattr(metrics, name, type(getattr(metrics, name))(number))
    decision = policy.evaluate(tool, parsed, metrics)
    console.print(f"{_action(decision.action)}  {decision.reason}", highlight=False)


@policy_app.command("replay")
def replay_command(
    path: PolicyFile,
    prefix: Annotated[str, typer.Option(help="Only streams whose id starts with this")] = "run-",
    show_all: Annotated[bool, typer.Option("--all", help="List every past call, not only the changed ones")] = False,
    fail_on_change: Annotated[
        bool, typer.Option("--fail-on-change", help="Exit with code 1 when any past call would be decided differently")
    ] = False,
) -> None:
    """Decide every past tool call in the journal again under a policy file; list what would change.

    Example: agentjournal policy replay new-policy.yaml --fail-on-change
    """
    from agentjournal.agents.policy import RELEVANT_EVENT_TYPES

    policy = _load(path)
    journal = open_journal()
    head = journal.head_position()
    with progress_bar("judging past calls") as progress:
        task = progress.add_task("replay", total=head)

        def relevant() -> Any:
            for event in journal.iter_all(types=RELEVANT_EVENT_TYPES):
                progress.update(task, completed=event.position)
                if event.stream_id.startswith(prefix):
                    yield event

        past = policy.reevaluate(relevant())
    changed = [item for item in past if item.changed]
    table = Table(title=f"past calls judged under {path}", title_justify="left")
    for column in ("run", "version", "tool", "then", "now", "why"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for item in past if show_all else changed:
        then = item.recorded.action if item.recorded else None
        table.add_row(
            item.stream_id, str(item.version), item.tool, _action(then), _action(item.now.action), item.now.reason
        )
    if table.row_count:
        console.print(table)
    runs = len({item.stream_id for item in changed})
    console.print(
        f"{len(past)} past call(s) judged; {len(changed)} would be decided differently, in {runs} run(s)",
        highlight=False,
    )
    if fail_on_change and changed:
        raise typer.Exit(1)
