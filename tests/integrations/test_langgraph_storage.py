"""What JournalSaver stores (what changed per step, never a whole state again) and that every checkpoint reads
back as LangGraph's own InMemorySaver has it: history, time travel, forks, copies, deletes, other processes."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from agentjournal.integrations.langgraph import JournalSaver, thread_stream
from agentjournal.journal import Journal

TEXT = ("The order is delayed at the regional hub; the carrier expects it to move tomorrow. " * 13)[:1000]


class Loop(TypedDict):
    messages: Annotated[list[str], operator.add]
    notes: dict[str, Any]
    step: int


def loop_graph(checkpointer: Any, steps: int) -> Any:
    def node(state: Loop) -> dict[str, Any]:
        step = state["step"] + 1
        return {"messages": [f"step {step}: {TEXT}"], "notes": {"last": step, "seen": [step]}, "step": step}

    builder = StateGraph(Loop)
    builder.add_node("step", node)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: END if state["step"] >= steps else "step")
    return builder.compile(checkpointer=checkpointer)


def config(thread_id: str = "t", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, **extra}, "recursion_limit": 500}


def history(graph: Any, thread_id: str = "t") -> list[tuple[Any, ...]]:
    """Every checkpoint's values, metadata and next nodes, newest first (ids differ between savers)."""
    return [
        (state.values, state.metadata["source"], state.metadata["step"], state.next, len(state.tasks))
        for state in graph.get_state_history(config(thread_id))
    ]


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def test_a_long_thread_stores_each_message_once_and_reads_back_as_langgraphs_own_saver(journal: Journal) -> None:
    steps = 60
    ours = loop_graph(JournalSaver(journal), steps)
    theirs = loop_graph(InMemorySaver(), steps)
    for graph in (ours, theirs):
        graph.invoke({"messages": [], "notes": {}, "step": 0}, config())
    assert history(ours) == history(theirs)
    assert history(loop_graph(JournalSaver(journal), steps)) == history(theirs)  # another process, from the journal

    events = journal.read_stream(thread_stream("t"))
    message_bytes = sum(len(json.dumps(f"step {n}: {TEXT}")) for n in range(1, steps + 1))
    payload = sum(len(event.data_json) for event in events)
    assert payload <= message_bytes + 500 * steps  # each message once, plus a flat few hundred bytes a step
    checkpoints = [event for event in events if event.type == "CheckpointSaved"]
    assert len(checkpoints) == steps + 2  # the input, the first loop checkpoint, one per step
    assert all(TEXT[:40] not in str(event.data_json) for event in checkpoints)  # the messages live in the writes
    assert max(len(event.data_json) for event in checkpoints) < 400  # flat: step 60 stores no more than step 2
    assert journal.verify().ok


def test_time_travel_and_forks_read_as_langgraph_has_them(journal: Journal) -> None:
    ours = loop_graph(JournalSaver(journal), 6)
    theirs = loop_graph(InMemorySaver(), 6)
    for graph in (ours, theirs):
        graph.invoke({"messages": [], "notes": {}, "step": 0}, config())
        at_two = next(state for state in graph.get_state_history(config()) if state.metadata["step"] == 2)
        graph.invoke(None, at_two.config)  # replay from step 2: a second branch
        forked = graph.update_state(at_two.config, {"messages": ["edited"], "step": 4})  # a fork
        graph.invoke(None, forked)
        assert graph.get_state(config()).values["messages"][-3:] == ["edited", f"step 5: {TEXT}", f"step 6: {TEXT}"]
    assert history(ours) == history(theirs)
    parents = {
        state.config["configurable"]["checkpoint_id"]: state.parent_config for state in ours.get_state_history(config())
    }
    assert sum(1 for parent in parents.values() if parent is None) == 1  # one root, three branches


def test_other_processes_interleave_on_one_thread(journal: Journal) -> None:
    first, second = JournalSaver(journal), JournalSaver(journal)
    graph_a, graph_b = loop_graph(first, 3), loop_graph(second, 6)
    graph_a.invoke({"messages": [], "notes": {}, "step": 0}, config())
    assert graph_b.get_state(config()).values["step"] == 3
    graph_b.invoke({"messages": [], "notes": {}, "step": 3}, config())  # goes on from the other process's state
    graph_a.update_state(config(), {"messages": ["note from a"]})  # the first process's cache is stale: it folds first
    values = loop_graph(JournalSaver(journal), 6).get_state(config()).values
    assert values["step"] == 6 and values["messages"][-1] == "note from a" and len(values["messages"]) == 7


def test_langchain_messages_and_large_values_read_back_exactly(journal: Journal) -> None:
    document = "x" * 40_000

    def node(state: MessagesState) -> dict[str, Any]:
        turn = len(state["messages"])
        return {
            "messages": [
                AIMessage(f"reply {turn}", usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
            ]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("reply", node)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    ours, theirs = builder.compile(checkpointer=JournalSaver(journal)), builder.compile(checkpointer=InMemorySaver())
    for graph in (ours, theirs):
        for text in ("hello", document, "bye"):
            graph.invoke({"messages": [HumanMessage(text, id=f"h-{len(text)}")]}, config())
    ours_cold = builder.compile(checkpointer=JournalSaver(journal))

    def strip(graph: Any) -> list[Any]:
        return [
            [(m.type, m.content) for m in state.values.get("messages", [])]
            for state in graph.get_state_history(config())
        ]

    assert strip(ours) == strip(theirs) == strip(ours_cold)
    # The document is stored twice, as LangGraph hands it over: in the input checkpoint (its __start__ channel)
    # and in the __start__ task's write; every later checkpoint refers to that write.
    assert len(journal.streams("blob-")) == 2


def test_deleting_a_thread_hides_it_and_keeps_the_record(journal: Journal) -> None:
    saver = JournalSaver(journal)
    graph = loop_graph(saver, 3)
    graph.invoke({"messages": [], "notes": {}, "step": 0}, config())
    kept = journal.stream_version(thread_stream("t"))
    saver.copy_thread("t", "t-copy")
    saver.delete_thread("t")
    assert saver.get_tuple(config()) is None and list(saver.list(config())) == []
    assert JournalSaver(journal).get_tuple(config()) is None  # every process
    assert journal.stream_version(thread_stream("t")) == kept + 1 and journal.verify().ok  # a tombstone: nothing erased
    copied = loop_graph(JournalSaver(journal), 3).get_state(config("t-copy")).values
    assert copied["step"] == 3 and len(copied["messages"]) == 3  # the copy refers to the source's events
    graph.invoke({"messages": [], "notes": {}, "step": 0}, config())  # the thread id can start over
    assert len(list(saver.list(config()))) == 5


def test_without_deltas_each_changed_channel_is_stored_whole(journal: Journal) -> None:
    graph = loop_graph(JournalSaver(journal, deltas=False), 5)
    graph.invoke({"messages": [], "notes": {}, "step": 0}, config())
    last = [event for event in journal.read_stream(thread_stream("t")) if event.type == "CheckpointSaved"][-1]
    assert last.data["c"]["messages"][-1] == f"step 5: {TEXT}"
    assert history(graph) == history(loop_graph(JournalSaver(journal), 5))


def test_concurrent_writers_on_one_thread_lose_nothing(journal: Journal) -> None:
    import threading

    graph = loop_graph(JournalSaver(journal), 1)
    graph.invoke({"messages": [], "notes": {}, "step": 0}, config())
    head = graph.get_state(config()).config
    savers = [JournalSaver(journal), JournalSaver(journal)]
    for saver in savers:
        saver.get_tuple(head)  # both fold the thread, then race each other

    def write(saver: JournalSaver, who: int) -> None:
        for n in range(15):
            saver.put_writes(head, [("messages", [f"{who}-{n}"])], f"task-{who}-{n}")

    workers = [threading.Thread(target=write, args=(saver, who)) for who, saver in enumerate(savers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    pending = JournalSaver(journal).get_tuple(head)
    assert pending is not None and len(pending.pending_writes or []) == 30
    assert journal.verify().ok


def test_a_threads_events_explain_themselves(journal: Journal) -> None:
    from agentjournal.integrations.langgraph import register_langgraph_explainers
    from agentjournal.model.explainers import Explainers

    registry = Explainers()
    register_langgraph_explainers(registry)
    saver = JournalSaver(journal)
    loop_graph(saver, 2).invoke({"messages": [], "notes": {}, "step": 0}, config())
    saver.delete_thread("t")
    explained = [registry.explain(event) for event in journal.read_stream(thread_stream("t"))]
    assert all("explainer_error" not in explanation.tags for explanation in explained)
    titles = [explanation.title for explanation in explained]
    assert "Node step wrote messages, notes, step, branch:to:step" in titles
    assert "Checkpoint saved at step 2" in titles and titles[-1] == "Thread deleted"
    [first_step] = [e for e in explained if e.title == "Checkpoint saved at step 1"]
    assert "messages grew by the writes" in first_step.summary
