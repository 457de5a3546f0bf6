"""The Claude Agent SDK: the real SDK drives its bundled `claude` CLI against a local server that answers like the
Messages API (server-sent events, on 127.0.0.1); the tools are an in-process MCP server, the SDK's own kind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("claude_agent_sdk")

from claude_agent_sdk import ClaudeAgentOptions, ResultError, ResultMessage, create_sdk_mcp_server, tool

from agentjournal.agents import Policy, reject
from agentjournal.agents.models.base import RealModelRequestBlocked
from agentjournal.forensics import causes, timeline
from agentjournal.integrations import RecorderError, RunRecorder
from agentjournal.integrations.claude_agent_sdk import ClaudeAgentJournal, policy_name
from agentjournal.journal import Journal, JournalError, StreamNotFoundError
from agentjournal.model import Repository
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState
from agents._fake_providers import FakeProvider, Reply, anthropic_reply, anthropic_stream, serving

from ._forensics import assert_forensics

POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: big_refunds_need_a_human
    when: {tool: issue_refund, input: {amount_gt: 40}}
    action: require_human_approval
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
""",
    source="claude-agent-sdk-policy",
)
QUESTION = "I want a refund for ORD-5521, it arrived broken"
ANSWER = "I have refunded 44.99 for ORD-5521."
REFUNDS: list[dict[str, Any]] = []
DELETED: list[str] = []


@tool("lookup_order", "Look an order up", {"order_id": str})
async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
    order = {"order_id": args["order_id"], "status": "delivered", "amount": 89.99}
    return {"content": [{"type": "text", "text": json.dumps(order)}]}


@tool("delete_order", "Delete an order", {"order_id": str})
async def delete_order(args: dict[str, Any]) -> dict[str, Any]:
    DELETED.append(args["order_id"])
    return {"content": [{"type": "text", "text": "deleted"}]}


@tool("issue_refund", "Refund an order", {"order_id": str, "amount": float})
async def issue_refund(args: dict[str, Any]) -> dict[str, Any]:
    REFUNDS.append(dict(args))
    return {"content": [{"type": "text", "text": json.dumps({"refund_id": f"REF-{len(REFUNDS)}"})}]}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": f"mcp__shop__{name}", "input": arguments}


def the_model(body: dict[str, Any]) -> Reply:
    """Seed 002's refund: look the order up, then refund it (and try to delete it), then answer."""
    results = {
        block.get("tool_use_id")
        for message in body.get("messages", [])
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    }
    if "toolu_refund" in results:
        return anthropic_stream(anthropic_reply([{"type": "text", "text": ANSWER}]))
    if "toolu_lookup" in results:
        content = [
            {"type": "text", "text": "Let me refund it."},
            tool_use("toolu_delete", "delete_order", {"order_id": "ORD-5521"}),
            tool_use("toolu_refund", "issue_refund", {"order_id": "ORD-5521", "amount": 44.99}),
        ]
        return anthropic_stream(anthropic_reply(content, "tool_use"))
    lookup = tool_use("toolu_lookup", "lookup_order", {"order_id": "ORD-5521"})
    return anthropic_stream(anthropic_reply([lookup], "tool_use"))


@pytest.fixture(autouse=True)
def _nothing_done_yet() -> Iterator[None]:
    REFUNDS.clear()
    DELETED.clear()
    yield
    REFUNDS.clear()
    DELETED.clear()


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with serving(the_model) as provider:
        yield provider


def options_for(fake: FakeProvider, home: Path) -> ClaudeAgentOptions:
    """The CLI bundled with the SDK, talking to the local server only, in a home folder of its own."""
    home.mkdir(exist_ok=True)
    env = {
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_API_KEY": "sk-test",
        "HOME": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
    }
    shop = create_sdk_mcp_server("shop", tools=[lookup_order, delete_order, issue_refund])
    allowed = [f"mcp__shop__{name}" for name in ("lookup_order", "delete_order", "issue_refund")]
    return ClaudeAgentOptions(env=env, cwd=str(home), mcp_servers={"shop": shop}, allowed_tools=allowed)


async def collect(messages: Any) -> list[Any]:
    return [message async for message in messages]


def turn(journaled: ClaudeAgentJournal, options: ClaudeAgentOptions, run_id: str | None = None) -> ResultMessage:
    """One turn: a new run, or (with `run_id`) the held run continued; its ResultMessage."""
    stream = journaled.query(QUESTION, options=options) if run_id is None else journaled.resume(run_id, options=options)
    [result] = [m for m in asyncio.run(collect(stream)) if isinstance(m, ResultMessage)]
    return result


def test_a_session_is_a_run_every_reader_understands_and_a_held_call_waits_for_a_human(
    journal: Journal, fake: FakeProvider, tmp_path: Path, invoke: Any
) -> None:
    options = options_for(fake, tmp_path / "home")
    first = turn(ClaudeAgentJournal(RunRecorder(journal, policy=POLICY), agent="refunds", user_id="u-7"), options)
    assert first.stop_reason == "tool_deferred" and first.deferred_tool_use is not None
    assert first.deferred_tool_use.id == "toolu_refund" and DELETED == [] and REFUNDS == []
    run_id = first.session_id  # the run and the Claude session share their id
    state = Repository(journal, RunState).load(f"run-{run_id}")
    assert state.status == "waiting_approval"
    assert (state.calls["toolu_delete"].status, state.calls["toolu_delete"].rule) == ("refused", "no_deletes")
    [approval] = state.pending_approvals()
    assert (approval.tool, approval.arguments) == ("issue_refund", {"order_id": "ORD-5521", "amount": 44.99})

    approving = ["approvals", "approve", approval.approval_id, "--by", "alice", "--reason", "receipt seen"]
    assert invoke(journal.url, *approving).exit_code == 0  # the reviewer, on the command line

    with Journal.open(journal.url) as later:  # the process that continues has a journal of its own
        done = turn(ClaudeAgentJournal(RunRecorder(later, policy=POLICY), agent="refunds"), options, run_id)
    assert (done.result, done.session_id) == (ANSWER, run_id)
    assert REFUNDS == [{"order_id": "ORD-5521", "amount": 44.99}]
    told = json.dumps(fake.requests[-1]["messages"])
    assert "The call was denied by policy (rule no_deletes)" in told  # the model was told why

    events = journal.read_stream(f"run-{run_id}")
    kinds = [event.type for event in events]
    assert kinds[:7] == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
    ]
    assert kinds[kinds.index("ToolApproved") :] == [
        "ToolApproved",
        "ToolClaimed",  # a call a human approved is claimed before it runs
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    asked = events[6].data
    assert asked["response"]["text"] == "Let me refund it."
    assert [call["name"] for call in asked["response"]["tool_calls"]] == ["delete_order", "issue_refund"]
    assert (asked["input_tokens"], asked["output_tokens"]) == (200, 40)  # the API's usage, at the message's end
    assert events[1].data["new_messages"] == [{"role": "user", "ref": 1}]
    assert events[6].data["new_messages"] == [
        {"role": "tool", "tool_call_id": "toolu_lookup", "name": "lookup_order", "ref": 5}
    ]
    check_forensics(journal, run_id)


def check_forensics(journal: Journal, run_id: str) -> None:
    """What every integration must give (assert_forensics), and what this session's run must show in it."""
    assert_forensics(journal, run_id, question=QUESTION)
    stream = f"run-{run_id}"
    events = journal.read_stream(stream)
    entries = timeline(journal, stream)
    words = " ".join(f"{entry.explanation.title} {entry.explanation.summary}" for entry in entries)
    assert "issue_refund" in words and "approved" in words.lower()
    looked_up = next(e.version for e in events if e.type == "ToolExecuted" and e.data["tool"] == "lookup_order")
    then = Repository(journal, RunState).load_at_version(stream, looked_up)
    assert json.loads(then.calls["toolu_lookup"].output[0]["text"])["amount"] == 89.99  # the MCP result's content
    assert "toolu_refund" not in then.calls
    final = next(e for e in events if e.type == "ResponseFinalized")
    chain = causes(journal, final.event_id)
    assert chain.root.type == "RunStarted" and chain.root.data["input"] == QUESTION
    assert [e.type for e in chain.events][:3] == ["ResponseFinalized", "ResponseDrafted", "ModelCalled"]
    [row] = [row for row in list_runs(journal) if row.run_id == run_id]
    assert (row.status, row.user_id) == ("completed", "u-7")
    [group] = metrics(journal, by="model", since=datetime.now(UTC) - timedelta(hours=1))
    assert group.runs == 1 and group.tokens > 0


def test_a_rejected_call_is_never_run_and_the_model_is_told_why(
    journal: Journal, fake: FakeProvider, tmp_path: Path
) -> None:
    options = options_for(fake, tmp_path / "home")
    journaled = ClaudeAgentJournal(RunRecorder(journal, policy=POLICY), agent="refunds")
    first = turn(journaled, options)
    [approval] = Repository(journal, RunState).load(f"run-{first.session_id}").pending_approvals()
    reject(journal, approval.approval_id, by="bob", reason="no receipt")
    done = turn(journaled, options, first.session_id)
    assert REFUNDS == [] and done.result == ANSWER
    assert "The call was rejected by bob: no receipt" in json.dumps(fake.requests[-1]["messages"])
    state = Repository(journal, RunState).load(f"run-{first.session_id}")
    assert (state.status, state.calls["toolu_refund"].status) == ("completed", "refused")
    assert journal.verify().ok


def test_resuming_before_anyone_decided_holds_the_call_again(
    journal: Journal, fake: FakeProvider, tmp_path: Path
) -> None:
    options = options_for(fake, tmp_path / "home")
    journaled = ClaudeAgentJournal(RunRecorder(journal, policy=POLICY))
    first = turn(journaled, options)
    again = turn(journaled, options, first.session_id)
    assert again.stop_reason == "tool_deferred" and REFUNDS == []
    assert Repository(journal, RunState).load(f"run-{first.session_id}").status == "waiting_approval"


def test_a_failure_inside_agentjournal_blocks_the_tool_and_fails_the_turn(
    sqlite_url: str, fake: FakeProvider, tmp_path: Path
) -> None:
    journal = Journal.open(sqlite_url)
    options = options_for(fake, tmp_path / "home")

    @tool("lookup_order", "Look an order up", {"order_id": str})
    async def closes_the_journal(args: dict[str, Any]) -> dict[str, Any]:
        journal.close()  # the database goes away while the tool runs
        return {"content": [{"type": "text", "text": "{}"}]}

    shop = create_sdk_mcp_server("shop", tools=[closes_the_journal, delete_order, issue_refund])
    options.mcp_servers = {"shop": shop}
    journaled = ClaudeAgentJournal(RunRecorder(journal, policy=POLICY))
    with pytest.raises(JournalError):
        asyncio.run(collect(journaled.query(QUESTION, options=options)))
    assert REFUNDS == [] and DELETED == []
    assert len(fake.requests) == 1  # the hook stopped the session: the model was not asked again


def test_bad_inputs_and_real_endpoints_get_clear_errors(journal: Journal, tmp_path: Path) -> None:
    recorder = RunRecorder(journal)
    with pytest.raises(TypeError, match="needs a RunRecorder"):
        ClaudeAgentJournal(journal)  # type: ignore[arg-type]
    journaled = ClaudeAgentJournal(recorder)
    with pytest.raises(RecorderError, match="non-empty text"):
        journaled.query("  ")
    with pytest.raises(RecorderError, match="continue_conversation is not supported"):
        journaled.query(QUESTION, options=ClaudeAgentOptions(continue_conversation=True))
    with pytest.raises(StreamNotFoundError):
        journaled.resume("01a23898-9ac8-7000-9ce8-114d87e89642")
    real = ClaudeAgentOptions(env={"ANTHROPIC_BASE_URL": "https://api.anthropic.com"}, cwd=str(tmp_path))
    with pytest.raises(RealModelRequestBlocked, match="Claude Agent SDK"):
        asyncio.run(collect(journaled.query(QUESTION, options=real)))
    assert list(journal.read_all()) == []  # refused before a run or a process started
    assert (policy_name("mcp__shop__issue_refund"), policy_name("Bash"), policy_name("mcp__x")) == (
        "issue_refund",
        "Bash",
        "mcp__x",
    )


def test_without_the_extra_the_import_error_names_it() -> None:
    code = (
        "import sys; sys.modules['claude_agent_sdk'] = None\n"
        "try:\n    import agentjournal.integrations.claude_agent_sdk\n"
        "except ImportError as error:\n    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'agentjournal[claude-agent-sdk]'" in out


def test_a_tool_that_fails_is_recorded_as_failed(journal: Journal, fake: FakeProvider, tmp_path: Path) -> None:
    options = options_for(fake, tmp_path / "home")

    @tool("lookup_order", "Look an order up", {"order_id": str})
    async def broken(args: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("the order service is down")

    options.mcp_servers = {"shop": create_sdk_mcp_server("shop", tools=[broken, delete_order, issue_refund])}
    result = turn(ClaudeAgentJournal(RunRecorder(journal)), options)
    events = journal.read_stream(f"run-{result.session_id}")
    [failed] = [e.data for e in events if e.type == "ToolFailed"]  # the SDK's PostToolUseFailure hook
    assert (failed["call_id"], failed["error_type"]) == ("toolu_lookup", "ToolError")
    assert failed["error"] == "the order service is down"
    assert Repository(journal, RunState).load(f"run-{result.session_id}").calls["toolu_lookup"].status == "failed"


def test_the_clis_own_refusals_and_error_results_are_recorded(
    journal: Journal, fake: FakeProvider, tmp_path: Path
) -> None:
    options = options_for(fake, tmp_path / "home")
    options.allowed_tools = ["mcp__shop__lookup_order", "mcp__shop__issue_refund"]  # not delete_order
    done = turn(ClaudeAgentJournal(RunRecorder(journal)), options)  # no policy: the CLI's permissions decide
    state = Repository(journal, RunState).load(f"run-{done.session_id}")
    assert (state.status, DELETED, len(REFUNDS)) == ("completed", [], 1)
    assert state.calls["toolu_delete"].status == "refused"
    told = [e.data for e in journal.read_stream(state.stream_id) if e.type == "ObservationCaptured"]
    assert {"call_id": "toolu_delete", "error_type": "permission_denied"}.items() <= told[-1].items()

    options = options_for(fake, tmp_path / "home")
    options.max_turns = 1  # the model wants a second turn: the SDK raises, the run is aborted with the reason
    with pytest.raises(ResultError, match="maximum number of turns"):
        asyncio.run(collect(ClaudeAgentJournal(RunRecorder(journal)).query(QUESTION, options=options)))
    ends = [e for e in journal.read_all() if e.type in ("RunAborted", "RunCompleted")]
    assert ends[-1].type == "RunAborted" and "maximum number of turns" in ends[-1].data["reason"]
    assert journal.verify().ok
