"""Seed 001's alert rules: page on 3x policy violations, warn on +30% cost per successful run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentjournal.journal import Journal
from agentjournal.projections import ProjectionError, ProjectionRunner, RunsProjection
from agentjournal.projections.alerts import ALERTS_STREAM, AlertRules, evaluate, fire_alerts, fired_alerts
from agentjournal.testing.synthetic import RunMix, import_runs, synthetic_runs

from .projection_helpers import NOW

RULES = AlertRules(dimensions=("all",))


def _history(journal: Journal, *, today: RunMix, yesterday: RunMix, week: RunMix) -> None:
    """Eight days of runs: a week of baseline, then yesterday, then the last day."""
    import_runs(
        journal, synthetic_runs(140, seed=1, mix=week), start=NOW - timedelta(days=8), spacing=timedelta(hours=1.2)
    )
    import_runs(
        journal,
        synthetic_runs(60, seed=2, mix=yesterday),
        start=NOW - timedelta(days=2) + timedelta(minutes=5),
        spacing=timedelta(minutes=20),
    )
    import_runs(
        journal,
        synthetic_runs(60, seed=3, mix=today),
        start=NOW - timedelta(days=1) + timedelta(minutes=5),
        spacing=timedelta(minutes=20),
    )
    ProjectionRunner(journal, RunsProjection()).catch_up()


def test_a_calm_history_fires_nothing(journal: Journal) -> None:
    calm = RunMix()
    _history(journal, today=calm, yesterday=calm, week=calm)
    assert evaluate(journal, now=NOW, rules=RULES) == []


def test_a_violation_spike_pages_and_a_cost_rise_warns_once_a_day(journal: Journal) -> None:
    calm = RunMix()
    _history(journal, today=RunMix(deny_rate=0.9, cost_scale=2.0), yesterday=calm, week=calm)
    alerts = {alert.rule: alert for alert in evaluate(journal, now=NOW, rules=RULES)}
    assert set(alerts) == {"policy_violation_rate", "cost_per_successful_run"}
    page, warn = alerts["policy_violation_rate"], alerts["cost_per_successful_run"]
    assert page.severity == "page" and page.value > 3 * page.baseline
    assert warn.severity == "warn" and warn.value > 1.3 * warn.baseline
    fired = fire_alerts(journal, now=NOW, rules=RULES)
    assert sorted(event.data["rule"] for event in fired) == ["cost_per_successful_run", "policy_violation_rate"]
    assert all(event.stream_id == ALERTS_STREAM and event.type == "AlertFired" for event in fired)
    # evaluated again later the same day: already fired, nothing new
    assert fire_alerts(journal, now=NOW + timedelta(minutes=5), rules=RULES) == []
    assert [event.data["rule"] for event in fired_alerts(journal)] == [event.data["rule"] for event in reversed(fired)]
    assert "over 3x the baseline" in page.message


def test_alerts_need_an_aware_time(journal: Journal) -> None:
    with pytest.raises(ProjectionError, match="has no time zone"):
        evaluate(journal, now=NOW.replace(tzinfo=None))
    assert fired_alerts(journal) == []
