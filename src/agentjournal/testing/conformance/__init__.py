"""The journal conformance suite, written once: every backend must pass all of it.

A backend's test module subclasses `JournalConformance` and overrides one fixture,
`journal_url`, a place with no journal yet (and, for a backend without SQL, the tamper hooks
and `tables_at` / `create_foreign_table` in `base.py`):

    class TestSQLiteJournal(JournalConformance):
        @pytest.fixture
        def journal_url(self, tmp_path):
            return f"sqlite:///{tmp_path / 'journal.db'}"

The class is not named Test*, so pytest never collects it by itself.
"""

from __future__ import annotations

from .async_api import AsyncConformance
from .closing import ClosingConformance
from .imports import ImportConformance
from .integrity import IntegrityConformance
from .multistream import MultiStreamConformance
from .opening import OpeningConformance
from .ordering import OrderingConformance
from .reads import ReadConformance
from .stamping import StampingConformance
from .stateful import StatefulConformance
from .writes import WriteConformance

__all__ = ["JournalConformance"]


class JournalConformance(
    ReadConformance,
    WriteConformance,
    MultiStreamConformance,
    OrderingConformance,
    IntegrityConformance,
    ImportConformance,
    OpeningConformance,
    StampingConformance,
    StatefulConformance,
    ClosingConformance,
    AsyncConformance,
):
    """Every behaviour the journal promises, on whichever backend `journal_url` names."""
