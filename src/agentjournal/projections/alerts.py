"""Alert rules over the metrics, with seed 001's defaults; a fired alert is an event.

- page when the policy violation rate of the last day rises above 3x its baseline (the rate
  over the week before that day);
- warn when the cost per successful run of the last day is more than 30% above the day before.

Each fired alert is appended as `AlertFired` to the `alerts` stream, so it is journaled,
explainable and replayable like everything else. Its event id is derived from the rule, the
group and the UTC day, so the same alert fires at most once a day however often the rules
are evaluated (the journal's idempotent append drops the repeat).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentjournal.journal import DuplicateEventError, Journal, NewEvent, RecordedEvent
from agentjournal.projections.base import ProjectionError
from agentjournal.projections.metrics import GroupMetrics, metrics

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


def evaluate(journal: Journal, *, now: datetime | None = None, rules: AlertRules | None = None) -> list[Alert]:
    """The alerts that hold at `now` (nothing is written)."""
    rules = rules or AlertRules()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ProjectionError(f"alerts: time {now.isoformat()} has no time zone; give an aware datetime (UTC)")
    day = timedelta(days=1)
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
                    )
                )
    return found


def _by_group(journal: Journal, dimension: str, since: datetime, until: datetime) -> dict[str, GroupMetrics]:
    return {row.group: row for row in metrics(journal, by=dimension, since=since, until=until)}


def fire_alerts(
    journal: Journal, *, now: datetime | None = None, rules: AlertRules | None = None
) -> list[RecordedEvent]:
    """Evaluate the rules and append each new alert to the `alerts` stream; returns the new events."""
    now = now or datetime.now(UTC)
    fired = []
    for alert in evaluate(journal, now=now, rules=rules):
        key = f"{alert.rule}/{alert.dimension}/{alert.group}/{now.astimezone(UTC):%Y-%m-%d}"
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
            event_id=str(uuid.uuid5(_NAMESPACE, key)),
            actor="agentjournal-alerts",
        )
        try:
            result = journal.append(ALERTS_STREAM, [event])
        except DuplicateEventError:
            continue  # fired earlier today, with the figures of that moment
        if not result.already_appended:
            fired.extend(result.events)
    return fired


def fired_alerts(journal: Journal, *, limit: int = 50) -> list[RecordedEvent]:
    """The most recent fired alerts, newest first."""
    if journal.stream_version(ALERTS_STREAM) == 0:
        return []
    return journal.read_stream(ALERTS_STREAM, backwards=True, limit=limit)
