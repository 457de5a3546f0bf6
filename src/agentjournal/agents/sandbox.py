"""Run one tool call in a separate process with CPU-time and memory limits and a clean environment.

The child is a fresh interpreter (`python -I -m agentjournal.agents.sandbox`), started with an
environment that holds only what the tool was explicitly given, so secrets of the parent
(OPENAI_API_KEY, database URLs) are not visible. Before importing the tool it limits itself with
`resource.setrlimit` (CPU seconds, address space, no core files). The parent kills the whole
process group when the wall-clock timeout passes. The request goes in on stdin and the result
comes back on a private copy of stdout; what the tool prints goes to stderr.

This contains mistakes (a hang, a runaway loop, a memory leak, a leaked secret), not a hostile
tool: the child runs as the same user with the same file system, and a process that starts its
own session escapes the group kill. Run untrusted code in a container or a VM.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["SandboxLimits", "SandboxOutcome", "run_sandboxed"]

STDERR_TAIL = 2000
"""How much of the child's stderr a failure message quotes."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of a sandboxed call. `env` is the whole environment the tool sees (nothing is inherited)."""

    cpu_seconds: float = 10.0
    memory_mb: int = 512
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cpu_seconds <= 0:
            raise ValueError(f"cpu_seconds must be positive, got {self.cpu_seconds}")
        if self.memory_mb < 64:
            raise ValueError(f"memory_mb must be at least 64 (a Python interpreter needs it), got {self.memory_mb}")


@dataclass(frozen=True)
class SandboxOutcome:
    ok: bool
    output: Any = None
    error_type: str | None = None
    error: str | None = None


async def run_sandboxed(
    module: str, qualname: str, arguments: dict[str, Any], *, timeout_s: float, limits: SandboxLimits
) -> SandboxOutcome:
    """Import `module.qualname` in a limited child process and call it with `arguments` (JSON values)."""
    request = orjson.dumps(
        {
            "module": module,
            "qualname": qualname,
            "arguments": arguments,
            "sys_path": [entry for entry in sys.path if entry],
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
        }
    )
    env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **limits.env}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-m",
            "agentjournal.agents.sandbox",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group, so a kill reaches anything it spawned
        )
    except OSError as exc:
        return SandboxOutcome(False, None, "sandbox_error", f"cannot start the sandbox process: {exc}")
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(request), timeout=timeout_s)
    except TimeoutError:
        _kill(process.pid)
        await process.wait()
        return SandboxOutcome(False, None, "timeout", f"killed after {timeout_s:g} s of wall-clock time")
    except BaseException:  # cancelled: never leave the child running
        _kill(process.pid)
        await process.wait()
        raise
    finally:
        _kill(process.pid)  # reap anything the tool left behind in its group
    return _outcome(process.returncode, stdout, stderr, limits)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _outcome(returncode: int | None, stdout: bytes, stderr: bytes, limits: SandboxLimits) -> SandboxOutcome:
    tail = stderr.decode("utf-8", "replace")[-STDERR_TAIL:].strip()
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not stdout:
        return SandboxOutcome(
            False, None, "resource_limit", f"killed: exceeded its CPU time limit of {limits.cpu_seconds:g} s"
        )
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        return SandboxOutcome(False, None, "sandbox_error", f"the tool process died of {name}: {tail}")
    try:
        result = orjson.loads(stdout)
    except orjson.JSONDecodeError:
        if "MemoryError" in tail:
            return SandboxOutcome(False, None, "resource_limit", f"exceeded its memory limit of {limits.memory_mb} MB")
        return SandboxOutcome(
            False, None, "sandbox_error", f"the tool process exited with code {returncode} and no result: {tail}"
        )
    if result.get("ok"):
        return SandboxOutcome(True, result.get("output"))
    return SandboxOutcome(False, None, result.get("error_type"), result.get("error"))


# ----- the child ------------------------------------------------------------------------------


def _limit_self(cpu_seconds: float, memory_bytes: int) -> None:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The interpreter's start-up already used CPU time; the tool gets its full allowance on top.
    cpu = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL at the hard one
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_main() -> None:
    result_fd = os.dup(1)
    os.dup2(2, 1)  # the tool's prints go to stderr; stdout carries only the result
    request = orjson.loads(sys.stdin.buffer.read())
    _limit_self(request["cpu_seconds"], request["memory_bytes"])
    sys.path[:0] = [entry for entry in request["sys_path"] if entry not in sys.path]
    try:
        result = _call(request["module"], request["qualname"], request["arguments"])
    except MemoryError:
        limit_mb = request["memory_bytes"] // (1024 * 1024)
        result = {"ok": False, "error_type": "resource_limit", "error": f"exceeded its memory limit of {limit_mb} MB"}
    encoded = orjson.dumps(result)
    with os.fdopen(result_fd, "wb") as out:
        out.write(encoded)


def _call(module_name: str, qualname: str, arguments: dict[str, Any]) -> dict[str, Any]:
    from agentjournal.agents.tools import (
        IDEMPOTENCY_PARAMETER,
        Tool,
        arguments_model,
        jsonable_output,
        keyword_arguments,
    )

    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        return {"ok": False, "error_type": "sandbox_error", "error": f"cannot import {module_name}.{qualname}: {exc}"}
    # The arguments arrive as JSON; validating them again turns them back into Python values (a datetime).
    kwargs = dict(arguments)
    key = kwargs.pop(IDEMPOTENCY_PARAMETER, None)
    if isinstance(target, Tool):
        model, target = target.arguments_model, target.fn
    else:  # the function itself, when its Tool is bound to another name
        model, _ = arguments_model(qualname, target)
    instance = model.model_validate(kwargs)
    kwargs = keyword_arguments(instance)
    if key is not None:
        kwargs[IDEMPOTENCY_PARAMETER] = key
    try:
        output = target(**kwargs)
        if asyncio.iscoroutine(output):
            output = asyncio.run(output)
    except MemoryError:
        raise
    except Exception as exc:
        return {"ok": False, "error_type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
    try:
        return {"ok": True, "output": jsonable_output(output)}
    except TypeError as exc:
        return {"ok": False, "error_type": "non_json_output", "error": str(exc)}


if __name__ == "__main__":
    _child_main()
