"""Fixtures of the read-side tests: a journal on each real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentjournal.journal import Journal


@pytest.fixture
def journal(sql_journal_url: str) -> Iterator[Journal]:
    with Journal.open(sql_journal_url) as opened:
        yield opened
