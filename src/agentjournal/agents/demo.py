"""`agentjournal demo`: two runs and a saga from the seeds, offline, on a fresh SQLite journal, explained.

Run 1 is seed 002's refund conversation (a triage agent hands over to a refund agent, which
looks up the policy and issues a partial refund). Run 2 is seed 001's blueprint: a planner
agent under seed 001's policy file, whose plan includes a destructive SQL query (denied) and
an e-mail to an outside domain (held for a human, then approved). Then the demo answers the
questions the journal exists for: what did the agent know at step N, why did it answer what
it answered, and which event first broke a rule. Last, seed 002's book-demo saga
(agents/demo_sagas.py) books the one demo slot; run again on the same --db-file, the demo skips
the runs it already recorded and the next lead's saga finds the slot taken and rolls back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.text import Text

from agentjournal.agents.agent import Agent
from agentjournal.agents.approvals import approve
from agentjournal.agents.demo_sagas import SAGAS, book_demo_input
from agentjournal.agents.models.prices import Price
from agentjournal.agents.models.scripted import Reply, ScriptedModel, call
from agentjournal.agents.policy import Policy, seed_policy_path
from agentjournal.agents.runtime import Runtime
from agentjournal.agents.tools import tool
from agentjournal.forensics.bisect import bisect_stream
from agentjournal.forensics.explainers import Explainers, brief, explainers
from agentjournal.forensics.invariants import Fails, Holds, Verdict, invariant
from agentjournal.forensics.lineage import causes
from agentjournal.forensics.timeline import timeline as forensic_timeline
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.messaging.sagas import SAGA_PREFIX, SagaResult, SagaRunner, register_saga_explainers
from agentjournal.model import Repository
from agentjournal.runs import RunState

DEMO_PRICE = Price(0.15, 0.60)
"""The scripted model is billed like a small hosted model, so costs and budgets show real numbers."""

# ----- seed 002: the refund conversation ------------------------------------------------------

ORDERS = {"ORD-5521": {"status": "delivered", "amount": 89.99, "items": ["running shoes"]}}
REFUNDS: dict[str, dict[str, Any]] = {}
"""Refunds issued, by idempotency key: a retried or resumed step refunds once."""


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    if order_id not in ORDERS:
        raise KeyError(f"no order {order_id}")
    return {"order_id": order_id, **ORDERS[order_id]}


@tool
def check_refund_policy(order_id: str, reason: str) -> dict[str, Any]:
    """What refund the policy allows for an order."""
    amount = float(ORDERS[order_id]["amount"])  # type: ignore[arg-type]
    return {"eligible": True, "max_refund": round(amount / 2, 2), "type": "partial"}


@tool(side_effecting=True)
def issue_refund(order_id: str, amount: float, idempotency_key: str = "") -> dict[str, Any]:
    """Issue a refund (a side effect: de-duplicated by its idempotency key)."""
    refund = REFUNDS.setdefault(idempotency_key, {"refund_id": f"REF-{3301 + len(REFUNDS)}", "status": "processed"})
    return {**refund, "amount": amount}


REFUND_SCRIPT: list[Reply] = [
    call("lookup_order", order_id="ORD-5521"),
    call("transfer_to_refund-agent", reason="User requesting refund on delivered order"),
    call("check_refund_policy", order_id="ORD-5521", reason="customer_request"),
    call("issue_refund", order_id="ORD-5521", amount=44.99),
    "I have issued a partial refund of $44.99 for order ORD-5521 (refund REF-3301); "
    "our policy covers half the price of a delivered order.",
]
REFUND_REQUEST = "I want a refund for order ORD-5521"

# ----- seed 001: the blueprint, under seed 001's policy ---------------------------------------


@tool
def search_docs(query: str) -> list[dict[str, str]]:
    """Search the internal runbooks."""
    return [{"title": "Stuck fulfilment runbook", "advice": "count the stuck orders, tell the carrier, open a ticket"}]


@tool
def query_sql(sql: str) -> dict[str, Any]:
    """Run a SQL query on the orders database."""
    return {"rows": [{"count": 12}]} if sql.lstrip().lower().startswith("select") else {"rows_affected": 12}


@tool(side_effecting=True)
def send_email(recipient: str, subject: str, body: str, idempotency_key: str = "") -> dict[str, Any]:
    """Send an e-mail."""
    return {"sent": True, "message_id": f"msg-{idempotency_key[:8]}", "recipient": recipient}


@tool(side_effecting=True)
def create_ticket(title: str, priority: str = "normal", idempotency_key: str = "") -> dict[str, Any]:
    """Open a ticket in the ops tracker."""
    return {"ticket": "TCK-1042", "title": title, "priority": priority}


OPS_PLAN = {
    "runId": "ops-incident-7731",
    "maxSteps": 8,
    "budgetUsd": 0.5,
    "steps": [
        {
            "id": "s1",
            "objective": "Find the runbook for stuck orders",
            "tool": "search_docs",
            "input": {"query": "stuck fulfilment"},
            "successCriteria": "a runbook is found",
        },
        {
            "id": "s2",
            "objective": "Count the stuck orders",
            "tool": "query_sql",
            "input": {"sql": "SELECT count(*) FROM orders WHERE status = 'stuck'"},
            "successCriteria": "a count is returned",
        },
        {
            "id": "s3",
            "objective": "Clean up the stuck orders",
            "tool": "query_sql",
            "input": {"sql": "DELETE FROM orders WHERE status = 'stuck'"},
            "successCriteria": "the stuck orders are gone",
        },
        {
            "id": "s4",
            "objective": "Tell the logistics partner",
            "tool": "send_email",
            "input": {
                "recipient": "ops@partner-logistics.com",
                "subject": "12 orders stuck in fulfilment",
                "body": "Twelve orders are stuck at your hub; can you check them?",
            },
            "successCriteria": "the partner is informed",
        },
        {
            "id": "s5",
            "objective": "Track the incident",
            "tool": "create_ticket",
            "input": {"title": "12 orders stuck in fulfilment", "priority": "high"},
            "successCriteria": "a ticket exists",
        },
    ],
    "stopConditions": ["a ticket is open", "any step is denied twice"],
}
OPS_SCRIPT: list[Reply] = [
    {"json": OPS_PLAN},
    "12 orders are stuck in fulfilment. The cleanup query was blocked by policy (no destructive SQL); "
    "the logistics partner has been e-mailed (approved by a human) and ticket TCK-1042 tracks the incident.",
]
OPS_REQUEST = "Orders are stuck in fulfilment: clean them up and tell our logistics partner."


def agents() -> list[Agent]:
    """The demo's agents (also what `agentjournal runs resume` uses when given no --agents)."""
    model = ScriptedModel(REFUND_SCRIPT, name="scripted", price=DEMO_PRICE)
    refund = Agent(
        "refund-agent",
        "You resolve refund requests within the refund policy.",
        model,
        tools=[check_refund_policy, issue_refund],
    )
    triage = Agent(
        "triage-agent",
        "You triage customer requests and hand them to the right agent.",
        model,
        tools=[lookup_order],
        handoffs=[refund],
    )
    ops = Agent(
        "ops-agent",
        "You handle operational incidents. Plan first, then act within policy.",
        ScriptedModel(OPS_SCRIPT, name="scripted", price=DEMO_PRICE),
        tools=[search_docs, query_sql, send_email, create_ticket],
        policy=Policy.load(seed_policy_path()),
        planner=True,
    )
    return [triage, refund, ops]


# ----- the planted invariant for bisect --------------------------------------------------------


@invariant("refunds_within_40_usd", "No refund above $40 without a supervisor", aggregate=RunState, register=False)
def refunds_within_40_usd(state: RunState) -> Verdict:
    refunded = sum(
        float(call.output.get("amount", 0))
        for call in state.calls.values()
        if call.tool == "issue_refund" and call.status == "executed" and call.output
    )
    return Fails(f"refunded ${refunded:.2f} without a supervisor") if refunded > 40 else Holds()


# ----- the demo ----------------------------------------------------------------------------------

ROUTINE = frozenset({"ResponseDrafted", "StepStarted", "CompensationStarted"})
SAID = frozenset({"policy_denied", "rejected_by_human"})
"""Observations whose reason the line before (the policy's or the human's decision) already gives."""
TITLE_WIDTH = 46


def timeline(journal: Journal, stream_id: str, explain: Explainers = explainers) -> Group:
    """Each event of a run on one line in plain language (the forensics timeline, bookkeeping left out)."""
    lines = []
    for entry in forensic_timeline(journal, stream_id, explain=explain):
        if _routine(entry.event):
            continue
        title = Text(entry.explanation.title, style=f"bold {_style(entry.event)}".strip())
        title.truncate(TITLE_WIDTH, overflow="ellipsis", pad=True)
        line = Text.assemble((f"{entry.version:>3} ", "dim"), title, "  ", entry.explanation.summary)
        line.no_wrap, line.overflow = True, "ellipsis"
        lines.append(line)
    return Group(*lines)


def _routine(event: RecordedEvent) -> bool:
    """Bookkeeping a newcomer does not need on screen (it is all in the journal)."""
    data = event.data
    return (
        event.type in ROUTINE
        or (event.type == "ObservationCaptured" and (bool(data.get("ok")) or data.get("error_type") in SAID))
        or (event.type == "PolicyEvaluated" and data.get("action") == "allow" and data.get("rule") is None)
    )


def _style(event: RecordedEvent) -> str:
    action = event.data.get("action")
    if event.type == "PolicyEvaluated" and action == "deny":
        return "red"
    if event.type in ("ApprovalRequested",) or action == "require_human_approval":
        return "yellow"
    if event.type in ("ToolApproved", "RunCompleted", "ResponseFinalized", "SagaCompleted"):
        return "green"
    if event.type in ("RunAborted", "ToolFailed", "BudgetExceeded", "ToolRejected", "StepFailed"):
        return "red"
    if event.type in ("StepCompensated", "SagaCompensated"):
        return "yellow"
    return ""


def run_demo(journal: Journal, console: Console) -> dict[str, Any]:
    """Run both demo runs on `journal`, print what the journal answers, and return the facts shown."""
    REFUNDS.clear()
    crew = agents()
    runtime = Runtime(journal, agents=crew)
    triage, ops = crew[0], crew[2]

    console.rule("[bold]1 · seed 002: a refund conversation, every step an event")
    refund = runtime.run_sync(triage, REFUND_REQUEST, user_id="user-42", run_id="refund-8842")
    console.print(timeline(journal, refund.stream_id))

    console.rule("[bold]2 · seed 001: a planned run under policy-as-code")
    ops_run = runtime.run_sync(ops, OPS_REQUEST, user_id="oncall-7", run_id="ops-7731")
    pending = ops_run.pending_approvals
    approval = pending[0].approval_id
    console.print(
        f"[yellow]⏸  run {ops_run.run_id} is {ops_run.status}[/yellow]: {pending[0].tool} to "
        f"{pending[0].arguments.get('recipient')} waits for a human (approval {approval}); "
        "the process could exit here."
    )
    approve(journal, approval, by="alice", reason="partner contact confirmed")
    console.print(f"[green]✔  alice approved {approval}[/green]; a worker resumes the run from the journal:")
    ops_run = runtime.resume_sync(ops_run.run_id)
    console.print(timeline(journal, ops_run.stream_id))

    console.rule("[bold]3 · what the journal answers")
    repository = Repository(journal, RunState)
    at = next(e.version for e in journal.read_stream(refund.stream_id) if e.data.get("tool") == "check_refund_policy")
    at += 2  # the policy's answer is in
    then = repository.load_at_version(refund.stream_id, at)
    knew = [c for c in then.calls.values() if c.output and c.tool in ("lookup_order", "check_refund_policy")]
    console.print(
        f"[bold]State at version {at}[/bold] (step {then.step}): active agent {then.agent}; it knew "
        + "; ".join(f"{c.tool} → {escape(brief(c.output, 60))}" for c in knew)
        + f"; spent ${then.cost_usd:.5f}, {then.tokens} tokens; no refund issued yet."
    )
    final = next(e for e in journal.read_stream(refund.stream_id, backwards=True) if e.type == "ResponseFinalized")
    chain = causes(journal, final.event_id)
    steps = [f"v{e.version} {explainers.explain(e).title}" for e in chain.events]
    console.print("[bold]Why this answer?[/bold] " + escape(" ← ".join(steps)))
    found = bisect_stream(journal, refunds_within_40_usd, refund.stream_id)
    if found.culprit is not None:
        console.print(
            f"[bold]Bisect[/bold] '{refunds_within_40_usd.description}': first fails at version "
            f"{found.culprit.version} ({explainers.explain(found.culprit).title}: {found.outcome}), "
            f"found in {found.evaluations} evaluations over {found.end} events."
        )
    return {
        "refund": refund,
        "ops": ops_run,
        "approval": approval,
        "state_version": at,
        "lineage": chain,
        "bisect": found,
    }


BOOK_DEMO_LEAD = 456
"""The first lead of the book-demo saga; each later run of the demo brings the next one."""


def run_saga_demo(journal: Journal, console: Console) -> SagaResult:
    """Seed 002's book-demo saga for the next lead: the first books the slot, every later one finds it taken."""
    console.rule("[bold]4 · seed 002: a saga books a demo meeting, and rolls back when it cannot")
    lead = f"lead-{BOOK_DEMO_LEAD + len(journal.streams(SAGA_PREFIX + 'book-demo-'))}"
    result = SagaRunner(journal, SAGAS).start("book-demo", book_demo_input(lead), saga_id=f"book-demo-{lead}")
    console.print(timeline(journal, SAGA_PREFIX + result.saga_id, register_saga_explainers(Explainers())))
    if result.status == "completed":
        booking = result.results["book_calendar_slot"]
        console.print(
            f"[green]✔  saga {result.saga_id} completed[/green]: {lead} has a demo with {booking['rep_id']} at "
            f"{booking['time'].replace('T', ' ')} (booking {booking['booking_id']}).",
            highlight=False,
        )
    else:
        undone = [name for name, step in reversed(result.state.steps.items()) if step.status == "compensated"]
        console.print(
            f"[yellow]↺  saga {result.saga_id} rolled back cleanly[/yellow]: {result.failed_step} failed "
            f"({result.error}); compensated {', then '.join(undone)}.",
            highlight=False,
        )
    return result


def demo(db_file: str | None, console: Console) -> dict[str, Any]:
    """Open a fresh SQLite journal (or `db_file`), run the demo on it and say how to explore it.

    On a journal that already holds the demo's runs (a second run on the same `db_file`), only the
    saga runs again: the next lead's booking finds the slot taken and the saga rolls back."""
    path = Path(db_file) if db_file else Path(tempfile.mkdtemp(prefix="agentjournal-demo-")) / "demo.db"
    url = f"sqlite:///{path}"
    with Journal.open(url, create=True) as journal:
        again = journal.stream_version("run-refund-8842") > 0
        if again:
            console.print("This journal already holds the demo's two runs (explore them below); the saga runs again.")
            facts: dict[str, Any] = {}
        else:
            facts = run_demo(journal, console)
        facts["saga"] = saga = run_saga_demo(journal, console)
    console.print(f"\nThe journal is {path}; explore it:", highlight=False)
    commands = ["explain run-refund-8842", "runs replay refund-8842"]
    if "state_version" in facts:
        commands.insert(1, f"state run-refund-8842 --at {facts['state_version']}")
    commands += ["sagas list", f"sagas show {saga.saga_id}"]
    for command in commands:
        console.print(f"  agentjournal --db {url} {command}", highlight=False, soft_wrap=True)
    if not again:
        console.print(
            f"Run `agentjournal demo --db-file {path}` again: the next lead wants the same slot, "
            "so its saga rolls back.",
            highlight=False,
            soft_wrap=True,
        )
    return facts
