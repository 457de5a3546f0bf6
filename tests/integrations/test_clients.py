"""The Anthropic client wrapper: seed 002's refund conversation as a plain tool-use loop, recorded and replayed.

The real `anthropic` SDK clients (sync and async) talk to a local HTTP server that answers like the
Messages API; the loop is `_client_loops.anthropic_loop`, the code a user writes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anthropic")

import anthropic

from agentjournal.agents import reject
from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations import (
    ApprovalRequired,
    RecorderError,
    Replay,
    RunRecorder,
    current_run,
    record_anthropic,
)
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.runs import RunState, run_stream
from agents._fake_providers import (
    Status,
    anthropic_reply,
    anthropic_stream,
    anthropic_tool_use,
    serving,
)

from ._client_loops import (
    ANSWER,
    CLAUDE,
    POLICY,
    QUESTION,
    REFUNDS,
    SYSTEM,
    anthropic_aloop,
    anthropic_loop,
    anthropic_script,
    approver,
    check_forensics,
    the_run,
)

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


def sync_client(url: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key="test-key", base_url=url, max_retries=0)
    SYNC_CLIENTS.append(client)
    return record_anthropic(client)


def async_client(url: str) -> anthropic.AsyncAnthropic:
    return record_anthropic(anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0))


def check_refund_run(journal: Journal, state: RunState) -> None:
    assert state.status == "completed" and state.final_response == ANSWER
    types = [event.type for event in journal.read_stream(state.stream_id)]
    assert types == [
        "RunStarted",
        "ModelCalled",
        "ToolProposed",
        "PolicyEvaluated",
        "ToolExecuted",
        "ObservationCaptured",
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
    assert [call.call_id for call in state.calls.values()] == ["toolu_1", "toolu_2", "toolu_3"]  # the model's ids
    refund = state.calls["toolu_3"]
    assert (refund.status, refund.rule, refund.output["refund_id"]) == (
        "executed",
        "big_refunds_need_a_human",
        "REF-3301",
    )
    assert state.approvals[refund.approval_id or ""].by == "alice"
    calls = [event.data for event in journal.read_stream(state.stream_id) if event.type == "ModelCalled"]
    assert [c["stage"] for c in calls] == ["act", "act", "act", "respond"]
    assert all((c["input_tokens"], c["output_tokens"]) == (200, 40) for c in calls)
    assert calls[0]["cost_usd"] == pytest.approx((200 * 1.00 + 40 * 5.00) / 1_000_000)  # claude-haiku-4-5's price
    assert state.metrics.tokens == 4 * 240 and state.metrics.model_calls == 4
    assert all(c["latency_ms"] > 0 and c["model"] == "claude-haiku-4-5-20251001" for c in calls)
    assert calls[0]["new_messages"] == []  # the question is the run's input, in RunStarted
    assert [m["role"] for m in calls[1]["new_messages"]] == ["assistant", "user"]
    assert calls[1]["new_messages"][1]["content"][0]["tool_use_id"] == "toolu_1"
    assert calls[0]["settings"] == {"max_tokens": 1024, "model": CLAUDE}
    assert calls[0]["prompt_hash"] and calls[0]["tools_hash"] and calls[0]["api"] == "anthropic.messages"


def test_the_refund_loop_with_the_sync_client_is_a_run_every_reader_understands(journal: Journal) -> None:
    approvals: list[str] = []
    with serving(anthropic_script()) as server:
        answer = anthropic_loop(
            sync_client(server.url), RunRecorder(journal, policy=POLICY), approver(journal, approvals)
        )
    assert answer == ANSWER and len(approvals) == 1
    sent = server.requests
    assert (
        len(sent) == 4
        and sent[0]["system"] == SYSTEM
        and sent[0]["messages"] == [{"role": "user", "content": QUESTION}]
    )
    state = the_run(journal)
    check_refund_run(journal, state)
    check_forensics(journal, state, first="toolu_1", refund="toolu_3")


def test_the_refund_loop_with_the_async_client(journal: Journal) -> None:
    approvals: list[str] = []

    async def main(url: str) -> str:
        async with async_client(url) as client:
            return await anthropic_aloop(client, RunRecorder(journal, policy=POLICY), approver(journal, approvals))

    with serving(anthropic_script()) as server:
        answer = asyncio.run(main(server.url))
    assert answer == ANSWER
    state = the_run(journal)
    check_refund_run(journal, state)
    check_forensics(journal, state, first="toolu_1", refund="toolu_3")


def test_the_recorded_loop_replays_offline_and_a_changed_loop_diverges(journal: Journal) -> None:
    with serving(anthropic_script()) as server:
        client = sync_client(server.url)
        anthropic_loop(client, RunRecorder(journal, policy=POLICY), approver(journal, []))
    original = the_run(journal)
    REFUNDS.clear()
    with serving([Status(500, {"error": "the replay must not ask the model"})]) as nowhere:
        client = sync_client(nowhere.url)
        with Replay(journal, original.run_id, policy=POLICY) as replay:
            answer = anthropic_loop(client, replay.recorder)  # nobody approves: the recorded decision holds
        assert nowhere.requests == [] and not REFUNDS  # no model was asked, no refund issued again
        assert answer == ANSWER and replay.same_response
        again = replay.state
        assert [e.type for e in replay.journal.read_stream(again.stream_id)] == [
            e.type for e in journal.read_stream(original.stream_id)
        ]
        assert again.calls["toolu_3"].output == original.calls["toolu_3"].output
        assert [
            e.data["request_fingerprint"]
            for e in replay.journal.read_stream(again.stream_id)
            if e.type == "ModelCalled"
        ] == [e.data["request_fingerprint"] for e in journal.read_stream(original.stream_id) if e.type == "ModelCalled"]
        replay.close()

        changed = Replay(journal, original.run_id, policy=POLICY)
        with (
            pytest.raises(DivergenceError) as diverged,
            changed.recorder.start(agent="refund-agent", input=QUESTION, user_id="u-7"),
        ):
            client.messages.create(
                model=CLAUDE, max_tokens=512, system="Be brief.", messages=[{"role": "user", "content": QUESTION}]
            )
        message = str(diverged.value)
        assert "model call 1" in message and "max_tokens: 1024 then, 512 now" in message
        assert "the system prompt changed" in message and "the tool descriptions changed" in message
        with pytest.raises(DivergenceError, match="input changed"):
            Replay(journal, original.run_id).recorder.start(agent="refund-agent", input="Something else", user_id="u-7")
    assert journal.verify().ok  # the recording was only read


def test_a_rejected_refund_is_told_to_the_model_and_never_runs(journal: Journal) -> None:
    def human_says_no(held: ApprovalRequired) -> None:
        reject(journal, held.approval_id, by="bob", reason="too much")

    script = anthropic_script()
    script[3] = anthropic_reply([{"type": "text", "text": "I could not refund that."}])
    with serving(script) as server:
        answer = anthropic_loop(sync_client(server.url), RunRecorder(journal, policy=POLICY), human_says_no)
    assert answer == "I could not refund that." and not REFUNDS
    state = the_run(journal)
    refund = state.calls["toolu_3"]
    assert (refund.status, refund.observed) == ("refused", True)
    told = server.requests[3]["messages"][-1]["content"][0]
    assert told["is_error"] and "was not run: rejected by bob: too much" in told["content"]
    assert journal.verify().ok


def test_a_denied_tool_raises_and_the_loop_tells_the_model(journal: Journal) -> None:
    script = [
        anthropic_tool_use("delete_order", {"order_id": "ORD-5521"}, "toolu_9"),
        anthropic_reply([{"type": "text", "text": "No."}]),
    ]
    with serving(script) as server:
        assert anthropic_loop(sync_client(server.url), RunRecorder(journal, policy=POLICY)) == "No."
    state = the_run(journal)
    assert state.calls["toolu_9"].status == "refused" and state.metrics.denials == 1
    told = server.requests[1]["messages"][-1]["content"][0]
    assert told["is_error"] and "the policy denies it (rule no_deletes)" in told["content"]


def test_outside_a_run_the_client_is_untouched_and_wrapping_twice_is_harmless(journal: Journal) -> None:
    with serving([anthropic_reply([{"type": "text", "text": "hi"}])] * 3) as server:
        client = sync_client(server.url)
        assert record_anthropic(client) is client
        assert current_run() is None
        reply = client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert isinstance(reply, anthropic.types.Message) and reply.content[0].text == "hi"
        with RunRecorder(journal).start(agent="a", input="hi") as run:
            copied = client.with_options(timeout=5)  # a copy is recorded too
            copied.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
            raw = client.messages.with_raw_response.create(
                model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
            assert raw.parse().content[0].text == "hi"
            run.complete("hi")
    assert [e.type for e in journal.read_stream(run.stream_id)].count("ModelCalled") == 2
    with pytest.raises(TypeError, match=r"anthropic\.Anthropic or AsyncAnthropic"):
        record_anthropic(object())


def test_a_streamed_reply_is_recorded_when_read_to_the_end(journal: Journal) -> None:
    tool_use = anthropic_tool_use("lookup_order", {"order_id": "ORD-5521"}, "toolu_1")
    text = anthropic_reply([{"type": "text", "text": "It was delivered on Monday."}])
    with serving([anthropic_stream(tool_use), anthropic_stream(text)]) as server:
        client = sync_client(server.url)
        aclient = async_client(server.url)
        with RunRecorder(journal).start(agent="a", input=QUESTION) as run:
            stream = client.messages.create(
                model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": QUESTION}], stream=True
            )
            kinds = [event.type for event in stream]
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop"

            async def streamed() -> None:
                messages = [{"role": "user", "content": QUESTION}]
                async with aclient:
                    async for _ in await aclient.messages.create(
                        model=CLAUDE, max_tokens=100, messages=messages, stream=True
                    ):
                        pass

            asyncio.run(streamed())
            with pytest.raises(RecorderError, match=r"stream\(\) is not recorded"):
                client.messages.stream(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": QUESTION}])
            run.complete("Delivered.")
    calls = [e.data for e in journal.read_stream(run.stream_id) if e.type == "ModelCalled"]
    assert calls[0]["response"]["tool_calls"] == [
        {"id": "toolu_1", "name": "lookup_order", "arguments": {"order_id": "ORD-5521"}}
    ]
    assert calls[1]["response"]["text"] == "It was delivered on Monday."
    assert all(
        c["streamed"] and c["stream_complete"] and (c["input_tokens"], c["output_tokens"]) == (200, 40) for c in calls
    )


def test_a_journal_that_is_down_is_a_loud_error_never_a_missing_event(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/j.db"
    journal = Journal.open(url, create=True)
    with serving([anthropic_reply([{"type": "text", "text": "hi"}])] * 2) as server:
        client = sync_client(server.url)
        run = RunRecorder(journal).start(agent="a", input="hi", run_id="down")
        journal.close()
        with pytest.raises(RecorderError, match=r"journal is closed .*the model call was not sent") as closed, run:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert server.requests == []  # nothing paid for that could not be recorded
        assert "could not be recorded as aborted" in " ".join(closed.value.__notes__)

        other = Journal.open(url)
        run = RunRecorder(other).start(agent="a", input="hi", run_id="fails-while-recording")
        with run.active():
            original = other.append

            def database_down(*args: Any, **kwargs: Any) -> Any:
                raise sqlite3.OperationalError("disk I/O error")

            other.append = database_down  # type: ignore[method-assign]
            try:
                with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
                    client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
            finally:
                other.append = original  # type: ignore[method-assign]
        assert len(server.requests) == 1
    state = Repository(other, RunState).load(run_stream("fails-while-recording"))
    assert state.metrics.model_calls == 0 and state.status == "running"  # the loop failed: nothing half-written
    other.close()


def test_the_overhead_benchmark_runs(tmp_path: Any) -> None:
    """benchmarks/integration_clients.py (quick mode, SQLite) runs and reports its figures, so it cannot rot."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "integration_clients.py"
    figures = tmp_path / "figures.json"
    command = [sys.executable, str(script), "--quick", "--json", str(figures)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    medians = json.loads(figures.read_text())["medians"]["sqlite"]
    assert medians["plain_ms"] > 0 and medians["recorded_ms"] > 0 and "overhead ms/step" in done.stdout
