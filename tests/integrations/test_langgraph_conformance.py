"""LangChain's own conformance suite for checkpointers (langgraph-checkpoint-conformance), run against
JournalSaver on SQLite and PostgreSQL, one test per capability so a failure names what broke."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, Capability

from agentjournal.integrations.langgraph import JournalSaver
from agentjournal.journal import Journal

CAPABILITIES = sorted(capability.value for capability in ALL_CAPABILITIES)


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_the_saver_passes_langgraphs_conformance_suite(sqlite_or_postgres_url: str, capability: str) -> None:
    journal = Journal.open(sqlite_or_postgres_url)

    async def saver() -> AsyncGenerator[JournalSaver, None]:
        yield JournalSaver(journal)

    registered = checkpointer_test(name=f"JournalSaver[{capability}]")(saver)
    try:
        report = asyncio.run(validate(registered, capabilities={capability}))
    finally:
        journal.close()
    result = report.results[capability]
    assert result.detected, f"{capability}: JournalSaver does not implement it"
    assert result.passed, f"{capability}: {result.tests_failed} failed:\n" + "\n".join(result.failures)
    assert result.tests_passed > 0


def test_every_capability_of_the_suite_is_covered() -> None:
    assert {Capability(name) for name in CAPABILITIES} == set(Capability)
