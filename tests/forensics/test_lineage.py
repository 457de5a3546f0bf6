"""Lineage across three streams: causes back to the user's message, effects as a tree, correlated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentjournal.forensics import causes, correlated, effects
from agentjournal.journal import EventNotFoundError, Journal, NewEvent

from .agentdata import agent_run, causation_chain


def test_causes_walks_back_across_streams_to_the_users_message(journal: Journal) -> None:
    agent_run(journal, "noise", steps=20)  # unrelated events in between
    chain = causation_chain(journal)
    found = causes(journal, chain.settled.event_id)
    assert [event.event_id for event in found.events] == [
        chain.settled.event_id,
        chain.refund.event_id,
        chain.executed.event_id,
        chain.proposed.event_id,
        chain.started.event_id,
        chain.message.event_id,
    ]
    assert [event.stream_id for event in found.events] == [
        "payments-acme",
        "payments-acme",
        "run-r42",
        "run-r42",
        "run-r42",
        "session-u42",
    ]
    assert found.root.type == "UserMessage" and found.root.actor == "user:u42"
    assert found.external_cause is None
    assert causes(journal, chain.message.event_id).events == [chain.message]


def test_a_cause_that_is_not_a_stored_event_ends_the_chain_and_is_named(journal: Journal) -> None:
    command_id = "0193aaaa-0000-7000-8000-000000000001"
    event = journal.append("run-x", NewEvent("RunStarted", {}, causation_id=command_id)).events[0]
    found = causes(journal, event.event_id)
    assert found.events == [event] and found.external_cause == command_id


def test_effects_is_the_tree_of_everything_caused(journal: Journal) -> None:
    chain = causation_chain(journal)
    tree = effects(journal, chain.message.event_id)
    shape = [(depth, event.type, event.stream_id) for depth, event in tree.walk()]
    assert shape == [
        (0, "UserMessage", "session-u42"),
        (1, "RunStarted", "run-r42"),
        (2, "ToolProposed", "run-r42"),
        (3, "ToolExecuted", "run-r42"),
        (4, "RefundIssued", "payments-acme"),
        (5, "RefundSettled", "payments-acme"),
        (4, "ObservationCaptured", "run-r42"),
    ]
    assert tree.count() == 7
    leaf = effects(journal, chain.settled.event_id)
    assert leaf.children == [] and leaf.count() == 1
    limited = effects(journal, chain.message.event_id, max_events=3)
    assert limited.count() == 3


def test_correlated_is_one_request_in_order(journal: Journal) -> None:
    chain = causation_chain(journal)
    agent_run(journal, "other", steps=5)
    events = correlated(journal, chain.message.correlation_id or "")
    assert [event.event_id for event in events] == [
        chain.message.event_id,
        chain.started.event_id,
        chain.proposed.event_id,
        chain.executed.event_id,
        chain.refund.event_id,
        chain.sibling.event_id,
        chain.settled.event_id,
    ]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert correlated(journal, chain.message.correlation_id or "", since=later) == []
    assert len(correlated(journal, chain.message.correlation_id or "", until=later)) == 7


def test_unknown_event_ids(journal: Journal) -> None:
    with pytest.raises(EventNotFoundError):
        causes(journal, "0193aaaa-0000-7000-8000-00000000dead")
    with pytest.raises(EventNotFoundError):
        effects(journal, "0193aaaa-0000-7000-8000-00000000dead")
