"""The SQL that differs between databases, for every layer that keeps tables in the journal's database.

One object per backend (`journal.sql_dialect`): parameter style, upserts, insert-if-absent,
the current time in SQL, row locks, full-text search. Higher layers (snapshots, projections,
leases, the read models) write their SQL once with `?` placeholders and ask the dialect for the
rest, so no module above the backends branches on a database's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from agentjournal.journal.envelope import format_time

__all__ = ["Dialect", "MySQLDialect", "PostgresDialect", "SQLiteDialect"]


class Dialect:
    """What a SQL database needs said its own way. The defaults are PostgreSQL's (and SQLite's, mostly)."""

    name: ClassVar[str]
    param: ClassVar[str] = "%s"
    now: ClassVar[str]
    """The current time as Unix seconds (a double), evaluated by the database."""
    for_update: ClassVar[str] = " FOR UPDATE"
    """The row-lock suffix of a SELECT inside a transaction (SQLite locks the whole database instead)."""
    search_key: ClassVar[str] = "position"
    """The column a full-text table is keyed by."""
    search_where: ClassVar[str]
    """The WHERE clause matching the full-text table against one `?` (a phrase)."""

    def sql(self, text: str) -> str:
        """`text` written with `?` placeholders, in this database's parameter style (a literal % doubled)."""
        return text if self.param == "?" else text.replace("%", "%%").replace("?", self.param)

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str], rows: int = 1) -> str:
        """INSERT of `rows` rows (`?` placeholders), replacing the non-key columns of rows whose key exists."""
        updates = [column for column in columns if column not in keys]
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * rows)}"
        sets = ", ".join(f"{column} = excluded.{column}" for column in updates)
        return f"{head} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"

    def insert_if_absent(self, table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        """INSERT of one row (`?` placeholders) that does nothing when its key is taken."""
        marks = ", ".join("?" * len(columns))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({', '.join(keys)}) DO NOTHING"

    def time(self, moment: datetime) -> Any:
        """A time as this database's driver stores it in a timestamp column."""
        return moment


class SQLiteDialect(Dialect):
    name = "sqlite"
    param = "?"
    now = "((julianday('now') - 2440587.5) * 86400.0)"
    for_update = ""
    search_key = "rowid"  # FTS5 keys its rows by rowid
    search_where = "aj_rm_search MATCH ?"

    def time(self, moment: datetime) -> Any:
        return format_time(moment)  # ISO 8601 text, which sorts in time order


class PostgresDialect(Dialect):
    name = "postgres"
    now = "extract(epoch from clock_timestamp())::double precision"
    search_where = "document @@ websearch_to_tsquery('simple', ?)"


class MySQLDialect(Dialect):
    name = "mysql"
    now = "UNIX_TIMESTAMP(NOW(6))"
    search_where = "MATCH (text) AGAINST (? IN BOOLEAN MODE)"

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str], rows: int = 1) -> str:
        updates = [column for column in columns if column not in keys]
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * rows)}"
        return f"{head} ON DUPLICATE KEY UPDATE " + ", ".join(f"{column} = VALUES({column})" for column in updates)

    def insert_if_absent(self, table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        return f"INSERT IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
