"""Sandboxed tools run in a separate, limited process: hangs, crashes and hogs become failed Observations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agentjournal.agents import tools as tools_module
from agentjournal.agents.sandbox import SandboxLimits
from agentjournal.agents.tools import Observation, execute, tool

from . import _sandbox_tools as tools


def run(tool_: object, arguments: dict[str, object], key: str = "key-1") -> Observation:
    return asyncio.run(execute(tool_, arguments, idempotency_key=key))  # type: ignore[arg-type]


def test_a_secret_of_the_parent_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    observation = run(tools.read_env, {"name": "OPENAI_API_KEY"})
    assert observation.ok, observation
    assert observation.output["value"] is None
    assert "OPENAI_API_KEY" not in observation.output["names"]
    assert set(observation.output["names"]) <= {"PATH", "LANG", "PYTHONDONTWRITEBYTECODE"}


def test_only_the_environment_given_to_the_tool_is_visible() -> None:
    observation = run(tools.read_region, {})
    assert observation == Observation(True, "eu-west-1", latency_ms=observation.latency_ms)


def test_a_hung_tool_is_killed_at_its_timeout() -> None:
    started = time.monotonic()
    observation = run(tools.hang, {"seconds": 60})
    assert time.monotonic() - started < 10
    assert not observation.ok
    assert observation.error_type == "timeout"
    assert "1.5 s" in (observation.error or "")
    assert observation.retryable


def test_the_kill_reaches_processes_the_tool_started(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild"
    observation = run(tools.hang_with_child, {"path": str(marker)})
    assert observation.error_type == "timeout"
    started = Path(f"{marker}.started")
    assert started.exists(), "the grandchild never started; the test proves nothing"
    time.sleep(max(0.0, started.stat().st_mtime + 6.5 - time.time()))  # past the moment it would write
    assert not marker.exists(), "the grandchild survived the kill of the tool's process group"


def test_a_raising_tool_becomes_an_error_observation() -> None:
    observation = run(tools.explode, {"message": "the inventory service is down"})
    assert not observation.ok
    assert observation.error_type == "RuntimeError"
    assert observation.error == "the inventory service is down"


def test_a_memory_hog_is_stopped_by_its_address_space_limit() -> None:
    observation = run(tools.memory_hog, {"megabytes": 1024})
    assert not observation.ok
    assert observation.error_type == "resource_limit"
    assert "256 MB" in (observation.error or "")


def test_a_small_allocation_within_the_limit_works() -> None:
    assert run(tools.memory_hog, {"megabytes": 16}).output == 16 * 1024 * 1024


def test_a_cpu_hog_is_killed_by_its_cpu_time_limit() -> None:
    started = time.monotonic()
    observation = run(tools.cpu_hog, {})
    assert time.monotonic() - started < 15  # far below the 30 s wall-clock timeout
    assert not observation.ok
    assert observation.error_type == "resource_limit"
    assert "CPU time limit of 1 s" in (observation.error or "")


def test_bad_arguments_are_refused_before_any_process_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sandbox process was started for arguments that do not validate")

    monkeypatch.setattr(tools_module, "run_sandboxed", no_process)
    observation = run(tools.add, {"a": "three", "b": 4})
    assert observation.error_type == "invalid_arguments"
    assert observation.output["errors"][0]["loc"] == ["a"]


def test_a_non_json_output_is_an_error_observation() -> None:
    observation = run(tools.returns_a_set, {})
    assert not observation.ok
    assert observation.error_type == "non_json_output"
    assert "set" in (observation.error or "")


def test_prints_do_not_corrupt_the_result() -> None:
    assert run(tools.add, {"a": 2, "b": "3"}).output == 5


def test_the_idempotency_key_reaches_a_sandboxed_tool() -> None:
    observation = run(tools.sandboxed_effect, {"target": "crm"}, key="run-1:step-2")
    assert observation.output == {"target": "crm", "key": "run-1:step-2"}


def test_an_async_sandboxed_tool_is_awaited_in_the_child() -> None:
    assert run(tools.async_double, {"value": 21}).output == 42


def test_a_tool_that_cannot_be_reimported_is_refused_at_definition() -> None:
    def local(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="top-level function of an importable module"):
        tool(sandboxed=True)(local)


@pytest.mark.parametrize(("options", "message"), [({"cpu_seconds": 0}, "cpu_seconds"), ({"memory_mb": 8}, "memory_mb")])
def test_limits_are_checked(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxLimits(**options)  # type: ignore[arg-type]


def test_a_tool_bound_to_another_name_gets_python_values() -> None:
    assert run(tools.weekday_tool, {"when": "2026-11-22T12:00:00Z"}).output == "Sunday"
