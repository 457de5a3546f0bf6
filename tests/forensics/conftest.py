"""Fixtures of the forensics tests: a journal on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentjournal.journal import Journal


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    opened = Journal.open(sqlite_or_postgres_url)
    try:
        yield opened
    finally:
        opened.close()
