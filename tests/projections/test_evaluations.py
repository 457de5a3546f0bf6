"""The evaluations read model, seed 001's replay delta and its alert, on SQLite, PostgreSQL and MariaDB.

Every evaluation here is written by the real evaluator (evaluation_helpers): the four recorded
refunds replayed with a candidate that answers better, worse, at three times the model cost, or
under a policy that denies the order lookups the recordings were allowed. The read model must
give the gate's numbers for the same evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import Result

from agentjournal.evals import Assertion, Dataset, Subject, Thresholds, gate, score_evaluation_sync
from agentjournal.evals.location import evaluation_url
from agentjournal.journal import Journal
from agentjournal.projections import ProjectionError, ProjectionRunner
from agentjournal.projections.alerts import AlertRules, fire_alerts, fired_alerts
from agentjournal.projections.alerts import evaluate as evaluate_rules
from agentjournal.projections.evaluations import EVALUATION_COLUMNS, ITEM_COLUMNS, EvaluationsProjection
from agentjournal.projections.metrics import ReplayDelta, replay_deltas

from .evaluation_helpers import STRICTER, answer_badly, answer_well, evaluate, refund_dataset, refunded

ITEMS = ("acme-1", "acme-2", "globex-1", "globex-2")
"""The dataset's items in order: acme answered well, globex badly (globex-2 on claude-sonnet-4)."""
DAY = timedelta(days=1)
Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return refund_dataset(tmp_path_factory.mktemp("production"))


def _project(journal: Journal, *, batch_size: int = 1000) -> int:
    return ProjectionRunner(journal, EvaluationsProjection(), batch_size=batch_size).catch_up()


def _rebuild(journal: Journal) -> None:
    ProjectionRunner(journal, EvaluationsProjection()).rebuild()


def _items(journal: Journal) -> dict[tuple[str, str], dict[str, Any]]:
    """The item rows, by (evaluation, item), without the fold they are computed from."""
    rows = journal.query(f"SELECT {', '.join(ITEM_COLUMNS)} FROM aj_rm_evaluation_items")  # type: ignore[attr-defined]
    found = {}
    for row in rows:
        values = dict(zip(ITEM_COLUMNS, row, strict=True))
        values.pop("scores")
        found[(values["evaluation_id"], values["item"])] = values
    return found


def _evaluations(journal: Journal) -> dict[str, dict[str, Any]]:
    rows = journal.query(f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM aj_rm_evaluations")  # type: ignore[attr-defined]
    return {row[0]: dict(zip(EVALUATION_COLUMNS, row, strict=True)) for row in rows}


def _quality(rows: dict[tuple[str, str], dict[str, Any]], evaluation: str) -> list[tuple[float, float]]:
    return [
        (rows[(evaluation, item)]["baseline_quality"], rows[(evaluation, item)]["candidate_quality"]) for item in ITEMS
    ]


def _deltas(journal: Journal, by: str) -> dict[str, ReplayDelta]:
    return {row.group: row for row in replay_deltas(journal, by=by, since=datetime.now(UTC) - DAY)}


def _four(journal: Journal, dataset: Dataset) -> dict[str, str]:
    """The four candidates, evaluated and scored: name -> evaluation id."""
    return {
        "better": evaluate(journal, dataset, "prompt-better", answer=answer_well),
        "worse": evaluate(journal, dataset, "prompt-worse", answer=answer_badly),
        "dearer": evaluate(journal, dataset, "model-dearer", cost_factor=3.0),
        "stricter": evaluate(journal, dataset, "policy-stricter", policy=STRICTER),
    }


def test_each_item_is_a_row_scored_on_both_sides(journal: Journal, dataset: Dataset) -> None:
    ids = _four(journal, dataset)
    assert _project(journal) > 0
    evaluations = _evaluations(journal)
    assert set(evaluations) == set(ids.values())
    better = evaluations[ids["better"]]
    assert (better["candidate"], better["items"], better["repeats"]) == ("prompt-better", 4, 1)
    assert better["dataset_version"] == dataset.version and better["scored_at"] >= better["started_at"]
    rows = _items(journal)
    assert len(rows) == 16
    first = rows[(ids["better"], "acme-1")]
    assert {key: first[key] for key in ("item_index", "agent", "route", "tenant_id", "model", "candidate_model")} == {
        "item_index": 0,
        "agent": "refund-agent",
        "route": "support/refund",
        "tenant_id": "acme",
        "model": "gpt-4.1-mini",
        "candidate_model": "gpt-5-mini",
    }
    assert [rows[(ids["better"], item)]["tenant_id"] for item in ITEMS] == ["acme", "acme", "globex", "globex"]
    assert rows[(ids["better"], "globex-2")]["model"] == "claude-sonnet-4"
    assert all(row["repeats"] == 1 for row in rows.values())
    # the candidate that answers every refund improves globex and keeps acme; the one that never does regresses acme
    assert _quality(rows, ids["better"]) == [(1.0, 1.0), (1.0, 1.0), (0.0, 1.0), (0.0, 1.0)]
    assert _quality(rows, ids["worse"]) == [(1.0, 0.0), (1.0, 0.0), (0.0, 0.0), (0.0, 0.0)]
    for item in ITEMS:
        same, dearer = rows[(ids["better"], item)], rows[(ids["dearer"], item)]
        assert same["baseline_cost_usd"] == pytest.approx(0.012)  # the first model call's $0.01 + the refund tool's
        assert same["candidate_cost_usd"] == pytest.approx(0.012)
        assert dearer["candidate_cost_usd"] == pytest.approx(0.032)  # the model's cost tripled, the tool's kept
        assert dearer["baseline_quality"] == dearer["candidate_quality"]
        assert same["baseline_latency_ms"] is not None and same["candidate_latency_ms"] is not None
        # the stricter policy denies the lookup each recording was allowed: one call per item, stricter only
        assert (rows[(ids["stricter"], item)]["policy_stricter"], rows[(ids["stricter"], item)]["policy_looser"]) == (
            1,
            0,
        )
        assert (same["policy_stricter"], same["policy_looser"]) == (0, 0)


def test_replay_deltas_by_route_model_tenant_candidate_and_evaluation(journal: Journal, dataset: Dataset) -> None:
    ids = _four(journal, dataset)
    _project(journal)
    by_candidate = _deltas(journal, "candidate")
    assert sorted(by_candidate) == ["model-dearer", "policy-stricter", "prompt-better", "prompt-worse"]
    better, worse = by_candidate["prompt-better"], by_candidate["prompt-worse"]
    assert (better.evaluations, better.items) == (1, 4)
    assert (better.quality_baseline, better.quality_candidate, better.quality_delta) == (0.5, 1.0, 0.5)
    assert (worse.quality_baseline, worse.quality_candidate, worse.quality_delta) == (0.5, 0.0, -0.5)
    dearer = by_candidate["model-dearer"]
    assert dearer.quality_delta == 0.0
    assert dearer.cost_baseline_usd == pytest.approx(0.012) and dearer.cost_candidate_usd == pytest.approx(0.032)
    assert dearer.cost_delta == pytest.approx(0.02 / 0.012)
    assert better.cost_delta == pytest.approx(0.0) and better.latency_delta is not None
    stricter = by_candidate["policy-stricter"]
    assert (stricter.policy_stricter, stricter.policy_looser, stricter.policy_regressions) == (4, 0, 4)
    assert all(row.policy_looser == 0 for row in by_candidate.values())
    assert [(row.policy_stricter, row.policy_regressions) for row in (better, worse, dearer)] == [(0, 0)] * 3

    by_evaluation = _deltas(journal, "evaluation")
    assert sorted(by_evaluation) == sorted(ids.values())
    assert by_evaluation[ids["worse"]].quality_delta == -0.5 and by_evaluation[ids["worse"]].items == 4

    by_model = _deltas(journal, "model")
    assert sorted(by_model) == ["claude-sonnet-4 → gpt-5-mini", "gpt-4.1-mini → gpt-5-mini"]
    assert (by_model["gpt-4.1-mini → gpt-5-mini"].items, by_model["gpt-4.1-mini → gpt-5-mini"].evaluations) == (12, 4)
    claude = by_model["claude-sonnet-4 → gpt-5-mini"]
    assert (claude.items, claude.quality_baseline, claude.quality_candidate) == (4, 0.0, 0.25)  # only `better` fixed it
    assert claude.policy_stricter == 1

    by_tenant = _deltas(journal, "tenant")
    assert sorted(by_tenant) == ["acme", "globex"]
    acme, globex = by_tenant["acme"], by_tenant["globex"]
    assert (acme.items, acme.quality_baseline, acme.quality_candidate) == (8, 1.0, 0.75)  # `worse` lost both
    assert (globex.items, globex.quality_baseline, globex.quality_candidate) == (8, 0.0, 0.25)
    assert acme.policy_stricter == globex.policy_stricter == 2

    [route] = _deltas(journal, "route").values()
    assert (route.group, route.evaluations, route.items, route.quality_delta) == ("support/refund", 4, 16, 0.0)
    assert route.policy_regressions == 4
    [every] = _deltas(journal, "all").values()
    assert every.items == route.items and every.cost_delta == pytest.approx(route.cost_delta)


def test_the_window_is_when_an_evaluation_was_last_scored(journal: Journal, dataset: Dataset) -> None:
    evaluate(journal, dataset, "prompt-worse", answer=answer_badly)
    evaluate(journal, dataset, "unscored", quality=None)  # replayed, never scored
    _project(journal)
    now = datetime.now(UTC)
    assert [row.group for row in replay_deltas(journal, by="candidate", since=now - DAY)] == ["prompt-worse"]
    assert replay_deltas(journal, by="candidate", since=now - 2 * DAY, until=now - DAY) == []
    assert replay_deltas(journal, by="candidate", since=now + timedelta(minutes=1)) == []
    with pytest.raises(ProjectionError, match="cannot group replay deltas by 'agent'; choose one of: model, route"):
        replay_deltas(journal, by="agent", since=now - DAY)


def polite(subject: Subject) -> float:
    """A second quality scorer, added when the evaluation is scored again."""
    return 1.0


def test_scoring_an_item_again_updates_its_row_without_double_counting(journal: Journal, dataset: Dataset) -> None:
    evaluation = evaluate(journal, dataset, "prompt-worse", answer=answer_badly)
    _project(journal)
    before = _items(journal)
    assert _quality(before, evaluation) == [(1.0, 0.0), (1.0, 0.0), (0.0, 0.0), (0.0, 0.0)]
    # the same scorer again: every score is already journaled, nothing is added or counted twice
    again = score_evaluation_sync(journal, evaluation, quality=[Assertion(refunded)])
    assert (again.recorded, again.kept) == (0, 32)
    assert _project(journal) == 0 and _items(journal) == before
    # a second quality scorer: each side's quality is now the mean of both, on the same rows
    added = score_evaluation_sync(journal, evaluation, quality=[Assertion(refunded), Assertion(polite)])
    assert added.recorded == 8  # each item's baseline and its one replay
    assert _project(journal) == 8
    after = _items(journal)
    assert after.keys() == before.keys()
    assert _quality(after, evaluation) == [(1.0, 0.5), (1.0, 0.5), (0.5, 0.5), (0.5, 0.5)]
    assert all(row["repeats"] == 1 for row in after.values())
    assert after[(evaluation, "acme-1")]["baseline_cost_usd"] == before[(evaluation, "acme-1")]["baseline_cost_usd"]
    assert _evaluations(journal)[evaluation]["scored_at"] >= max(row["scored_at"] for row in before.values())
    [row] = replay_deltas(journal, by="evaluation", since=datetime.now(UTC) - DAY)
    assert (row.items, row.quality_baseline, row.quality_candidate) == (4, 0.75, 0.5)
    _rebuild(journal)
    assert _items(journal) == after


def test_rebuild_gives_the_rows_that_catching_up_event_by_event_gave(journal: Journal, dataset: Dataset) -> None:
    """One event per batch: every item is loaded again and its fold read back, as a worker that keeps up does."""
    ids = _four(journal, dataset)
    ids["twice"] = evaluate(journal, dataset, "prompt-twice", answer=answer_well, repeat=2)
    ids["eval-named"] = evaluate(journal, dataset, "eval-named", answer=answer_badly)
    _project(journal, batch_size=1)
    rows, evaluations = _items(journal), _evaluations(journal)
    assert set(evaluations) == set(ids.values())  # `eval-named-…` keeps its id though its stream is its id
    assert len(rows) == 4 * len(ids)
    assert all(rows[(ids["twice"], item)]["repeats"] == 2 for item in ITEMS)
    assert _quality(rows, ids["twice"]) == _quality(rows, ids["better"])
    _rebuild(journal)
    assert _items(journal) == rows and _evaluations(journal) == evaluations


@pytest.mark.parametrize("repeat", [1, 2])
def test_the_replay_delta_is_the_gate_s(journal: Journal, dataset: Dataset, repeat: int) -> None:
    ids = {
        name: evaluate(journal, dataset, f"{name}-{repeat}", repeat=repeat, **changes)
        for name, changes in (
            ("better", {"answer": answer_well}),
            ("worse", {"answer": answer_badly}),
            ("dearer", {"cost_factor": 3.0}),
            ("stricter", {"policy": STRICTER}),
        )
    }
    _project(journal)
    deltas = _deltas(journal, "evaluation")
    everything = Thresholds(max_quality_drop=1, max_cost_delta=10, max_latency_delta=10, max_policy_regressions=99)
    for name, evaluation in ids.items():
        checks = {check.name: check.value for check in gate(journal, evaluation, everything).checks}
        row = deltas[evaluation]
        assert row.quality_delta == pytest.approx(-checks["max quality drop"]), name
        assert row.cost_delta == pytest.approx(checks["max cost delta"]), name
        assert row.latency_delta == pytest.approx(checks["max latency delta"]), name
        assert row.policy_regressions == checks["max policy regressions"], name
    assert _project(journal) == len(ids)  # the GateDecided events, read past without a change
    assert _deltas(journal, "evaluation") == deltas


def test_the_replay_quality_alert_pages_once_per_evaluation_that_got_worse(journal: Journal, dataset: Dataset) -> None:
    better = evaluate(journal, dataset, "prompt-better", answer=answer_well)
    worse = evaluate(journal, dataset, "prompt-worse", answer=answer_badly)
    terse = evaluate(journal, dataset, "prompt-terse", answer=lambda item, text: "Done.")
    _project(journal)
    alerts = [alert for alert in evaluate_rules(journal) if alert.rule == "replay_quality_delta"]
    assert sorted(alert.group for alert in alerts) == sorted([worse, terse])  # not `better`
    page = next(alert for alert in alerts if alert.group == worse)
    assert (page.severity, page.dimension, page.value, page.baseline, page.threshold) == (
        "page",
        "evaluation",
        0.0,
        0.5,
        0.05,
    )
    assert f"evaluation {worse}: quality 0.000 against the recorded baseline's 0.500 over 4 items" in page.message
    assert "a replay delta of -0.500, below -0.05: block the deployment" in page.message
    fired = fire_alerts(journal)
    assert sorted(event.data["group"] for event in fired) == sorted([worse, terse])
    assert {event.data["rule"] for event in fired} == {"replay_quality_delta"}
    # the rules evaluated again (the worker does every minute): each evaluation paged once, not again
    assert fire_alerts(journal, now=datetime.now(UTC) + timedelta(minutes=5)) == []
    assert len(fired_alerts(journal)) == 2
    assert better not in {alert.group for alert in evaluate_rules(journal)}
    # a day later the evaluations are out of the window; a looser threshold lets a drop of 0.5 pass
    assert evaluate_rules(journal, now=datetime.now(UTC) + 2 * DAY) == []
    assert evaluate_rules(journal, rules=AlertRules(replay_quality_drop=0.5)) == []


# ----- the CLI (SQLite) ----------------------------------------------------------------------


@pytest.fixture
def evals_url(tmp_path: Path, dataset: Dataset) -> tuple[str, dict[str, str]]:
    """A production journal and, beside it, an evaluation journal with the four candidates,
    its read models never run: the commands are given the production URL."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    Journal.open(url, create=True).close()
    with Journal.open(evaluation_url(url), create=True) as journal:
        return url, _four(journal, dataset)


def test_metrics_evals_as_json_and_as_a_table(invoke: Invoke, evals_url: tuple[str, dict[str, str]]) -> None:
    url, ids = evals_url
    shown = invoke(url, "metrics", "--evals", "--by", "evaluation", "--json")
    assert shown.exit_code == 0, shown.output
    assert "note: brought the evaluations read model up to date (" in shown.output
    lines = [orjson.loads(line) for line in shown.stdout.splitlines()]
    rows = {line["group"]: line for line in lines}
    assert set(rows) == set(ids.values())
    assert set(lines[0]) == {
        "group",
        "evaluations",
        "items",
        "quality_baseline",
        "quality_candidate",
        "quality_delta",
        "cost_baseline_usd",
        "cost_candidate_usd",
        "cost_delta",
        "latency_baseline_ms",
        "latency_candidate_ms",
        "latency_delta",
        "policy_stricter",
        "policy_looser",
        "policy_regressions",
    }
    with Journal.open(evaluation_url(url)) as journal:
        for evaluation in ids.values():
            [drop] = gate(journal, evaluation, Thresholds(max_quality_drop=0.05)).checks
            assert rows[evaluation]["quality_delta"] == pytest.approx(-drop.value)
    assert rows[ids["worse"]]["quality_delta"] == -0.5 and rows[ids["stricter"]]["policy_stricter"] == 4

    table = invoke(url, "metrics", "--evals", "--by", "model")
    assert table.exit_code == 0, table.output
    assert "(4 events applied)" in table.output  # only the gate's four decisions, since the last command
    assert "replay deltas of the evaluations scored in the last 7d" in table.output
    assert "gpt-4.1-mini → gpt-5-mini" in table.output and "claude-sonnet-4 → gpt-5-mini" in table.output
    assert "Δ quality" in table.output and "3 / 0" in table.output  # gpt-4.1-mini items: 3 calls decided stricter
    candidates = invoke(url, "metrics", "--evals", "--by", "candidate")
    line = next(line for line in candidates.output.splitlines() if "model-dearer" in line)
    assert "0.500 → 0.500" in line and "+0.000" in line and "+166.7%" in line


def test_metrics_evals_fits_80_columns(
    invoke: Invoke, evals_url: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentjournal.cli.app import console

    url, ids = evals_url
    monkeypatch.setattr(console, "width", 80)
    table = invoke(url, "metrics", "--evals", "--by", "evaluation")
    assert table.exit_code == 0, table.output
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    assert all(evaluation in table.stdout for evaluation in ids.values())  # the group is a key: shown whole


def test_metrics_evals_with_no_evaluation_says_what_to_run(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    missing = invoke(sqlite_url, "metrics", "--evals")
    assert missing.exit_code == 1, missing.output
    assert f"no evaluation journal at {evaluation_url(sqlite_url)} yet: `agentjournal eval replay`" in missing.output
    assert not Path(evaluation_url(sqlite_url).removeprefix("sqlite:///")).exists()  # a read creates nothing
    empty = f"sqlite:///{tmp_path / 'empty.evals.db'}"
    Journal.open(empty, create=True).close()
    shown = invoke(sqlite_url, "metrics", "--evals", "--eval-db", empty)
    assert shown.exit_code == 0, shown.output
    assert "no evaluation was scored in this window: agentjournal eval score" in shown.output
    assert invoke(sqlite_url, "metrics", "--evals", "--eval-db", empty, "--json").stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--evals", "--by", "agent"), "'agent' is not one of: model, route, tenant, candidate, evaluation, all (with"),
        (("--by", "candidate"), "'candidate' is not one of: route, model, tenant, agent, all (add --evals for"),
        (("--evals", "--by", "colour"), "'colour' is not one of"),
        (("--evals", "--plot", "delta.png"), "--plot draws the run metrics over time, not the replay deltas"),
        (("--evals", "--since", "7x"), "not a duration: '7x'"),
    ],
)
def test_bad_input_to_metrics_evals_is_one_clear_line(
    invoke: Invoke, sqlite_url: str, args: tuple[str, ...], message: str
) -> None:
    result = invoke(sqlite_url, "metrics", *args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())  # Typer's box, wrapped at 80 columns
    assert message in said and "Traceback" not in result.output


def test_alerts_check_pages_on_the_regressing_evaluation_once(
    invoke: Invoke, evals_url: tuple[str, dict[str, str]]
) -> None:
    url, ids = evals_url
    checked = invoke(url, "alerts", "--check", "--json")
    assert checked.exit_code == 0, checked.output
    assert "evaluated the alert rules: 1 new alert(s)" in checked.output
    [alert] = [orjson.loads(line) for line in checked.stdout.splitlines()]
    assert (alert["rule"], alert["group"], alert["severity"]) == ("replay_quality_delta", ids["worse"], "page")
    again = invoke(url, "alerts", "--check")
    assert again.exit_code == 0 and "0 new alert(s)" in again.output
    assert "replay_quality_delta" in again.output and f"evaluation={ids['worse']}" in again.output
