"""Alert rules over the metrics, with seed 001's defaults; a fired alert is an event.

- page when the policy violation rate of the last day rises above 3x its baseline (the rate
  over the week before that day);
- warn when the cost per successful run of the last day is more than 30% above the day before;
- page when an evaluation scored in the last day has a replay delta of quality below -0.05
  (its candidate scored worse than the recorded baseline on the same items): block the
  deployment. This one reads the evaluations read model of the evaluation journal (the
  `evaluations` argument); its alert is appended with the others.

Each fired alert is appended as `AlertFired` to the `alerts` stream, so it is journaled,
explainable and replayable like everything else. Its event id is derived from its `key`: the
rule, the group and the UTC day for the daily rules, the rule and the evaluation for the replay
delta; so an alert fires at most once a day (once per evaluation) however often the rules are
evaluated (the journal's idempotent append drops the repeat).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentjournal.journal import DuplicateEventError, Journal, NewEvent, RecordedEvent
from agentjournal.projections.base import ProjectionError
from agentjournal.projections.metrics import GroupMetrics, metrics, replay_deltas

ALERTS_STREAM = "alerts"
ALERT_FIRED = "AlertFired"
_NAMESPACE = uuid.UUID("6f1d3c2e-5b0a-4f7e-9a41-0c8d2b7e1a55")


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Thresholds; the defaults are seed 001's. `min_runs` keeps tiny samples from paging anyone."""

    violation_factor: float = 3.0
    baseline_days: int = 7
    cost_rise: float = 0.30
    min_runs: int = 20
    dimensions: tuple[str, ...] = ("all", "route", "model", "tenant")
    replay_quality_drop: float = 0.05
    """Page when an evaluation's quality (candidate - baseline, over its items) is below minus this."""


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    severity: str
    dimension: str
    group: str
    value: float
    baseline: float
    threshold: float
    message: str
    key: str
    """What it fires at most once for: rule, dimension, group and UTC day (or rule and evaluation)."""


def evaluate(
    journal: Journal,
    *,
    now: datetime | None = None,
    rules: AlertRules | None = None,
    evaluations: Journal | None = None,
) -> list[Alert]:
    """The alerts that hold at `now` (nothing is written); the replay delta is read in `evaluations`
    (the evaluation journal; default: `journal` itself)."""
    rules = rules or AlertRules()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ProjectionError(f"alerts: time {now.isoformat()} has no time zone; give an aware datetime (UTC)")
    day = timedelta(days=1)
    today_utc = f"{now.astimezone(UTC):%Y-%m-%d}"
    found: list[Alert] = []
    for dimension in rules.dimensions:
        today = _by_group(journal, dimension, now - day, now)
        yesterday = _by_group(journal, dimension, now - 2 * day, now - day)
        baseline = _by_group(journal, dimension, now - day - rules.baseline_days * day, now - day)
        for group, current in today.items():
            base = baseline.get(group)
            if (
                base is not None
                and current.runs >= rules.min_runs
                and base.runs >= rules.min_runs
                and base.violations_per_100_runs
                and current.violations_per_100_runs is not None
                and current.violations_per_100_runs > rules.violation_factor * base.violations_per_100_runs
            ):
                found.append(
                    Alert(
                        rule="policy_violation_rate",
                        severity="page",
                        dimension=dimension,
                        group=group,
                        value=round(current.violations_per_100_runs, 4),
                        baseline=round(base.violations_per_100_runs, 4),
                        threshold=rules.violation_factor,
                        message=(
                            f"policy violations for {dimension} {group}: {current.violations_per_100_runs:.1f} per "
                            f"100 runs in the last day, over {rules.violation_factor:g}x the baseline of "
                            f"{base.violations_per_100_runs:.1f} ({rules.baseline_days} days before)"
                        ),
                        key=f"policy_violation_rate/{dimension}/{group}/{today_utc}",
                    )
                )
            before = yesterday.get(group)
            if (
                before is not None
                and current.runs >= rules.min_runs
                and before.runs >= rules.min_runs
                and before.cost_per_successful_run
                and current.cost_per_successful_run is not None
                and current.cost_per_successful_run > (1 + rules.cost_rise) * before.cost_per_successful_run
            ):
                rise = current.cost_per_successful_run / before.cost_per_successful_run - 1
                found.append(
                    Alert(
                        rule="cost_per_successful_run",
                        severity="warn",
                        dimension=dimension,
                        group=group,
                        value=round(current.cost_per_successful_run, 6),
                        baseline=round(before.cost_per_successful_run, 6),
                        threshold=rules.cost_rise,
                        message=(
                            f"cost per successful run for {dimension} {group} rose {rise:.0%} day over day "
                            f"(${before.cost_per_successful_run:.4f} -> ${current.cost_per_successful_run:.4f}; "
                            f"warns above {rules.cost_rise:.0%})"
                        ),
                        key=f"cost_per_successful_run/{dimension}/{group}/{today_utc}",
                    )
                )
    return found + _replay_quality(evaluations or journal, now - day, now, rules.replay_quality_drop)


def _replay_quality(journal: Journal, since: datetime, until: datetime, drop: float) -> list[Alert]:
    """Seed 001's "block deployment if replay delta quality drops below threshold", per evaluation."""
    found = []
    for row in replay_deltas(journal, by="evaluation", since=since, until=until):
        baseline, quality = row.quality_baseline, row.quality_candidate
        if baseline is None or quality is None or quality - baseline >= -drop:
            continue
        found.append(
            Alert(
                rule="replay_quality_delta",
                severity="page",
                dimension="evaluation",
                group=row.group,
                value=round(quality, 4),
                baseline=round(baseline, 4),
                threshold=drop,
                message=(
                    f"evaluation {row.group}: quality {quality:.3f} against the recorded baseline's "
                    f"{baseline:.3f} over {row.items} items, a replay delta of {quality - baseline:+.3f}, "
                    f"below -{drop:g}: block the deployment"
                ),
                key=f"replay_quality_delta/{row.group}",
            )
        )
    return found


def _by_group(journal: Journal, dimension: str, since: datetime, until: datetime) -> dict[str, GroupMetrics]:
    return {row.group: row for row in metrics(journal, by=dimension, since=since, until=until)}


def fire_alerts(
    journal: Journal,
    *,
    now: datetime | None = None,
    rules: AlertRules | None = None,
    evaluations: Journal | None = None,
) -> list[RecordedEvent]:
    """Evaluate the rules and append each new alert to `journal`'s `alerts` stream; returns the new events."""
    now = now or datetime.now(UTC)
    fired = []
    for alert in evaluate(journal, now=now, rules=rules, evaluations=evaluations):
        event = NewEvent(
            ALERT_FIRED,
            {
                "rule": alert.rule,
                "severity": alert.severity,
                "dimension": alert.dimension,
                "group": alert.group,
                "value": alert.value,
                "baseline": alert.baseline,
                "threshold": alert.threshold,
                "message": alert.message,
                "evaluated_at": now.astimezone(UTC).isoformat(),
            },
            event_id=str(uuid.uuid5(_NAMESPACE, alert.key)),
            actor="agentjournal-alerts",
        )
        try:
            result = journal.append(ALERTS_STREAM, [event])
        except DuplicateEventError:
            continue  # fired earlier (today, or for this evaluation), with the figures of that moment
        if not result.already_appended:
            fired.extend(result.events)
    return fired


def fired_alerts(journal: Journal, *, limit: int = 50) -> list[RecordedEvent]:
    """The most recent fired alerts, newest first."""
    if journal.stream_version(ALERTS_STREAM) == 0:
        return []
    return journal.read_stream(ALERTS_STREAM, backwards=True, limit=limit)
