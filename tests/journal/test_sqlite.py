"""The conformance suite on SQLite, the embedded default (a file in WAL mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentjournal.testing.conformance import JournalConformance


class TestSQLiteJournal(JournalConformance):
    hypothesis_examples = 25

    @pytest.fixture
    def journal_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'journal.db'}"
