"""Realistic agent data for the forensics tests: a 200-step run with a planted failure, and a
causation chain across three streams (a user's session, the agent run, the payments ledger)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from agentjournal.forensics import Fails, Holds, Invariant
from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.model import Aggregate

STEPS = 200
PLANTED_STEP = 137
TOOLS = ("search", "price_lookup", "read_file")


class Ledger(Aggregate):
    """A test run aggregate: tool calls, prices seen, failures in a row."""

    snapshot_every: ClassVar[int | None] = 50

    tool_calls: int
    prices: list[float]
    failures_in_a_row: dict[str, int]
    answered: bool

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.tool_calls = 0
        self.prices = []
        self.failures_in_a_row = {}
        self.answered = False

    def when(self, event: RecordedEvent) -> None:
        data = event.data
        if event.type == "ToolExecuted":
            self.tool_calls += 1
            self.failures_in_a_row[data["tool"]] = 0
            if data["tool"] == "price_lookup":
                self.prices.append(data["result"]["price"])
        elif event.type == "ToolFailed":
            self.failures_in_a_row[data["tool"]] = self.failures_in_a_row.get(data["tool"], 0) + 1
        elif event.type == "ResponseFinalized":
            self.answered = True


class PricesInBounds(Invariant[Any]):
    """Over a run: every price seen is within bounds. Over the journal: the same, folded across runs."""

    name: ClassVar[str] = "prices-in-bounds"
    description: ClassVar[str] = "Every price_lookup price is between 0 and 10,000."
    aggregate: ClassVar[type[Aggregate] | None] = Ledger
    types: ClassVar[tuple[str, ...] | None] = ("ToolExecuted",)

    def evaluate(self, state: Any) -> Holds | Fails:
        prices = state.prices if isinstance(state, Ledger) else state["prices"]
        bad = [price for price in prices if not 0 <= price <= 10_000]
        return Fails(f"price {bad[0]} is out of bounds") if bad else Holds()

    def initial(self) -> dict[str, list[float]]:
        return {"prices": []}

    def fold(self, state: dict[str, list[float]], event: RecordedEvent) -> dict[str, list[float]]:
        if event.data["tool"] == "price_lookup":
            state["prices"].append(event.data["result"]["price"])
        return state


@dataclass
class Run:
    stream_id: str
    planted_version: int | None
    events: list[RecordedEvent]


def agent_run(
    journal: Journal, run_id: str, *, steps: int = STEPS, plant_at_step: int | None = PLANTED_STEP, seed: int = 1
) -> Run:
    """A run of `steps` tool steps (ToolProposed, then ToolExecuted or ToolFailed, then an
    observation), answered at the end; at `plant_at_step` price_lookup returns a negative price."""
    rnd = random.Random(seed)
    stream = f"run-{run_id}"
    events = [NewEvent("RunStarted", {"agent": "support", "model": "scripted", "input": "refund order 1234?"})]
    planted_index = None
    for step in range(steps):
        tool = "price_lookup" if step == plant_at_step else TOOLS[step % 3]
        events.append(NewEvent("ToolProposed", {"tool": tool, "args": {"q": f"item {step}"}, "reason": f"step {step}"}))
        if step % 17 == 5 and step != plant_at_step:
            events.append(NewEvent("ToolFailed", {"tool": tool, "error": "HTTP 404", "message": "not found"}))
        else:
            result: dict[str, Any] = {"price": round(rnd.uniform(1, 500), 2)} if tool == "price_lookup" else {"hits": 3}
            if step == plant_at_step:
                result = {"price": -42.0}
                planted_index = len(events)
            events.append(NewEvent("ToolExecuted", {"tool": tool, "result": result, "latency_ms": rnd.randint(5, 900)}))
        events.append(NewEvent("ObservationCaptured", {"summary": f"observed step {step}"}))
    events.append(NewEvent("ResponseFinalized", {"text": "Your refund is on its way."}))
    stored = journal.append(stream, events, expected_version=0).events
    planted = stored[planted_index].version if planted_index is not None else None
    return Run(stream, planted, stored)


@dataclass
class Chain3:
    """user message (session stream) -> run started -> tool proposed -> tool executed (run stream)
    -> refund issued -> refund settled (payments stream)."""

    message: RecordedEvent
    started: RecordedEvent
    proposed: RecordedEvent
    executed: RecordedEvent
    refund: RecordedEvent
    settled: RecordedEvent
    sibling: RecordedEvent


def causation_chain(journal: Journal) -> Chain3:
    message = journal.append(
        "session-u42",
        NewEvent("UserMessage", {"text": "Refund order 1234 please"}, actor="user:u42", tenant_id="acme"),
    ).events[0]
    with journal.context(caused_by=message, actor="agent:support", tenant_id="acme"):
        started = journal.append("run-r42", NewEvent("RunStarted", {"input": "Refund order 1234 please"})).events[0]
    with journal.context(caused_by=started, actor="agent:support", tenant_id="acme"):
        proposed = journal.append(
            "run-r42", NewEvent("ToolProposed", {"tool": "issue_refund", "args": {"order": 1234}})
        )
    with journal.context(caused_by=proposed.events[0], actor="agent:support", tenant_id="acme"):
        executed = journal.append("run-r42", NewEvent("ToolExecuted", {"tool": "issue_refund", "result": {"ok": True}}))
    with journal.context(caused_by=executed.events[0], actor="service:payments", tenant_id="acme"):
        refund = journal.append("payments-acme", NewEvent("RefundIssued", {"order": 1234, "usd": 19.99})).events[0]
        sibling = journal.append("run-r42", NewEvent("ObservationCaptured", {"summary": "refund issued"})).events[0]
    with journal.context(caused_by=refund, actor="service:payments", tenant_id="acme"):
        settled = journal.append("payments-acme", NewEvent("RefundSettled", {"order": 1234})).events[0]
    return Chain3(message, started, proposed.events[0], executed.events[0], refund, settled, sibling)
