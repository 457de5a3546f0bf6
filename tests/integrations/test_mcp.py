"""The MCP integration against a real MCP server process over stdio (tests/integrations/mcp_shop_server.py).

Client side: a journaled ClientSession (or mcp.Client) inside a recorded run proposes every call in
the run, the policy decides, and the server sees only the calls it allowed (its tool functions write
down each call they get). Server side: a journaled MCPServer (or low-level Server) records every call
a plain SDK client makes as a run of its own. Every run is then read by the forensics and the read side.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from agentjournal.agents import Policy, approve, reject
from agentjournal.agents.replay import DivergenceError
from agentjournal.forensics import causes
from agentjournal.integrations import RecorderError, Replay, RunRecorder
from agentjournal.integrations.mcp import (
    APPROVAL_META_KEY,
    JournaledSession,
    JournalMiddleware,
    ResultNotRecorded,
    journal_server,
    withheld,
)
from agentjournal.journal import Journal, JournalClosedError
from agentjournal.model import Repository
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState, run_stream

from ._forensics import assert_forensics

SERVER = Path(__file__).with_name("mcp_shop_server.py")
POLICY_TEXT = """
version: 1
rules:
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
"""
POLICY = Policy.from_yaml(POLICY_TEXT, source="mcp-policy")
ASK = {"role": "user", "content": "I want a refund for ORD-5521"}


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


class Shop:
    """The server process's parameters, and what its tool functions say they were called with."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.log = tmp_path / f"calls-{len(list(tmp_path.glob('calls-*')))}.jsonl"
        self.log.touch()
        self.params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "--log", str(self.log), *extra])

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        lines = self.log.read_text().splitlines()
        return [(entry["tool"], entry["arguments"]) for entry in map(json.loads, lines)]


@asynccontextmanager
async def journaled(shop: Shop, **options: Any) -> AsyncIterator[JournaledSession[ClientSession]]:
    async with stdio_client(shop.params) as (read, write), JournaledSession(ClientSession(read, write), **options) as s:
        await s.initialize()
        await s.list_tools()  # the wrapper learns which tools are read-only
        yield s


@asynccontextmanager
async def plain(shop: Shop) -> AsyncIterator[ClientSession]:
    async with stdio_client(shop.params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def readers_agree(journal: Journal, run_id: str, question: str | None = None) -> RunState:
    """The run explains itself, answers `state --at N`, walks from its answer back to the user's message,
    is counted by the read models and the metrics, and the journal verifies (assert_forensics)."""
    return assert_forensics(journal, run_id, question=question)


def types_of(journal: Journal, run_id: str) -> list[str]:
    return [event.type for event in journal.read_stream(run_stream(run_id))]


# ----- the client side ---------------------------------------------------------------------------


def test_every_call_in_a_run_is_proposed_decided_sent_and_its_result_recorded(journal: Journal, tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    recorder = RunRecorder(journal, policy=POLICY)

    async def main() -> str:
        async with journaled(shop) as session:
            with recorder.start(agent="refunds", input=ASK["content"], model="claude-sonnet-4-5", user_id="u-7") as run:
                lookup = {"id": "toolu_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
                run.model_call(model="claude-sonnet-4-5", messages=[ASK], tool_calls=[lookup], input_tokens=90)
                found = await session.call_tool("lookup_order", {"order_id": "ORD-5521"})  # read-only: no claim
                assert found.structured_content == {"order_id": "ORD-5521", "status": "delivered", "amount": 89.99}
                refunded = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 20.0})
                assert not refunded.is_error and refunded.structured_content["refund_id"] == "REF-ORD-5521"
                seen = await session.call_tool("what_i_got")
                cancelled = await session.call_tool("cancel_order", {"order_id": "ORD-5521"})
                assert cancelled.is_error and "has shipped" in text(cancelled)
                run.complete("Refunded 20.00 of ORD-5521.")
        link = seen.structured_content["meta"]["io.agentjournal/run"]
        assert (link["run_id"], link["correlation_id"]) == (run.run_id, run.correlation_id)
        return run.run_id

    run_id = anyio.run(main)
    assert types_of(journal, run_id) == [
        "RunStarted",
        "ModelCalled",
        *("ToolProposed", "PolicyEvaluated", "ToolExecuted", "ObservationCaptured"),  # lookup_order
        *("ToolProposed", "PolicyEvaluated", "ToolClaimed", "ToolExecuted", "ObservationCaptured"),  # issue_refund
        *("ToolProposed", "PolicyEvaluated", "ToolExecuted", "ObservationCaptured"),  # what_i_got
        *("ToolProposed", "PolicyEvaluated", "ToolClaimed", "ToolFailed", "ObservationCaptured"),  # cancel_order
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    state = readers_agree(journal, run_id, ASK["content"])
    lookup = state.calls["toolu_1"]  # the id the model's reply gave the call
    assert lookup.output["structuredContent"]["status"] == "delivered" and lookup.output["isError"] is False
    assert lookup.output["content"][0]["type"] == "text"
    [failed] = [call for call in state.calls.values() if call.tool == "cancel_order"]
    assert (failed.status, failed.error_type) == ("failed", "tool_error") and "has shipped" in (failed.error or "")
    assert (state.metrics.tool_calls, state.metrics.tool_failures) == (3, 1)  # executed, failed
    assert Repository(journal, RunState).load_at_version(run_stream(run_id), 6).calls["toolu_1"].status == "executed"
    [row] = metrics(journal, by="agent", since=datetime.now(UTC) - timedelta(hours=1))
    assert (row.group, row.runs, row.successes) == ("refunds", 1, 1)
    assert [tool for tool, _ in shop.calls()] == ["lookup_order", "issue_refund", "what_i_got", "cancel_order"]


def test_a_denied_call_never_reaches_the_server_and_a_held_one_runs_once_a_human_approved_it(
    journal: Journal, tmp_path: Path
) -> None:
    shop = Shop(tmp_path)

    async def first_process() -> tuple[str, str, str]:
        recorder = RunRecorder(journal, policy=POLICY)
        async with journaled(shop) as session:
            with recorder.start(agent="refunds", input=ASK["content"], user_id="u-7") as run:
                denied = await session.call_tool("delete_order", {"order_id": "ORD-5521"})
                why = withheld(denied)
                assert denied.is_error and why is not None and (why.action, why.rule) == ("deny", "no_deletes")
                held = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 44.99})
                hold = withheld(held)
                assert hold is not None and hold.action == "require_human_approval" and hold.approval_id
                assert hold.approval_id in text(held) and "resume_call" in text(held)
                too_much = withheld(await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 99.0}))
                assert too_much is not None and too_much.approval_id
                again = withheld(await session.resume_call(hold.call_id))  # nobody decided yet: still held
                assert again is not None and again.action == "require_human_approval"
        assert shop.calls() == []  # nothing reached the server
        return run.run_id, hold.call_id, too_much.call_id

    run_id, held_call, rejected_call = anyio.run(first_process)
    state = Repository(journal, RunState).load(run_stream(run_id))
    assert state.status == "waiting_approval"
    assert approve(journal, state.calls[held_call].approval_id or "", by="alice", reason="ok").status == "approved"
    reject(journal, state.calls[rejected_call].approval_id or "", by="bob", reason="too much")

    async def second_process() -> None:  # a new recorder and a new server process: the run resumes from the journal
        recorder = RunRecorder(journal, policy=POLICY)
        async with journaled(shop) as session:
            with recorder.resume(run_id) as run:
                again = {"order_id": "ORD-5521", "amount": 44.99}  # the held call, called again once approved
                done = await session.call_tool("issue_refund", again)
                assert not done.is_error and done.structured_content["amount"] == 44.99
                twice = await session.resume_call(held_call)  # already ran: its recorded result, not sent again
                assert twice.structured_content == done.structured_content
                refused = await session.resume_call(rejected_call)
                assert refused.is_error and "bob rejected the call: too much" in text(refused)
                with pytest.raises(RecorderError, match="no tool call 'nope'"):
                    await session.resume_call("nope")
                run.complete("Your refund of 44.99 is on its way.")

    anyio.run(second_process)
    assert shop.calls() == [("issue_refund", {"order_id": "ORD-5521", "amount": 44.99})]
    state = readers_agree(journal, run_id, ASK["content"])
    assert state.calls[held_call].status == "executed" and state.calls[held_call].claim is None
    assert state.calls[rejected_call].status == "refused"
    assert (state.metrics.denials, state.metrics.approvals_required, state.metrics.approvals) == (1, 2, 1)
    approval_id = state.calls[held_call].approval_id
    of_the_call = [
        e.type
        for e in journal.read_stream(run_stream(run_id))
        if held_call == e.data.get("call_id") or (approval_id and approval_id == e.data.get("approval_id"))
    ]
    assert of_the_call == [
        *("ToolProposed", "PolicyEvaluated", "ApprovalRequested", "ToolApproved"),
        *("ToolClaimed", "ToolExecuted", "ObservationCaptured"),
    ]


def test_outside_a_run_a_session_refuses_or_records_each_call_as_a_run_of_its_own(
    journal: Journal, tmp_path: Path
) -> None:
    shop = Shop(tmp_path)

    async def main() -> None:
        async with journaled(shop) as session:
            with pytest.raises(RecorderError, match="outside a recorded run"):
                await session.call_tool("lookup_order", {"order_id": "ORD-1"})
        recorder = RunRecorder(journal, policy=POLICY)
        async with journaled(shop, recorder=recorder, agent="shop-client", user_id="u-9") as session:
            assert not (await session.call_tool("lookup_order", {"order_id": "ORD-1"})).is_error
            assert withheld(await session.call_tool("delete_order", {"order_id": "ORD-1"})) is not None
            held = await session.call_tool("issue_refund", {"order_id": "ORD-1", "amount": 50.0})
            hold = withheld(held)
            assert hold is not None and hold.approval_id and f"run_id={hold.run_id!r}" in text(held)
            approve(journal, hold.approval_id, by="alice", reason="fine")
            done = await session.resume_call(hold.call_id, run_id=hold.run_id)
            assert done.structured_content["amount"] == 50.0

    anyio.run(main)
    assert [tool for tool, _ in shop.calls()] == ["lookup_order", "issue_refund"]
    runs = runs_by_tool(journal)
    looked = readers_agree(journal, runs["lookup_order"])
    assert (looked.status, looked.agent, looked.summary.user_id) == ("completed", "shop-client", "u-9")
    assert looked.input == 'tools/call lookup_order {"order_id":"ORD-1"}' and "delivered" in (
        looked.final_response or ""
    )
    denied = readers_agree(journal, runs["delete_order"])
    assert denied.status == "completed" and "denied by rule no_deletes" in (denied.final_response or "")
    refunded = readers_agree(journal, runs["issue_refund"])
    assert refunded.status == "completed" and refunded.calls[next(iter(refunded.calls))].status == "executed"
    assert {row.status for row in list_runs(journal)} == {"completed"}


def runs_by_tool(journal: Journal) -> dict[str, str]:
    """The runs of their own, by the one tool each called."""
    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    found: dict[str, str] = {}
    for row in list_runs(journal, limit=1000):
        [call] = Repository(journal, RunState).load(run_stream(row.run_id)).calls.values()
        found[call.tool] = row.run_id
    return found


def test_errors_are_recorded_and_a_journal_that_fails_is_never_silent(
    journal: Journal, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    shop = Shop(tmp_path)

    async def main() -> tuple[str, str, str]:
        recorder = RunRecorder(journal, policy=POLICY)
        async with journaled(shop) as session:
            with recorder.start(agent="refunds", input="refund ORD-7") as run:
                with pytest.raises(MCPError, match="timed out"):
                    await session.call_tool(
                        "slow_refund", {"order_id": "ORD-7", "seconds": 5}, read_timeout_seconds=0.3
                    )
                run.complete("It is taking longer than usual.")

            lost = Journal.open(sqlite_or_postgres_url)  # this one goes away while the tool runs
            unlucky = RunRecorder(lost).start(agent="refunds", input="refund ORD-8")

            async def journal_goes_away(progress: float, total: float | None, message: str | None) -> None:
                lost.close()

            with unlucky.active(), pytest.raises(ResultNotRecorded, match="slow_refund ran") as caught:
                await session.call_tool("slow_refund", {"order_id": "ORD-8"}, progress_callback=journal_goes_away)
            assert text(caught.value.result) == "refunded ORD-8"

            down = Journal.open(sqlite_or_postgres_url)
            never = RunRecorder(down).start(agent="refunds", input="refund ORD-9")
            down.close()  # the database is gone before the call: it is never sent
            with never.active(), pytest.raises(JournalClosedError):
                await session.call_tool("issue_refund", {"order_id": "ORD-9", "amount": 1.0})
        return run.run_id, unlucky.run_id, never.run_id

    timed_out, unlucky, never = anyio.run(main)
    state = readers_agree(journal, timed_out)
    [call] = state.calls.values()
    assert (call.status, call.error_type) == ("failed", "MCPError") and "timed out" in (call.error or "")
    left = Repository(journal, RunState).load(run_stream(unlucky))
    [open_call] = left.calls.values()
    assert open_call.status == "claimed"  # the run shows the call that ran without a recorded result
    assert types_of(journal, never) == ["RunStarted"]
    assert [args["order_id"] for tool, args in shop.calls()] == ["ORD-7", "ORD-8"]


def test_mcp_client_is_wrapped_too(journal: Journal, tmp_path: Path) -> None:
    shop = Shop(tmp_path)

    async def main() -> str:
        recorder = RunRecorder(journal, policy=POLICY)
        async with JournaledSession(Client(shop.params)) as client:  # the 2026-07-28 protocol, no handshake
            assert client.protocol_version == "2026-07-28"
            with recorder.start(agent="refunds", input="refund ORD-3") as run:
                result = await client.call_tool("issue_refund", {"order_id": "ORD-3", "amount": 5.0})
                assert result.structured_content["amount"] == 5.0
                denied = await client.call_tool("delete_order", {"order_id": "ORD-3"})
                assert withheld(denied) is not None
                run.complete("Refunded.")
        return run.run_id

    run_id = anyio.run(main)
    assert readers_agree(journal, run_id).metrics.tool_calls == 1  # the executed one
    assert shop.calls() == [("issue_refund", {"order_id": "ORD-3", "amount": 5.0})]


def test_a_recorded_loop_replays_from_the_recording_without_calling_the_server(
    journal: Journal, tmp_path: Path
) -> None:
    shop = Shop(tmp_path)

    async def refund_loop(session: JournaledSession[ClientSession], recorder: RunRecorder, amount: float) -> str:
        with recorder.start(agent="refunds", input=ASK["content"], user_id="u-7") as run:
            found = await session.call_tool("lookup_order", {"order_id": "ORD-5521"})
            refund = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": amount})
            failed = await session.call_tool("cancel_order", {"order_id": "ORD-5521"})
            paid, total = refund.structured_content["amount"], found.structured_content["amount"]
            run.complete(f"Refunded {paid} of {total}. {text(failed)}")
        return run.run_id

    async def record() -> str:
        async with journaled(shop) as session:
            return await refund_loop(session, RunRecorder(journal, policy=POLICY), 20.0)

    run_id = anyio.run(record)
    sent = shop.calls()

    async def replay() -> None:
        async with journaled(shop) as session:
            with Replay(journal, run_id, policy=POLICY) as again:
                await refund_loop(session, again.recorder, 20.0)
                assert again.same_response and again.state.status == "completed"
            with Replay(journal, run_id, policy=POLICY) as changed, pytest.raises(DivergenceError, match="amount"):
                await refund_loop(session, changed.recorder, 30.0)

    anyio.run(replay)
    assert shop.calls() == sent  # the replays sent nothing


# ----- the server side ---------------------------------------------------------------------------


def test_a_journaled_server_records_every_call_of_a_plain_client_as_a_run(journal: Journal, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_TEXT)
    shop = Shop(tmp_path, "--journal", journal.url, "--policy", str(policy))

    async def main() -> str:
        async with plain(shop) as session:
            found = await session.call_tool("lookup_order", {"order_id": "ORD-5521"})
            assert found.structured_content["status"] == "delivered"
            failed = await session.call_tool("cancel_order", {"order_id": "ORD-5521"})
            assert failed.is_error and "has shipped" in text(failed)
            denied = await session.call_tool("delete_order", {"order_id": "ORD-5521"})
            assert denied.is_error and "denied by rule no_deletes" in text(denied)
            held = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 44.99})
            hold = withheld(held)
            assert hold is not None and hold.approval_id and APPROVAL_META_KEY in text(held)
            resume = {APPROVAL_META_KEY: hold.approval_id}
            still = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, meta=resume)
            assert withheld(still) is not None  # nobody decided yet
            await anyio.to_thread.run_sync(lambda: approve(journal, hold.approval_id or "", by="alice", reason="ok"))
            other = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 99.0}, meta=resume)
            assert other.is_error and "not this call" in text(other)  # the approval is for the arguments shown
            done = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, meta=resume)
            assert not done.is_error and done.structured_content["amount"] == 44.99
            again = await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}, meta=resume)
            assert again.structured_content == done.structured_content  # answered from the run, not run twice
            unknown = await session.call_tool("lookup_order", {"order_id": "X"}, meta={APPROVAL_META_KEY: "apr-nope"})
            assert unknown.is_error and "no approval apr-nope" in text(unknown)
        return hold.run_id

    held_run = anyio.run(main)
    assert shop.calls() == [
        ("lookup_order", {"order_id": "ORD-5521"}),
        ("cancel_order", {"order_id": "ORD-5521"}),
        ("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}),
    ]
    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    rows = list_runs(journal)
    assert len(rows) == 4 and {row.agent for row in rows} == {"shop"}
    for row in rows:
        state = readers_agree(journal, row.run_id)
        assert state.status == "completed" and state.input.startswith("tools/call ")
    refunded = Repository(journal, RunState).load(run_stream(held_run))
    assert [e for e in types_of(journal, held_run) if e.startswith("Tool")] == [
        "ToolProposed",
        "ToolApproved",
        "ToolClaimed",
        "ToolExecuted",
    ]
    assert refunded.tool_schemas.keys() == {"issue_refund"}  # the called tool's schema is pinned
    [row] = metrics(journal, by="agent", since=datetime.now(UTC) - timedelta(hours=1))
    assert (row.group, row.runs, row.violations) == ("shop", 4, 2)


def test_a_journaled_client_and_a_journaled_server_tell_one_story(journal: Journal, tmp_path: Path) -> None:
    shop = Shop(tmp_path, "--journal", journal.url)

    async def main() -> str:
        recorder = RunRecorder(journal)
        async with journaled(shop) as session:
            with recorder.start(agent="refunds", input=ASK["content"]) as run:
                await session.call_tool("issue_refund", {"order_id": "ORD-5521", "amount": 10.0})
                run.complete("Refunded.")
        return run.run_id

    client_run = anyio.run(main)
    client = Repository(journal, RunState).load(run_stream(client_run))
    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    [server_run] = [row.run_id for row in list_runs(journal) if row.agent == "shop"]
    server_events = journal.read_stream(run_stream(server_run))
    assert {event.correlation_id for event in server_events} == {client.correlation_id}
    answer = next(event for event in server_events if event.type == "ResponseFinalized")
    chain = causes(journal, answer.event_id)  # from the server's answer, through the client's call, to the user
    assert chain.root.stream_id == run_stream(client_run) and chain.root.data["input"] == ASK["content"]
    assert readers_agree(journal, server_run, ASK["content"]).status == "completed"  # the client's user


def test_the_low_level_server_is_journaled_and_a_failing_journal_stops_the_call(
    journal: Journal, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_TEXT)
    shop = Shop(tmp_path, "--lowlevel", "--journal", journal.url, "--policy", str(policy))

    async def over_stdio() -> None:
        async with plain(shop) as session:
            assert text(await session.call_tool("lookup_order", {"order_id": "ORD-1"})) == "lookup_order ORD-1: done"
            assert withheld(await session.call_tool("delete_order", {"order_id": "ORD-1"})) is not None

    anyio.run(over_stdio)
    assert shop.calls() == [("lookup_order", {"order_id": "ORD-1"})]
    rows = list_runs(journal)
    assert {row.agent for row in rows} == {"shop-lowlevel"}
    for row in rows:
        readers_agree(journal, row.run_id)

    sys.path.insert(0, str(SERVER.parent))
    try:
        server_module = importlib.import_module("mcp_shop_server")
    finally:
        sys.path.remove(str(SERVER.parent))
    ran: list[str] = []
    lost = Journal.open(sqlite_or_postgres_url)
    server = server_module.build_lowlevel_server(lambda tool, **arguments: ran.append(tool))
    journal_server(server, RunRecorder(lost, policy=POLICY))

    async def in_process() -> None:
        async with Client(server) as client:
            assert not (await client.call_tool("lookup_order", {"order_id": "ORD-2"})).is_error
            lost.close()  # the database goes away
            with pytest.raises(MCPError, match="could not record the call to lookup_order, so it was not run"):
                await client.call_tool("lookup_order", {"order_id": "ORD-3"})

    anyio.run(in_process)
    assert ran == ["lookup_order"]


def test_a_server_writes_a_side_effecting_call_before_its_tool_acts(journal: Journal) -> None:
    """The call is proposed, allowed and claimed in the journal before the tool function runs; a
    read-only call is written with its result (one write, nothing to guard)."""
    sys.path.insert(0, str(SERVER.parent))
    try:
        server_module = importlib.import_module("mcp_shop_server")
    finally:
        sys.path.remove(str(SERVER.parent))
    seen: dict[str, list[str]] = {}

    def log(tool: str, **arguments: Any) -> None:  # what the journal holds of the call as the tool acts
        [started] = list(journal.iter_all(types=["RunStarted"]))[-1:]
        seen[tool] = [event.type for event in journal.read_stream(started.stream_id)]

    server = server_module.build_server(log)
    journal_server(server, RunRecorder(journal))

    async def in_process() -> None:
        async with Client(server) as client:
            assert not (await client.call_tool("issue_refund", {"order_id": "ORD-9", "amount": 5.0})).is_error
            assert not (await client.call_tool("lookup_order", {"order_id": "ORD-9"})).is_error

    anyio.run(in_process)
    assert seen["issue_refund"] == ["RunStarted", "ToolProposed", "ToolClaimed"]  # no policy: no decision
    assert seen["lookup_order"] == ["RunStarted"]


def test_bad_inputs_get_clear_errors(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="wraps an mcp ClientSession or Client"):
        JournaledSession(object())  # type: ignore[type-var]
    with pytest.raises(TypeError, match="needs a RunRecorder"):
        JournalMiddleware(journal)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an MCPServer or a low-level mcp Server"):
        journal_server(object(), RunRecorder(journal))  # type: ignore[arg-type]
    session = JournaledSession(Client("http://127.0.0.1:9/mcp"))

    async def main() -> None:
        with pytest.raises(ValueError, match="needs a tool name"):
            await session.call_tool("")
        with pytest.raises(TypeError, match="arguments must be a mapping"):
            await session.call_tool("lookup_order", ["ORD-1"])  # type: ignore[arg-type]
        with pytest.raises(RecorderError, match="outside a run"):
            await session.resume_call("call-1")

    anyio.run(main)
    for name in [name for name in sys.modules if name.startswith("agentjournal.integrations.mcp")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(ImportError, match=r"pip install 'agentjournal\[mcp\]'"):
        importlib.import_module("agentjournal.integrations.mcp")
