"""The conformance suite on the in-memory backend (for the unit tests of higher layers)."""

from __future__ import annotations

from typing import Any

import pytest

from agentjournal import Journal, RecordedEvent
from agentjournal.journal.backends.memory import MemoryJournal
from agentjournal.journal.envelope import canonical_json
from agentjournal.testing.conformance import JournalConformance


class TestMemoryJournal(JournalConformance):
    persistent = False
    hypothesis_examples = 40

    @pytest.fixture
    def journal_url(self) -> str:
        return "memory://"

    def tamper_change_data(self, journal: Journal, event: RecordedEvent, data: dict[str, Any]) -> None:
        assert isinstance(journal, MemoryJournal)
        stored = journal._ids[event.event_id]
        stored.data_json = canonical_json(data)
        stored._data = None

    def tamper_delete(self, journal: Journal, event: RecordedEvent) -> None:
        pytest.skip("the memory backend derives a stream's head from its events, so a deletion leaves no trace")

    def tamper_set_closed(self, journal: Journal, stream_id: str, closed_at_version: int | None) -> None:
        pytest.skip("the memory backend derives a stream's closed state from its last event, so it cannot disagree")
