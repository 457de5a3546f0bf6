"""The quickstart: the refund conversation of seed 002 (conv-8842), written as journal events.

Each event is caused by the one before it, so the stream is one causal chain, and every
event id is fixed, so running the quickstart again is an idempotent retry, not a duplicate.
"""

from __future__ import annotations

import uuid
from typing import Any

from agentjournal.journal import Journal, NewEvent, RecordedEvent

STREAM_ID = "conv-8842"

_ID_NAMESPACE = uuid.UUID("5f1c2a3e-8842-4b1e-9c1a-0a6e7a6f8842")

REFUND_CONVERSATION: list[tuple[str, str, dict[str, Any]]] = [
    (
        "ConversationStarted",
        "triage-agent",
        {"conversation_id": STREAM_ID, "user_message": "I want a refund for order ORD-5521"},
    ),
    (
        "ToolCalled",
        "triage-agent",
        {
            "tool": "lookup_order",
            "input": {"order_id": "ORD-5521"},
            "output": {"status": "delivered", "amount": 89.99, "items": ["wireless headphones"]},
        },
    ),
    (
        "HandoffInitiated",
        "triage-agent",
        {
            "from_agent": "triage-agent",
            "to_agent": "refund-agent",
            "reason": "User requesting refund on delivered order",
        },
    ),
    (
        "ToolCalled",
        "refund-agent",
        {
            "tool": "check_refund_policy",
            "input": {"order_id": "ORD-5521", "reason": "customer_request"},
            "output": {"eligible": True, "max_refund": 44.99, "type": "partial"},
        },
    ),
    (
        "ToolCalled",
        "refund-agent",
        {
            "tool": "issue_refund",
            "input": {"order_id": "ORD-5521", "amount": 44.99},
            "output": {"refund_id": "REF-3301", "status": "processed"},
        },
    ),
    (
        "ResponseGenerated",
        "refund-agent",
        {"response": "I have issued a partial refund of $44.99 for order ORD-5521 (refund REF-3301)."},
    ),
]
"""(type, actor, data) of each event, in the order the seed's event log lists them."""


def write_refund_conversation(journal: Journal) -> list[RecordedEvent]:
    """Append conv-8842 one event at a time, each caused by the previous; returns the stored events.

    Appending one event per call is what an agent loop does; `expected_version` guards each
    step, and the fixed event ids make a second run report the stored events unchanged.
    """
    stored: list[RecordedEvent] = []
    for version, (event_type, actor, data) in enumerate(REFUND_CONVERSATION, start=1):
        event = NewEvent(event_type, data, actor=actor, event_id=str(uuid.uuid5(_ID_NAMESPACE, f"{version}")))
        if stored:
            with journal.context(caused_by=stored[-1]):
                result = journal.append(STREAM_ID, [event], expected_version=version - 1)
        else:
            result = journal.append(STREAM_ID, [event], expected_version=0)
        stored.extend(result.events)
    return stored
