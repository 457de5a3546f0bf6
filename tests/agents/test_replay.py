"""Record and replay: a recorded run re-executes with nothing called; changed code diverges, loudly."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from agentjournal.agents import DivergenceError, Runtime, ScriptedModel, replay_sync
from agentjournal.agents.demo import REFUND_REQUEST, REFUNDS, agents
from agentjournal.cli.main import app
from agentjournal.journal import Journal

from ._run_helpers import EFFECTS, agent, call, fresh_effects, runtime, seed_policy, types


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    fresh_effects()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def test_a_recorded_run_replays_with_recordings_substituted(journal: Journal) -> None:
    crew = agents()
    Runtime(journal, agents=crew).run_sync(crew[0], REFUND_REQUEST, run_id="recorded")
    issued = dict(REFUNDS)
    REFUNDS.clear()
    fresh = agents()  # the agent code, built again; its scripted model is never asked
    result = replay_sync(journal, "recorded", fresh)
    assert result.replayed.status == "completed"
    assert result.same_response
    assert types(result.journal, "run-recorded") == types(journal, "run-recorded")
    assert REFUNDS == {}  # no tool ran: the recorded outputs were substituted
    assert issued
    for model in {id(a.model): a.model for a in fresh}.values():
        assert isinstance(model, ScriptedModel) and model.requests == []
    assert journal.stream_version("run-recorded") == result.original.version  # the recording is untouched


def test_replay_includes_recorded_retries_and_human_decisions(journal: Journal) -> None:
    from agentjournal.agents import approve

    script = [
        call("flaky", key="k"),
        call("send_email", recipient="x@example.org", subject="s", body="b"),
        "done",
    ]
    tester = agent(script, policy=seed_policy())
    rt = runtime(journal, tester)
    waiting = rt.run_sync(tester, "go", run_id="with-human")
    approve(journal, waiting.pending_approvals[0].approval_id, by="alice", reason="ok")
    assert rt.resume_sync("with-human").status == "completed"
    effects_before = len(EFFECTS)
    result = replay_sync(journal, "with-human", [agent(script, policy=seed_policy())])
    assert result.replayed.status == "completed" and result.same_response
    assert types(result.journal, "run-with-human") == types(journal, "run-with-human")
    assert len(EFFECTS) == effects_before


def test_changed_instructions_diverge_and_show_both_calls(journal: Journal) -> None:
    tester = agent([call("lookup", key="a"), "done"])
    runtime(journal, tester).run_sync(tester, "go", run_id="to-diverge")
    changed = dataclasses.replace(agent([call("lookup", key="a"), "done"]), instructions="You are a different agent.")
    with pytest.raises(DivergenceError) as raised:
        replay_sync(journal, "to-diverge", [changed])
    message = str(raised.value)
    assert "replay of run to-diverge diverged at model call 1" in message
    assert "recorded" in message and "requested" in message
    assert "the system prompt of tester changed" in message
    assert raised.value.changes == ["the system prompt of tester changed"]
    assert raised.value.recorded is not None
    assert raised.value.recorded["fingerprint"] != raised.value.requested["fingerprint"]


def test_code_that_asks_for_a_call_the_recording_lacks_diverges(journal: Journal) -> None:
    script = [call("query_sql", sql="DROP TABLE users"), "dropped"]
    recorded_agent = agent(script)
    runtime(journal, recorded_agent).run_sync(recorded_agent, "go", run_id="before-policy")
    # The new code adds seed 001's policy: the drop is denied, so the second request to the model
    # carries a denial instead of the recorded result, a call the recording does not have.
    with pytest.raises(DivergenceError) as raised:
        replay_sync(journal, "before-policy", [agent(script, policy=seed_policy())])
    assert raised.value.what.startswith("model call 2")
    assert raised.value.changes == ["message 3 (tool, the result of call_1_1): its content differs"]
    recorded = raised.value.recorded["new messages"][0]["content"]  # type: ignore[index]
    requested = raised.value.requested["new messages"][0]["content"]
    assert recorded == '{"rows":[]}'
    assert "policy_denied" in requested and "deny_destructive_sql" in requested


def test_cli_replay(sqlite_url: str) -> None:
    with Journal.open(sqlite_url) as journal:
        crew = agents()
        Runtime(journal, agents=crew).run_sync(crew[0], REFUND_REQUEST, run_id="cli-replay")
    result = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "replay", "cli-replay"])
    assert result.exit_code == 0, result.output
    assert "replayed run cli-replay: completed with the same answer" in result.output
    missing = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "replay", "nope"])
    assert missing.exit_code == 1 and "no run 'nope'" in missing.output


def test_runtime_replay_uses_its_registered_agents(journal: Journal) -> None:
    import asyncio

    crew = agents()
    runtime = Runtime(journal, agents=crew)
    runtime.run_sync(crew[0], REFUND_REQUEST, run_id="by-runtime")
    REFUNDS.clear()
    result = asyncio.run(Runtime(journal, agents=agents()).replay("by-runtime"))
    assert result.same_response and REFUNDS == {}
