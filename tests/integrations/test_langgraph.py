"""LangGraph graphs checkpointed by JournalSaver are runs of the contract: a real StateGraph with a LangChain
chat model (answered offline by LangChain's own fake model) and a ToolNode under the policy guard."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command

from agentjournal.agents import Policy, approve, reject
from agentjournal.forensics import causes, timeline
from agentjournal.integrations.langgraph import JournalSaver, thread_stream
from agentjournal.journal import Journal, JournalClosedError
from agentjournal.model import Repository
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState, run_stream

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
    source="langgraph-policy",
)
ASK = "I want a refund for ORD-5521"
EXECUTED: list[str] = []


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order."""
    EXECUTED.append("lookup_order")
    return {"order_id": order_id, "status": "delivered", "amount": 44.99}


@tool
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Refund an order."""
    EXECUTED.append("issue_refund")
    return {"refund_id": "REF-1", "order_id": order_id, "amount": amount}


@tool
def delete_order(order_id: str) -> str:
    """Delete an order."""
    EXECUTED.append("delete_order")
    return "deleted"


def reply(text: str = "", *calls: tuple[str, str, dict[str, Any]], tokens: tuple[int, int] = (100, 20)) -> AIMessage:
    return AIMessage(
        text,
        tool_calls=[{"id": call_id, "name": name, "args": args} for call_id, name, args in calls],
        usage_metadata={"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)},
        response_metadata={"model_name": "gpt-4o-mini"},
    )


def refund_script() -> list[AIMessage]:
    return [
        reply("", ("call_1", "lookup_order", {"order_id": "ORD-5521"}), tokens=(120, 20)),
        reply("", ("call_2", "issue_refund", {"order_id": "ORD-5521", "amount": 44.99}), tokens=(160, 25)),
        reply("Your refund REF-1 of $44.99 is on its way.", tokens=(200, 15)),
    ]


def agent_graph(saver: JournalSaver, script: list[AIMessage], *, guarded: bool = True) -> Any:
    model = GenericFakeChatModel(messages=iter(script))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    tools = [lookup_order, issue_refund, delete_order]
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node(
        "tools",
        ToolNode(tools, wrap_tool_call=saver.guard, awrap_tool_call=saver.aguard) if guarded else ToolNode(tools),
    )
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=saver)


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    EXECUTED.clear()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def config(thread_id: str = "t-1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "user_id": "u-7"}}


def test_a_graph_run_is_a_run_every_reader_understands(journal: Journal) -> None:
    script = refund_script()
    graph = agent_graph(JournalSaver(journal, policy=POLICY, agent="refunds"), script)
    paused = graph.invoke({"messages": [HumanMessage(ASK)]}, config())
    [held] = paused["__interrupt__"]  # the refund waits for a human; the graph stopped, its state saved
    assert held.value["tool"] == "issue_refund" and EXECUTED == ["lookup_order"]
    assert approve(journal, held.value["approval_id"], by="alice", reason="ok").status == "approved"

    later = JournalSaver(journal, policy=POLICY, agent="refunds")  # another process resumes the thread
    run_id = later.run_of("t-1")
    assert run_id is not None
    done = agent_graph(later, script[2:]).invoke(Command(resume=True), config())
    assert done["messages"][-1].content == "Your refund REF-1 of $44.99 is on its way."
    assert EXECUTED == ["lookup_order", "issue_refund"]
    assert later.run_of("t-1") is None  # finished

    stream = run_stream(run_id)
    events = journal.read_stream(stream)
    assert [event.type for event in events] == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ApprovalRequested",
        "ToolApproved",
        "ToolClaimed",
        "ToolExecuted",
        "ObservationCaptured",
        "ModelCalled",
        "ResponseDrafted",
        "ResponseFinalized",
        "RunCompleted",
    ]
    started = events[0].data
    assert (started["input"], started["agent"], started["user_id"]) == (ASK, "refunds", "u-7")
    assert started["policy_version"] == POLICY.version
    assert_forensics(journal, run_id, question=ASK)  # explain, state --at N, lineage, metrics, verify
    titles = [entry.explanation.title for entry in timeline(journal, stream)]
    assert titles[9] == "Asked a human to approve issue_refund"
    assert titles[14] == "Model gpt-4o-mini answered"

    at_approval = Repository(journal, RunState).load_at_version(stream, 10)  # state --at 10
    assert at_approval.status == "waiting_approval" and at_approval.calls["call_2"].status == "waiting_approval"
    state = Repository(journal, RunState).load(stream)
    assert (state.status, state.final_response) == ("completed", "Your refund REF-1 of $44.99 is on its way.")
    assert state.calls["call_1"].output == '{"order_id": "ORD-5521", "status": "delivered", "amount": 44.99}'  # as told
    assert state.metrics.model_calls == 3 and state.metrics.tokens == 540 and state.metrics.cost_usd > 0

    chain = causes(journal, events[-2].event_id)  # lineage: the answer back to the user's message
    assert chain.root.type == "RunStarted" and chain.root.data["input"] == ASK
    correlated = journal.read_all(correlation_id=events[0].correlation_id, limit=1000)
    assert {"CheckpointSaved", "WritesSaved", "ModelCalled"} <= {event.type for event in correlated}  # one story
    assert journal.verify().ok

    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    [row] = list_runs(journal)
    assert (row.run_id, row.status, row.user_id) == (run_id, "completed", "u-7")
    [group] = metrics(journal, by="agent", since=datetime.now(UTC) - timedelta(hours=1))
    assert (group.group, group.runs, group.successes, group.tokens) == ("refunds", 1, 1, 540)


def test_the_policy_denies_a_call_and_a_human_can_reject_one(journal: Journal) -> None:
    script = [
        reply("", ("call_1", "delete_order", {"order_id": "ORD-5521"})),
        reply("", ("call_2", "issue_refund", {"order_id": "ORD-5521", "amount": 90.0})),
        reply("I cannot do that.", tokens=(50, 5)),
    ]
    saver = JournalSaver(journal, policy=POLICY)
    graph = agent_graph(saver, script)
    paused = graph.invoke({"messages": [HumanMessage("Delete ORD-5521 and refund it")]}, config("t-2"))
    denied = [m for m in paused["messages"] if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.status) for m in denied] == [("call_1", "error")]
    assert "no_deletes" in str(denied[0].content)
    [held] = paused["__interrupt__"]
    reject(journal, held.value["approval_id"], by="bob", reason="too much")
    done = graph.invoke(Command(resume=True), config("t-2"))
    assert done["messages"][-1].content == "I cannot do that." and EXECUTED == []  # neither tool ran
    run_id = next(e.data["run_id"] for e in journal.read_all(types=["RunStarted"]))
    state = Repository(journal, RunState).load(run_stream(run_id))
    assert state.status == "completed"
    assert (state.calls["call_1"].status, state.calls["call_1"].observed) == ("refused", True)
    assert (state.calls["call_2"].status, state.calls["call_2"].observed) == ("refused", True)
    assert state.metrics.denials == 1 and state.metrics.rejections == 1
    assert_forensics(journal, run_id, question="Delete ORD-5521 and refund it")


def test_without_the_guard_calls_are_recorded_not_judged(journal: Journal) -> None:
    graph = agent_graph(JournalSaver(journal, policy=POLICY), refund_script(), guarded=False)
    done = graph.invoke({"messages": [HumanMessage(ASK)]}, config("t-3"))
    assert done["messages"][-1].content.startswith("Your refund")
    [started] = journal.read_all(types=["RunStarted"])
    kinds = [event.type for event in journal.read_stream(run_stream(started.data["run_id"]))]
    assert "PolicyEvaluated" not in kinds and kinds.count("ToolExecuted") == 2 and kinds[-1] == "RunCompleted"


def test_async_graphs_use_the_async_saver_and_guard(journal: Journal) -> None:
    saver = JournalSaver(journal, policy=POLICY)
    graph = agent_graph(saver, refund_script())

    async def run() -> tuple[Any, Any, list[Any]]:
        paused = await graph.ainvoke({"messages": [HumanMessage(ASK)]}, config("t-4"))
        approve(journal, paused["__interrupt__"][0].value["approval_id"], by="alice", reason="ok")
        done = await graph.ainvoke(Command(resume=True), config("t-4"))
        history = [state async for state in graph.aget_state_history(config("t-4"))]
        return paused, done, history

    _, done, history = asyncio.run(run())
    assert done["messages"][-1].content.startswith("Your refund") and EXECUTED == ["lookup_order", "issue_refund"]
    assert history[0].next == () and history[-1].metadata["source"] == "input"
    [started] = journal.read_all(types=["RunStarted"])
    state = Repository(journal, RunState).load(run_stream(started.data["run_id"]))
    assert state.status == "completed" and state.metrics.model_calls == 3
    assert_forensics(journal, state.run_id, question=ASK)


def test_a_failing_node_aborts_the_run_and_resuming_starts_a_new_one(journal: Journal) -> None:
    broken = {"on": True}

    def agent(state: MessagesState) -> dict[str, Any]:
        if broken["on"]:
            raise RuntimeError("the model provider is down")
        return {"messages": [reply("Back again.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    graph = builder.compile(checkpointer=JournalSaver(journal))
    with pytest.raises(RuntimeError, match="provider is down"):
        graph.invoke({"messages": [HumanMessage("hello")]}, config("t-5"))
    [first] = journal.read_all(types=["RunStarted"])
    state = Repository(journal, RunState).load(run_stream(first.data["run_id"]))
    assert state.status == "aborted" and state.reason is not None and "the model provider is down" in state.reason

    broken["on"] = False
    assert graph.invoke(None, config("t-5"))["messages"][-1].content == "Back again."  # LangGraph retries the node
    second = journal.read_all(types=["RunStarted"])[-1]
    assert second.data["input"].startswith("(continues thread t-5 from checkpoint")
    again = Repository(journal, RunState).load(run_stream(second.data["run_id"]))
    assert (again.status, again.final_response) == ("completed", "Back again.")


def test_a_new_input_cancels_a_run_that_waits(journal: Journal) -> None:
    graph = agent_graph(JournalSaver(journal, policy=POLICY), [*refund_script()[1:], reply("Sure.")])
    graph.invoke({"messages": [HumanMessage(ASK)]}, config("t-6"))  # waits for the refund's approval
    graph.invoke({"messages": [HumanMessage("never mind, how are you?")]}, config("t-6"))
    first, second = journal.read_all(types=["RunStarted"])
    assert Repository(journal, RunState).load(run_stream(first.data["run_id"])).status == "cancelled"
    assert second.data["input"] == "never mind, how are you?"


def test_when_the_journal_is_gone_the_graph_fails_loudly(sqlite_url: str) -> None:
    journal = Journal.open(sqlite_url)
    graph = agent_graph(JournalSaver(journal), refund_script())
    journal.close()
    with pytest.raises(JournalClosedError):
        graph.invoke({"messages": [HumanMessage(ASK)]}, config("t-7"))


def test_bad_inputs_get_clear_errors(sqlite_url: str) -> None:
    from agentjournal.agents.redaction import Redactor

    with Journal.open(sqlite_url) as journal:
        saver = JournalSaver(journal)
        with pytest.raises(ValueError, match="needs a thread"):
            saver.get_tuple({"configurable": {}})
        with pytest.raises(ValueError, match="checkpoint's id"):
            saver.put_writes({"configurable": {"thread_id": "x"}}, [("a", 1)], "task")
        with pytest.raises(ValueError, match="unknown strategy 'all'"):
            saver.prune(["x"], strategy="all")
        with pytest.raises(ValueError, match="same thread"):
            saver.copy_thread("x", "x")
        with pytest.raises(ValueError, match="needs a policy"):
            agent_graph(saver, refund_script()).invoke({"messages": [HumanMessage(ASK)]}, config("t-8"))
    with (
        Journal.open(sqlite_url, redact=Redactor()) as redacting,
        pytest.raises(ValueError, match="without a redactor"),
    ):
        JournalSaver(redacting)
    assert thread_stream("t-1") == "langgraph-t-1"
    assert thread_stream("x" * 300).startswith("langgraph-sha256-")


def test_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "try:\n    import agentjournal.integrations.langgraph\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'agentjournal[langgraph]'" in shown


def test_a_subgraphs_model_calls_are_recorded_once(journal: Journal) -> None:
    def inner(state: MessagesState) -> dict[str, Any]:
        return {"messages": [reply("From the subgraph.", tokens=(10, 3))]}

    sub = StateGraph(MessagesState)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    sub.add_edge("inner", END)
    builder = StateGraph(MessagesState)
    builder.add_node("child", sub.compile())
    builder.add_edge(START, "child")
    builder.add_edge("child", END)
    graph = builder.compile(checkpointer=JournalSaver(journal))
    graph.invoke({"messages": [HumanMessage("hi")]}, config("t-9"))
    [started] = journal.read_all(types=["RunStarted"])
    kinds = [event.type for event in journal.read_stream(run_stream(started.data["run_id"]))]
    assert kinds == ["RunStarted", "ModelCalled", "ResponseDrafted", "ResponseFinalized", "RunCompleted"]


def test_run_events_that_could_not_be_written_are_written_by_the_next_saver(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentjournal.journal import JournalConnectionError

    append = journal.append
    down = {"runs": True}

    def failing(stream: str, events: Any, expected_version: Any = "any") -> Any:
        if down["runs"] and stream.startswith("run-"):
            raise JournalConnectionError("the run streams' database is down")
        return append(stream, events, expected_version)

    monkeypatch.setattr(journal, "append", failing)
    graph = agent_graph(JournalSaver(journal), refund_script(), guarded=False)
    with pytest.raises(JournalConnectionError, match="is down"):
        graph.invoke({"messages": [HumanMessage(ASK)]}, config("t-10"))  # loud: LangGraph raises it
    down["runs"] = False
    assert journal.read_all(types=["RunStarted"]) == []
    later = JournalSaver(journal)
    run_id = later.run_of("t-10")  # opening the thread records what the open run lacks
    assert run_id is not None
    state = Repository(journal, RunState).load(run_stream(run_id))
    assert state.input == ASK and journal.verify().ok
    stored = later.get_tuple(config("t-10"))
    assert stored is not None  # and the checkpoints that were stored are all there
