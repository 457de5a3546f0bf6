"""Bringing read models up to date for a read, on every SQL backend: what a worker runs is left to it."""

from __future__ import annotations

from datetime import UTC, datetime

from agentjournal.journal import Journal
from agentjournal.messaging import LeaseRegistry
from agentjournal.projections import bring_up_to_date, checkpoint
from agentjournal.projections.metrics import tool_usage

from .projection_helpers import record, refund_script, store


def test_a_read_model_that_never_ran_is_caught_up_with_progress(journal: Journal) -> None:
    store(journal, record("done", refund_script(order="ORD-5521")), at=datetime.now(UTC))
    head = journal.head_position()
    seen: list[tuple[str, int, int]] = []
    (found,) = bring_up_to_date(journal, ["tool_usage"], progress=lambda *step: seen.append(step))
    assert (found.applied, found.behind, found.worker) == (head, 0, None)
    assert seen[-1] == ("tool_usage", head, head)
    assert "issue_refund" in {row.tool for row in tool_usage(journal)}
    (again,) = bring_up_to_date(journal, ["tool_usage"])
    assert (again.applied, again.behind) == (0, 0)


def test_a_read_model_whose_lease_a_worker_holds_is_left_to_the_worker(journal: Journal) -> None:
    store(journal, record("done", refund_script(order="ORD-5521")), at=datetime.now(UTC))
    assert LeaseRegistry(journal).acquire("projection:runs", "node-7") is not None
    (found,) = bring_up_to_date(journal, ["runs"])
    assert (found.applied, found.behind, found.worker) == (0, journal.head_position(), "node-7")
    assert checkpoint(journal, "runs") == 0
