"""Acts once, for real: an approved side effect raced by 3 `runs resume` and 2 `runs resume --follow`
worker processes executes exactly once per run, and the journal records exactly that execution."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentjournal.agents import Runtime, approve
from agentjournal.journal import Journal

from ._once_tools import COUNTER_ENV, agents

TRIALS = 20
TESTS = Path(__file__).resolve().parents[1]


def _command(url: str, *args: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("agentjournal")),
        "--db",
        url,
        *args,
        "--agents",
        "agents._once_tools:agents",
    ]


def _outcome(output: str) -> str:
    if "another worker advanced it" in output:
        return "lost the race"
    if "waiting: call" in output:
        return "saw the claim held"
    if ": completed" in output:
        return "resumed or saw it completed"
    return "found nothing to resume"


@pytest.mark.slow
def test_an_approved_side_effect_runs_once_across_five_racing_workers(
    sqlite_or_postgres_url: str, tmp_path: Path
) -> None:
    counter = tmp_path / "executions.txt"
    counter.touch()
    env = {key: value for key, value in os.environ.items() if key != "AGENTJOURNAL_DB"}
    env |= {COUNTER_ENV: str(counter), "PYTHONPATH": str(TESTS), "COLUMNS": "200"}
    os.environ[COUNTER_ENV] = str(counter)
    url = sqlite_or_postgres_url
    followers = [
        subprocess.Popen(
            _command(url, "runs", "resume", "--follow", "--every", "0.25"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes: Counter[str] = Counter()
    try:
        with Journal.open(url) as journal:
            runtime = Runtime(journal, agents=agents())
            for trial in range(TRIALS):
                run_id = f"charge-{trial}"
                waiting = runtime.run_sync(runtime.agent("charger"), f"ORD-{trial}", run_id=run_id)
                assert waiting.status == "waiting_approval", waiting.reason
                approve(journal, waiting.pending_approvals[0].approval_id, by="alice", reason="ok")
                racers = [
                    subprocess.Popen(
                        _command(url, "runs", "resume", run_id),
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(3)
                ]
                for racer in racers:
                    out, err = racer.communicate(timeout=120)
                    assert racer.returncode == 0, err
                    outcomes[_outcome(out)] += 1
                deadline = time.monotonic() + 60
                while runtime.load(run_id).status != "completed" and time.monotonic() < deadline:
                    time.sleep(0.05)
                state = runtime.load(run_id)
                assert state.status == "completed", state.reason
                kinds = Counter(event.type for event in journal.read_stream(state.stream_id))
                assert (kinds["ToolClaimed"], kinds["ToolExecuted"], kinds["RunCompleted"]) == (1, 1, 1), kinds
        executions = Counter(line.split()[0] for line in counter.read_text().splitlines())
        assert executions == {f"ORD-{trial}": 1 for trial in range(TRIALS)}
        print(f"racers: {dict(outcomes)}")  # how the racing `runs resume` processes found each run
    finally:
        for follower in followers:
            follower.send_signal(signal.SIGTERM)
        for follower in followers:
            _, err = follower.communicate(timeout=30)
            assert follower.returncode == 0, err
