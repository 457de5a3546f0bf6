"""Sandboxed tools run in a separate, limited process: hangs, crashes and hogs become failed Observations."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import orjson
import pytest

from agentjournal.agents import sandbox
from agentjournal.agents import tools as tools_module
from agentjournal.agents.sandbox import SandboxLimits, SandboxOutcome, run_sandboxed
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


# ----- the template: no warning, no secret, concurrency, death, fork, exit -------------------------


def sandboxed(module: str, qualname: str, timeout_s: float = 20) -> SandboxOutcome:
    return asyncio.run(run_sandboxed(module, qualname, {}, timeout_s=timeout_s, limits=SandboxLimits()))


def test_a_failure_quotes_no_runtime_warning() -> None:
    observation = run(tools.crash, {"message": ""})
    assert observation.error_type == "sandbox_error"
    assert "RuntimeWarning" not in (observation.error or "")
    assert observation.error == "the tool process exited with code 3 and no result: "  # nothing on its stderr


def test_a_failure_quotes_exactly_what_the_tool_printed() -> None:
    observation = run(tools.crash, {"message": "the disk is full\nsee the log"})
    assert observation.error == "the tool process exited with code 3 and no result: the disk is full\nsee the log"


def test_no_secret_of_the_parent_in_the_tool_or_its_template(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-parent-secret-7f3a"
    monkeypatch.setenv("AGENTJOURNAL_TEST_SECRET", secret)
    old_template = run(tools.template_pid, {}).output
    os.kill(old_template, signal.SIGKILL)  # so the next call starts a template while the secret is set
    observation = run(tools.secret_sources, {"name": "AGENTJOURNAL_TEST_SECRET"})
    assert observation.ok, observation
    sources = observation.output
    assert sources.pop("template_pid") != old_template
    assert sources["os.environ"] is None
    assert "PATH=" in sources["/proc/<template>/environ"]  # it could be read, and holds no secret
    for where, text in sources.items():
        assert secret not in (text or ""), where


def test_twenty_calls_from_four_concurrent_tasks() -> None:
    async def task(first: int) -> list[Observation]:
        return [await execute(tools.echo, {"value": first + n}, idempotency_key="k") for n in range(5)]

    async def main() -> list[list[Observation]]:
        return await asyncio.gather(*(task(100 * t) for t in range(4)))

    results = asyncio.run(main())
    assert [[o.output for o in observations] for observations in results] == [
        [100 * t + n for n in range(5)] for t in range(4)
    ]
    assert all(o.ok for observations in results for o in observations)


def test_calls_from_several_threads_each_with_its_own_loop() -> None:
    outputs: dict[int, list[object]] = {}

    def worker(index: int) -> None:
        outputs[index] = [run(tools.echo, {"value": index * 10 + n}).output for n in range(4)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outputs == {i: [i * 10 + n for n in range(4)] for i in range(3)}


def test_a_killed_template_is_replaced_by_the_next_call() -> None:
    first = run(tools.template_pid, {}).output
    os.kill(first, signal.SIGKILL)
    second = run(tools.template_pid, {})
    assert second.ok, second
    assert second.output != first
    assert run(tools.echo, {"value": 7}).output == 7


def test_a_forked_parent_starts_its_own_template() -> None:
    parent_template = run(tools.template_pid, {}).output
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # a multi-threaded parent (3.12+)
        pid = os.fork()
    if pid == 0:  # the forked child: one sandboxed call, its answer on the pipe, no pytest teardown
        code = 1
        try:
            observation = run(tools.template_pid, {})
            os.write(write_end, orjson.dumps(observation.to_dict()))
            sandbox._shutdown()
            code = 0
        except BaseException as exc:
            os.write(write_end, orjson.dumps({"exception": repr(exc)}))
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        reply = orjson.loads(answer.read() or b"{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, reply
    assert reply["ok"], reply
    assert reply["output"] != parent_template  # its own template, not a share of the parent's
    assert run(tools.template_pid, {}).output == parent_template  # and the parent's is untouched


def test_a_module_that_cannot_be_imported_is_a_sandbox_error_and_the_template_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sandbox_broken_module.py").write_text("raise RuntimeError('broken at import')\n")
    (tmp_path / "sandbox_exiting_module.py").write_text("import sys\nsys.exit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    template = run(tools.template_pid, {}).output
    missing = sandboxed("sandbox_no_such_module", "f")
    assert missing.error_type == "sandbox_error"
    assert "cannot import sandbox_no_such_module.f: No module named 'sandbox_no_such_module'" in (missing.error or "")
    broken = sandboxed("sandbox_broken_module", "f")
    assert broken == SandboxOutcome(
        False, None, "sandbox_error", "cannot import sandbox_broken_module.f: RuntimeError: broken at import"
    )
    assert sandboxed("sandbox_exiting_module", "f").error_type == "sandbox_error"
    assert "has no attribute 'nope'" in (sandboxed(tools.__name__, "nope").error or "")
    assert run(tools.template_pid, {}).output == template


def test_an_import_that_hangs_is_a_timeout_and_the_template_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sandbox_hanging_module.py").write_text("import time\ntime.sleep(60)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    template = run(tools.template_pid, {}).output
    started = time.monotonic()
    outcome = sandboxed("sandbox_hanging_module", "f", timeout_s=1)
    assert outcome == SandboxOutcome(False, None, "timeout", "killed after 1 s of wall-clock time")
    assert time.monotonic() - started < 5
    replaced = run(tools.template_pid, {})
    assert replaced.ok, replaced
    assert replaced.output != template


def test_interpreter_exit_leaves_no_process_and_no_warning() -> None:
    root = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(root)!r})
        from agentjournal.agents.tools import execute
        from tests.agents import _sandbox_tools as tools

        async def main():
            hung = asyncio.create_task(execute(tools.hang, {{"seconds": 60}}, idempotency_key="k"))
            observation = await execute(tools.template_pid, {{}}, idempotency_key="k")
            print(observation.output, flush=True)
            hung.cancel()

        asyncio.run(main())
        """
    )
    started = time.monotonic()
    command = [sys.executable, "-X", "dev", "-W", "error", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert time.monotonic() - started < 20
    template = int(done.stdout.strip())
    assert not Path(f"/proc/{template}").exists(), "the template outlived the interpreter that started it"
