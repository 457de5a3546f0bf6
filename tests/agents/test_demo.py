"""`agentjournal demo`: offline, on a fresh SQLite file, and it shows what it promises."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentjournal.agents.demo import REFUNDS
from agentjournal.cli.main import app
from agentjournal.journal import Journal


def test_the_demo_runs_offline_and_tells_the_story(tmp_path: Path) -> None:
    db_file = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--db-file", str(db_file)], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the console wraps at its own width
    # Seed 002: triage, handoff, refund agent, its three tools, the answer.
    for line in (
        "Handed off from triage-agent to refund-agent",
        "lookup_order returned",
        "check_refund_policy returned",
        "issue_refund returned",
        "Answered the user",
    ):
        assert line in out
    # Seed 001: the policy denies the destructive query, holds the e-mail, a human approves it.
    assert "Policy deny_destructive_sql denied query_sql" in out
    assert "waits for a human" in out
    assert "alice approved send_email" in out
    assert "send_email returned" in out
    # What the journal answers: state at a step, lineage back to the user, the bisect.
    assert "State at version" in out and "no refund issued yet" in out
    assert "Why this answer?" in out and "Run started: triage-agent" in out
    assert "first fails at version" in out and "refunded $44.99 without a supervisor" in out
    assert len(REFUNDS) == 1

    with Journal.open(f"sqlite:///{db_file}") as journal:
        assert journal.verify().ok
        runs = [info.stream_id for info in journal.streams("run-")]
        assert runs == ["run-ops-7731", "run-refund-8842"]
        assert journal.read_stream("run-ops-7731", backwards=True, limit=1)[0].type == "RunCompleted"


def test_the_demo_uses_a_fresh_file_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's fresh folders go here
    first = CliRunner().invoke(app, ["demo"])
    second = CliRunner().invoke(app, ["demo"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    journals = sorted(tmp_path.glob("agentjournal-demo-*/demo.db"))
    assert len(journals) == 2  # one fresh file per run, each named in its output
    said = " ".join((first.output + second.output).split())
    assert all(str(path) in said for path in journals)
