"""Human approvals: durable pauses, decisions bound to the arguments shown, used once, across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentjournal.agents import ApprovalError, Runtime, approve, list_approvals, reject
from agentjournal.agents.demo import OPS_REQUEST, agents
from agentjournal.agents.runtime import RunError
from agentjournal.cli.main import app
from agentjournal.journal import Journal
from agentjournal.projections.queries import runs_to_resume
from agentjournal.runs import new_event
from agentjournal.runs.events import ToolApproved

from ._run_helpers import EFFECTS, agent, call, fresh_effects, of_type, runtime, seed_policy, types

EXTERNAL = call("send_email", recipient="partner@example.org", subject="stuck orders", body="please check")


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    fresh_effects()
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def waiting_run(journal: Journal, run_id: str = "held", **options: Any) -> tuple[Any, str]:
    tester = agent([EXTERNAL, "the partner is informed"], policy=seed_policy())
    rt = runtime(journal, tester, **options)
    result = rt.run_sync(tester, "tell the partner", run_id=run_id, tenant_id="acme")
    assert result.status == "waiting_approval"
    return rt, result.pending_approvals[0].approval_id


def test_an_approved_call_runs_once_with_the_arguments_shown(journal: Journal) -> None:
    rt, approval_id = waiting_run(journal)
    assert EFFECTS == []
    pending = list_approvals(journal)
    assert [(a.approval_id, a.tool, a.arguments["recipient"]) for a in pending] == [
        (approval_id, "send_email", "partner@example.org")
    ]
    assert runs_to_resume(journal) == []
    decided = approve(
        journal, approval_id, by="alice", reason="known partner", arguments_hash=pending[0].arguments_hash
    )
    assert (decided.status, decided.by, decided.reason) == ("approved", "alice", "known partner")
    assert runs_to_resume(journal) == ["held"]
    result = rt.resume_sync("held")
    assert result.status == "completed" and result.output == "the partner is informed"
    assert [effect["recipient"] for effect in EFFECTS] == ["partner@example.org"]
    approved = of_type(journal, "run-held", "ToolApproved")[0]
    assert approved.actor == "alice" and approved.data["reason"] == "known partner"
    assert approved.tenant_id == "acme" and approved.correlation_id == journal.read_stream("run-held")[0].event_id
    assert approved.causation_id == of_type(journal, "run-held", "ApprovalRequested")[0].event_id
    [claimed] = of_type(journal, "run-held", "ToolClaimed")
    assert claimed.causation_id == approved.event_id  # the approved call was claimed before it ran
    executed = of_type(journal, "run-held", "ToolExecuted")[0]
    assert executed.causation_id == claimed.event_id
    # Used once: resuming again or approving again does nothing more.
    assert rt.resume_sync("held").status == "completed"
    with pytest.raises(ApprovalError, match="already approved by alice"):
        approve(journal, approval_id, by="bob", reason="again")
    assert len(EFFECTS) == 1
    assert list_approvals(journal) == []
    assert [a.status for a in list_approvals(journal, status=None)] == ["approved"]


def test_a_rejected_call_never_runs_and_the_agent_is_told_why(journal: Journal) -> None:
    rt, approval_id = waiting_run(journal)
    reject(journal, approval_id, by="bob", reason="not a partner of ours")
    result = rt.resume_sync("held")
    assert result.status == "completed"
    assert EFFECTS == []
    observation = of_type(journal, "run-held", "ObservationCaptured")[-1].data
    assert observation["error_type"] == "rejected_by_human"
    assert "bob rejected the call: not a partner of ours" in observation["error"]


def test_an_approval_bound_to_other_arguments_is_refused(journal: Journal) -> None:
    _, approval_id = waiting_run(journal)
    with pytest.raises(ApprovalError, match=r"are not the requested ones .*; nothing was approved"):
        approve(journal, approval_id, by="alice", reason="ok", arguments_hash="0" * 64)
    assert "ToolApproved" not in types(journal, "run-held")


def test_an_expired_approval_cannot_be_used_and_the_run_moves_on(journal: Journal) -> None:
    rt, approval_id = waiting_run(journal, approval_ttl_s=1.0)
    expires = datetime.fromisoformat(of_type(journal, "run-held", "ApprovalRequested")[0].data["expires_at"])
    assert expires <= datetime.now(UTC) + timedelta(seconds=1.5)
    time.sleep(1.1)
    assert [a.status for a in list_approvals(journal, status=None)] == ["expired"]
    with pytest.raises(ApprovalError, match="expired at"):
        approve(journal, approval_id, by="alice", reason="late")
    result = rt.resume_sync("held")
    assert result.status == "completed"
    rejected = of_type(journal, "run-held", "ToolRejected")[0].data
    assert rejected["by"] == "system" and "expired" in rejected["reason"]
    assert EFFECTS == []


def test_decisions_need_a_reviewer_and_a_reason_and_a_known_id(journal: Journal) -> None:
    _, approval_id = waiting_run(journal)
    with pytest.raises(ApprovalError, match="reviewer"):
        approve(journal, approval_id, by=" ", reason="x")
    with pytest.raises(ApprovalError, match="reason"):
        approve(journal, approval_id, by="alice", reason="")
    with pytest.raises(ApprovalError, match="no approval 'apr-nope'"):
        approve(journal, "apr-nope", by="alice", reason="x")


def test_a_decision_bound_to_other_arguments_never_executes(journal: Journal) -> None:
    rt, approval_id = waiting_run(journal)
    forged = ToolApproved(approval_id=approval_id, by="mallory", reason="x", tool="send_email", arguments_hash="f" * 64)
    journal.append(
        "run-held", [new_event(forged, actor="mallory")], expected_version=journal.stream_version("run-held")
    )
    result = rt.resume_sync("held")
    assert result.status == "aborted"
    assert (
        result.reason is not None and "the approved arguments are not the ones shown; it was not run" in result.reason
    )
    assert EFFECTS == []
    assert "ToolExecuted" not in types(journal, "run-held")


# ----- across a real process restart ----------------------------------------------------------

START_OPS_RUN = """
import sys
from agentjournal.agents import Runtime
from agentjournal.agents.demo import OPS_REQUEST, agents
from agentjournal.journal import Journal

with Journal.open(sys.argv[1]) as journal:
    crew = agents()
    result = Runtime(journal, agents=crew).run_sync(crew[2], OPS_REQUEST, run_id="ops-restart")
    print(result.status, result.pending_approvals[0].approval_id)
"""


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("agentjournal")), "--db", url, *args]
    env = {key: value for key, value in os.environ.items() if key != "AGENTJOURNAL_DB"} | {"COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_an_approval_resumes_the_run_in_another_process(sqlite_or_postgres_url: str) -> None:
    started = subprocess.run(
        [sys.executable, "-c", START_OPS_RUN, sqlite_or_postgres_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    status, approval_id = started.stdout.split()
    assert status == "waiting_approval"  # and that process has exited

    listed = _cli(sqlite_or_postgres_url, "approvals", "list")
    assert listed.returncode == 0, listed.stderr
    assert approval_id in listed.stdout and "send_email" in listed.stdout

    approved = _cli(sqlite_or_postgres_url, "approvals", "approve", approval_id, "--by", "alice", "--reason", "ok")
    assert approved.returncode == 0, approved.stderr
    assert f"approved {approval_id}" in approved.stdout

    resumed = _cli(sqlite_or_postgres_url, "runs", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "run ops-restart: completed" in resumed.stdout

    again = _cli(sqlite_or_postgres_url, "runs", "resume", "ops-restart")
    assert "run ops-restart: completed" in again.stdout
    twice = _cli(sqlite_or_postgres_url, "approvals", "approve", approval_id, "--by", "bob", "--reason", "again")
    assert twice.returncode == 1 and "already approved by alice" in twice.stderr

    with Journal.open(sqlite_or_postgres_url) as journal:
        kinds = types(journal, "run-ops-restart")
        assert kinds.count("ToolApproved") == 1
        sent = [e for e in of_type(journal, "run-ops-restart", "ToolExecuted") if e.data["tool"] == "send_email"]
        assert len(sent) == 1
        assert kinds[-1] == "RunCompleted"


def test_cli_reject_and_cancel(sqlite_url: str) -> None:
    runner = CliRunner()
    with Journal.open(sqlite_url) as journal:
        _, approval_id = waiting_run(journal)
    env = {"AGENTJOURNAL_DB": sqlite_url}
    rejected = runner.invoke(app, ["approvals", "reject", approval_id, "--by", "bob", "--reason", "no"], env=env)
    assert rejected.exit_code == 0, rejected.output
    assert f"rejected {approval_id}" in rejected.output
    cancelled = runner.invoke(app, ["runs", "cancel", "held", "--reason", "duplicate"], env=env)
    assert cancelled.exit_code == 0 and "run held: cancelled" in cancelled.output
    again = runner.invoke(app, ["runs", "cancel", "held"], env=env)
    assert "already cancelled" in again.output
    unknown = runner.invoke(app, ["approvals", "approve", "apr-000", "--by", "a", "--reason", "b"], env=env)
    assert unknown.exit_code == 1


def test_resume_names_a_bad_agents_path(sqlite_url: str) -> None:
    result = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "resume", "x", "--agents", "nowhere.module:agents"])
    assert result.exit_code == 1
    assert "cannot import module 'nowhere.module'" in result.output
    result = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "resume", "x", "--agents", "json:dumps"])
    assert result.exit_code == 1
    assert "cannot be called without arguments" in result.output


def test_a_following_worker_resumes_a_run_as_soon_as_a_human_decides(sqlite_or_postgres_url: str) -> None:
    command = [str(Path(sys.executable).with_name("agentjournal")), "--db", sqlite_or_postgres_url]
    env = {key: value for key, value in os.environ.items() if key != "AGENTJOURNAL_DB"} | {"COLUMNS": "200"}
    with Journal.open(sqlite_or_postgres_url) as journal:
        crew = agents()
        waiting = Runtime(journal, agents=crew).run_sync(crew[2], OPS_REQUEST, run_id="ops-follow")
        worker = subprocess.Popen(
            [*command, "runs", "resume", "--follow", "--every", "0.2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            time.sleep(1.0)  # the worker is up and finds nothing to do yet
            assert Runtime(journal).load("ops-follow").status == "waiting_approval"
            approve(journal, waiting.pending_approvals[0].approval_id, by="alice", reason="ok")
            deadline = time.monotonic() + 60
            while Runtime(journal).load("ops-follow").status != "completed" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert Runtime(journal).load("ops-follow").status == "completed"
        finally:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        assert "run ops-follow: completed" in out
        sent = [e for e in of_type(journal, "run-ops-follow", "ToolExecuted") if e.data["tool"] == "send_email"]
        assert len(sent) == 1


def test_the_hash_prefix_shown_by_the_list_is_enough_to_bind_an_approval(journal: Journal) -> None:
    _, approval_id = waiting_run(journal)
    shown = list_approvals(journal)[0].arguments_hash[:12]
    with pytest.raises(ApprovalError, match="give at least the first 12 hex digits"):
        approve(journal, approval_id, by="alice", reason="ok", arguments_hash=shown[:8])
    assert approve(journal, approval_id, by="alice", reason="ok", arguments_hash=shown).status == "approved"


def test_runs_show_what_a_run_knew_at_the_end_of_a_step(sqlite_url: str) -> None:
    with Journal.open(sqlite_url) as journal:
        crew = agents()
        runtime = Runtime(journal, agents=crew)
        runtime.run_sync(crew[0], "I want a refund for order ORD-5521", run_id="shown")
        at_two = runtime.load_at_step("shown", 2)
        assert at_two.agent == "refund-agent"
        assert [c.tool for c in at_two.calls.values()] == ["lookup_order", "transfer_to_refund-agent"]
        assert (runtime.load_at_step("shown", 0).messages[0].content or "").startswith("I want a refund")
        with pytest.raises(RunError, match=r"has steps 0\.\.5; there is no step 6"):
            runtime.load_at_step("shown", 6)
    env = {"COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "show", "shown", "--step", "3"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "run shown at the end of step 3" in shown.output and "check_refund_policy" in shown.output
    assert "issue_refund" not in shown.output
    final = CliRunner().invoke(app, ["--db", sqlite_url, "runs", "show", "shown"], env=env)
    assert "answer: I have issued a partial refund of $44.99" in final.output
