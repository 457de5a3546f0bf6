"""One way to own tables: every component declares its migrations once, `agentjournal.schema` sees them all,
and no layer above the backends branches on a database's name (it asks the journal's dialect object)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import agentjournal
from agentjournal import schema
from agentjournal.journal import Journal
from agentjournal.journal.dialect import Dialect

SRC = Path(agentjournal.__file__).parent
BRANCH_ON_NAME = re.compile(r"\.dialect\s*(==|!=|in\b)|\[\s*[\w.]*\.dialect\s*\]")


def test_migrate_applies_every_component_and_pending_lists_what_is_left(sql_journal_url: str) -> None:
    with Journal.open(sql_journal_url) as journal:
        names = {component.name for component in schema.COMPONENTS}
        assert names == {"journal", "snapshots", "projections", "messaging", "api"}
        schema.migrate(journal)
        assert schema.pending(journal) == []
        assert schema.migrate(journal) == []  # idempotent
        applied = {name for (name,) in journal.query("SELECT name FROM aj_schema_migrations")}
        for component in schema.COMPONENTS:
            folder = resources.files(component.package) / "migrations" / journal.dialect
            files = {entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql")}
            assert {f"{component.name}/{name}" for name in files} <= applied, component.name


def test_every_sql_backend_has_a_dialect_object(sql_journal_url: str) -> None:
    with Journal.open(sql_journal_url) as journal:
        dialect = journal.sql_dialect  # type: ignore[attr-defined]
        assert isinstance(dialect, Dialect) and dialect.name == journal.dialect  # type: ignore[attr-defined]
        assert dialect.sql("SELECT ? WHERE x LIKE '5%'").count(journal.param) == 1  # type: ignore[attr-defined]


def test_no_module_above_the_backends_branches_on_a_database_name() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if "backends" not in path.parts and "testing" not in path.parts and path.name != "dialect.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BRANCH_ON_NAME.search(line)
    ]
    assert offenders == [], "ask journal.sql_dialect instead: " + ", ".join(offenders)
