"""Throwaway PostgreSQL schemas and MySQL databases, unique per use, dropped afterwards.

Under CI=true a server that cannot be reached is a failure; elsewhere tests skip and say why.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

POSTGRES_URL = os.environ.get("AGENTJOURNAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("AGENTJOURNAL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "MariaDB": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def unreachable(name: str, url: str) -> str | None:
    """Why the server behind `url` cannot be reached, or None when it answers."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=2):
            return None
    except OSError as exc:
        return f"{name} at {host}:{port} is not reachable ({exc}); start it with: {START_HINTS[name]}"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


DROP_LOCK_TIMEOUT = 60
"""Seconds a drop waits for a lock that a process a test left behind (frozen, say) still holds."""


@contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A journal URL on a new, empty schema of the test database; the schema is dropped after."""
    import psycopg

    schema = unique_name("aj_test")
    try:
        yield f"{base_url}?schema={schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{DROP_LOCK_TIMEOUT}s'")  # a leftover lock fails the drop, not hangs it
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def mysql_database(base_url: str = MYSQL_URL) -> Iterator[str]:
    """A journal URL on a new, empty MySQL/MariaDB database; dropped after."""
    import pymysql

    parts = urlsplit(base_url)
    name = unique_name("aj_test")
    connect = {"host": parts.hostname, "port": parts.port or 3306, "user": parts.username or "root"}
    if parts.password:
        connect["password"] = parts.password
    conn = pymysql.connect(**connect)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        yield f"{parts.scheme}://{parts.netloc}/{name}"
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"SET SESSION lock_wait_timeout = {DROP_LOCK_TIMEOUT}")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@contextmanager
def hung_port() -> Iterator[int]:
    """A local TCP port that accepts every connection and never sends a byte (a hung server, or a
    port that belongs to something that waits for the client to speak first)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)  # so the accepting thread sees `stop` soon
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        for conn in accepted:
            conn.close()
