"""Tools for the sandbox tests. They live in a plain module because the sandbox re-imports them by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime

from agentjournal.agents.sandbox import SandboxLimits
from agentjournal.agents.tools import tool


@tool(sandboxed=True, timeout_s=20)
def read_env(name: str) -> dict[str, object]:
    """What the tool process can see of its environment."""
    return {"value": os.environ.get(name), "names": sorted(os.environ)}


@tool(sandboxed=True, timeout_s=20, limits=SandboxLimits(env={"REGION": "eu-west-1"}))
def read_region() -> str | None:
    return os.environ.get("REGION")


@tool(sandboxed=True, timeout_s=1.5)
def hang(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@tool(sandboxed=True, timeout_s=4)
def hang_with_child(path: str) -> str:
    """Starts a grandchild that marks `path`.started at once and `path` 6 s later, then hangs.

    The kill at the timeout must reach the grandchild too, so `path` is never written.
    """
    script = f"import time; open({path!r} + '.started', 'w').close(); time.sleep(6); open({path!r}, 'w').close()"
    subprocess.Popen([sys.executable, "-c", script])
    while not os.path.exists(path + ".started"):
        time.sleep(0.01)
    time.sleep(60)
    return "never"


@tool(sandboxed=True, timeout_s=20)
def explode(message: str) -> str:
    raise RuntimeError(message)


@tool(sandboxed=True, timeout_s=20, limits=SandboxLimits(memory_mb=256))
def memory_hog(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


@tool(sandboxed=True, timeout_s=30, limits=SandboxLimits(cpu_seconds=1))
def cpu_hog() -> int:
    count = 0
    while True:
        count += 1


@tool(sandboxed=True, timeout_s=20)
def add(a: int, b: int) -> int:
    print("printing does not corrupt the result")  # goes to stderr
    return a + b


@tool(sandboxed=True, timeout_s=20)
def returns_a_set() -> object:
    return {1, 2, 3}


@tool(sandboxed=True, timeout_s=20, side_effecting=True)
def sandboxed_effect(target: str, idempotency_key: str) -> dict[str, str]:
    return {"target": target, "key": idempotency_key}


@tool(sandboxed=True, timeout_s=20)
async def async_double(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


def weekday_of(when: datetime) -> str:
    """Proves the child turns JSON text back into a datetime, even for a Tool bound to another name."""
    return when.strftime("%A")


weekday_tool = tool(name="weekday", sandboxed=True, timeout_s=20)(weekday_of)


@tool(sandboxed=True, timeout_s=20)
def template_pid() -> int:
    """The pid of the process that forked this call's process: the sandbox's template."""
    return os.getppid()


@tool(sandboxed=True, timeout_s=20)
def echo(value: int) -> int:
    return value


@tool(sandboxed=True, timeout_s=20)
def crash(message: str) -> str:
    """Dies without a result, after printing `message` (if any) to stderr."""
    if message:
        print(message, file=sys.stderr, flush=True)
    os._exit(3)


@tool(sandboxed=True, timeout_s=20)
def secret_sources(name: str) -> dict[str, object]:
    """Every place the tool could find the parent's environment variable `name`."""

    def environ_of(pid: str) -> str:
        with open(f"/proc/{pid}/environ", "rb") as file:
            return file.read().replace(b"\0", b"\n").decode("utf-8", "replace")

    return {
        "os.environ": os.environ.get(name),
        "/proc/self/environ": environ_of("self"),
        "/proc/<template>/environ": environ_of(str(os.getppid())),
        "template_pid": os.getppid(),
    }
