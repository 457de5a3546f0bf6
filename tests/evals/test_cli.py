"""`agentjournal eval`: seed 001's dataset -> replay -> score -> gate from the command line, on SQLite and
PostgreSQL, with the example project's candidates (examples/eval-gate), and its bad inputs."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import orjson
import pytest
from typer.testing import Result

from agentjournal.agents import demo
from agentjournal.evals import EvaluationError
from agentjournal.evals.location import evaluation_url
from agentjournal.journal import Journal
from agentjournal.testing import databases

from .evaluator_helpers import write_demo

EXAMPLE = Path(__file__).parents[2] / "examples" / "eval-gate"
THRESHOLDS = ("--min-quality", "0.82", "--max-cost-delta", "0.15", "--max-policy-regressions", "0")
Invoke = Callable[..., Result]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example project, as the current folder (its `eval.models` imports from there)."""
    folder = tmp_path / "project"
    shutil.copytree(EXAMPLE, folder)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("AGENTJOURNAL_EVAL_DB", raising=False)
    return folder


@pytest.fixture
def production(sqlite_or_postgres_url: str) -> Iterator[str]:
    """The demo's two runs in a production journal; its evaluation journal (beside it) is removed after."""
    with Journal.open(sqlite_or_postgres_url) as journal:
        write_demo(journal)
    yield sqlite_or_postgres_url
    if sqlite_or_postgres_url.startswith("postgres"):
        schema = evaluation_url(sqlite_or_postgres_url).rsplit("schema=", 1)[1]
        import psycopg

        with psycopg.connect(databases.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def _json(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in _ok(result).stdout.splitlines() if line.strip()]


def _evaluate(invoke: Invoke, url: str, candidate: str) -> None:
    _ok(invoke(url, "eval", "replay", "--dataset", "eval/runs.jsonl", "--candidate", candidate))
    _ok(invoke(url, "eval", "score", "--candidate", candidate, "--metrics", "quality,cost,latency,policy"))


def _dataset(invoke: Invoke, url: str) -> dict[str, Any]:
    [written] = _json(
        invoke(url, "eval", "dataset", "--out", "eval/runs.jsonl", "--references", "eval/references.jsonl", "--json")
    )
    return written


def test_the_seed_loop_ships_a_better_prompt_and_stops_a_careless_model(
    invoke: Invoke, production: str, project: Path
) -> None:
    refunds = dict(demo.REFUNDS)
    written = _dataset(invoke, production)
    assert written["items"] == 2 and written["version"].startswith("sha256:")

    _evaluate(invoke, production, "prompt-v42")
    passed = _ok(
        invoke(
            production,
            "eval",
            "gate",
            "--candidate",
            "prompt-v42",
            *THRESHOLDS,
            "--markdown",
            "gate.md",
            "--junit",
            "gate.xml",
            "--html",
            "gate.html",
        )
    )
    assert "gate passed: prompt-v42" in passed.stdout
    assert "## agentjournal eval gate: prompt-v42 passed" in (project / "gate.md").read_text()
    suite = ElementTree.parse(project / "gate.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "0")

    _evaluate(invoke, production, "careless-model")
    failed = invoke(production, "eval", "gate", "--candidate", "careless-model", *THRESHOLDS, "--junit", "gate.xml")
    assert failed.exit_code == 1, failed.output
    assert "FAIL min quality: mean quality 0.500 is below 0.82 by 0.320" in failed.stdout
    assert "refund-8842: quality 0.000" in failed.stdout  # the item that fails it
    suite = ElementTree.parse(project / "gate.xml").getroot()
    [failure] = suite.iter("failure")
    assert "below 0.82" in (failure.get("message") or "") and "refund-8842" in (failure.text or "")
    # the careless model asked for a refund of the whole price: refused, never executed
    assert refunds == demo.REFUNDS
    [replayed] = _json(invoke(production, "eval", "show", "latest", "--json"))
    assert replayed["candidate"] == "careless-model" and replayed["statuses"] == {"aborted": 1, "completed": 1}


def test_a_dearer_model_fails_on_cost_and_a_stricter_policy_by_its_direction(
    invoke: Invoke, production: str, project: Path
) -> None:
    _dataset(invoke, production)
    _evaluate(invoke, production, "pricier-model")
    dearer = invoke(production, "eval", "gate", "--candidate", "pricier-model", *THRESHOLDS, "--json")
    assert dearer.exit_code == 1
    [report] = [orjson.loads(line) for line in dearer.stdout.splitlines() if line.strip()]
    assert [check["name"] for check in report["checks"] if not check["passed"]] == ["max cost delta"]
    assert {offender["item"] for offender in report["checks"][1]["items"]} == {"refund-8842", "ops-7731"}

    _evaluate(invoke, production, "strict-policy")
    stricter = invoke(production, "eval", "gate", "--candidate", "strict-policy", "--max-policy-regressions", "0")
    assert stricter.exit_code == 1
    assert "1 call(s) decided stricter and 0 looser" in stricter.stdout
    assert "refund-8842: issue_refund stricter (now require_human_approval)" in stricter.stdout
    looser_only = ("--max-policy-regressions", "0", "--policy-direction", "looser")
    _ok(invoke(production, "eval", "gate", "--candidate", "strict-policy", *looser_only))

    against = ("--baseline", "pricier-model", "--max-cost-delta", "0.15")
    compared = _ok(invoke(production, "eval", "gate", "--candidate", "strict-policy", *against))
    assert "against pricier-model-" in compared.stdout.replace("\n", " ")  # the latest evaluation of that candidate


def test_the_html_report_diffs_each_item(invoke: Invoke, production: str, project: Path) -> None:
    _dataset(invoke, production)
    _evaluate(invoke, production, "careless-model")
    result = invoke(production, "eval", "gate", "--min-quality", "0.82", "--html", "gate.html")
    assert result.exit_code == 1
    page = (project / "gate.html").read_text().replace("&nbsp;", " ")
    assert page.startswith("<!DOCTYPE html>") and "careless-model FAILED" in page
    assert "<details open><summary><code>refund-8842</code> (fails a check)" in page
    assert '<span class="diff_sub">I have issued a partial refund of $44.99' in page  # the answer it lost
    assert "baseline lookup_order → check_refund_policy → issue_refund; candidate lookup_order → issue_refund" in page
    assert "First divergence at step 1 (model call 1): the model: recorded scripted, now careless-mini" in page


def test_replaying_again_resumes_and_scoring_again_keeps_the_scores(
    invoke: Invoke, production: str, project: Path
) -> None:
    _dataset(invoke, production)
    args = ("eval", "replay", "--dataset", "eval/runs.jsonl", "--candidate", "prompt-v42", "--json")
    [first] = _json(invoke(production, *args))
    [again] = _json(invoke(production, *args))
    assert (first["resumed"], again["resumed"]) == (0, 2)
    assert again["evaluation_id"] == first["evaluation_id"]
    score = ("eval", "score", "--evaluation", first["evaluation_id"])
    assert "20 score(s) journaled, 0 already there." in _ok(invoke(production, *score)).stdout
    assert "0 score(s) journaled, 20 already there." in _ok(invoke(production, *score)).stdout


def test_replays_go_beside_the_production_journal_never_into_it(invoke: Invoke, production: str, project: Path) -> None:
    _dataset(invoke, production)
    _evaluate(invoke, production, "prompt-v42")
    with Journal.open(production) as journal:
        assert not [event for event in journal.iter_all() if event.stream_id.startswith("eval-")]
        assert len(list(journal.iter_all(types=["RunStarted"]))) == 2
    with Journal.open(evaluation_url(production)) as evaluations:
        replays = [event.stream_id for event in evaluations.iter_all(types=["RunStarted"])]
        assert len(replays) == 2 and all(stream.startswith("run-prompt-v42-") for stream in replays)
    [listed] = _json(invoke(production, "eval", "list", "--json"))
    assert listed["candidate"] == "prompt-v42" and listed["items"] == 2


def test_the_replay_delta_is_a_metric_and_an_alert(invoke: Invoke, production: str, project: Path) -> None:
    _dataset(invoke, production)
    for candidate in ("prompt-v42", "careless-model"):
        _evaluate(invoke, production, candidate)
    rows = {row["group"]: row for row in _json(invoke(production, "metrics", "--evals", "--by", "candidate", "--json"))}
    assert rows["prompt-v42"]["quality_delta"] == 0
    assert rows["careless-model"]["quality_delta"] == pytest.approx(-0.5)
    _ok(invoke(production, "alerts", "--check"))
    fired = _json(invoke(production, "alerts", "--json"))
    [alert] = [alert for alert in fired if alert["rule"] == "replay_quality_delta"]
    assert alert["group"].startswith("careless-model-") and "block the deployment" in alert["message"]


def test_read_commands_never_create_the_evaluation_journal(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    with Journal.open(url, create=True) as journal:
        write_demo(journal)
    for args in (
        ["eval", "list"],
        ["eval", "show"],
        ["eval", "score"],
        ["eval", "gate", "--min-quality", "0.8"],
        ["metrics", "--evals"],
    ):
        result = invoke(url, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "no evaluation journal at sqlite:///" in result.stderr and "prod.evals.db" in result.stderr
    assert not (tmp_path / "prod.evals.db").exists()
    _ok(invoke(url, "alerts", "--check"))  # no evaluation journal: the replay-delta rule has nothing to read
    assert not (tmp_path / "prod.evals.db").exists()


def _wrong(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the message must say) for bad inputs after a dataset and one evaluation exist."""
    bad = tmp / "bad.jsonl"
    lines = (Path("eval/runs.jsonl").read_text()).splitlines()
    bad.write_text("\n".join([lines[0], lines[1], "{not json", *lines[2:]]) + "\n")
    no_agents = tmp / "no-agents.yaml"
    no_agents.write_text("candidates:\n  prompt-v42:\n    prompts: {refund-agent: hi}\n")
    replay = ["eval", "replay", "--dataset", "eval/runs.jsonl"]
    return [
        ([*replay, "--candidate", "prompt-v99"], "no candidate named 'prompt-v99'; known: careless-model"),
        (["eval", "replay", "--dataset", str(bad), "--candidate", "prompt-v42"], f"{bad}:3"),
        ([*replay, "--candidate", "prompt-v42", "--candidates", str(no_agents)], "Pass --agents"),
        ([*replay, "--candidate", "prompt-v42", "--candidates", "nope.yaml"], "nope.yaml: cannot read"),
        ([*replay, "--candidate", "prompt-v42", "--unmatched", "maybe"], "'maybe' is not one of"),
        ([*replay, "--candidate", "prompt-v42", "--unmatched", "live", "--live-tool", "issue_refund"], "side effects"),
        ([*replay, "--candidate", "prompt-v42", "--live-tool", "lookup_order"], "only with unmatched='live'"),
        ([*replay, "--candidate", "prompt-v42", "--repeat", "0"], "--repeat"),
        (["eval", "score", "--metrics", "quality,karma"], "karma: the metrics are quality, cost, latency, policy"),
        (["eval", "score", "--rubric", "be nice"], "give --judge too"),
        (["eval", "score", "--judge", "nomodule:judge"], "cannot import module 'nomodule'"),
        (["eval", "score", "--scorer", "agentjournal.agents.demo:DEMO_PRICE"], "not a Scorer"),
        (["eval", "score", "--evaluation", "nope"], "no evaluation 'nope'"),
        (["eval", "score", "--evaluation", "nope", "--candidate", "x"], "does not go with an id"),
        (["eval", "gate"], "no threshold given"),
        (["eval", "gate", "--min-quality", "1.5"], "min_quality is a quality in [0, 1], got 1.5"),
        (["eval", "gate", "--min-quality", "0.5", "--confidence", "1"], "confidence must be in [0.5, 1)"),
        (["eval", "gate", "--min-quality", "0.5", "--baseline", "nobody"], "no evaluation of candidate nobody"),
        (["eval", "gate", "--min-quality", "0.5", "--markdown", "/nonexistent-folder/gate.md"], "No such file"),
        (["eval", "show", "nope"], "no evaluation 'nope'"),
        (["eval", "dataset", "--out", "x.jsonl", "--status", "sleeping"], "'sleeping' is not one of"),
        (["eval", "dataset", "--out", "x.jsonl", "--since", "1d", "--until", "2d"], "--until must be after --since"),
        (["eval", "dataset", "--out", "x.jsonl", "--run", "nope"], "no such run (or not in the selection): nope"),
        (["eval", "dataset", "--out", "x.jsonl", "--agent", "nobody"], "no run matches the selection"),
        (["eval", "dataset", "--out", "x.jsonl", "--selection", "nope.yaml"], "cannot read the selection"),
        (["eval", "dataset", "--out", "/nonexistent-folder/x.jsonl"], "No such file or directory"),
        (["--db", "memory://", "eval", "list"], "name one with --eval-db"),
    ]


def test_bad_input_is_a_clear_message(invoke: Invoke, production: str, project: Path, tmp_path: Path) -> None:
    _dataset(invoke, production)
    _evaluate(invoke, production, "prompt-v42")
    failures = []
    for args, message in _wrong(tmp_path):
        result = invoke(production, *args)
        said = " ".join(result.output.translate(str.maketrans("", "", "│╭╮╰╯─")).split())  # Typer's box unwrapped
        if result.exit_code not in (1, 2) or message not in said or "Traceback" in result.output:
            failures.append(f"{' '.join(args)} -> exit {result.exit_code}: {result.output}")
    assert not failures, "\n".join(failures)
    [evaluation] = _json(invoke(production, "eval", "list", "--json"))
    assert evaluation["candidate"] == "prompt-v42"  # nothing half-written by the failures


@pytest.mark.parametrize(
    ("production_url", "expected"),
    [
        ("sqlite:///./agentjournal.db", "sqlite:///./agentjournal.evals.db"),
        (
            "sqlite:////var/lib/aj/runs.db?synchronous=FULL&mode=ro",
            "sqlite:////var/lib/aj/runs.evals.db?synchronous=FULL",
        ),
        ("sqlite:///journal", "sqlite:///journal.evals"),
        (
            "postgresql://u:p@db/app?schema=prod&connect_timeout=3",
            "postgresql://u:p@db/app?schema=prod_evals&connect_timeout=3",
        ),
        ("postgresql://db/app", "postgresql://db/app?schema=evals"),
        ("mysql://root@db:3306/prod", "mysql://root@db:3306/prod_evals"),
    ],
)
def test_the_evaluation_journal_sits_beside_the_production_one(production_url: str, expected: str) -> None:
    assert evaluation_url(production_url) == expected


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:", "mysql://root@db:3306"])
def test_where_there_is_no_beside_it_says_so(url: str) -> None:
    with pytest.raises(EvaluationError, match="--eval-db"):
        evaluation_url(url)
