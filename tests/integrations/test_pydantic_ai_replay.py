"""pydantic-ai replay: the agent's code runs again, answered by the recording; a changed request is a divergence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from agentjournal.agents import approve, reject
from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations import RunRecorder
from agentjournal.integrations.pydantic_ai import ReplayModel, approval_results, replay
from agentjournal.journal import Journal, StreamNotFoundError

from ._pydantic_ai_agents import ANSWER, DELETED, MODEL, POLICY, QUESTION, REFUNDS, refund_agent, responses


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


def run(agent: Agent[Any, Any], prompt: str | None = None, **options: Any) -> Any:
    return asyncio.run(agent.run(prompt, **options))


def recorded(journal: Journal, *, policy: bool = False) -> str:
    result = run(refund_agent(RunRecorder(journal, policy=POLICY if policy else None)), QUESTION)
    REFUNDS.clear()
    DELETED.clear()
    stamps = [m.metadata["agentjournal"] for m in result.all_messages() if isinstance(m, ModelResponse) and m.metadata]
    return str(stamps[-1]["run_id"])


def last_position(journal: Journal) -> int:
    return max(event.position for event in journal.read_all())


def test_a_replay_answers_from_the_recording_and_writes_nothing(journal: Journal) -> None:
    run_id = recorded(journal)
    before = last_position(journal)
    for agent in (refund_agent(None), refund_agent(RunRecorder(journal))):  # with or without its own AgentJournal
        replayed = asyncio.run(replay(agent, journal, run_id))
        assert (replayed.output, replayed.same_output, replayed.model_calls) == (ANSWER, True, 3)
        assert replayed.original.run_id == run_id
    assert REFUNDS == [] and DELETED == []  # the tools were answered from the recording, not run again
    assert last_position(journal) == before


def test_a_run_that_waited_for_a_human_replays_through_the_same_decision(journal: Journal) -> None:
    for decide in (approve, reject):
        held = run(refund_agent(RunRecorder(journal, policy=POLICY)), QUESTION)
        history = held.all_messages()
        approval_id = held.output.metadata["toolu_refund"]["agentjournal"]["approval_id"]
        decide(journal, approval_id, by="alice", reason="checked")
        results = approval_results(journal, history)
        agent = refund_agent(RunRecorder(journal, policy=POLICY))
        done = run(agent, message_history=history, deferred_tool_results=results)
        assert done.output == ANSWER
        REFUNDS.clear()
        run_id = held.output.metadata["toolu_refund"]["agentjournal"]["run_id"]
        replayed = asyncio.run(replay(refund_agent(None), journal, run_id))
        assert (replayed.same_output, replayed.resumed, replayed.model_calls) == (True, 1, 3)
        assert REFUNDS == [] and DELETED == []


def test_a_run_still_waiting_replays_to_the_same_wait(journal: Journal) -> None:
    run_id = recorded(journal, policy=True)
    replayed = asyncio.run(replay(refund_agent(None), journal, run_id))
    assert isinstance(replayed.output, DeferredToolRequests) and replayed.same_output and replayed.resumed == 0


def test_changed_instructions_or_tools_are_divergences_that_say_what_changed(journal: Journal) -> None:
    run_id = recorded(journal)
    changed = "diverged at model request 1: the system prompt or the instructions changed"
    with pytest.raises(DivergenceError, match=changed) as e:
        asyncio.run(replay(refund_agent(None, instructions="You are a different agent."), journal, run_id))
    assert "instructions (sha256) ≠" in str(e.value)
    with pytest.raises(DivergenceError, match="tool issue_refund changed its description or schema"):
        asyncio.run(replay(refund_agent(None, refund_doc="Refund an order, any amount."), journal, run_id))

    smaller = refund_agent(None)
    del smaller._function_toolset.tools["delete_order"]
    with pytest.raises(DivergenceError, match="tool delete_order was removed"):
        asyncio.run(replay(smaller, journal, run_id))


def test_a_replay_that_asks_for_more_than_the_recording_holds_says_so(journal: Journal) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses(messages) == 0:
            return ModelResponse(parts=[ToolCallPart("lookup_order", {"order_id": "ORD-5521"}, tool_call_id="t1")])
        raise ConnectionError("the provider went away")

    with pytest.raises(ConnectionError):
        run(refund_agent(RunRecorder(journal), FunctionModel(model, model_name=MODEL)), QUESTION)
    [started] = [event for event in journal.read_all() if event.type == "RunStarted"]
    with pytest.raises(DivergenceError, match="at model request 2: the recording has 1 model calls"):
        asyncio.run(replay(refund_agent(None), journal, started.data["run_id"]))


def test_a_streamed_run_replays_unstreamed(journal: Journal) -> None:
    async def stream(messages: list[ModelMessage], info: AgentInfo) -> Any:
        if responses(messages) == 0:
            yield {0: DeltaToolCall(name="lookup_order", json_args='{"order_id": "ORD-5521"}', tool_call_id="t1")}
        else:
            yield ANSWER

    agent = refund_agent(RunRecorder(journal), FunctionModel(stream_function=stream, model_name=MODEL))

    async def main() -> None:
        async with agent.run_stream(QUESTION) as streamed:
            await streamed.get_output()

    asyncio.run(main())
    [started] = [event for event in journal.read_all() if event.type == "RunStarted"]
    replayed = asyncio.run(replay(refund_agent(None), journal, started.data["run_id"]))
    assert (replayed.output, replayed.same_output) == (ANSWER, True)


def test_the_replay_model_refuses_to_answer_unchecked_and_unknown_runs_are_named(journal: Journal) -> None:
    run_id = recorded(journal)
    with pytest.raises(StreamNotFoundError, match="no recorded run 'nope'"):
        ReplayModel(journal, "nope")
    with pytest.raises(UserError, match="run it with replay"):
        run(Agent(ReplayModel(journal, run_id)), QUESTION)
