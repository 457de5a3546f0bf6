"""Gates: a candidate against its baseline on the same items, pass or fail, and why.

Thresholds (any subset): the candidate's mean quality at least `min_quality`; its quality at
most `max_quality_drop` below the baseline's (seed 001's replay delta); cost and latency at
most `max_cost_delta` / `max_latency_delta` above the baseline's, relative (0.15 is +15%); at
most `max_policy_regressions` calls decided differently from the baseline (stricter and
looser counted apart, `policy_direction` says which count); at least `min_items` items.

Under noise the gate does not trust one sample: with several replays per item it compares the
one-sided confidence bound of the mean (the spread it measured across replays, at
`confidence`) with the threshold, and says so; with one replay per item it says that it
measured no noise. Each decision is journaled (GateDecided) with every check.
"""

from __future__ import annotations

import difflib
import html
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from xml.etree import ElementTree

from agentjournal.evals.record import EvaluationRecord, read_evaluation
from agentjournal.evals.replay import ACTOR, EvaluationError
from agentjournal.evals.scoring import Metric
from agentjournal.forensics.timeline import page
from agentjournal.journal import Journal
from agentjournal.runs import evaluations as evs
from agentjournal.runs import new_event

__all__ = ["Check", "GateReport", "Thresholds", "gate"]

BASELINE = "recorded"


@dataclass(frozen=True)
class Thresholds:
    min_quality: float | None = None
    max_quality_drop: float | None = None
    max_cost_delta: float | None = None
    max_latency_delta: float | None = None
    max_policy_regressions: int | None = None
    policy_direction: Literal["stricter", "looser", "both"] = "both"
    min_items: int | None = None
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise EvaluationError(f"confidence must be in [0.5, 1), got {self.confidence}")
        for name in ("min_quality", "max_quality_drop"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise EvaluationError(f"{name} is a quality in [0, 1], got {value}")
        for name in ("max_cost_delta", "max_latency_delta", "max_policy_regressions", "min_items"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise EvaluationError(f"{name} must not be negative, got {value}")

    @property
    def given(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Offender:
    item: str
    detail: str


@dataclass(frozen=True)
class Check:
    name: str
    threshold: float
    value: float
    """The point estimate."""
    bound: float | None
    """The confidence bound compared with the threshold (None: one replay per item, no noise measured)."""
    passed: bool
    detail: str
    """What was compared, and by how much it passed or failed."""
    items: list[Offender] = field(default_factory=list)
    """The items that pull it the wrong way, worst first."""


@dataclass(frozen=True)
class ItemComparison:
    """One item, baseline against candidate: its means per metric and its policy moves."""

    item: str
    input: str
    baseline: dict[str, float]
    candidate: dict[str, float]
    spread: dict[str, float]
    """Per metric, the variance across the candidate's replays of this item (0 with one replay)."""
    repeats: int
    moves: dict[str, list[dict[str, Any]]]
    baseline_response: str | None
    candidate_response: str | None
    baseline_tools: list[str]
    candidate_tools: list[str]
    divergence: dict[str, Any] | None


@dataclass(frozen=True)
class GateReport:
    evaluation_id: str
    candidate: str
    baseline: str
    dataset_version: str
    repeat: int
    passed: bool
    checks: list[Check]
    items: list[ItemComparison]
    noise: str
    """How the gate treated noise, in one sentence."""

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_markdown(self) -> str:
        verdict = "passed" if self.passed else "failed"
        lines = [
            f"## agentjournal eval gate: {self.candidate} {verdict}",
            "",
            f"Evaluation `{self.evaluation_id}` over dataset `{self.dataset_version[:19]}…`, "
            f"{len(self.items)} items, baseline: {self.baseline}. {self.noise}",
            "",
            "| check | threshold | value | compared | result |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for check in self.checks:
            compared = _number(check.bound if check.bound is not None else check.value)
            mark = "pass" if check.passed else "**FAIL**"
            lines.append(
                f"| {check.name} | {_number(check.threshold)} | {_number(check.value)} | {compared} | {mark} |"
            )
        for check in self.checks:
            lines += ["", f"**{check.name}**: {check.detail}"]
            lines += [f"- `{offender.item}`: {offender.detail}" for offender in check.items[:20]]
            if len(check.items) > 20:
                lines.append(f"- … and {len(check.items) - 20} more")
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one test case per check, failing with its detail and the items that failed it."""
        suite = ElementTree.Element(
            "testsuite",
            name=f"agentjournal eval gate {self.candidate}",
            tests=str(len(self.checks)),
            failures=str(len(self.failed)),
        )
        for check in self.checks:
            case = ElementTree.SubElement(suite, "testcase", classname=f"eval.{self.candidate}", name=check.name)
            if not check.passed:
                failure = ElementTree.SubElement(case, "failure", message=check.detail)
                failure.text = "\n".join(f"{offender.item}: {offender.detail}" for offender in check.items)
        ElementTree.indent(suite)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def to_html(self) -> str:
        """A standalone page: the checks, then each item's baseline and candidate side by side, diffed."""
        e = html.escape
        verdict = "passed" if self.passed else "FAILED"
        checks = "".join(
            f"<tr><td>{e(check.name)}</td><td>{_number(check.threshold)}</td><td>{_number(check.value)}</td>"
            f"<td>{'' if check.bound is None else _number(check.bound)}</td>"
            f"<td>{'pass' if check.passed else '<strong>FAIL</strong>'}</td><td>{e(check.detail)}</td></tr>"
            for check in self.checks
        )
        offending = {offender.item for check in self.failed for offender in check.items}
        items = "\n".join(_item_html(item, item.item in offending) for item in self.items)
        body = (
            f"<h1>agentjournal eval gate: {e(self.candidate)} {verdict}</h1>\n"
            f"<p>Evaluation <code>{e(self.evaluation_id)}</code> over dataset <code>{e(self.dataset_version)}</code>, "
            f"{len(self.items)} items, baseline: {e(self.baseline)}. {e(self.noise)}</p>\n"
            '<h2>Checks</h2>\n<table class="aj-timeline"><thead><tr><th>check</th><th>threshold</th>'
            "<th>value</th><th>bound</th><th>result</th><th>detail</th></tr></thead>"
            f"<tbody>{checks}</tbody></table>\n<h2>Items</h2>\n"
            "<p>Items that fail a check come first; each shows the recorded baseline against the candidate.</p>\n"
            + items
        )
        return page(f"eval gate: {self.candidate} {verdict}", _DIFF_STYLE + body)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DIFF_STYLE = (
    "<style>table.diff{font-family:monospace;border-collapse:collapse;margin:.5em 0}"
    ".diff_header{background:#eee;color:#666;padding:0 .4em}.diff_next{display:none}"
    ".diff_add{background:#cfc}.diff_chg{background:#ffa}.diff_sub{background:#fcc}"
    "details{margin:.6em 0}summary{cursor:pointer}</style>\n"
)
"""difflib's classes, coloured as a code review shows them (deleted red, added green, changed yellow)."""


def _item_html(item: ItemComparison, offending: bool) -> str:
    e = html.escape
    metrics = "".join(
        f"<tr><td>{e(metric)}</td><td>{_number(item.baseline[metric]) if metric in item.baseline else '—'}</td>"
        f"<td>{_number(item.candidate[metric]) if metric in item.candidate else '—'}</td>"
        f"<td>{_number(item.spread.get(metric, 0.0))}</td></tr>"
        for metric in sorted(item.baseline.keys() | item.candidate.keys())
    )
    responses = difflib.HtmlDiff(wrapcolumn=70).make_table(
        (item.baseline_response or "(no answer)").splitlines(),
        (item.candidate_response or "(no answer)").splitlines(),
        "baseline (recorded)",
        "candidate",
    )
    moves = "".join(
        f"<li>{e(direction)}: {e(str(move))}</li>" for direction, found in item.moves.items() for move in found
    )
    divergence = (
        f"<p>First divergence at step {e(str(item.divergence.get('step')))} ({e(str(item.divergence.get('what')))})"
        f": {e(', '.join(map(str, item.divergence.get('changes') or [])))}</p>"
        if item.divergence
        else "<p>The replay followed the recording.</p>"
    )
    return (
        f"<details{' open' if offending else ''}><summary><code>{e(item.item)}</code>"
        f"{' (fails a check)' if offending else ''}: {e(item.input[:120])}</summary>\n"
        '<table class="aj-timeline"><thead><tr><th>metric</th><th>baseline</th><th>candidate</th>'
        f"<th>variance across {item.repeats} replay(s)</th></tr></thead><tbody>{metrics}</tbody></table>\n"
        f"<p>Tools: baseline {e(' → '.join(item.baseline_tools) or '(none)')}; "
        f"candidate {e(' → '.join(item.candidate_tools) or '(none)')}.</p>\n"
        f"{divergence}\n{'<ul>' + moves + '</ul>' if moves else ''}\n{responses}\n</details>"
    )


def _number(value: float) -> str:
    return f"{value:.4g}"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _values(record: EvaluationRecord) -> dict[tuple[str, str, int, str], list[float]]:
    """(item, side, repeat, metric) -> the values its scorers gave (several quality scorers: several)."""
    found: dict[tuple[str, str, int, str], list[float]] = {}
    for score in record.scores:
        found.setdefault((score.item, score.side, score.repeat, score.metric), []).append(score.value)
    return found


def _moves(record: EvaluationRecord) -> dict[tuple[str, int], dict[str, list[dict[str, Any]]]]:
    return {
        (score.item, score.repeat): {key: list(score.details.get(key, [])) for key in ("stricter", "looser")}
        for score in record.scores
        if score.metric == "policy" and score.side == "candidate"
    }


def _compare(journal: Journal, record: EvaluationRecord, baseline: EvaluationRecord | None) -> list[ItemComparison]:
    values = _values(record)
    base_values = _values(baseline) if baseline is not None else values
    moves = _moves(record)
    trajectories = record.trajectories(journal)
    metrics: tuple[Metric, ...] = ("quality", "cost", "latency", "policy")
    compared = []
    for name, item in record.items.items():
        if baseline is not None and name not in baseline.items:
            continue
        repeats = [
            repeat
            for repeat in range(1, record.started.repeat + 1)
            if any((name, "candidate", repeat, metric) in values for metric in metrics)
        ]
        if not repeats:
            continue
        candidate: dict[str, float] = {}
        spread: dict[str, float] = {}
        base: dict[str, float] = {}
        for metric in metrics:
            samples = [
                _mean(values[(name, "candidate", r, metric)])
                for r in repeats
                if (name, "candidate", r, metric) in values
            ]
            if samples:
                candidate[metric] = _mean(samples)
                spread[metric] = statistics.variance(samples) if len(samples) > 1 else 0.0
            if baseline is None:
                reference = base_values.get((name, "baseline", 0, metric))
                if reference:
                    base[metric] = _mean(reference)
            else:
                others = [
                    _mean(base_values[(name, "candidate", r, metric)])
                    for r in range(1, baseline.started.repeat + 1)
                    if (name, "candidate", r, metric) in base_values
                ]
                if others:
                    base[metric] = _mean(others)
        worst = max(
            (moves.get((name, r), {"stricter": [], "looser": []}) for r in repeats),
            key=lambda m: len(m["stricter"]) + len(m["looser"]),
        )
        first = trajectories.get((name, repeats[0]))
        recorded = record.baseline(name)
        replay = record.replays.get((name, repeats[0]))
        compared.append(
            ItemComparison(
                item=name,
                input=item.input,
                baseline=base,
                candidate=candidate,
                spread=spread,
                repeats=len(repeats),
                moves=worst,
                baseline_response=recorded.outcome.response,
                candidate_response=first.outcome.response if first else None,
                baseline_tools=recorded.tool_names,
                candidate_tools=first.tool_names if first else [],
                divergence=replay.divergence if replay else None,
            )
        )
    return compared


@dataclass(frozen=True)
class _Estimate:
    mean: float
    bound: float | None
    """The one-sided confidence bound in the direction that hurts (None: no noise measured)."""


def _estimate(items: Sequence[ItemComparison], metric: str, z: float, *, upper: bool) -> _Estimate:
    scored = [item for item in items if metric in item.candidate]
    mean = _mean([item.candidate[metric] for item in scored])
    if not scored or max(item.repeats for item in scored) < 2:
        return _Estimate(mean, None)
    se = math.sqrt(sum(item.spread[metric] / item.repeats for item in scored)) / len(scored)
    return _Estimate(mean, mean + z * se if upper else mean - z * se)


def _relative(value: float, baseline: float) -> float:
    if baseline > 0:
        return (value - baseline) / baseline
    return 0.0 if value <= 0 else math.inf


def _require(items: Sequence[ItemComparison], metric: str) -> None:
    if not any(metric in item.candidate for item in items):
        raise EvaluationError(
            f"the evaluation has no {metric} scores; run `agentjournal eval score --metrics {metric}`"
        )


def _quality_checks(items: Sequence[ItemComparison], limits: Thresholds, z: float, noise: str) -> list[Check]:
    checks = []
    quality = _estimate(items, "quality", z, upper=False)
    if limits.min_quality is not None:
        compared = quality.bound if quality.bound is not None else quality.mean
        passed = compared >= limits.min_quality
        what = f"mean quality {quality.mean:.3f}" + (f" ({noise} {compared:.3f})" if quality.bound is not None else "")
        low = sorted(
            (item for item in items if item.candidate.get("quality", 1.0) < limits.min_quality),
            key=lambda i: i.candidate["quality"],
        )
        checks.append(
            Check(
                "min quality",
                limits.min_quality,
                quality.mean,
                quality.bound,
                passed,
                f"{what} is {'at least' if passed else 'below'} {limits.min_quality} "
                f"by {abs(compared - limits.min_quality):.3f}",
                [Offender(item.item, f"quality {item.candidate['quality']:.3f}") for item in low],
            )
        )
    if limits.max_quality_drop is not None:
        both = [item for item in items if "quality" in item.candidate and "quality" in item.baseline]
        baseline = _mean([item.baseline["quality"] for item in both])
        drop = baseline - quality.mean
        compared = baseline - (quality.bound if quality.bound is not None else quality.mean)
        passed = compared <= limits.max_quality_drop
        worse = sorted(
            (item for item in both if item.candidate["quality"] < item.baseline["quality"]),
            key=lambda item: item.candidate["quality"] - item.baseline["quality"],
        )
        checks.append(
            Check(
                "max quality drop",
                limits.max_quality_drop,
                drop,
                compared if quality.bound is not None else None,
                passed,
                f"quality {quality.mean:.3f} against the baseline's {baseline:.3f}: a drop of {compared:.3f}, "
                f"{'within' if passed else 'more than'} {limits.max_quality_drop}",
                [
                    Offender(item.item, f"quality {item.baseline['quality']:.3f} → {item.candidate['quality']:.3f}")
                    for item in worse
                ],
            )
        )
    return checks


def _delta_check(items: Sequence[ItemComparison], metric: str, threshold: float, z: float, unit: str) -> Check:
    both = [item for item in items if metric in item.candidate and metric in item.baseline]
    estimate = _estimate(both, metric, z, upper=True)
    baseline = _mean([item.baseline[metric] for item in both])
    delta = _relative(estimate.mean, baseline)
    compared = _relative(estimate.bound, baseline) if estimate.bound is not None else delta
    passed = compared <= threshold
    worse = sorted(
        (item for item in both if _relative(item.candidate[metric], item.baseline[metric]) > threshold),
        key=lambda item: -_relative(item.candidate[metric], item.baseline[metric]),
    )
    return Check(
        f"max {metric} delta",
        threshold,
        delta,
        compared if estimate.bound is not None else None,
        passed,
        f"mean {metric} {estimate.mean:.4g}{unit} against the baseline's {baseline:.4g}{unit}: {compared:+.1%}, "
        f"{'within' if passed else 'more than'} {threshold * 100:+.4g}%",
        [
            Offender(item.item, f"{item.baseline[metric]:.4g}{unit} → {item.candidate[metric]:.4g}{unit}")
            for item in worse
        ],
    )


def _policy_check(items: Sequence[ItemComparison], limits: Thresholds, threshold: int) -> Check:
    directions = ("stricter", "looser") if limits.policy_direction == "both" else (limits.policy_direction,)
    counts = {name: sum(len(item.moves.get(name, [])) for item in items) for name in ("stricter", "looser")}
    regressions = sum(counts[name] for name in directions)
    passed = regressions <= threshold
    offenders = [
        Offender(
            item.item,
            "; ".join(
                f"{move['tool']} {name} (now {move['now'] or 'allow'})"
                for name in directions
                for move in item.moves.get(name, [])
            ),
        )
        for item in items
        if any(item.moves.get(name) for name in directions)
    ]
    counted = " + ".join(directions)
    return Check(
        "max policy regressions",
        threshold,
        regressions,
        None,
        passed,
        f"{counts['stricter']} call(s) decided stricter and {counts['looser']} looser than the baseline; "
        f"{counted}: {regressions}, {'within' if passed else 'more than'} {threshold}",
        offenders,
    )


def gate(
    journal: Journal,
    evaluation_id: str,
    thresholds: Thresholds,
    *,
    baseline: str = BASELINE,
) -> GateReport:
    """Decide the evaluation against `thresholds`; `baseline` is `recorded` or another evaluation's id."""
    if not thresholds.given.keys() - {"policy_direction", "confidence"}:
        raise EvaluationError("no threshold given: set at least one (min_quality=0.8, or --min-quality 0.8)")
    record = read_evaluation(journal, evaluation_id)
    other = None if baseline == BASELINE else read_evaluation(journal, baseline)
    if other is not None and other.started.dataset_version != record.started.dataset_version:
        raise EvaluationError(
            f"baseline {baseline} replayed another dataset ({other.started.dataset_version[:19]}…); "
            "compare evaluations of the same dataset"
        )
    if not record.scores:
        raise EvaluationError(f"evaluation {evaluation_id} has no scores; run `agentjournal eval score` first")
    items = _compare(journal, record, other)
    z = statistics.NormalDist().inv_cdf(thresholds.confidence)
    repeats = record.started.repeat
    bound = f"{thresholds.confidence:.0%} confidence bound"
    noise = (
        f"With {repeats} replays per item, each mean is compared through its one-sided {bound} "
        "(the spread measured across replays)."
        if repeats > 1
        else "One replay per item: no noise was measured (replay with --repeat N to measure it)."
    )
    checks: list[Check] = []
    if thresholds.min_quality is not None or thresholds.max_quality_drop is not None:
        _require(items, "quality")
        checks += _quality_checks(items, thresholds, z, f"lower {bound}")
    for metric, threshold, unit in (
        ("cost", thresholds.max_cost_delta, " USD"),
        ("latency", thresholds.max_latency_delta, " ms"),
    ):
        if threshold is not None:
            _require(items, metric)
            checks.append(_delta_check(items, metric, threshold, z, unit))
    if thresholds.max_policy_regressions is not None:
        _require(items, "policy")
        checks.append(_policy_check(items, thresholds, thresholds.max_policy_regressions))
    if thresholds.min_items is not None:
        enough = len(items) >= thresholds.min_items
        checks.append(
            Check(
                "min items",
                thresholds.min_items,
                len(items),
                None,
                enough,
                f"{len(items)} item(s) compared, {'at least' if enough else 'fewer than'} {thresholds.min_items}",
            )
        )
    report = GateReport(
        evaluation_id=record.evaluation_id,
        candidate=record.started.candidate,
        baseline=baseline,
        dataset_version=record.started.dataset_version,
        repeat=repeats,
        passed=all(check.passed for check in checks),
        checks=checks,
        items=items,
        noise=noise,
    )
    decided = evs.GateDecided(
        passed=report.passed,
        baseline=baseline,
        thresholds=thresholds.given,
        checks=[
            {key: value for key, value in asdict(check).items() if key != "items"} | {"items": len(check.items)}
            for check in checks
        ],
    )
    journal.append(evs.evaluation_stream(record.evaluation_id), new_event(decided, actor=ACTOR))
    return report
