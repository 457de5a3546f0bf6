"""Policy commands: check a policy file, try one call against it, judge past runs again under it.

`policy replay` is seed 001's "policy regression checks in CI": every past tool call in the
journal is decided again under a new policy file, and the calls it would decide differently are
listed with the direction each moved (stricter or looser); `--fail-on stricter` (or `looser`,
or `changed`, which `--fail-on-change` means) fails the command on what CI should stop.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import app, console, fail, open_journal, progress_bar
from agentjournal.cli.output import Col, JsonOption, print_json
from agentjournal.cli.params import one_of

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


def _action_cell(action: str | None) -> Text:
    return Text(action or "-", style=_STYLE.get(action or "", "dim"))


@policy_app.command("check")
def check_command(
    path: PolicyFile,
    agents: Annotated[
        str | None,
        typer.Option("--agents", help="package.module:attr naming your agents: also check rules against their tools"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Load a policy file and list its rules; a malformed file fails with its line and the problem.

    With --agents, a rule naming a tool or an input field that no agent has fails too.
    --json prints one object per rule: line, name, tools (null: any tool), when, action, reason, description.

    Example: agentjournal policy check policy.yaml --agents myapp.agents:agents
    """
    from agentjournal.agents.policy import PolicyError

    policy = _load(path)
    if agents is not None:
        from agentjournal.agents.runtime import load_agents

        tools: dict[str, list[str]] = {}
        for agent in load_agents(agents):
            tools.update(agent.registry.argument_names())
        try:
            policy.check_tools(tools)
        except PolicyError as exc:
            fail(str(exc))

    def when(rule: Any) -> str:
        return " and ".join(condition.describe() for condition in rule.conditions) or "always"

    if as_json:
        print_json(
            {
                "line": rule.line,
                "name": rule.name,
                "tools": list(rule.tools) if rule.tools is not None else None,
                "when": when(rule),
                "action": rule.action,
                "reason": rule.reason,
                "description": rule.description,
            }
            for rule in policy.rules
        )
        return
    columns = (
        Col("line", "key", right=True),
        Col("rule", "key"),
        Col("action", "key"),
        Col("tools", "text", drop=1),
        Col("when", "text"),
    )
    output.print_table(
        columns,
        [
            (str(rule.line), rule.name, _action_cell(rule.action), ", ".join(rule.tools or ["(any)"]), when(rule))
            for rule in policy.rules
        ],
        title=f"{path}: {len(policy.rules)} rule(s), default {policy.default_action}",
    )
    console.print(f"version {policy.version}  ok", highlight=False, soft_wrap=True)


@policy_app.command("eval")
def eval_command(
    path: PolicyFile,
    tool: Annotated[str, typer.Argument(help="The tool called", show_default=False)],
    arguments: Annotated[str, typer.Argument(help="Its arguments, a JSON object")] = "{}",
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A run metric as name=value (repeatable)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Decide one tool call under a policy file, as the policy guard would.

    --json prints one object: tool, action, rule, reason, matched_rules.

    Example: agentjournal policy eval policy.yaml query_sql '{"sql": "drop table users"}'
    """
    from agentjournal.agents.policy import RunMetrics

    policy = _load(path)
    try:
        parsed: Any = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"the arguments are not JSON: {exc}", param_hint="'ARGUMENTS'") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter(
            f"the arguments must be a JSON object, got {type(parsed).__name__}", param_hint="'ARGUMENTS'"
        )
    metrics = RunMetrics()
    for item in metric or []:
        name, _, value = item.partition("=")
        if not RunMetrics.is_known(name.strip()):
            known = f"{', '.join(RunMetrics.NAMES)}, calls_<tool>"
            raise typer.BadParameter(f"{item!r}: unknown run metric; known: {known}", param_hint="'--metric'")
        try:
            number = float(value)
        except ValueError:
            raise typer.BadParameter(f"{item!r}: expected name=number", param_hint="'--metric'") from None
        name = name.strip()
        if name.startswith("calls_") and name not in RunMetrics.NAMES:
            metrics.calls_by_tool[name.removeprefix("calls_")] = int(number)
        else:
            setattr(metrics, name, type(getattr(metrics, name))(number))
    decision = policy.evaluate(tool, parsed, metrics)
    if as_json:
        print_json([{"tool": tool, **dataclasses.asdict(decision)}])
        return
    console.print(f"{_action(decision.action)}  {decision.reason}", highlight=False)


FAIL_ON = ("stricter", "looser", "changed")


def _fail_on(past: list[Any], fail_on: str | None) -> None:
    """Fail when a call moved in the direction asked for (`changed`: either)."""
    if fail_on is None:
        return
    moved = [item for item in past if item.changed and fail_on in ("changed", item.direction)]
    if moved:
        runs = len({item.stream_id for item in moved})
        what = "would be decided differently" if fail_on == "changed" else f"would be decided {fail_on}"
        fail(f"{len(moved)} past call(s) in {runs} run(s) {what} (--fail-on {fail_on})")


@policy_app.command("replay")
def replay_command(
    path: PolicyFile,
    *,
    prefix: Annotated[str, typer.Option(help="Only streams whose id starts with this")] = "run-",
    show_all: Annotated[bool, typer.Option("--all", help="List every past call, not only the changed ones")] = False,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with code 1 when a past call would be decided stricter, looser, or either (changed)",
            callback=one_of(*FAIL_ON),
        ),
    ] = None,
    fail_on_change: Annotated[bool, typer.Option("--fail-on-change", help="The same as --fail-on changed")] = False,
    as_json: JsonOption = False,
) -> None:
    """Decide every past tool call in the journal again under a policy file; list what would change.

    --json prints one object per past call listed (the changed ones, or with --all every one):
    stream_id, version, call_id, tool, arguments, then (a call made with no policy was allowed),
    then_under_a_policy, now, rule, reason, direction (stricter, looser, unchanged), changed.

    Example: agentjournal policy replay new-policy.yaml --fail-on stricter
    """
    from agentjournal.agents.policy import RELEVANT_EVENT_TYPES

    if fail_on_change:
        fail_on = fail_on or "changed"

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
    listed = past if show_all else changed
    if as_json:
        print_json(
            {
                "stream_id": item.stream_id,
                "version": item.version,
                "call_id": item.call_id,
                "tool": item.tool,
                "arguments": item.arguments,
                "then": item.then,
                "then_under_a_policy": item.recorded is not None,
                "now": item.now.action,
                "rule": item.now.rule,
                "reason": item.now.reason,
                "direction": item.direction,
                "changed": item.changed,
            }
            for item in listed
        )
        _fail_on(past, fail_on)
        return
    columns = (
        Col("run", "key"),
        Col("version", "key", right=True),
        Col("tool", "key"),
        Col("decision then → now", "key"),
        Col("why now", "text", drop=1),
    )
    if listed:
        output.print_table(
            columns,
            [
                (
                    item.stream_id,
                    str(item.version),
                    item.tool,
                    Text.assemble(
                        _action_cell(item.then),
                        "" if item.recorded else " (no policy)",
                        " → ",
                        _action_cell(item.now.action),
                    ),
                    item.now.reason,
                )
                for item in listed
            ],
            title=f"past calls judged under {path}",
        )
    runs = len({item.stream_id for item in changed})
    stricter = sum(item.direction == "stricter" for item in changed)
    console.print(
        f"{len(past)} past call(s) judged; {len(changed)} would be decided differently, in {runs} run(s) "
        f"({stricter} stricter, {len(changed) - stricter} looser)",
        highlight=False,
    )
    _fail_on(past, fail_on)
