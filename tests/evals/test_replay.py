"""Counterfactual replay: the recording answers what the candidate asks again, side effects never run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentjournal.agents.demo import REFUNDS, agents
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.evals import (
    Candidate,
    CandidateError,
    Candidates,
    Dataset,
    EvaluationError,
    ReplaySettings,
    build_dataset,
    read_evaluation,
    recorded_replies,
    replay_dataset_sync,
)
from agentjournal.forensics import causes, timeline
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.runs import RunState, run_stream
from agentjournal.testing import synthetic
from agentjournal.testing.synthetic import append_runs, synthetic_runs

from .evaluator_helpers import counting, evaluation_journal, synthetic_crew, write_demo


@pytest.fixture
def demo_dataset(sqlite_or_postgres_url: str) -> Dataset:
    with Journal.open(sqlite_or_postgres_url) as journal:
        write_demo(journal)
        return build_dataset(journal)


def test_the_same_agents_replay_every_item_from_the_recording(
    demo_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    crew = agents()
    REFUNDS.clear()
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        evaluation = replay_dataset_sync(evals, demo_dataset, Candidate("same"), crew)
        assert [(r.item, r.status, r.divergence) for r in evaluation.results] == [
            ("refund-8842", "completed", None),
            ("ops-7731", "completed", None),
        ]
        assert not REFUNDS  # issue_refund answered from the recording, never run
        assert all(not agent.model.requests for agent in crew if isinstance(agent.model, ScriptedModel))
        replayed = evaluation.results[0].run_id
        assert replayed.startswith(evaluation.evaluation_id) and replayed.endswith("refund-8842-r1")
        state = Repository(evals, RunState).load(run_stream(replayed))
        assert state.final_response == demo_dataset.items[0].trajectory.outcome.response
        entries = timeline(evals, run_stream(replayed))
        assert entries[0].explanation.title.startswith("Run started") and len(entries) == state.version
        answer = evals.read_stream(run_stream(replayed))[-2]
        assert causes(evals, answer.event_id).root.type == "RunStarted"
        started = evals.read_stream(run_stream(replayed), 1, 1)[0].data
        assert started["evaluation"] == {
            "id": evaluation.evaluation_id,
            "candidate": "same",
            "item": "refund-8842",
            "repeat": 1,
        }
        assert evals.verify().ok


def test_a_prompt_change_diverges_at_the_first_request_it_changes(
    demo_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    shorter = Candidate("prompt-v2", prompts={"refund-agent": "You resolve refunds. Be brief."})
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        evaluation = replay_dataset_sync(evals, demo_dataset, shorter, agents())
    refund, ops = evaluation.results
    assert refund.divergence is not None and ops.divergence is None  # ops-agent's prompt did not change
    assert refund.divergence["what"] == "model call 3"  # the first request the refund agent makes
    assert refund.divergence["changes"] == ["the system prompt of refund-agent changed"]
    assert refund.divergence["recorded"]["model"] == "scripted" and refund.status == "completed"


@pytest.fixture
def synthetic_dataset(sqlite_or_postgres_url: str) -> Dataset:
    with Journal.open(sqlite_or_postgres_url) as journal:
        append_runs(journal, synthetic_runs(40, seed=11))
        return build_dataset(journal)


def test_side_effecting_tools_never_run_and_unrecorded_calls_follow_the_setting(
    synthetic_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    ran: list[str] = []
    tools = counting(synthetic.TOOLS, ran)
    twice = recorded_replies(synthetic_dataset, name="gpt-5-mini")
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        clone = replay_dataset_sync(evals, synthetic_dataset, Candidate("clone"), synthetic_crew(twice, tools))
        assert ran == []  # every call the clone made was in the recording
        assert all(result.divergence and result.divergence["what"] == "model call 1" for result in clone.results)
        assert all(
            "the model: recorded" in result.divergence["changes"][0] for result in clone.results if result.divergence
        )
        recorded = {item.id: item.trajectory.outcome.status for item in synthetic_dataset.items}
        assert {r.item: r.status for r in clone.results} == recorded

        other_order = recorded_replies(synthetic_dataset, name="gpt-5-mini", skip_tool="lookup_order")
        crew = synthetic_crew(other_order, tools)
        skipping = replay_dataset_sync(evals, synthetic_dataset, Candidate("no-lookup"), crew)
        assert ran == []
        with pytest.raises(EvaluationError, match="live tool 'issue_refund' has side effects"):
            replay_dataset_sync(
                evals,
                synthetic_dataset,
                Candidate("live"),
                crew,
                ReplaySettings(unmatched="live", live_tools=frozenset({"issue_refund"})),
            )
        with pytest.raises(EvaluationError, match="live tool 'lookup_orders': no agent has it"):
            replay_dataset_sync(
                evals,
                synthetic_dataset,
                Candidate("live"),
                crew,
                ReplaySettings(unmatched="live", live_tools=frozenset({"lookup_orders"})),
            )
    assert skipping.results and all(result.unanswered == [] for result in skipping.results)


def test_a_call_the_recording_lacks_is_refused_stubbed_or_run_live_when_read_only(
    synthetic_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    ran: list[str] = []
    tools = counting(synthetic.TOOLS, ran)
    item = next(i for i in synthetic_dataset.items if i.trajectory.tool_names[:1] == ["lookup_order"])
    dataset = Dataset(synthetic_dataset.header, (item,))
    order = item.trajectory.tools[0].arguments["order_id"]

    def other_order(request: object) -> object:  # asks for another order than the recorded run did
        messages = request.messages  # type: ignore[attr-defined]
        if not any(m["role"] == "assistant" for m in messages):
            return {"tool": "lookup_order", "arguments": {"order_id": order + "7"}}
        if sum(m["role"] == "assistant" for m in messages) == 1:
            return {"tool": "issue_refund", "arguments": {"order_id": order + "7", "amount": 10.0}}
        return "Done."

    model = ScriptedModel(other_order, name="gpt-5-mini")
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        refused = replay_dataset_sync(evals, dataset, Candidate("refuse"), synthetic_crew(model, tools))
        (result,) = refused.results
        assert result.status == "aborted" and ran == []
        assert result.unanswered == [
            {"tool": "lookup_order", "arguments": {"order_id": order + "7"}, "answer": "refused"}
        ]
        state = Repository(evals, RunState).load(run_stream(result.run_id))
        assert state.reason is not None and state.reason.startswith(
            "evaluation: the recording has no result for lookup_order"
        )
        assert state.metrics.model_calls == 1 and list(state.calls)  # what happened before the refusal stays

        stubbed = replay_dataset_sync(
            evals, dataset, Candidate("stub"), synthetic_crew(model, tools), ReplaySettings(unmatched="stub")
        )
        assert [call["answer"] for call in stubbed.results[0].unanswered] == ["stub", "stub"]
        assert stubbed.results[0].status == "completed" and ran == []

        live = replay_dataset_sync(
            evals,
            dataset,
            Candidate("live"),
            synthetic_crew(model, tools),
            ReplaySettings(unmatched="live", live_tools=frozenset({"lookup_order"})),
        )
        assert ran == ["lookup_order"]  # the read-only call ran; the refund (side-effecting) did not
        assert [(call["tool"], call["answer"]) for call in live.results[0].unanswered] == [
            ("lookup_order", "live"),
            ("issue_refund", "refused"),
        ]
        assert live.results[0].status == "aborted"


def test_running_the_same_replay_again_resumes_it(
    demo_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        first = replay_dataset_sync(evals, demo_dataset, Candidate("same"), agents(), ReplaySettings(repeat=2))
        again = replay_dataset_sync(evals, demo_dataset, Candidate("same"), agents(), ReplaySettings(repeat=2))
        assert again.evaluation_id == first.evaluation_id and again.resumed == 4 and again.results == first.results
        other = replay_dataset_sync(evals, demo_dataset, Candidate("same"), agents(), ReplaySettings(repeat=1))
        assert other.evaluation_id != first.evaluation_id and other.resumed == 0


KILLED_REPLAY = """
import sys
from agentjournal import Journal
from agentjournal.evals import Candidate, Dataset, ReplaySettings, recorded_replies, replay_dataset_sync
from tests.evals.evaluator_helpers import synthetic_crew

dataset = Dataset.read(sys.argv[2])
slow = recorded_replies(dataset, name="gpt-5-mini")
slow.latency_s = 0.05
with Journal.open(sys.argv[1]) as evals:
    replay_dataset_sync(evals, dataset, Candidate("clone"), synthetic_crew(slow), ReplaySettings(concurrency=2),
                        progress=lambda done, total: print(done, flush=True))
"""


def test_a_replay_killed_midway_is_finished_by_running_it_again(
    synthetic_dataset: Dataset, sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    path = synthetic_dataset.write(tmp_path / "runs.jsonl")
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as evals:
        script = tmp_path / "replay.py"
        script.write_text(textwrap.dedent(KILLED_REPLAY))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        child = subprocess.Popen(
            [sys.executable, str(script), evals.url, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert child.stdout is not None
        for line in child.stdout:
            if int(line) >= 10:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        time.sleep(0.1)
        model = recorded_replies(synthetic_dataset, name="gpt-5-mini")
        finished = replay_dataset_sync(evals, synthetic_dataset, Candidate("clone"), synthetic_crew(model))
        assert 10 <= finished.resumed < len(synthetic_dataset.items)
        record = read_evaluation(evals, finished.evaluation_id)
        assert record.complete and len(record.replays) == len(synthetic_dataset.items)
        kept = {result.run_id for result in finished.results}
        runs = [info.stream_id for info in evals.streams("run-", limit=10_000)]
        assert len(runs) >= len(kept)
        # a replay is written whole or not at all: a run the kill orphaned (written, its ItemReplayed not) is
        # finished, and its item was replayed again under the next attempt's id
        orphans = [
            Repository(evals, RunState).load(stream) for stream in runs if stream.removeprefix("run-") not in kept
        ]
        assert all(state.finished for state in orphans)
        assert all(f"{state.run_id}-a2" in kept for state in orphans)
        replays = [e for e in evals.read_stream(f"eval-{finished.evaluation_id}") if e.type == "ItemReplayed"]
        assert len(replays) == len(synthetic_dataset.items)  # each item once, whoever replayed it
        assert {r.item: r.status for r in finished.results} == {
            i.id: i.trajectory.outcome.status for i in synthetic_dataset.items
        }


def test_candidates_that_name_what_does_not_exist_are_refused(tmp_path: Path) -> None:
    crew = agents()
    with pytest.raises(CandidateError, match="prompts names agent\\(s\\) refund-bot; the agents are ops-agent"):
        Candidate("x", prompts={"refund-bot": "..."}).apply(crew)
    with pytest.raises(CandidateError, match="tools names refund, which no agent has"):
        Candidate("x", tools={"refund": "..."}).apply(crew)
    with pytest.raises(CandidateError, match="candidate name 'recorded'"):
        Candidate("recorded")
    file = tmp_path / "candidates.yaml"
    file.write_text(
        "agents: agentjournal.agents.demo:agents\n"
        "candidates:\n"
        "  prompt-v42:\n"
        "    prompts: {refund-agent: Be brief.}\n"
        "    tools: {issue_refund: Issue a refund of at most 40 USD.}\n"
    )
    candidates = Candidates.load(file)
    built = candidates.get("prompt-v42").apply(candidates.base_agents() or [])
    refund = next(agent for agent in built if agent.name == "refund-agent")
    assert refund.instructions == "Be brief." and refund.registry.get("issue_refund").description.startswith("Issue a")
    with pytest.raises(CandidateError, match="no candidate named 'prompt-v43'; known: prompt-v42"):
        candidates.get("prompt-v43")
    file.write_text("candidates:\n  x:\n    model: nowhere.models:big\n")
    with pytest.raises(CandidateError, match=r"candidate x: model 'nowhere\.models:big': cannot import module"):
        Candidates.load(file).get("x")
    file.write_text("candidates:\n  x:\n    prompt: typo\n")
    with pytest.raises(CandidateError, match=r"candidates\.x\.prompt: Extra inputs are not permitted"):
        Candidates.load(file)
