"""Scores and gates: better and worse candidates, a dearer model, a stricter policy, noise, another baseline."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentjournal.agents.models.base import ModelRequest
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.agents.policy import Policy
from agentjournal.evals import (
    Assertion,
    Candidate,
    Dataset,
    EvaluationError,
    ExactMatch,
    Judge,
    Reference,
    ReplaySettings,
    Thresholds,
    TrajectoryMatch,
    build_dataset,
    gate,
    read_evaluation,
    recorded_replies,
    replay_dataset_sync,
    score_evaluation_sync,
)
from agentjournal.journal import Journal
from agentjournal.testing import synthetic
from agentjournal.testing.synthetic import append_runs, synthetic_runs

from .evaluator_helpers import evaluation_journal, synthetic_crew

GOOD = "Your refund is approved and on its way."


@pytest.fixture
def dataset(sqlite_or_postgres_url: str) -> Dataset:
    """Completed synthetic runs, each referenced with the answer a reviewer wanted (not the one given)."""
    with Journal.open(sqlite_or_postgres_url) as journal:
        append_runs(journal, synthetic_runs(30, seed=5))
        built = build_dataset(journal, None)
    return built.with_references({item.id: Reference(expected=GOOD) for item in built.items})


@pytest.fixture
def evals(sqlite_or_postgres_url: str, tmp_path: Path) -> Iterator[Journal]:
    with evaluation_journal(sqlite_or_postgres_url, tmp_path) as journal:
        yield journal


def _evaluate(evals: Journal, dataset: Dataset, candidate: Candidate, model: ScriptedModel, **settings: Any) -> str:
    crew = synthetic_crew(model)
    evaluation = replay_dataset_sync(evals, dataset, candidate, crew, ReplaySettings(**settings))
    score_evaluation_sync(evals, evaluation.evaluation_id, quality=[ExactMatch(normalized=True)])
    return evaluation.evaluation_id


def test_a_better_answer_passes_the_quality_gate_and_a_worse_one_fails_it(evals: Journal, dataset: Dataset) -> None:
    better = recorded_replies(dataset, name="gpt-5-mini", answer=lambda item, text: GOOD.upper() + "!")
    worse = recorded_replies(dataset, name="gpt-5-mini", answer=lambda item, text: "Please wait.")
    up = _evaluate(evals, dataset, Candidate("better"), better)
    down = _evaluate(evals, dataset, Candidate("worse"), worse)
    limits = Thresholds(min_quality=0.8, max_quality_drop=0.0)
    passed = gate(evals, up, limits)
    completed = [item for item in dataset.items if item.trajectory.outcome.status == "completed"]
    answered = len(completed) / len(dataset.items)  # an aborted run has no answer to match
    assert passed.passed and [check.value for check in passed.checks] == [
        pytest.approx(answered),
        pytest.approx(-answered),
    ]
    failed = gate(evals, down, limits)
    assert not failed.passed and [check.name for check in failed.failed] == ["min quality"]
    (low,) = failed.failed
    assert low.value == 0.0 and "below 0.8 by 0.800" in low.detail
    assert {offender.item for offender in low.items} == {item.id for item in dataset.items}
    markdown = failed.to_markdown()
    assert (
        "## agentjournal eval gate: worse failed" in markdown and "| min quality | 0.8 | 0 | 0 | **FAIL** |" in markdown
    )
    assert "One replay per item: no noise was measured" in markdown
    junit = failed.to_junit()
    assert 'failures="1"' in junit and '<failure message="mean quality 0.000 is below 0.8' in junit
    gates = read_evaluation(evals, down).gates
    assert [(g.passed, g.thresholds["min_quality"]) for g in gates] == [(False, 0.8)]


def test_a_dearer_model_fails_the_cost_gate_on_the_items_that_cost_more(evals: Journal, dataset: Dataset) -> None:
    dearer = recorded_replies(dataset, name="gpt-5", cost_factor=3.0)
    evaluation = _evaluate(evals, dataset, Candidate("dearer"), dearer)
    report = gate(evals, evaluation, Thresholds(max_cost_delta=0.15))
    (check,) = report.checks
    assert not report.passed and 1.5 < check.value <= 2.0  # +200% a call (budget-aborted runs stop sooner)
    assert f"{check.value:+.1%}, more than +15%" in check.detail and len(check.items) >= len(dataset.items) - 3
    assert gate(evals, evaluation, Thresholds(max_cost_delta=2.0)).passed


def test_a_stricter_policy_counts_as_regressions_by_direction(evals: Journal, dataset: Dataset) -> None:
    stricter = Policy.from_yaml(
        synthetic.POLICY.replace(
            "when: {tool: issue_refund, input: {amount_lte: 40}}\n    action: allow",
            "when: {tool: issue_refund, input: {amount_lte: 40}}\n    action: require_human_approval",
        ),
        source="stricter.yaml",
    )
    model = recorded_replies(dataset, name="gpt-5-mini")
    evaluation = _evaluate(evals, dataset, Candidate("strict", policy=stricter), model)
    small_refunds = {
        item.id
        for item in dataset.items
        for step in item.trajectory.tools
        if step.tool == "issue_refund" and step.decision == "allow"
    }
    assert small_refunds
    report = gate(evals, evaluation, Thresholds(max_policy_regressions=0))
    (check,) = report.checks
    assert not report.passed and check.value >= len(small_refunds)
    assert {offender.item for offender in check.items} == small_refunds
    assert all("issue_refund stricter (now require_human_approval)" in o.detail for o in check.items)
    assert check.detail.startswith(f"{int(check.value)} call(s) decided stricter and 0 looser")
    looser_only = gate(evals, evaluation, Thresholds(max_policy_regressions=0, policy_direction="looser"))
    assert looser_only.passed
    waiting = {r.item for r in read_evaluation(evals, evaluation).replays.values() if r.status == "waiting_approval"}
    assert waiting == small_refunds  # nobody ever approved those calls: the items wait, nothing ran


def test_the_gate_compares_the_confidence_bound_when_replays_vary(evals: Journal, dataset: Dataset) -> None:
    chance = random.Random(3)
    noisy = recorded_replies(
        dataset, name="gpt-5-mini", answer=lambda item, text: GOOD if chance.random() < 0.85 else "?"
    )
    evaluation = _evaluate(evals, dataset, Candidate("noisy"), noisy, repeat=4)
    report = gate(evals, evaluation, Thresholds(min_quality=0.7))
    (check,) = report.checks
    assert check.bound is not None and check.bound < check.value
    assert "With 4 replays per item" in report.noise and "lower 95% confidence bound" in check.detail
    assert check.passed == (check.bound >= 0.7)
    strict = gate(evals, evaluation, Thresholds(min_quality=check.value - 0.001))
    assert not strict.passed  # the mean clears it, the bound does not


def test_another_candidate_can_be_the_baseline(evals: Journal, dataset: Dataset) -> None:
    good = _evaluate(
        evals, dataset, Candidate("good"), recorded_replies(dataset, name="gpt-5-mini", answer=lambda i, t: GOOD)
    )
    bad = _evaluate(
        evals, dataset, Candidate("bad"), recorded_replies(dataset, name="gpt-5-mini", answer=lambda i, t: "?")
    )
    report = gate(evals, bad, Thresholds(max_quality_drop=0.1), baseline=good)
    answered = sum(item.trajectory.outcome.status == "completed" for item in dataset.items) / len(dataset.items)
    assert not report.passed and report.baseline == good and report.checks[0].value == pytest.approx(answered)
    assert gate(evals, good, Thresholds(max_quality_drop=0.0), baseline=bad).passed


def test_scores_are_journaled_once_and_a_judge_is_asked_once(evals: Journal, dataset: Dataset) -> None:
    model = recorded_replies(dataset, name="gpt-5-mini", answer=lambda item, text: GOOD)
    evaluation = replay_dataset_sync(evals, dataset, Candidate("judged"), synthetic_crew(model))

    def verdict(request: ModelRequest) -> dict[str, Any]:
        said = request.messages[0]["content"]
        return {"json": {"score": 1 if "approved" in said.split("The agent answered:")[1] else 0, "reason": "checked"}}

    judge_model = ScriptedModel(verdict, name="judge-model")
    judge = Judge(judge_model, "An answer must say the refund was approved.")

    def mentions_order(subject: Any) -> bool | None:
        return None if subject.side == "baseline" else "refund" in subject.response

    scorers = [judge, TrajectoryMatch(mode="subset"), Assertion(mentions_order)]
    first = score_evaluation_sync(evals, evaluation.evaluation_id, metrics=["quality"], quality=scorers)
    items = len(dataset.items)
    asked = {request.messages[0]["content"] for request in judge_model.requests}
    assert first.recorded == items * 2 + items * 2 + items and len(judge_model.requests) == len(asked)
    assert len(asked) >= items  # one request per distinct answer: a repeated prompt reuses its verdict
    again = score_evaluation_sync(evals, evaluation.evaluation_id, metrics=["quality"], quality=scorers)
    assert again.recorded == 0 and len(judge_model.requests) == len(asked)
    fresh = Judge(ScriptedModel(verdict, name="judge-model"), judge.rubric)
    record = read_evaluation(evals, evaluation.evaluation_id)
    judged = [s for s in record.scores if s.scorer == "judge"]
    assert all(s.details["verdict"]["reason"] == "checked" and "fingerprint" in s.details for s in judged)
    assert {s.value for s in judged if s.side == "candidate"} == {1.0}
    score_evaluation_sync(evals, evaluation.evaluation_id, metrics=["quality"], quality=[fresh])
    assert not fresh.model.requests  # type: ignore[attr-defined]  (the journaled verdicts answered)


def test_bad_gate_and_score_requests_are_clear(evals: Journal, dataset: Dataset) -> None:
    model = recorded_replies(dataset, name="gpt-5-mini")
    evaluation = replay_dataset_sync(evals, dataset, Candidate("plain"), synthetic_crew(model)).evaluation_id
    with pytest.raises(EvaluationError, match="has no scores; run `agentjournal eval score` first"):
        gate(evals, evaluation, Thresholds(min_quality=0.5))
    with pytest.raises(EvaluationError, match="no threshold given"):
        gate(evals, evaluation, Thresholds())
    with pytest.raises(EvaluationError, match="unknown metric\\(s\\) speed"):
        score_evaluation_sync(evals, evaluation, metrics=["speed"])  # type: ignore[list-item]
    with pytest.raises(EvaluationError, match=r"no evaluation 'nope' in .*; the latest: plain-"):
        gate(evals, "nope", Thresholds(min_quality=0.5))
    score_evaluation_sync(evals, evaluation, metrics=["cost"])
    with pytest.raises(EvaluationError, match="no quality scores; run `agentjournal eval score --metrics quality`"):
        gate(evals, evaluation, Thresholds(min_quality=0.5))
    with pytest.raises(EvaluationError, match="min_quality is a quality in \\[0, 1\\], got 82"):
        Thresholds(min_quality=82)
    broken = Assertion(lambda subject: "yes")
    with pytest.raises(EvaluationError, match="returned 'yes'; expected True/False"):
        score_evaluation_sync(evals, evaluation, metrics=["quality"], quality=[broken])
    assert orjson.dumps(gate(evals, evaluation, Thresholds(max_cost_delta=0.1)).to_dict())
