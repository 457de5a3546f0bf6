"""The OpenAI client wrapper: a Chat Completions tool loop (sync, async, replayed) and Responses API calls.

The real `openai` SDK clients talk to a local HTTP server that answers like the API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openai")

import openai

from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations import RecorderError, Replay, RunRecorder, record_openai
from agentjournal.journal import Journal
from agents._fake_providers import (
    Status,
    openai_reply,
    openai_stream,
    openai_tool_call,
    responses_function_call,
    responses_stream,
    responses_text,
    serving,
)

from ._client_loops import (
    ANSWER,
    GPT,
    POLICY,
    QUESTION,
    REFUNDS,
    SYSTEM,
    approver,
    check_forensics,
    lookup_order,
    openai_aloop,
    openai_loop,
    openai_script,
    the_run,
)
from ._forensics import assert_forensics

SYNC_CLIENTS: list[Any] = []
"""The sync clients a test made: closed when it ends, so no keep-alive socket is left for the garbage
collector to find (and warn about) in a later test."""


@pytest.fixture(autouse=True)
def _no_refunds_yet() -> Iterator[None]:
    REFUNDS.clear()
    yield
    REFUNDS.clear()
    while SYNC_CLIENTS:
        SYNC_CLIENTS.pop().close()


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


ORDER = {"order_id": "ORD-5521"}


def sync_client(url: str) -> openai.OpenAI:
    client = openai.OpenAI(api_key="test-key", base_url=url + "/v1", max_retries=0)
    SYNC_CLIENTS.append(client)
    return record_openai(client)


def async_client(url: str) -> openai.AsyncOpenAI:
    return record_openai(openai.AsyncOpenAI(api_key="test-key", base_url=url + "/v1", max_retries=0))


def model_calls(journal: Journal, stream_id: str) -> list[dict[str, Any]]:
    return [event.data for event in journal.read_stream(stream_id) if event.type == "ModelCalled"]


def check_chat_run(journal: Journal, stream_id: str) -> None:
    calls = model_calls(journal, stream_id)
    assert [c["stage"] for c in calls] == ["act", "act", "act", "respond"]
    assert calls[0]["response"]["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert calls[-1]["response"] == {"text": ANSWER}
    assert all((c["input_tokens"], c["output_tokens"], c["api"]) == (120, 30, "openai.chat.completions") for c in calls)
    assert calls[0]["cost_usd"] == pytest.approx((120 * 0.15 + 30 * 0.60) / 1_000_000)  # gpt-4o-mini's price
    assert calls[0]["new_messages"] == [{"role": "system", "content": SYSTEM}]  # the question is in RunStarted
    assert [m["role"] for m in calls[1]["new_messages"]] == ["assistant", "tool"]


def test_the_refund_loop_over_chat_completions_with_the_sync_client(journal: Journal) -> None:
    approvals: list[str] = []
    with serving(openai_script()) as server:
        answer = openai_loop(sync_client(server.url), RunRecorder(journal, policy=POLICY), approver(journal, approvals))
    assert answer == ANSWER and len(approvals) == 1 and server.paths == ["/v1/chat/completions"] * 4
    state = the_run(journal)
    assert state.status == "completed" and list(state.calls) == ["call_1", "call_2", "call_3"]
    assert state.calls["call_3"].output["refund_id"] == "REF-3301"
    check_chat_run(journal, state.stream_id)
    check_forensics(journal, state, first="call_1", refund="call_3")


def test_the_refund_loop_over_chat_completions_with_the_async_client(journal: Journal) -> None:
    async def main(url: str) -> str:
        async with async_client(url) as client:
            return await openai_aloop(client, RunRecorder(journal, policy=POLICY), approver(journal, []))

    with serving(openai_script()) as server:
        assert asyncio.run(main(server.url)) == ANSWER
    state = the_run(journal)
    check_chat_run(journal, state.stream_id)
    check_forensics(journal, state, first="call_1", refund="call_3")


def test_the_chat_loop_replays_offline(journal: Journal) -> None:
    with serving(openai_script()) as server:
        openai_loop(sync_client(server.url), RunRecorder(journal, policy=POLICY), approver(journal, []))
    original = the_run(journal)
    REFUNDS.clear()
    with serving([Status(500, {"error": "not during a replay"})]) as nowhere:
        replay = Replay(journal, original.run_id, policy=POLICY)
        assert openai_loop(sync_client(nowhere.url), replay.recorder) == ANSWER
        assert nowhere.requests == [] and not REFUNDS and replay.same_response
        assert replay.state.calls["call_3"].output == original.calls["call_3"].output

        later = Replay(journal, original.run_id, policy=POLICY)
        client = sync_client(nowhere.url)
        diverges = pytest.raises(DivergenceError, match="model: 'gpt-4o-mini' then, 'gpt-4o' now")
        with diverges, later.recorder.start(agent="refund-agent", input=QUESTION, user_id="u-7"):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "system", "content": SYSTEM}])
        replay.close()
        later.close()


def test_responses_api_calls_with_a_function_call_and_a_continued_conversation(journal: Journal) -> None:
    script = [responses_function_call("lookup_order", {"order_id": "ORD-5521"}, "call_7"), responses_text("Delivered.")]
    with serving(script) as server:
        client = sync_client(server.url)
        with RunRecorder(journal).start(agent="orders", input=QUESTION, model="gpt-4.1-mini") as run:
            first = client.responses.create(
                model="gpt-4.1-mini", instructions=SYSTEM, input=QUESTION, tools=[lookup_order.openai_function]
            )
            [call] = [item for item in first.output if item.type == "function_call"]
            output = lookup_order(**json.loads(call.arguments))
            second = client.responses.create(
                model="gpt-4.1-mini",
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(output)}],
            )
            run.complete(second.output_text)
    assert server.paths == ["/v1/responses"] * 2
    calls = model_calls(journal, run.stream_id)
    assert calls[0]["response"]["tool_calls"] == [
        {"id": "call_7", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert calls[0]["new_messages"] == [] and calls[0]["prompt_hash"] and calls[0]["api"] == "openai.responses"
    assert calls[1]["new_messages"] == [
        {"type": "function_call_output", "call_id": "call_7", "output": json.dumps(output)}
    ]
    assert calls[1]["response"] == {"text": "Delivered."} and calls[1]["settings"]["previous_response_id"] == "resp_1"
    assert (calls[0]["input_tokens"], calls[0]["output_tokens"]) == (150, 25)
    assert calls[0]["cost_usd"] == pytest.approx((150 * 0.40 + 25 * 1.60) / 1_000_000)  # gpt-4.1-mini's price
    state = the_run(journal)
    assert state.calls["call_7"].status == "executed" and state.final_response == "Delivered."
    assert_forensics(journal, state.run_id, question=QUESTION)


def test_responses_api_with_the_async_client_and_replay(journal: Journal) -> None:
    async def ask(client: openai.AsyncOpenAI, recorder: RunRecorder) -> str:
        with recorder.start(agent="orders", input=QUESTION) as run:
            reply = await client.responses.create(model="gpt-4.1-mini", input=QUESTION)
            run.complete(reply.output_text)
            return reply.output_text

    async def main(url: str, recorder: RunRecorder) -> str:
        async with async_client(url) as client:
            return await ask(client, recorder)

    with serving([responses_text("It was delivered on Monday.")]) as server:
        assert asyncio.run(main(server.url, RunRecorder(journal))) == "It was delivered on Monday."
    state = the_run(journal)
    with serving([Status(500, {"error": "not during a replay"})]) as nowhere:
        replay = Replay(journal, state.run_id)
        assert asyncio.run(main(nowhere.url, replay.recorder)) == "It was delivered on Monday."
        assert nowhere.requests == [] and replay.same_response
        replay.close()


def test_streamed_chat_and_responses_calls_are_recorded(journal: Journal) -> None:
    script = [
        openai_stream(openai_tool_call("lookup_order", {"order_id": "ORD-5521"}, "call_1")),
        openai_stream(openai_reply({"content": "It was delivered."})),
        responses_stream(responses_text("Delivered on Monday.")),
    ]
    with serving(script) as server:
        client = sync_client(server.url)
        with RunRecorder(journal).start(agent="a", input=QUESTION) as run:
            ask = [{"role": "user", "content": QUESTION}]
            usage = {"include_usage": True}
            with client.chat.completions.create(model=GPT, messages=ask, stream=True, stream_options=usage) as chunks:
                for _ in chunks:
                    pass
            text = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in client.chat.completions.create(model=GPT, messages=ask, stream=True, stream_options=usage)
                if chunk.choices
            )
            assert text.strip() == "It was delivered."
            events = [
                event.type for event in client.responses.create(model="gpt-4.1-mini", input=QUESTION, stream=True)
            ]
            assert events == ["response.created", "response.completed"]
            with pytest.raises(RecorderError, match=r"stream\(\) is not recorded"):
                client.chat.completions.stream(model=GPT, messages=ask)
            run.complete(text)
    calls = model_calls(journal, run.stream_id)
    assert calls[0]["response"]["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert calls[1]["response"]["text"].strip() == "It was delivered."
    assert calls[2]["response"] == {"text": "Delivered on Monday."}
    assert [(c["input_tokens"], c["output_tokens"]) for c in calls] == [(120, 30), (120, 30), (150, 25)]
    assert all(c["streamed"] and c["stream_complete"] for c in calls)


def test_a_request_that_cannot_be_recorded_is_refused_before_it_is_sent(journal: Journal) -> None:
    with serving([openai_reply({"content": "hi"})]) as server:
        client = sync_client(server.url)
        with RunRecorder(journal).start(agent="a", input="hi") as run:
            with pytest.raises(
                RecorderError, match="the request cannot be recorded: Type is not JSON serializable: object"
            ):
                client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": object()}])
            refused = pytest.raises(RecorderError, match="with_streaming_response is not recorded")
            with refused, client.chat.completions.with_streaming_response.create(model=GPT, messages=[]):
                pass
            run.complete("nothing")
        assert server.requests == []
    with pytest.raises(TypeError, match=r"wraps an openai\.OpenAI"):
        record_openai(object())
