"""Seed 002's book-demo saga: qualify a lead, create the CRM opportunity, book a calendar slot.

Each step is a tool call under a policy (`agents.saga_steps.tool_step`), and each has its
compensation: mark the lead unqualified, delete the opportunity, cancel the booking. The three
systems are stand-ins that keep their records on streams of the saga's own journal
(`demo-leads`, `demo-crm`, `demo-calendar`), so the demo stays offline and a later run sees an
earlier one's booking. Like any receiver of a saga's calls, each applies an idempotency key
once: a step run again after a crash gets what its first attempt got.

`SAGAS` is what `agentjournal sagas retry --sagas agentjournal.agents.demo_sagas:SAGAS` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentjournal.agents.policy import Policy
from agentjournal.agents.saga_steps import tool_step
from agentjournal.agents.tools import tool
from agentjournal.journal import ConcurrencyError, Journal, NewEvent, RecordedEvent
from agentjournal.journal.errors import AgentJournalError
from agentjournal.messaging.sagas import SagaDefinition, current_step

LEADS, CRM, CALENDAR = "demo-leads", "demo-crm", "demo-calendar"
SLOT = {"rep_id": "rep-7", "time": "2026-03-19T10:00"}
"""The one slot every demo lead asks for: the first saga books it, the next finds it taken."""

POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: big_deals_need_a_manager
    description: an opportunity above $100,000 is opened by a sales manager, not by an agent
    when: {tool: create_opportunity, input: {deal_value_gt: 100000}}
    action: require_human_approval
""",
    source="demo_sagas.POLICY",
)


class SlotTaken(AgentJournalError):
    """The calendar refuses a booking of a slot that is already booked."""


def _record(
    stream: str, key: str, decide: Callable[[list[RecordedEvent]], tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Apply one call to a stand-in system once per idempotency key: a repeated key gets the first answer."""
    step = current_step()
    if step is None:
        raise RuntimeError("the demo's CRM, calendar and leads answer saga steps only (no saga step is running)")
    journal: Journal = step.journal
    while True:
        events = journal.read_stream(stream)
        done = next((event for event in events if event.data["key"] == key), None)
        if done is not None:
            answer: dict[str, Any] = done.data["result"]
            return answer
        kind, result = decide(events)
        try:
            journal.append(stream, NewEvent(kind, {"key": key, "result": result}), expected_version=len(events))
        except ConcurrencyError:
            continue  # another call got in first: decide again on what it wrote
        return result


@tool(side_effecting=True)
def qualify_lead(lead_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Mark a lead as qualified for a demo."""
    return _record(LEADS, idempotency_key, lambda _: ("LeadQualified", {"lead_id": lead_id, "status": "qualified"}))


@tool(side_effecting=True)
def mark_lead_unqualified(lead_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Undo `qualify_lead`."""
    return _record(LEADS, idempotency_key, lambda _: ("LeadUnqualified", {"lead_id": lead_id, "status": "new"}))


@tool(side_effecting=True)
def create_opportunity(lead_id: str, deal_value: float, idempotency_key: str = "") -> dict[str, Any]:
    """Open a CRM opportunity for a lead."""

    def create(events: list[RecordedEvent]) -> tuple[str, dict[str, Any]]:
        number = 123 + sum(event.type == "OpportunityCreated" for event in events)
        return "OpportunityCreated", {"opportunity_id": f"opp-{number}", "lead_id": lead_id, "deal_value": deal_value}

    return _record(CRM, idempotency_key, create)


@tool(side_effecting=True)
def delete_opportunity(opportunity_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Undo `create_opportunity`."""
    return _record(CRM, idempotency_key, lambda _: ("OpportunityDeleted", {"opportunity_id": opportunity_id}))


@tool(side_effecting=True)
def book_calendar_slot(rep_id: str, lead_id: str, time: str, idempotency_key: str = "") -> dict[str, Any]:
    """Book a sales rep's slot for a lead's demo; refused when the slot is taken."""

    def book(events: list[RecordedEvent]) -> tuple[str, dict[str, Any]]:
        booked: dict[str, dict[str, Any]] = {}
        for event in events:
            result = event.data["result"]
            if event.type == "SlotBooked":
                booked[result["booking_id"]] = result
            elif event.type == "SlotCancelled":
                booked.pop(result["booking_id"], None)
        for booking in booked.values():
            if (booking["rep_id"], booking["time"]) == (rep_id, time):
                raise SlotTaken(
                    f"{rep_id}'s slot at {time} is taken (booking {booking['booking_id']} for {booking['lead_id']})"
                )
        booking_id = f"bk-{1 + sum(event.type == 'SlotBooked' for event in events)}"
        return "SlotBooked", {"booking_id": booking_id, "rep_id": rep_id, "lead_id": lead_id, "time": time}

    return _record(CALENDAR, idempotency_key, book)


@tool(side_effecting=True)
def cancel_calendar_slot(booking_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Undo `book_calendar_slot`."""
    return _record(CALENDAR, idempotency_key, lambda _: ("SlotCancelled", {"booking_id": booking_id}))


BOOK_DEMO = SagaDefinition(
    "book-demo",
    [
        tool_step(
            qualify_lead,
            lambda step: {"lead_id": step.input["lead_id"]},
            compensation=mark_lead_unqualified,
            compensation_arguments=lambda step: {"lead_id": step.input["lead_id"]},
            policy=POLICY,
        ),
        tool_step(
            create_opportunity,
            lambda step: {"lead_id": step.input["lead_id"], "deal_value": step.input["deal_value"]},
            compensation=delete_opportunity,
            compensation_arguments=lambda step: {"opportunity_id": step.result["opportunity_id"]},
            policy=POLICY,
        ),
        tool_step(
            book_calendar_slot,
            lambda step: {"rep_id": step.input["rep_id"], "lead_id": step.input["lead_id"], "time": step.input["time"]},
            compensation=cancel_calendar_slot,
            compensation_arguments=lambda step: {"booking_id": step.result["booking_id"]},
            policy=POLICY,
        ),
    ],
)
"""Seed 002's saga: on a failure, the completed steps are compensated in reverse order."""

SAGAS = [BOOK_DEMO]


def book_demo_input(lead_id: str, deal_value: float = 24_000.0) -> dict[str, Any]:
    """The saga's input for a lead that wants the demo slot."""
    return {"lead_id": lead_id, "deal_value": deal_value, **SLOT}
