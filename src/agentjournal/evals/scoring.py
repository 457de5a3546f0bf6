"""Scorers: each replay and each baseline scored per metric, every score journaled with its scorer.

Four metrics. `cost` and `latency` come from the recorded usage (a reused tool result keeps
its recorded latency). `policy` counts the run's violations (denied or escalated calls) and
compares each call with the baseline's decision on the same tool and arguments, by direction:
stricter (allowed then, denied or escalated now), looser (the reverse) or unchanged.
`quality` comes from pluggable scorers, each in [0, 1]: exact or normalized match against a
reference answer, tool-trajectory match, an assertion function, or an LLM judge through any
`Model` (its prompt, fingerprint and verdict are journaled, and a later scoring with the same
judge and the same request reuses the verdict instead of asking again).

A scorer's `version` names its logic: a score already journaled for an item, a side, a scorer
and a version is not computed again, so re-scoring after adding a scorer only adds its scores.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from agentjournal.agents.models.base import Model, ModelRequest
from agentjournal.agents.policy import direction
from agentjournal.evals.dataset import Reference
from agentjournal.evals.record import EvaluationRecord, read_evaluation
from agentjournal.evals.replay import ACTOR, EvaluationError
from agentjournal.evals.trajectory import Trajectory, arguments_key
from agentjournal.journal import Journal, NewEvent
from agentjournal.runs import evaluations as evs
from agentjournal.runs import new_event

__all__ = [
    "METRICS",
    "Assertion",
    "ExactMatch",
    "Judge",
    "Score",
    "Scorer",
    "Subject",
    "TrajectoryMatch",
    "default_quality_scorers",
    "score_evaluation",
    "score_evaluation_sync",
]

Metric = Literal["quality", "cost", "latency", "policy"]
METRICS: tuple[Metric, ...] = ("quality", "cost", "latency", "policy")


@dataclass(frozen=True)
class Subject:
    """What a scorer sees: the item's input and reference, the baseline, and the run being scored."""

    item: str
    input: str
    reference: Reference | None
    baseline: Trajectory
    run: Trajectory
    side: evs.Side
    repeat: int

    @property
    def response(self) -> str:
        return self.run.outcome.response or ""


@dataclass(frozen=True)
class Score:
    value: float
    details: dict[str, Any] = field(default_factory=dict)


class Scorer(ABC):
    """Scores one run on one metric; returns None when it does not apply (e.g. no reference)."""

    name: str
    version: str = "1"
    metric: Metric = "quality"

    @abstractmethod
    def score(self, subject: Subject) -> Score | Awaitable[Score | None] | None: ...


class ExactMatch(Scorer):
    """1 when the answer equals the reference answer; `normalized` ignores case, spacing and punctuation."""

    def __init__(self, *, normalized: bool = False) -> None:
        self.normalized = normalized
        self.name = "normalized" if normalized else "exact"

    def score(self, subject: Subject) -> Score | None:
        if subject.reference is None or subject.reference.expected is None:
            return None
        expected, answer = subject.reference.expected, subject.response
        if self.normalized:
            expected, answer = _normalize(expected), _normalize(answer)
        return Score(float(expected == answer), {"expected": subject.reference.expected})


def _normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


class TrajectoryMatch(Scorer):
    """1 when the run called the expected tools: the same ones in the same order (`ordered`), or at
    least those, in that order (`subset`). The expected tools are the reference's, else the baseline's."""

    def __init__(self, *, mode: Literal["ordered", "subset"] = "ordered") -> None:
        self.mode = mode
        self.name = f"trajectory-{mode}"

    def score(self, subject: Subject) -> Score:
        reference = subject.reference
        expected = reference.tools if reference and reference.tools is not None else subject.baseline.tool_names
        called = subject.run.tool_names
        if self.mode == "ordered":
            matched = called == expected
        else:
            remaining = iter(called)
            matched = all(any(tool == seen for seen in remaining) for tool in expected)
        return Score(float(matched), {"expected": expected, "called": called})


class Assertion(Scorer):
    """A function of the Subject: True/False, a number in [0, 1], a Score, or None (does not apply).

    Its version is a hash of the function's source, so editing the function re-scores.
    """

    def __init__(self, function: Callable[[Subject], Any], *, name: str | None = None) -> None:
        self.function = function
        self.name = name or str(getattr(function, "__name__", "assertion"))
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            source = repr(function)
        self.version = hashlib.sha256(source.encode()).hexdigest()[:12]

    async def score(self, subject: Subject) -> Score | None:
        value = self.function(subject)
        if inspect.isawaitable(value):
            value = await value
        if value is None or isinstance(value, Score):
            return value
        if isinstance(value, bool | int | float) and 0 <= float(value) <= 1:
            return Score(float(value))
        raise EvaluationError(
            f"scorer {self.name}: returned {value!r}; expected True/False, a number in [0, 1] or a Score"
        )


JUDGE_INSTRUCTIONS = (
    "You grade an AI agent's answer to a customer. Follow the rubric. Reply with one JSON object: "
    '{"score": a number from 0 to 1, "reason": one sentence}.'
)


class Judge(Scorer):
    """An LLM as judge: asks `model` to grade the answer against `rubric` (and the reference, if any)."""

    def __init__(self, model: Model, rubric: str, *, name: str = "judge") -> None:
        self.model = model
        self.rubric = rubric
        self.name = name
        self.version = hashlib.sha256(f"{model.name}\n{rubric}".encode()).hexdigest()[:12]
        self.verdicts: dict[str, dict[str, Any]] = {}
        """Request fingerprint -> a verdict already journaled (filled in by score_evaluation)."""

    def request(self, subject: Subject) -> ModelRequest:
        parts = [
            f"Rubric: {self.rubric}",
            f"The customer said: {subject.input}",
            f"The agent answered: {subject.response}",
        ]
        if subject.reference is not None and subject.reference.expected is not None:
            parts.append(f"A good answer: {subject.reference.expected}")
        return ModelRequest(JUDGE_INSTRUCTIONS, [{"role": "user", "content": "\n".join(parts)}], json_output=True)

    async def score(self, subject: Subject) -> Score:
        request = self.request(subject)
        fingerprint = request.fingerprint(self.model.name)
        recorded = self.verdicts.get(fingerprint)
        if recorded is not None:
            return Score(float(recorded["verdict"]["score"]), {**recorded, "reused": True})
        reply = await self.model.request(request)
        try:
            verdict = orjson.loads(reply.text or "")
            value = float(verdict["score"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise EvaluationError(
                f'judge {self.name} ({self.model.name}) did not reply with {{"score": 0..1}}: {reply.text!r}'
            ) from None
        if not 0 <= value <= 1:
            raise EvaluationError(f"judge {self.name} ({self.model.name}) gave score {value}, outside [0, 1]")
        details = {
            "model": self.model.name,
            "prompt": request.messages[0]["content"],
            "fingerprint": fingerprint,
            "verdict": {"score": value, "reason": str(verdict.get("reason", ""))},
            "cost_usd": reply.cost_usd,
        }
        self.verdicts[fingerprint] = details
        return Score(value, details)


class _Cost(Scorer):
    name, metric = "recorded-usage", "cost"

    def score(self, subject: Subject) -> Score:
        return Score(subject.run.usage.cost_usd)


class _Latency(Scorer):
    name, metric = "recorded-usage", "latency"

    def score(self, subject: Subject) -> Score:
        return Score(subject.run.usage.latency_ms)


class _Policy(Scorer):
    """Violations (denied or escalated calls) of the run, and each call's direction against the baseline."""

    name, metric = "policy-directions", "policy"

    def score(self, subject: Subject) -> Score:
        usage = subject.run.usage
        details: dict[str, Any] = {"stricter": [], "looser": []}
        if subject.side == "candidate":
            then: dict[tuple[str, bytes], list[Any]] = {}
            for call in subject.baseline.tools:
                then.setdefault(arguments_key(call.tool, call.arguments), []).append(call.decision)
            for call in subject.run.tools:
                before = then.get(arguments_key(call.tool, call.arguments))
                if not before:
                    continue  # a call the baseline did not make: nothing to compare it with
                moved = direction(before.pop(0), call.decision)
                if moved != "unchanged":
                    details[moved].append({"tool": call.tool, "arguments": call.arguments, "now": call.decision})
        return Score(float(usage.policy_denials + usage.policy_escalations), details)


def default_quality_scorers() -> list[Scorer]:
    """Normalized match where a reference answer exists, and the tool trajectory against the baseline."""
    return [ExactMatch(normalized=True), TrajectoryMatch()]


@dataclass(frozen=True)
class ScoringReport:
    evaluation_id: str
    recorded: int
    """Scores journaled by this call."""
    kept: int
    """Scores already journaled (not computed again)."""


def _event_id(evaluation: str, score: evs.ScoreRecorded) -> str:
    key = "/".join(
        str(part)
        for part in (evaluation, score.item, score.repeat, score.side, score.metric, score.scorer, score.scorer_version)
    )
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "agentjournal-score:" + key))


def _subjects(record: EvaluationRecord, journal: Journal) -> Iterable[Subject]:
    trajectories = record.trajectories(journal)
    for name, item in record.items.items():
        reference = Reference.model_validate(item.reference) if item.reference else None
        baseline = record.baseline(name)
        yield Subject(name, item.input, reference, baseline, baseline, "baseline", 0)
        for repeat in range(1, record.started.repeat + 1):
            run = trajectories.get((name, repeat))
            if run is not None:
                yield Subject(name, item.input, reference, baseline, run, "candidate", repeat)


async def score_evaluation(
    journal: Journal,
    evaluation_id: str,
    *,
    metrics: Sequence[Metric] = METRICS,
    quality: Sequence[Scorer] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringReport:
    """Score every replay of the evaluation and its baselines on `metrics`; journal each score."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise EvaluationError(f"unknown metric(s) {', '.join(unknown)}; the metrics are {', '.join(METRICS)}")
    record = await asyncio.to_thread(read_evaluation, journal, evaluation_id)
    if not record.replays:
        raise EvaluationError(f"evaluation {evaluation_id} has no replays yet; run `agentjournal eval replay`")
    scorers: list[Scorer] = []
    for metric in metrics:
        if metric == "quality":
            scorers.extend(default_quality_scorers() if quality is None else quality)
        else:
            scorers.append(_Cost() if metric == "cost" else _Latency() if metric == "latency" else _Policy())
    names = [(scorer.metric, scorer.name) for scorer in scorers]
    if len(set(names)) != len(names):
        raise EvaluationError(f"two scorers share a name: {', '.join(f'{m}/{n}' for m, n in names)}")
    done = {(s.item, s.repeat, s.side, s.metric, s.scorer, s.scorer_version) for s in record.scores}
    for scorer in scorers:
        if isinstance(scorer, Judge):
            scorer.verdicts.update(
                {
                    s.details["fingerprint"]: s.details
                    for s in record.scores
                    if s.scorer == scorer.name and s.scorer_version == scorer.version and "fingerprint" in s.details
                }
            )
    subjects = await asyncio.to_thread(lambda: list(_subjects(record, journal)))
    events: list[NewEvent] = []
    kept = 0
    for index, subject in enumerate(subjects, start=1):
        for scorer in scorers:
            key = (subject.item, subject.repeat, subject.side, scorer.metric, scorer.name, scorer.version)
            if key in done:
                kept += 1
                continue
            found = scorer.score(subject)
            score = await found if inspect.isawaitable(found) else found
            if score is None:
                continue
            payload = evs.ScoreRecorded(
                item=subject.item,
                repeat=subject.repeat,
                side=subject.side,
                metric=scorer.metric,
                scorer=scorer.name,
                scorer_version=scorer.version,
                value=score.value,
                details=score.details,
            )
            events.append(new_event(payload, actor=ACTOR, event_id=_event_id(record.evaluation_id, payload)))
        if progress is not None:
            progress(index, len(subjects))
    for start in range(0, len(events), 500):
        await asyncio.to_thread(
            journal.append, evs.evaluation_stream(record.evaluation_id), events[start : start + 500]
        )
    return ScoringReport(record.evaluation_id, len(events), kept)


def score_evaluation_sync(
    journal: Journal,
    evaluation_id: str,
    *,
    metrics: Sequence[Metric] = METRICS,
    quality: Sequence[Scorer] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringReport:
    return asyncio.run(score_evaluation(journal, evaluation_id, metrics=metrics, quality=quality, progress=progress))
