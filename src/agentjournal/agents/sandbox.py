"""Run one tool call in a separate process with CPU-time and memory limits and a clean environment.

Each parent process has one template process (agents/sandbox_server.py). It starts on the first
sandboxed call as `python -I -m agentjournal.agents.sandbox_server`, in a new session, with an
environment of PATH and LANG only, and is started again if it dies. It imports each tool's module
once and forks a fresh child per call. The child moves into its own process group, replaces its
environment with exactly the call's (PATH, LANG, PYTHONDONTWRITEBYTECODE and `limits.env`; nothing
of the parent's), limits itself with `resource.setrlimit` (CPU seconds, address space, no core
files), runs the tool and exits. The arguments and the environment go from the parent straight to
the child on a private pipe, never through the template; the result comes back on another private
pipe, and what the tool prints goes to a third one, its stderr, which failure messages quote. The
parent kills the child's process group when the wall-clock timeout passes. A call costs a fork
instead of an interpreter start and the tool module's import (docs/benchmarks.md).

What forking from a template changes, compared with a fresh interpreter per call:

- A tool module's top-level code runs once, in the template: with the template's environment (PATH
  and LANG, not `limits.env`), under the wall-clock timeout of the call that caused the import (an
  import that hangs gets the template killed and restarted) but without that call's CPU and memory
  limits. Read configuration inside the tool, not at import.
- Module-level state is copied into every call's process: what a call changes dies with its
  process, but a file or connection opened at import is shared by all calls. The modules of every
  tool the template has imported are in every child's memory.
- `memory_mb` counts on top of the address space the child inherits (SandboxLimits says how).

This contains mistakes (a hang, a runaway loop, a memory leak, a secret dumped into the output or
handed to a subprocess), not a hostile tool. Neither the child's environment nor its template's
(not even /proc/<pid>/environ) holds a secret of the parent, but the child runs as the same user
with the same file system: it can read /proc/<pid>/environ of the agent's own process and of any
other process of that user, and a process that starts its own session or process group escapes the
group kill. Run untrusted code in a container or a VM. Needs Linux (AF_UNIX SOCK_SEQPACKET).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = ["SandboxLimits", "SandboxOutcome", "run_sandboxed"]

STDERR_TAIL = 2000
"""How much of the child's stderr a failure message quotes."""

SERVER = "agentjournal.agents.sandbox_server"
"""The template's module, started by name: nothing imports it, so `-m` runs it without a warning."""

TEMPLATE_ENV = {"PATH": os.defpath, "LANG": "C.UTF-8"}
STOP_GRACE_S = 1.0
"""How long interpreter exit waits for the template to stop by itself before it is killed."""

_CHUNK = 1 << 18


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of a sandboxed call. `env` is the whole environment the tool sees (nothing is inherited).

    `cpu_seconds` is the tool process's CPU time, rounded up to whole seconds. `memory_mb` is the
    address space the tool may map beyond what its process starts with: the interpreter and the
    imported modules it inherits from the template (shared copy-on-write) do not count.
    """

    cpu_seconds: float = 10.0
    memory_mb: int = 512
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cpu_seconds <= 0:
            raise ValueError(f"cpu_seconds must be positive, got {self.cpu_seconds}")
        if self.memory_mb < 64:
            raise ValueError(
                f"memory_mb must be at least 64 (room to validate the arguments and run), got {self.memory_mb}"
            )


@dataclass(frozen=True)
class SandboxOutcome:
    ok: bool
    output: Any = None
    error_type: str | None = None
    error: str | None = None


async def run_sandboxed(
    module: str, qualname: str, arguments: dict[str, Any], *, timeout_s: float, limits: SandboxLimits
) -> SandboxOutcome:
    """Import `module.qualname` in the template and call it with `arguments` (JSON values) in a limited child."""
    env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **limits.env}
    request = orjson.dumps(
        {
            "arguments": arguments,
            "env": env,
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
        }
    )
    header = orjson.dumps(
        {"module": module, "qualname": qualname, "sys_path": [entry for entry in sys.path if entry], "cwd": _cwd()}
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    for _ in range(2):  # a template that died before it took the call is replaced once
        outcome = await _Call(loop, deadline, timeout_s, limits).run(header, request)
        if outcome is not None:
            return outcome
    return SandboxOutcome(False, None, "sandbox_error", "the sandbox template process died twice before the call")


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


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
        if returncode is None:
            return SandboxOutcome(
                False,
                None,
                "sandbox_error",
                f"the tool process ended with no result, and its exit status is lost (its template died): {tail}",
            )
        return SandboxOutcome(
            False, None, "sandbox_error", f"the tool process exited with code {returncode} and no result: {tail}"
        )
    if result.get("ok"):
        return SandboxOutcome(True, result.get("output"))
    return SandboxOutcome(False, None, result.get("error_type"), result.get("error"))


# ----- one call --------------------------------------------------------------------------------


class _Call:
    """One call's ends of its four pipes (request, result, stderr, status), served by the caller's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, timeout_s: float, limits: SandboxLimits):
        self.loop = loop
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.limits = limits
        self.template: _Template | None = None
        self.taken = False  # the template is importing the tool's module for this call
        self.pid: int | None = None
        self.wait_status: int | None = None
        self.template_error: str | None = None
        self.result = bytearray()
        self.stderr = bytearray()
        self._status = bytearray()
        self._status_fd = -1
        self._open: list[int] = []
        self._readers: list[int] = []
        self._writer: int | None = None

    async def run(self, header: bytes, request: bytes) -> SandboxOutcome | None:
        """The call's outcome, or None when the template died before it took the call."""
        try:
            return await self._run(header, request)
        finally:
            self._close()

    async def _run(self, header: bytes, request: bytes) -> SandboxOutcome | None:
        theirs: list[int] = []
        try:
            for _ in range(4):
                read_end, write_end = os.pipe()
                self._open += [read_end, write_end]
            request_r, request_w, result_r, result_w, stderr_r, stderr_w, status_r, status_w = self._open
            theirs = [request_r, result_w, stderr_w, status_w]
            self._open = [request_w, result_r, stderr_r, status_r]
            self.template = await _send(self.loop, header, theirs, self.deadline)
        except OSError as exc:
            return SandboxOutcome(False, None, "sandbox_error", f"cannot start the sandbox process: {exc}")
        finally:
            _close(*theirs)
        if self.template is None:  # it did not take the call before the deadline
            return self._timeout()
        self._status_fd = status_r
        ended = [self._read(result_r, self.result), self._read(stderr_r, self.stderr), self._read(status_r, None)]
        self._write(request_w, request)
        try:
            await asyncio.wait(ended, timeout=max(0.0, self.deadline - self.loop.time()))
        except BaseException:  # cancelled: never leave the child running
            self._give_up(kill_a_stuck_template=False)
            raise
        if not all(future.done() for future in ended) and self.wait_status is None:
            self._give_up(kill_a_stuck_template=True)
            return self._timeout()
        if self.pid is None:
            return self._not_started()
        returncode = None if self.wait_status is None else os.waitstatus_to_exitcode(self.wait_status)
        return _outcome(returncode, bytes(self.result), bytes(self.stderr), self.limits)

    def _not_started(self) -> SandboxOutcome | None:
        if self.template_error is not None:
            message = f"cannot start the sandbox process: {self.template_error}"
            return SandboxOutcome(False, None, "sandbox_error", message)
        assert self.template is not None
        _templates.discard(self.template)  # it is dead or dying; the next call gets a new one
        if not self.result and not self.stderr:  # it died before it took the call
            return None
        # It died between forking the child and telling us its pid: the child may still have answered.
        return _outcome(None, bytes(self.result), bytes(self.stderr), self.limits)

    def _timeout(self) -> SandboxOutcome:
        return SandboxOutcome(False, None, "timeout", f"killed after {self.timeout_s:g} s of wall-clock time")

    def _give_up(self, *, kill_a_stuck_template: bool) -> None:
        self._drain_status()  # the pid may be waiting in the pipe
        if self.pid is not None:
            if self.wait_status is None:
                _kill_group(self.pid)
        elif kill_a_stuck_template and self.template is not None and (self.taken or not self.template.answered):
            _templates.discard(self.template)  # stuck on this call's import, or never started: restart it
        # Otherwise, once our end of the status pipe is closed, the template drops the call, or kills
        # its child as soon as it forks it.

    def _read(self, fd: int, into: bytearray | None) -> asyncio.Future[None]:
        """Collect what arrives on `fd` (the status pipe when `into` is None); the future settles at EOF."""
        os.set_blocking(fd, False)
        ended: asyncio.Future[None] = self.loop.create_future()

        def readable() -> None:
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                if into is None:
                    self._on_status(data)
                else:
                    into.extend(data)
                return
            self.loop.remove_reader(fd)
            self._readers.remove(fd)
            if not ended.done():
                ended.set_result(None)

        self.loop.add_reader(fd, readable)
        self._readers.append(fd)
        return ended

    def _on_status(self, data: bytes) -> None:
        self._status += data
        *lines, rest = self._status.split(b"\n")
        self._status = bytearray(rest)
        for line in lines:
            message = orjson.loads(line)
            if self.template is not None:
                self.template.answered = True
            if "taken" in message:
                self.taken = True
            elif "pid" in message:
                self.pid = message["pid"]
            elif "status" in message:
                self.wait_status = message["status"]
                if self.pid is not None:
                    _kill_group(self.pid)  # whatever the tool left behind in its group
            elif "error" in message:
                self.template_error = message["error"]

    def _drain_status(self) -> None:
        with contextlib.suppress(OSError):
            while data := os.read(self._status_fd, _CHUNK):
                self._on_status(data)

    def _write(self, fd: int, data: bytes) -> None:
        os.set_blocking(fd, False)
        view = memoryview(data)

        def writable() -> None:
            nonlocal view
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except BlockingIOError:
                if self._writer is None:
                    self.loop.add_writer(fd, writable)
                    self._writer = fd
                return
            except OSError:
                pass  # EPIPE: the child is gone before reading it all; its outcome says why
            if self._writer is not None:
                self.loop.remove_writer(fd)
                self._writer = None
            self._open.remove(fd)
            os.close(fd)

        writable()

    def _close(self) -> None:
        for fd in self._readers:
            self.loop.remove_reader(fd)
        if self._writer is not None:
            self.loop.remove_writer(self._writer)
        _close(*self._open)
        self._readers, self._writer, self._open = [], None, []


async def _send(loop: asyncio.AbstractEventLoop, header: bytes, fds: list[int], deadline: float) -> _Template | None:
    """Hand the call to the template (started or restarted as needed); None if it is still busy at the deadline."""
    for _ in range(2):
        while True:
            template, problem = _templates.send(header, fds)
            if problem is None:
                return template
            if problem == "gone":  # it died since we last looked: once more, with a new one
                _templates.discard(template)
                break
            if not await _writable(loop, template, deadline):  # its queue stayed full: it is stuck
                _templates.discard(template)
                return None
    raise OSError("the sandbox template process dies as soon as it starts")


async def _writable(loop: asyncio.AbstractEventLoop, template: _Template, deadline: float) -> bool:
    fd = template.socket.fileno()
    if fd < 0:  # discarded meanwhile; the next attempt starts a new one
        return True
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout=max(0.0, deadline - loop.time()))
    except TimeoutError:
        return False
    finally:
        loop.remove_writer(fd)
    return True


# ----- the template ----------------------------------------------------------------------------


class _Template:
    """The parent's handle on one template process: its pid and the parent's end of its socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fd = theirs.fileno()
            spawn_fd = fd if fd > 2 else fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            try:
                self.pid = os.posix_spawn(
                    sys.executable,
                    [sys.executable, "-I", "-m", SERVER],
                    TEMPLATE_ENV,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, spawn_fd, 0),  # its stdin is the socket
                        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    ],
                    setsid=True,  # no terminal signals, and its group is only itself
                )
            finally:
                if spawn_fd != fd:
                    os.close(spawn_fd)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.socket = ours
        self.ended = False
        self.answered = False  # it has told some call that it took it

    def exited(self) -> bool:
        """Whether it has exited (reaping it if so)."""
        if not self.ended:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                pid = self.pid
            self.ended = pid != 0
        return self.ended

    def kill(self) -> None:
        if not self.exited():
            _kill_group(self.pid)

    def stop(self, grace_s: float) -> None:
        """EOF on its socket makes it kill its children and exit; killed if it has not within `grace_s`."""
        self.socket.close()
        deadline = time.monotonic() + grace_s
        while not self.exited():
            if time.monotonic() >= deadline:
                _kill_group(self.pid)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                self.ended = True
                return
            time.sleep(0.002)


class _Templates:
    """This process's template, started on first use and again after it dies; guarded for threads and fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: _Template | None = None
        self.retired: list[_Template] = []  # killed, not reaped yet

    def send(self, header: bytes, fds: list[int]) -> tuple[_Template, Literal["busy", "gone"] | None]:
        """Send one call to the template, starting one if there is none or it has exited."""
        global _atexit_registered  # noqa: PLW0603 - once per process; a forked child inherits it
        with self.lock:
            self.retired = [template for template in self.retired if not template.exited()]
            if self.current is not None and self.current.exited():
                self.current.socket.close()
                self.current = None
            if self.current is None:
                self.current = _Template()
                if not _atexit_registered:
                    atexit.register(_shutdown)
                    _atexit_registered = True
            template = self.current
            try:
                socket.send_fds(template.socket, [header], fds, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                return template, "busy"
            except ConnectionError:  # EPIPE, ECONNRESET
                return template, "gone"
            return template, None

    def discard(self, template: _Template) -> None:
        """Kill it (if it still runs) and stop using it; the next call starts a new one."""
        with self.lock:
            if self.current is template:
                self.current = None
                template.kill()
                template.socket.close()
                if not template.exited():
                    self.retired.append(template)

    def take_all(self) -> list[_Template]:
        with self.lock:
            templates = [*([self.current] if self.current else []), *self.retired]
            self.current, self.retired = None, []
        return templates


_templates = _Templates()
_atexit_registered = False


def _shutdown() -> None:
    """Stop this process's template at interpreter exit: no process is left running or unreaped."""
    for template in _templates.take_all():
        template.stop(STOP_GRACE_S)


def _forget_templates_after_fork() -> None:
    """A forked child must not share its parent's template: it closes its copy and starts its own."""
    global _templates  # noqa: PLW0603 - a forked child owns none of the parent's templates
    inherited = _templates
    for template in (inherited.current, *inherited.retired):
        if template is not None:
            template.socket.close()
    _templates = _Templates()  # also a fresh lock: the parent's was held while it forked


def _hold_templates_while_forking() -> None:
    _templates.lock.acquire()  # so a fork never copies a half-started template


def _release_templates_after_fork() -> None:
    _templates.lock.release()


os.register_at_fork(
    before=_hold_templates_while_forking,
    after_in_parent=_release_templates_after_fork,
    after_in_child=_forget_templates_after_fork,
)
