"""`Journal.open(url)`: pick the backend from the URL scheme, connect, and migrate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from agentjournal.journal.errors import MigrationError, UnsupportedURLError

if TYPE_CHECKING:  # the backends import it; this module stays light for the CLI's start-up
    from agentjournal.journal.base import Journal

DEFAULT_URL = "sqlite:///./agentjournal.db"
SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "memory")


def open_journal(url: str, *, migrate: bool = True, **options: Any) -> Journal:
    """Open the journal at `url`. With `migrate=False` a journal with pending migrations is refused."""
    journal = connect(url, **options)
    try:
        if migrate:
            journal.migrate()
        elif pending := journal.pending_migrations():
            raise MigrationError(
                f"{journal.url}: {len(pending)} migration(s) pending ({', '.join(pending)}); "
                "run `agentjournal migrate` or open with migrate=True"
            )
    except BaseException:
        journal.close()
        raise
    return journal


def connect(url: str, **options: Any) -> Journal:
    """The journal at `url`, connected but neither migrated nor checked (for `migrate --check`)."""
    if not isinstance(url, str) or "://" not in url:
        raise UnsupportedURLError(f"not a journal URL: {url!r}; expected e.g. {DEFAULT_URL}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower().split("+")[0]
    query = dict(parse_qsl(parts.query))
    if scheme == "memory":
        from agentjournal.journal.backends.memory import MemoryJournal

        return MemoryJournal(**options)
    if scheme == "sqlite":
        from agentjournal.journal.backends.sqlite import SQLiteJournal

        path = unquote(url.split("://", 1)[1].split("?", 1)[0])
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs.db
        if not path:
            raise UnsupportedURLError(f"{url!r} names no file; use e.g. {DEFAULT_URL} or sqlite:///:memory:")
        return SQLiteJournal(path, **query, **options)
    if scheme in ("postgresql", "postgres"):
        from agentjournal.journal.backends.postgres import PostgresJournal

        return PostgresJournal(url, **options)
    if scheme in ("mysql", "mariadb"):
        from agentjournal.journal.backends.mysql import MySQLJournal

        return MySQLJournal(url, **options)
    raise UnsupportedURLError(
        f"unknown journal URL scheme {parts.scheme!r} in {url!r}; supported: sqlite://, postgresql://, mysql://, memory://"
    )
