"""The Typer application, its shared options and the error handling every command gets.

Commands live in one module per layer (`journal_commands`, `forensics_commands`, ...);
each registers itself on `app` with `@app.command()` and calls one library function.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from agentjournal.journal.errors import AgentJournalError
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
    """A progress bar on stderr, so it never mixes with data written to stdout; only on a terminal
    (in a pipe, a CI log or a file it would leave blank lines and escape codes behind)."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )


def _message(exc: BaseException) -> str:
    """The exception's own message, or the first line of its class's docstring when it has none."""
    text = str(exc).strip()
    if text:
        return text
    doc = (type(exc).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else type(exc).__name__


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or _message(exc)}"


_UsageError: type[Exception] = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")
"""The base of Typer's own errors (BadParameter, UsageError), which Typer's vendored click defines."""


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"agentjournal {version('agentjournal')}")
        raise typer.Exit()


def _version_option() -> Any:
    """`--version`, built by Typer itself from a one-parameter command (the app's callback stays as it is)."""
    probe = typer.Typer(add_completion=False)

    @probe.command()
    def _probe(
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                is_eager=True,
                expose_value=False,
                callback=_print_version,
                help="Print the version of agentjournal and exit.",
            ),
        ] = False,
    ) -> None:  # pragma: no cover - never invoked, only read for its parameter
        pass

    return typer.main.get_command(probe).params[0]


class _JournalErrorsAsMessages(TyperGroup):
    """Every error of the library (an AgentJournalError: bad input, unreachable database, conflict,
    a malformed policy, ...) and every OSError (a missing file, a directory that cannot be written)
    ends the command with one line on stderr and exit code 1, never with a stack trace.

    Anything else is a bug in agentjournal: it is reported in one line too, with exit code 70,
    unless AGENTJOURNAL_DEBUG=1 asks for the traceback.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.params.insert(1, _version_option())  # after --db, before the completion options

    # Typer vendors its own click (typer._click) and no longer installs click, so the context
    # is typed loosely here rather than importing a package that a fresh install lacks.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AgentJournalError as exc:
            fail(_message(exc))
        except BrokenPipeError:
            raise  # the reader went away (`| head`): Typer ends quietly, with exit code 1
        except OSError as exc:
            fail(_os_message(exc))
        except (_UsageError, typer.Exit, typer.Abort):
            raise  # Typer reports these itself (a usage error with the usage line)
        except Exception as exc:
            if os.environ.get("AGENTJOURNAL_DEBUG", "") not in ("", "0"):
                raise
            errors.print(
                f"[bold red]unexpected error:[/bold red] {escape(type(exc).__name__)}: {escape(_message(exc))}\n"
                "this is a bug in agentjournal; AGENTJOURNAL_DEBUG=1 shows where it happened",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(70) from None


app = typer.Typer(
    cls=_JournalErrorsAsMessages,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
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
            "--db",
            envvar="AGENTJOURNAL_DB",
            help="Journal URL: sqlite:///file.db, postgresql://…?schema=…, mysql://…. Only the commands that "
            "write (migrate, import, quickstart, worker, keys create) create a journal where there is none.",
        ),
    ] = DEFAULT_URL,
) -> None:
    settings.db_url = db
    settings.journal = None
    if os.getcwd() not in sys.path:  # `--agents myapp.agents:crew` from the project's folder, as `python -m` would
        sys.path.insert(0, os.getcwd())


def open_journal(*, migrate: bool = True, create: bool = False) -> Journal:
    """The journal named by --db / AGENTJOURNAL_DB, opened once per command.

    A command that only reads leaves `create` off: where there is no journal it fails with "no
    journal at …" and creates nothing. A command that writes passes create=True.
    """
    if settings.journal is None:
        from agentjournal.journal.urls import open_journal as open_url

        settings.journal = open_url(settings.db_url, migrate=migrate, create=create)
    return settings.journal


EvalDbOption = Annotated[
    str | None,
    typer.Option(
        "--eval-db",
        envvar="AGENTJOURNAL_EVAL_DB",
        help="The evaluation journal's URL (default: beside --db, e.g. agentjournal.evals.db)",
        show_default=False,
    ),
]


def evaluations_url(eval_db: str | None) -> str:
    from agentjournal.evals.location import evaluation_url

    return eval_db or evaluation_url(settings.db_url)


@contextmanager
def open_evaluations(eval_db: str | None, *, create: bool = False) -> Iterator[Journal]:
    """The evaluation journal (--eval-db, or the one beside --db); a command that only reads it
    fails where there is none, creating nothing."""
    from agentjournal.journal import JournalNotFoundError
    from agentjournal.journal.location import redact
    from agentjournal.journal.urls import open_journal as open_url

    url = evaluations_url(eval_db)
    try:
        journal = open_url(url, create=create)
    except JournalNotFoundError:
        fail(f"no evaluation journal at {redact(url)} yet: `agentjournal eval replay` writes one (or pass --eval-db)")
    try:
        yield journal
    finally:
        journal.close()


def close_journal() -> None:
    if settings.journal is not None:
        settings.journal.close()
        settings.journal = None
