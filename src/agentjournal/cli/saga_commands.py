"""Saga commands: list and show sagas, resume interrupted ones, retry a failed compensation after a fix.

Each command opens the journal named by --db and calls one function of `agentjournal.messaging.sagas`;
the commands that run steps take the saga definitions with --sagas, as `runs resume` takes agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import app, console, open_journal
from agentjournal.cli.output import Col, JsonOption, event_ref, print_json
from agentjournal.cli.params import one_of

if TYPE_CHECKING:
    from agentjournal.messaging.sagas import SagaResult, SagaState
    from agentjournal.model.explainers import Explanation

DEMO_SAGAS = "agentjournal.agents.demo_sagas:SAGAS"

sagas_app = typer.Typer(no_args_is_help=True, help="Durable sagas: list, show, resume, retry a failed compensation.")
app.add_typer(sagas_app, name="sagas")

SagasOption = Annotated[
    str,
    typer.Option(
        "--sagas",
        envvar="AGENTJOURNAL_SAGAS",
        help="package.module:attr naming your saga definitions (a list of SagaDefinition, or a function returning one)",
    ),
]
STATUS_STYLE = {"completed": "green", "compensated": "yellow", "needs_repair": "bold red", "compensating": "yellow"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


@sagas_app.command("list")
def sagas_list(
    status: Annotated[
        str | None,
        typer.Option(
            help="Only sagas in this status: running, compensating, completed, compensated, needs_repair, unfinished",
            callback=one_of("running", "compensating", "completed", "compensated", "needs_repair", "unfinished"),
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sagas, most recently updated first: definition, status (needs_repair: a compensation failed), current step.

    The saga id and status are always whole; on a narrow terminal the update time and the error are left
    out. --json prints one object per saga: saga_id, stream_id, definition, status, current_step, input,
    failed_step, failure, version, started_at, updated_at, steps (name, status, result,
    compensation_result, error_type, error, attempts, compensation_attempts, worker, expires_at,
    claim_id, resumed).

    Example: agentjournal sagas list --status needs_repair
    """
    from agentjournal.messaging.sagas import list_sagas

    found = list_sagas(open_journal(), status=status)
    if as_json:
        print_json(state.to_dict() for state in found)
        return
    time_format, caption = output.time_format((state.updated_at for state in found), console.width)
    columns = (
        Col("saga", "key"),
        Col("definition", "key"),
        Col("status", "key"),
        Col("current step", drop=1),
        Col("updated", drop=2),
        Col("error", "text", drop=3),
    )
    output.print_table(
        columns,
        [
            (
                state.saga_id,
                state.definition,
                _status(state.status),
                state.current_step or "",
                state.updated_at.strftime(time_format) if state.updated_at else "",
                _error(state),
            )
            for state in found
        ],
        caption=caption if found else None,
    )
    console.print(f"{len(found)} saga(s)" + (f" {status}" if status else ""))


def _error(state: SagaState) -> str:
    broken = next((step for step in state.steps.values() if step.status == "compensation_failed"), None)
    if broken is not None:
        return f"compensation of {broken.name}: {broken.error}"
    return state.failure or ""


@sagas_app.command("show")
def sagas_show(
    saga_id: Annotated[str, typer.Argument(help="The saga, e.g. book-demo-lead-457 (or its stream, saga-…)")],
    as_json: JsonOption = False,
) -> None:
    """A saga's steps (status, attempts, result or error) and every transition, in plain language.

    --json prints one object: the saga as `sagas list --json` has it, and `events`: each transition's
    event_id, stream_id, version, position, type, recorded_at, data, title and summary.

    Example: agentjournal sagas show book-demo-lead-457
    """
    from agentjournal.forensics.explainers import Explainers
    from agentjournal.messaging.sagas import load_saga, register_saga_explainers

    journal = open_journal()
    state = load_saga(journal, saga_id)
    explain = register_saga_explainers(Explainers())
    events = journal.read_stream(state.stream_id)
    if as_json:
        described = []
        for event in events:
            explanation = explain.explain(event)
            described.append(
                {**event_ref(event), "data": event.data, "title": explanation.title, "summary": explanation.summary}
            )
        print_json([{**state.to_dict(), "events": described}])
        return
    console.print(
        Text.assemble(
            ("saga ", "bold"),
            (state.saga_id, "bold"),
            f" ({state.definition}): ",
            _status(state.status),
            f", version {state.version}",
        )
    )
    console.print(Text(f"  input: {_compact(state.input)}"), no_wrap=True, overflow="ellipsis")
    if state.failure:
        console.print(Text(f"  failed: {state.failed_step}: {state.failure}"), no_wrap=True, overflow="ellipsis")
    output.print_table(
        (
            Col("step", "key"),
            Col("status", "key"),
            Col("tries", right=True, drop=2),
            Col("result or error", "text", drop=1),
        ),
        [
            (
                step.name,
                _status(step.status),
                str(step.attempts) + (f"+{step.compensation_attempts}" if step.compensation_attempts else ""),
                f"{step.error_type}: {step.error}" if step.error else _compact(step.result),
            )
            for step in state.steps.values()
        ],
        caption="tries: the action's attempts + the compensation's",
    )
    time_format, caption = output.time_format((event.recorded_at for event in events), console.width)
    output.print_table(
        (Col("v", "key", right=True), Col("time", drop=2), Col("transition", "text")),
        [
            (str(event.version), event.recorded_at.strftime(time_format), _described(explain.explain(event)))
            for event in events
        ],
        caption=caption,
    )
    if state.status == "needs_repair":
        console.print(
            f"fix what made the compensation fail, then: agentjournal sagas retry {state.saga_id} --sagas …",
            highlight=False,
        )


def _compact(value: object) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _described(explanation: Explanation) -> Text:
    summary = explanation.summary
    return Text.assemble((explanation.title, "bold"), f": {summary}" if summary else "")


def _report(result: SagaResult) -> None:
    line = f"saga {result.saga_id}: {result.status}"
    if result.waiting:
        line += f" (waiting: {result.waiting})"
    elif result.error:
        line += f": {result.error}"
    console.print(line, highlight=False)


@sagas_app.command("resume")
def sagas_resume(
    saga_ids: Annotated[
        list[str] | None, typer.Argument(help="Sagas to resume (default: every running or compensating saga)")
    ] = None,
    sagas: SagasOption = DEMO_SAGAS,
) -> None:
    """Continue sagas from the journal after a crash: nothing recorded is done again, and a step whose
    worker died before recording its outcome runs again with the same idempotency key.

    A step whose worker still runs (on this host: its process lives; elsewhere: until its claim
    expires) is left to it.

    Example: agentjournal sagas resume --sagas myapp.sagas:SAGAS
    """
    from agentjournal.messaging.sagas import SagaRunner, load_sagas

    journal = open_journal()
    runner = SagaRunner(journal, load_sagas(sagas))
    results = [runner.resume(saga_id) for saga_id in saga_ids] if saga_ids else runner.resume_unfinished()
    if not results:
        console.print("no saga is running or compensating")
    for result in results:
        _report(result)


@sagas_app.command("retry")
def sagas_retry(
    saga_id: Annotated[str, typer.Argument(help="A saga that needs repair (a compensation failed)")],
    sagas: SagasOption = DEMO_SAGAS,
    by: Annotated[str | None, typer.Option("--by", help="Who fixed it (recorded)")] = None,
    reason: Annotated[str, typer.Option("--reason", help="What was fixed (recorded)")] = "",
) -> None:
    """After a fix, run the failed compensation again (with the same idempotency key) and finish the rollback.

    Refused for a saga that does not need repair. Exits 1 when the compensation fails again.

    Example: agentjournal sagas retry book-demo-lead-457 --by alice --reason "CRM back up" --sagas myapp.sagas:SAGAS
    """
    from agentjournal.messaging.sagas import SagaRunner, load_sagas

    runner = SagaRunner(open_journal(), load_sagas(sagas))
    result = runner.retry(saga_id, by=by, reason=reason)
    _report(result)
    if result.status == "needs_repair":
        raise typer.Exit(1)  # the compensation failed again: not fixed yet
