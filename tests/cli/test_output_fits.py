"""Every table command at 80 columns (a pipe, CI, ssh): one line per row, never wider than the
terminal, ids, hashes, statuses, versions and positions whole; and its --json parsed back."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import Result

import agentjournal
from agentjournal.agents.policy import Policy
from agentjournal.cli.output import Col, fitted_table
from agentjournal.forensics import invariants
from agentjournal.journal import Journal

from .sample import INVARIANT, LEASE_OWNER, OUTBOX_RELAY, Invoke, Sample, command_tree

Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    args: Callable[[Sample], list[str]]
    whole: Callable[[Sample, Records], list[str]]
    """What must appear whole in the table, given the sample and the command's own --json records."""
    check: Callable[[Sample, Records], bool]
    """What the --json records must hold."""


def _eval(s: Sample, command: str, *args: str) -> list[str]:
    """`agentjournal eval <command> ...` on the sample's evaluation journal."""
    return ["eval", command, *args, "--eval-db", s.eval_url]


def _streams_of(records: Records) -> list[str]:
    return [record["stream_id"] for record in records]


CASES: dict[str, Case] = {
    "streams": Case(
        lambda s: ["streams"],
        lambda s, r: [*_streams_of(r), *(str(record["version"]) for record in r)],
        lambda s, r: f"run-{s.waiting_run_id}" in _streams_of(r),
    ),
    "events": Case(
        lambda s: ["events", s.run_stream],
        lambda s, r: [s.run_stream, *(record["type"] for record in r)],
        lambda s, r: [record["version"] for record in r] == list(range(1, len(r) + 1)) and r[0]["hash"],
    ),
    "tail": Case(
        lambda s: ["tail", "--limit", "5"],
        lambda s, r: [f"{record['stream_id']}@{record['version']}" for record in r],
        lambda s, r: [record["position"] for record in r] == [1, 2, 3, 4, 5],
    ),
    "explain": Case(
        lambda s: ["explain", s.run_stream],
        lambda s, r: [s.run_stream],
        lambda s, r: all(record["title"] and record["event_id"] for record in r) and len(r) > 10,
    ),
    "regrade": Case(
        lambda s: ["regrade", "-i", INVARIANT],
        lambda s, r: [
            token
            for record in r
            if not record["holds"]
            for token in (record["stream_id"], f"v{record['failed_since']}")
        ],
        lambda s, r: any(record["stream_id"] == s.run_stream and not record["holds"] for record in r),
    ),
    "bisect": Case(
        lambda s: ["bisect", "-i", INVARIANT, "--stream", s.run_stream, "--exhaustive"],
        lambda s, r: [r[0]["culprit"]["event_id"], s.run_stream, "every transition"],
        lambda s, r: r[0]["culprit"]["version"] == s.failing_version and r[0]["transitions"],
    ),
    "invariants": Case(
        lambda s: ["invariants"],
        lambda s, r: ["refunds_within_40_usd"],
        lambda s, r: (
            r == [{"name": "refunds_within_40_usd", "description": r[0]["description"], "journal_wide": False}]
        ),
    ),
    "whatif": Case(
        lambda s: ["whatif", s.run_stream, "--drop", str(s.failing_version), "-i", INVARIANT],
        lambda s, r: ["refunds_within_40_usd", "holds"],
        lambda s, r: r[0]["verdicts"][0]["what_if"] == "holds" and r[0]["verdicts"][0]["changed"],
    ),
    "approvals list": Case(
        lambda s: ["approvals", "list"],
        lambda s, r: [s.approval_id, s.arguments_hash[:12], "pending", "issue_refund"],
        lambda s, r: (
            [(a["approval_id"], a["arguments_hash"], a["run_id"]) for a in r]
            == [(s.approval_id, s.arguments_hash, s.waiting_run_id)]
        ),
    ),
    "runs list": Case(
        lambda s: ["runs", "list"],
        lambda s, r: [s.waiting_run_id, "waiting_approval", *(record["run_id"] for record in r)],
        lambda s, r: r[0]["run_id"] == s.waiting_run_id and r[0]["status"] == "waiting_approval",
    ),
    "runs show": Case(
        lambda s: ["runs", "show", s.waiting_run_id],
        lambda s, r: [s.waiting_run_id, s.approval_id, "waiting_approval"],
        lambda s, r: r[0]["run_id"] == s.waiting_run_id and r[0]["state"]["approvals"],
    ),
    "metrics": Case(
        lambda s: ["metrics"],
        lambda s, r: [record["group"] for record in r],
        lambda s, r: sum(record["runs"] for record in r) == 13,
    ),
    "tool-usage": Case(
        lambda s: ["tool-usage"],
        lambda s, r: [record["tool"] for record in r],
        lambda s, r: {record["tool"] for record in r} >= {"issue_refund", "lookup_order"},
    ),
    "policy-decisions": Case(
        lambda s: ["policy-decisions"],
        lambda s, r: [token for record in r for token in (record["rule"], record["action"])],
        lambda s, r: ("refunds-over-limit", "require_human_approval") in {(x["rule"], x["action"]) for x in r},
    ),
    "agent-metrics": Case(
        lambda s: ["agent-metrics", "--since", "1d"],
        lambda s, r: [record["agent"] for record in r],
        lambda s, r: sum(record["conversations"] for record in r) == 13,
    ),
    "alerts": Case(
        lambda s: ["alerts"],
        lambda s, r: ["page", "policy-violations-3x", "model=llama-3.1-70b"],
        lambda s, r: r[0]["rule"] == "policy-violations-3x" and r[0]["message"].count("baseline") == 2,
    ),
    "keys list": Case(
        lambda s: ["keys", "list"],
        lambda s, r: [s.api_key_id, s.revoked_key_id, "acme", "globex", "active", "revoked"],
        lambda s, r: (
            {(x["key_id"], x["status"]) for x in r} >= {(s.api_key_id, "active"), (s.revoked_key_id, "revoked")}
            and not any("secret" in x or "hash" in x or "secret_hash" in x for x in r)
        ),
    ),
    "keys create": Case(  # creates two more keys of acme in the sample (so "keys list" checks with >=)
        lambda s: ["keys", "create", "--tenant", "acme", "--role", "read", "--name", "80-columns"],
        lambda s, r: ["acme"],
        lambda s, r: (
            r[0]["key_id"].startswith("ajk_") and r[0]["secret"].startswith("ajs_") and r[0]["roles"] == ["read"]
        ),
    ),
    "leases": Case(
        lambda s: ["leases"],
        lambda s, r: ["projection:poison", LEASE_OWNER],
        lambda s, r: [(x["name"], x["owner"], x["token"]) for x in r] == [("projection:poison", LEASE_OWNER, 1)],
    ),
    "projections status": Case(
        lambda s: ["projections", "status"],
        lambda s, r: [token for record in r for token in (record["name"], str(record["position"]))],
        lambda s, r: {record["name"] for record in r} >= {"runs", "search", "poison"},
    ),
    "projections dead-letters": Case(
        lambda s: ["projections", "dead-letters"],
        lambda s, r: ["poison", "run-syn-7-0000000", "RunStarted"],
        lambda s, r: r[0]["position"] == 1 and r[0]["error"].count("a long reason") == 8,
    ),
    "policy check": Case(
        lambda s: ["policy", "check", str(s.policy)],
        lambda s, r: [*(record["name"] for record in r), Policy.load(s.policy).version],
        lambda s, r: [record["action"] for record in r] == ["require_human_approval", "deny", "deny"],
    ),
    "policy eval": Case(
        lambda s: ["policy", "eval", str(s.policy), "query_sql", '{"sql": "drop table users"}'],
        lambda s, r: ["deny", r[0]["rule"]],
        lambda s, r: (r[0]["tool"], r[0]["action"], r[0]["rule"]) == ("query_sql", "deny", "deny_destructive_sql"),
    ),
    "lineage": Case(
        lambda s: ["lineage", s.event_id, "--effects"],
        lambda s, r: [s.run_stream, *(f"v{record['version']}" for record in r)],
        lambda s, r: (
            r[0]["event_id"] == s.event_id
            and len(r) > 3
            and all(
                record["caused_by"] in {x["event_id"] for x in r[:index]} for index, record in enumerate(r) if index
            )
        ),
    ),
    "policy replay": Case(
        lambda s: ["policy", "replay", str(s.policy)],
        lambda s, r: [f"run-{s.waiting_run_id}", *(record["stream_id"] for record in r)],
        lambda s, r: all(record["changed"] for record in r) and len(r) > 5,
    ),
    "search": Case(
        lambda s: ["search", "ORD-7000"],
        lambda s, r: [f"run-{s.waiting_run_id}", *(record["type"] for record in r)],
        lambda s, r: {record["stream_id"] for record in r} == {f"run-{s.waiting_run_id}"},
    ),
    "eval dataset": Case(
        lambda s: ["eval", "dataset", "--out", str(s.folder / "dataset.jsonl")],
        lambda s, r: [r[0]["version"]],
        lambda s, r: r[0]["items"] > 5 and r[0]["version"].startswith("sha256:"),
    ),
    "eval replay": Case(
        lambda s: _eval(
            s, "replay", "--dataset", str(s.dataset), "--candidate", "prompt-v42", "--candidates", str(s.candidates)
        ),
        lambda s, r: [r[0]["evaluation_id"], *(x["item"] for x in r[0]["results"] if x["divergence"])],
        lambda s, r: r[0]["evaluation_id"] == s.evaluation_id and r[0]["resumed"] == 2,
    ),
    "eval score": Case(
        lambda s: _eval(s, "score", "--evaluation", s.evaluation_id),
        lambda s, r: [*(record["metric"] for record in r), *(record["scorer"] for record in r)],
        lambda s, r: {record["metric"] for record in r} == {"quality", "cost", "latency", "policy"},
    ),
    "eval gate": Case(
        lambda s: _eval(s, "gate", "--evaluation", s.evaluation_id, "--min-quality", "0.5", "--max-cost-delta", "1"),
        lambda s, r: [s.evaluation_id, "0.5"],
        lambda s, r: (
            r[0]["passed"] and [check["name"] for check in r[0]["checks"]] == ["min quality", "max cost delta"]
        ),
    ),
    "eval list": Case(
        lambda s: _eval(s, "list"),
        lambda s, r: [record["evaluation_id"] for record in r],
        lambda s, r: [record["candidate"] for record in r] == ["prompt-v42", "strict-policy"],
    ),
    "eval show": Case(
        lambda s: _eval(s, "show", s.evaluation_id),
        lambda s, r: [s.evaluation_id, r[0]["dataset_version"]],
        lambda s, r: r[0]["replays"] == 2 and r[0]["gates"][0]["passed"],
    ),
    "outbox status": Case(
        lambda s: ["outbox", "status"],
        lambda s, r: [OUTBOX_RELAY, *(str(record[key]) for record in r for key in ("pending", "dead", "delivered"))],
        lambda s, r: (
            [(x["relay"], x["pending"], x["retrying"], x["dead"], x["delivered"]) for x in r]
            == [(OUTBOX_RELAY, 0, 0, 1, 1)]
        ),
    ),
    "sagas list": Case(
        lambda s: ["sagas", "list"],
        lambda s, r: [token for record in r for token in (record["saga_id"], record["status"])],
        lambda s, r: (
            [(x["saga_id"], x["status"]) for x in r]
            == [(s.saga_id, "compensated"), ("book-demo-lead-456", "completed")]
        ),
    ),
    "sagas show": Case(
        lambda s: ["sagas", "show", s.saga_id],
        lambda s, r: [s.saga_id, "compensated", *(step["name"] for step in r[0]["steps"])],
        lambda s, r: (
            r[0]["failed_step"] == "book_calendar_slot"
            and [event["type"] for event in r[0]["events"]][-1] == "SagaCompensated"
        ),
    ),
    "state": Case(
        lambda s: ["state", s.run_stream],
        lambda s, r: [s.run_stream],
        lambda s, r: r[0]["stream_id"] == s.run_stream and r[0]["state"]["summary"]["status"] == "completed",
    ),
}


@pytest.fixture(autouse=True)
def _one_registered_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = invariants.resolve(INVARIANT)
    monkeypatch.setattr(invariants, "_by_name", {rule.name: rule})


def _whole(token: str, text: str) -> bool:
    """`token` appears with no id-like character glued to either side (so not cut, not run on)."""
    return re.search(rf"(?<![\w.-]){re.escape(token)}(?![\w-])", text) is not None


def _json(result: Result) -> Records:
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_table_fits_80_columns_with_what_users_copy_whole(
    name: str, sample: Sample, invoke_at: Callable[[int], Invoke]
) -> None:
    case = CASES[name]
    invoke = invoke_at(80)
    records = _json(invoke(sample.url, *case.args(sample), "--json"))
    assert records and case.check(sample, records), records
    shown = invoke(sample.url, *case.args(sample))
    assert shown.exit_code == 0, shown.output
    too_wide = [line for line in shown.stdout.splitlines() if cell_len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    missing = [token for token in case.whole(sample, records) if not _whole(token, shown.stdout)]
    assert not missing, f"not shown whole at 80 columns: {missing}\n{shown.stdout}"


def test_a_row_is_one_line_at_80_columns(sample: Sample, invoke_at: Callable[[int], Invoke]) -> None:
    invoke = invoke_at(80)
    with Journal.open(sample.url) as journal:
        events = journal.stream_version(sample.run_stream)
    for args, rows in (
        (["events", sample.run_stream], events),
        (["explain", sample.run_stream], events),
        (["metrics"], 3),
    ):
        lines = invoke(sample.url, *args).stdout.splitlines()
        table = lines[lines.index(next(line for line in lines if line.startswith("─"))) + 1 :]
        assert len([line for line in table if not line.startswith(("times in", "not shown"))]) == rows, lines


def test_every_command_with_json_is_rendered_here(sample: Sample) -> None:
    with_json = {path for path, command in command_tree() if any(p.name == "as_json" for p in command.params)}
    assert with_json == set(CASES), f"commands with --json not rendered at 80 columns: {with_json - set(CASES)}"


def test_json_help_says_what_it_prints() -> None:
    vague = []
    for path, command in command_tree():
        if any(p.name == "as_json" for p in command.params) and "--json prints" not in (command.help or ""):
            vague.append(path)
    assert not vague, f"commands whose help does not say what --json prints: {vague}"


def test_the_hash_that_approvals_list_shows_is_accepted_by_approve(
    sample: Sample, invoke_at: Callable[[int], Invoke], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(sample.folder / "journal.db", copy)
    url = f"sqlite:///{copy}"
    invoke = invoke_at(80)
    listed = invoke(url, "approvals", "list").stdout
    [row] = [line.split() for line in listed.splitlines() if line.startswith(sample.approval_id)]
    shown_hash = row[3]
    assert sample.arguments_hash.startswith(shown_hash) and len(shown_hash) == 12
    approved = invoke(url, "approvals", "approve", row[0], "--by", "alice", "--reason", "ok", "--hash", shown_hash)
    assert approved.exit_code == 0, approved.output
    assert f"approved {sample.approval_id}" in approved.stdout


def test_narrower_than_the_ids_each_row_becomes_a_block_with_nothing_cut() -> None:
    columns = (Col("approval", "key"), Col("run", "key"), Col("arguments", "text", drop=1))
    run = "01a23853-3d59-7000-921b-58a0725458a2"

    console = Console(width=40, record=True)
    console.print(fitted_table(columns, [("apr-d4b7ec5c63ac", run, '{"amount": 44.99}')], width=40))
    text = console.export_text()
    assert run in text and '{"amount": 44.99}' in text and "…" not in text


def test_free_text_is_cut_and_then_left_out_before_any_key() -> None:
    columns = (Col("id", "key"), Col("summary", "text"), Col("tags", "text", drop=1), Col("when", drop=2))
    rows = [("evt-0001", "a long summary " * 10, "a=1, b=2 " * 5, "2026-01-01 10:00:00")]

    for width, shown in (
        (200, ("id", "summary", "tags", "when")),
        (80, ("id", "summary", "tags")),
        (40, ("id", "summary")),
    ):
        console = Console(width=width, record=True)
        console.print(fitted_table(columns, rows, width=width))
        header = console.export_text().splitlines()[0].split()
        assert tuple(header) == shown, (width, header)


def test_version_and_python_m() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "agentjournal", "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert version.stdout.strip() == f"agentjournal {installed('agentjournal')}"
    assert agentjournal.__name__ == "agentjournal"
    helped = subprocess.run(
        [sys.executable, "-m", "agentjournal", "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    assert "--version" in helped.stdout and "approvals" in helped.stdout


@pytest.mark.parametrize(
    "args", [["verify"], ["regrade", "-i", INVARIANT], ["policy", "replay", "{policy}"]], ids=lambda a: a[0]
)
def test_no_progress_bar_off_a_terminal(sample: Sample, args: list[str]) -> None:
    """In a pipe or a CI log a progress bar would leave blank lines and escape codes on stderr."""
    command = Path(sys.executable).parent / "agentjournal"
    done = subprocess.run(
        [str(command), "--db", sample.url, *(arg.format(policy=sample.policy) for arg in args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.strip()
