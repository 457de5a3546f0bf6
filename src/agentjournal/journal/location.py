"""What is at a journal URL before anything is written there, and URLs as messages show them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

FIRST_MIGRATION = "journal/0001_journal"
"""Applied in every database that holds a journal: a journal is created by applying it."""


@dataclass(frozen=True, slots=True)
class Location:
    """What is at a journal URL, read before anything is written there."""

    has_journal: bool
    other_tables: tuple[str, ...] = ()
    """Tables and views there that are not agentjournal's (whose names do not start with aj_)."""
    where: str = "the database"
    """The place, as the messages name it: "the file", "schema public", "database app"."""
    detail: str = ""
    """Why there is no journal, when it is not just an empty place: "no such file"."""
    advice: str = ""
    """How to give a journal a place of its own."""
    explicit: bool = False
    """The URL names a place for the journal (PostgreSQL's ?schema=), so other tables there are not refused."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def tables(names: tuple[str, ...] | list[str]) -> str:
    """ "orders, users", at most five of them named."""
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
