"""Runs test_openai_agents.py where `import agents` is the OpenAI Agents SDK.

In the suite's process pytest has put tests/ on sys.path, so `agents` is the test package tests/agents
(other tests import `agents._fake_providers`) and the SDK's own `agents` package cannot be imported.
This test runs the SDK's tests in a child pytest with `--import-mode=importlib`, which leaves sys.path
alone, and fails with the child's report when any of them fails. Where the SDK is importable (a run
with --import-mode=importlib), test_openai_agents.py runs directly and this module skips.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _sdk_hidden() -> bool:
    spec = importlib.util.find_spec("agents")
    return spec is None or spec.origin is None or Path(spec.origin).resolve().is_relative_to(ROOT / "tests")


if not _sdk_hidden():
    pytest.skip("the SDK is importable here: test_openai_agents.py runs in this process", allow_module_level=True)


@pytest.mark.slow
def test_the_openai_agents_tests_pass_where_agents_is_the_sdk() -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "test_openai_agents.py"),
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfEs",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=280,
        check=False,
    )
    report = child.stdout[-6000:] + child.stderr[-2000:]
    assert child.returncode == 0, report
    assert " passed" in child.stdout and "skipped" not in child.stdout.splitlines()[-1], report
