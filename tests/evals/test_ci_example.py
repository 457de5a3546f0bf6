"""The example CI job (examples/eval-gate/.github/workflows/eval-gate.yml), run here step by step as GitHub
Actions would: each `run:` in bash with the workflow's env, in a copy of the example project, stopping at
the first failing step except for the `if: always()` ones. `uses:` actions and the install step are the
runner's business (this suite runs on the installed project)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLE = Path(__file__).parents[2] / "examples" / "eval-gate"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "eval-gate.yml"


@dataclass(frozen=True)
class Step:
    name: str
    exit_code: int | None
    """None: skipped (a step after a failure without `if: always()`)."""
    output: str


def _run_workflow(folder: Path, **env: str) -> tuple[list[Step], str]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    [job] = workflow["jobs"].values()
    summary = folder / "step-summary.md"
    environment = {
        **os.environ,
        **{key: str(value) for key, value in workflow.get("env", {}).items()},
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "COLUMNS": "100",
    }
    environment.pop("AGENTJOURNAL_EVAL_DB", None)
    steps: list[Step] = []
    failed = False
    for step in job["steps"]:
        script = step.get("run")
        if script is None or script.startswith("pip install"):
            continue
        if failed and step.get("if") != "always()":
            steps.append(Step(step["name"], None, ""))
            continue
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            check=False,
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        steps.append(Step(step["name"], done.returncode, done.stdout + done.stderr))
        failed = failed or done.returncode != 0
    return steps, summary.read_text() if summary.exists() else ""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    shutil.copytree(EXAMPLE, folder)
    return folder


def test_the_example_job_passes_the_pull_request_of_a_better_prompt(project: Path) -> None:
    steps, summary = _run_workflow(project)
    assert [step.name for step in steps] == ["Recorded runs", "Dataset", "Replay", "Score", "Gate", "Report"]
    failed = [f"{step.name} ({step.exit_code}):\n{step.output}" for step in steps if step.exit_code != 0]
    assert not failed, "\n".join(failed)
    assert "## agentjournal eval gate: prompt-v42 passed" in summary
    assert {path.name for path in project.glob("gate.*")} == {"gate.md", "gate.xml", "gate.html"}
    assert (project / "history.evals.db").exists()  # the evaluation journal, beside the history


def test_the_example_job_fails_the_pull_request_of_a_careless_model(project: Path) -> None:
    steps, summary = _run_workflow(project, CANDIDATE="careless-model")
    exit_codes = {step.name: step.exit_code for step in steps}
    assert exit_codes == {"Recorded runs": 0, "Dataset": 0, "Replay": 0, "Score": 0, "Gate": 1, "Report": 0}
    gate = next(step for step in steps if step.name == "Gate")
    assert "FAIL min quality: mean quality 0.500 is below 0.82 by 0.320" in " ".join(gate.output.split())
    assert "## agentjournal eval gate: careless-model failed" in summary
    assert "| min quality | 0.82 | 0.5 | 0.5 | **FAIL** |" in summary
