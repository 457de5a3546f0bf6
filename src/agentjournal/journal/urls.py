"""`Journal.open(url)`: pick the backend from the URL scheme, check its parameters, connect, and open.

Each backend understands its own query parameters (`PARAMETERS`); any other one is refused
with the list of known ones, since a misspelled setting that is silently ignored is a wrong
setting (a durability or a timeout the user believes is in force).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from agentjournal.journal.errors import DamagedDatabaseError, UnsupportedURLError
from agentjournal.journal.location import redact

if TYPE_CHECKING:  # the backends import it; this module stays light for the CLI's start-up
    from agentjournal.journal.base import Journal

DEFAULT_URL = "sqlite:///./agentjournal.db"
SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "memory")


PARAMETERS: dict[str, dict[str, str]] = {
    "sqlite": {
        "mode": "ro: read-only, nothing can be written (the file must exist)",
        "synchronous": "OFF, NORMAL, FULL or EXTRA: how often SQLite waits for the disk (default NORMAL)",
    },
    "postgres": {
        "schema": "the schema that holds the journal, created with it (lower-case letters, digits, _)",
        "connect_timeout": "seconds to connect, log in and get the first answer (default 5)",
        "keepalives_idle": "seconds of silence before TCP keepalives probe the server (default 30)",
        "keepalives_interval": "seconds between keepalive probes (default 10)",
        "keepalives_count": "lost probes before the connection counts as dead (default 3)",
        "tcp_user_timeout": "milliseconds sent data may stay unacknowledged (default 0: the system's)",
        "keepalives": "1 (default) or 0: TCP keepalives on or off",
        "application_name": "how the connections appear in pg_stat_activity",
        "sslmode": "disable, allow, prefer, require, verify-ca or verify-full",
        "sslrootcert": "a file of trusted certificate authorities",
        "sslcert": "the client certificate file",
        "sslkey": "the client key file",
        "target_session_attrs": "any, read-write, read-only, primary, standby or prefer-standby",
        "options": "server settings for every connection, e.g. -c statement_timeout=30s",
        "host": "host name, or the folder of a Unix socket",
        "port": "port number",
        "user": "user name",
        "password": "password",
        "passfile": "a password file",
        "service": "a service name from pg_service.conf",
    },
    "mysql": {
        "connect_timeout": "seconds to connect and get the server's greeting (default 5)",
        "read_timeout": "seconds to wait for each answer from the server; 0: no limit (default 300)",
        "write_timeout": "seconds to wait while sending to the server; 0: no limit (default 300)",
        "ssl_ca": "a file of trusted certificate authorities (turns TLS on)",
        "ssl_cert": "the client certificate file",
        "ssl_key": "the client key file",
        "ssl_verify_cert": "true or false: check the server's certificate",
        "ssl_verify_identity": "true or false: check the server's host name",
        "unix_socket": "the path of a Unix socket, instead of host and port",
    },
    "memory": {},
}
"""The query parameters each backend understands, with what they mean; any other one is refused."""


def open_journal(url: str, *, create: bool = False, migrate: bool = True, **options: Any) -> Journal:
    """Open the journal at `url`; see `Journal.open`."""
    journal = connect(url, create=create, **options)
    try:
        journal._settle(create=create, migrate=migrate)
    except DamagedDatabaseError as exc:
        journal.close()
        raise DamagedDatabaseError(f"{exc} (while opening it: its schema cannot be read)") from None
    except BaseException:
        journal.close()
        raise
    return journal


def connect(url: str, *, create: bool = False, **options: Any) -> Journal:
    """The journal at `url`, connected but neither migrated nor checked (for `migrate --check`).

    Connecting writes nothing, unless `create`: a missing SQLite file is then created (empty), and
    a missing PostgreSQL ?schema=.
    """
    if not isinstance(url, str) or "://" not in url:
        raise UnsupportedURLError(f"not a journal URL: {url!r}; expected e.g. {DEFAULT_URL}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower().split("+")[0]
    backend = {"postgresql": "postgres", "mariadb": "mysql"}.get(scheme, scheme)
    if backend not in PARAMETERS:
        raise UnsupportedURLError(
            f"unknown journal URL scheme {parts.scheme!r} in {url!r}; "
            "supported: sqlite://, postgresql://, mysql://, memory://"
        )
    query = check_parameters(url, backend)
    if backend == "memory":
        from agentjournal.journal.backends.memory import MemoryJournal

        return MemoryJournal(**options)
    if backend == "sqlite":
        from agentjournal.journal.backends.sqlite import SQLiteJournal

        path = unquote(url.split("://", 1)[1].split("?", 1)[0])
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs.db
        if not path:
            raise UnsupportedURLError(f"{url!r} names no file; use e.g. {DEFAULT_URL} or sqlite:///:memory:")
        return SQLiteJournal(path, create=create, **query, **options)
    if backend == "postgres":
        from agentjournal.journal.backends.postgres import PostgresJournal

        return PostgresJournal(url, create=create, **options)
    from agentjournal.journal.backends.mysql import MySQLJournal

    return MySQLJournal(url, **options)


def check_parameters(url: str, backend: str) -> dict[str, str]:
    """The URL's query parameters, refusing any that `backend` does not know, or that appear twice."""
    query: dict[str, str] = {}
    known = PARAMETERS[backend]
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name not in known:
            names = ", ".join(known) if known else "none"
            raise UnsupportedURLError(
                f"unknown parameter {name!r} in the {backend} URL {redact(url)}; known parameters: {names}"
            )
        if name in query:
            raise UnsupportedURLError(f"parameter {name!r} appears twice in {redact(url)}")
        query[name] = value
    return query
