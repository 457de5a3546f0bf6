"""`agentjournal outbox`: what the relays delivered, what they are retrying, and their dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agentjournal.cli import output
from agentjournal.cli.app import app, console, fail, open_journal
from agentjournal.cli.output import Col, JsonOption, print_json

if TYPE_CHECKING:
    from agentjournal.journal import Journal

outbox_app = typer.Typer(no_args_is_help=True, help="The outbox: relay status, dead letters, retries.")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("status")
def outbox_status_command(
    dead_letters: Annotated[bool, typer.Option("--dead-letters", help="List the failed messages instead")] = False,
    relay: Annotated[str | None, typer.Option("--relay", help="Only this relay")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per relay: messages pending, retrying (in flight), dead letters and delivered; or, with
    --dead-letters, every message that is retrying or dead, with its error.

    --json prints one object per relay (relay, position, pending, retrying, dead, delivered,
    updated_at), or per failed message (relay, dispatch_id, destination, type, status,
    attempts, error, next_attempt_at, updated_at, and the dispatch).

    Example: agentjournal outbox status
    """
    from agentjournal.messaging.relays import failures, outbox_status

    journal = open_journal()
    _known_relay(journal, relay)
    if dead_letters:
        found = failures(journal, relay=relay)
        if as_json:
            print_json(
                {
                    "relay": item.relay,
                    "dispatch_id": item.dispatch.dispatch_id,
                    "destination": item.dispatch.destination,
                    "type": item.dispatch.type,
                    "status": item.status,
                    "attempts": item.attempts,
                    "error": item.error,
                    "next_attempt_at": item.next_attempt_at,
                    "updated_at": item.updated_at,
                    "dispatch": item.dispatch.to_json(),
                }
                for item in found
            )
            return
        output.print_table(
            (
                Col("dispatch id", "key"),
                Col("status", "key"),
                Col("tries", "key", right=True),
                Col("error", "text"),
                Col("destination", drop=2),
                Col("relay", drop=1),
            ),
            [
                (
                    item.dispatch.dispatch_id,
                    item.status,
                    str(item.attempts),
                    item.error,
                    item.dispatch.destination,
                    item.relay,
                )
                for item in found
            ],
        )
        console.print(f"{len(found)} failed message(s); `agentjournal outbox retry` sends the dead ones again")
        return
    relays = [row for row in outbox_status(journal) if relay is None or row.relay == relay]
    if as_json:
        print_json(relays)
        return
    if not relays:
        console.print("no relay has run against this journal yet: `agentjournal worker --messaging …` runs them")
        return
    output.print_table(
        (
            Col("relay", "key"),
            Col("pending", "key", right=True),
            Col("retrying", "key", right=True),
            Col("dead", "key", right=True),
            Col("delivered", "key", right=True),
            Col("position", right=True, drop=2),
            Col("updated (UTC)", drop=1),
        ),
        [
            (
                row.relay,
                f"{row.pending:,}",
                f"{row.retrying:,}",
                f"{row.dead:,}",
                f"{row.delivered:,}",
                f"{row.position:,}",
                row.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for row in relays
        ],
    )


@outbox_app.command("retry")
def outbox_retry_command(
    dispatch_ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letters to send again (default: every dead letter)")
    ] = None,
    relay: Annotated[str | None, typer.Option("--relay", help="Only this relay's dead letters")] = None,
) -> None:
    """Queue dead letters to be delivered again by their relay's next step (run by the worker).

    Example: agentjournal outbox retry --relay crm
    """
    from agentjournal.messaging.relays import failures, retry_dead_letters

    journal = open_journal()
    _known_relay(journal, relay)
    dead = {item.dispatch.dispatch_id for item in failures(journal, relay=relay, status="dead")}
    unknown = [dispatch_id for dispatch_id in dispatch_ids or [] if dispatch_id not in dead]
    if unknown:
        fail(
            f"not a dead letter{' of relay ' + repr(relay) if relay else ''}: {', '.join(unknown)} "
            "(`agentjournal outbox status --dead-letters` lists them)"
        )
    if not dead:
        console.print("no dead letters" + (f" for relay {relay!r}" if relay else ""))
        return
    queued = retry_dead_letters(journal, relay=relay, dispatch_ids=dispatch_ids or [])
    console.print(f"queued {queued} dead letter(s) for delivery; the relay's next step sends them")


def _known_relay(journal: Journal, relay: str | None) -> None:
    """A --relay that names no relay that ever ran here is a typo: say which exist."""
    from agentjournal.messaging.relays import outbox_status

    if relay is None:
        return
    known = [row.relay for row in outbox_status(journal)]
    if relay not in known:
        fail(f"no relay {relay!r} has run against this journal (relays: {', '.join(known) or 'none yet'})")
