"""The Typer application, its shared options and the error handling every command gets.

Commands live in one module per layer (`journal_commands`, `forensics_commands`, ...);
each registers itself on `app` with `@app.command()` and calls one library function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from agentjournal.journal.errors import JournalError
from agentjournal.journal.urls import DEFAULT_URL

if TYPE_CHECKING:
    from agentjournal.journal import Journal

console = Console()
errors = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit code 1: how every command reports an error."""
    errors.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def progress_bar(description: str = "{task.description}") -> Progress:
    """A progress bar on stderr, so it never mixes with data written to stdout."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


class _JournalErrorsAsMessages(TyperGroup):
    """A JournalError (bad input, unreachable database, conflict) ends the command with its
    message and exit code 1, never with a stack trace."""

    # Typer vendors its own click (typer._click) and no longer installs click, so the context
    # is typed loosely here rather than importing a package that a fresh install lacks.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except JournalError as exc:
            fail(str(exc))


app = typer.Typer(
    cls=_JournalErrorsAsMessages,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="agentjournal: the event-sourced system of record for AI agents.",
)


class _Settings:
    db_url: str = DEFAULT_URL
    journal: Journal | None = None


settings = _Settings()


@app.callback()
def _global_options(
    db: Annotated[
        str,
        typer.Option(
            "--db", envvar="AGENTJOURNAL_DB", help="Journal URL: sqlite:///file.db, postgresql://…, mysql://…"
        ),
    ] = DEFAULT_URL,
) -> None:
    settings.db_url = db
    settings.journal = None


def open_journal(*, migrate: bool = True) -> Journal:
    """The journal named by --db / AGENTJOURNAL_DB, opened once per command."""
    if settings.journal is None:
        from agentjournal.journal.urls import open_journal as open_url

        settings.journal = open_url(settings.db_url, migrate=migrate)
    return settings.journal


def close_journal() -> None:
    if settings.journal is not None:
        settings.journal.close()
        settings.journal = None
