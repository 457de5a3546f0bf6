"""The sandbox's template process: imports tool modules once, then forks one limited child per call.

Never imported by the package: `agentjournal.agents.sandbox` starts it by name as
`python -I -m agentjournal.agents.sandbox_server`, in a new session, with an environment of PATH
and LANG only, so it holds none of the parent's secrets. At module level it needs only the
standard library and orjson; pydantic arrives with the tool modules it imports.

Its fd 0 is an AF_UNIX SOCK_SEQPACKET socket to the parent. Each message is one call: a JSON
header `{"module", "qualname", "sys_path", "cwd"}` carrying four file descriptors (SCM_RIGHTS):

- request (read): the child reads `{"arguments", "env", "cpu_seconds", "memory_bytes"}` from it,
  written by the parent, so the tool's environment and arguments never pass through the template;
- result (write): the child writes its JSON result there, and nothing else does;
- stderr (write): the child's fds 1 and 2, so the tool's prints (and only them) reach the parent;
- status (write): the template writes `{"taken": true}` before it imports a module for the call,
  `{"pid": N}` once the child exists (in its own process group), then `{"status": W}` (the raw
  wait status) when it has reaped it; or `{"error": "..."}` when it could not fork. If the parent
  has closed it, the call is dropped, or its child killed at once.

The template imports the tool's module with fds 1 and 2 pointing at that call's stderr, so what an
import prints reaches the call that caused it. An import that fails is that call's sandbox_error
(the child reports it) and is tried again on the next call. When the socket reaches EOF (the parent
closed it or died), the template kills the process group of every child still running, reaps them
and exits.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

import orjson

__all__ = ["main"]

TOOLS = "agentjournal.agents.tools"
HEADER_BYTES = 1 << 18
"""The largest call header the template accepts (module, qualname, sys.path, cwd)."""


class _Entry:
    """A resolved tool: the function and what the child needs to turn JSON arguments into its values."""

    __slots__ = ("fn", "idempotency_parameter", "jsonable_output", "keyword_arguments", "model")

    def __init__(self, fn: Callable[..., Any], model: Any, tools: Any) -> None:
        self.fn = fn
        self.model = model
        self.keyword_arguments: Callable[[Any], dict[str, Any]] = tools.keyword_arguments
        self.jsonable_output: Callable[[Any], Any] = tools.jsonable_output
        self.idempotency_parameter: str = tools.IDEMPOTENCY_PARAMETER


class _Abandoned(Exception):
    """The parent closed the call's status pipe before the template took the call."""


class _Template:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.entries: dict[tuple[str, str], _Entry] = {}
        self.children: dict[int, int] = {}  # pid -> its call's status fd
        self.base_path = list(sys.path)
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _ignore)  # a Python handler, so SIGCHLD writes to the wake-up fd

    def serve(self) -> None:
        poller = select.poll()  # no fd of its own, unlike epoll, so a child has nothing more to close
        poller.register(self.control.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                elif not self._receive():
                    self._stop()
                    return
            self._reap()

    def _receive(self) -> bool:
        """Take one call from the parent; False at EOF."""
        try:
            message, fds, flags, _ = socket.recv_fds(
                self.control, HEADER_BYTES, 4, getattr(socket, "MSG_CMSG_CLOEXEC", 0)
            )
        except InterruptedError:
            return True
        if not message and not fds:
            return False
        if len(fds) != 4 or flags & socket.MSG_CTRUNC:
            _close(*fds)
            return True
        if flags & socket.MSG_TRUNC:
            _send(fds[3], {"error": f"the call's header is larger than {HEADER_BYTES} bytes"})
            _close(*fds)
            return True
        request_fd, result_fd, stderr_fd, status_fd = fds
        try:
            pid = self._start(orjson.loads(message), request_fd, result_fd, stderr_fd, status_fd)
        except _Abandoned:
            _close(request_fd, result_fd, stderr_fd, status_fd)
            return True
        except Exception as exc:  # cannot fork (EAGAIN, ENOMEM) or a malformed header
            _send(status_fd, {"error": f"{type(exc).__name__}: {exc}"})
            _close(request_fd, result_fd, stderr_fd, status_fd)
            return True
        self.children[pid] = status_fd
        if not _send(status_fd, {"pid": pid}):  # the parent gave up on this call already
            _kill_group(pid)
        return True

    def _start(self, header: dict[str, Any], request_fd: int, result_fd: int, stderr_fd: int, status_fd: int) -> int:
        self._follow(header["sys_path"], header.get("cwd"))
        module, qualname = header["module"], header["qualname"]
        entry: _Entry | str | None = self.entries.get((module, qualname))
        if entry is None:
            if not _send(status_fd, {"taken": True}):  # the parent gave up before we got to it
                raise _Abandoned
            entry = _load(module, qualname, stderr_fd)
            if isinstance(entry, _Entry):
                self.entries[module, qualname] = entry
        gc.freeze()  # what the template built is never scanned in a child, so its pages stay shared
        pid = os.fork()
        if pid == 0:
            others = [self.wake_r, self.wake_w, status_fd, *self.children.values()]
            _child(entry, request_fd, result_fd, stderr_fd, others)
        with contextlib.suppress(OSError):  # also here, so the group exists before the parent hears the pid
            os.setpgid(pid, pid)
        _close(request_fd, result_fd, stderr_fd)
        return pid

    def _follow(self, sys_path: list[str], cwd: str | None) -> None:
        """Import from the parent's sys.path and run in its working directory, as at call time."""
        wanted = [*sys_path, *(entry for entry in self.base_path if entry not in sys_path)]
        if sys.path != wanted:
            sys.path[:] = wanted
        if cwd:
            with contextlib.suppress(OSError):
                os.chdir(cwd)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = self.children.pop(pid, None)
            if fd is not None:
                _send(fd, {"status": status})
                _close(fd)

    def _stop(self) -> None:
        """The parent is gone: nobody will read these children's results, so they are killed."""
        for pid in self.children:
            _kill_group(pid)
        for pid, fd in list(self.children.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            _close(fd)
        self.children.clear()


def _ignore(signum: int, frame: object) -> None:
    pass


def _load(module_name: str, qualname: str, stderr_fd: int) -> _Entry | str:
    """Import the tool in the template (once); an error message when that fails."""
    saved = os.dup(1), os.dup(2)
    os.dup2(stderr_fd, 1)
    os.dup2(stderr_fd, 2)
    try:
        importlib.invalidate_caches()  # the parent may have written the module a moment ago
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        tools = sys.modules.get(TOOLS)
        if tools is not None and isinstance(target, tools.Tool):
            return _Entry(target.fn, target.arguments_model, tools)
        tools = importlib.import_module(TOOLS)  # the function itself, when its Tool is bound to another name
        model, _ = tools.arguments_model(qualname, target)
        return _Entry(target, model, tools)
    except (ImportError, AttributeError) as exc:
        return f"cannot import {module_name}.{qualname}: {exc}"
    except (Exception, SystemExit) as exc:
        return f"cannot import {module_name}.{qualname}: {type(exc).__name__}: {exc}"
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        _close(*saved)


def _send(fd: int, message: dict[str, Any]) -> bool:
    try:
        os.write(fd, orjson.dumps(message) + b"\n")
    except OSError:  # EPIPE: the parent closed its end
        return False
    return True


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # os.kill as well: the child may not have made its group yet
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


# ----- the child ------------------------------------------------------------------------------


def _child(entry: _Entry | str, request_fd: int, result_fd: int, stderr_fd: int, others: list[int]) -> NoReturn:
    """Runs in the forked child: never returns to the template's loop."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own process group, so the parent's kill reaches anything it starts
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(request_fd, 0)  # replaces the template's socket
        os.dup2(stderr_fd, 1)  # the tool's prints go to stderr; only result_fd carries the result
        os.dup2(stderr_fd, 2)
        _close(request_fd, stderr_fd, *others)
        code = _run(entry, result_fd)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(entry: _Entry | str, result_fd: int) -> int:
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    request = orjson.loads(b"".join(chunks))
    os.environ.clear()
    os.environ.update(request["env"])
    _limit_self(request["cpu_seconds"], request["memory_bytes"])
    if isinstance(entry, str):
        result: dict[str, Any] = {"ok": False, "error_type": "sandbox_error", "error": entry}
    else:
        try:
            result = _call(entry, request["arguments"])
        except MemoryError:
            limit_mb = request["memory_bytes"] // (1024 * 1024)
            result = {
                "ok": False,
                "error_type": "resource_limit",
                "error": f"exceeded its memory limit of {limit_mb} MB",
            }
    view = memoryview(orjson.dumps(result))
    while view:
        view = view[os.write(result_fd, view) :]
    os.close(result_fd)
    return 0


def _limit_self(cpu_seconds: float, memory_bytes: int) -> None:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)  # a forked child's own, near zero
    cpu = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL at the hard one
    # The address space inherited from the template (the interpreter, the imported modules) does not
    # count: the tool may map memory_bytes more.
    address_space = _mapped_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _mapped_bytes() -> int:
    """This process's address space (VmSize), or 0 where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _call(entry: _Entry, arguments: dict[str, Any]) -> dict[str, Any]:
    # The arguments arrive as JSON; validating them again turns them back into Python values (a datetime).
    kwargs = dict(arguments)
    key = kwargs.pop(entry.idempotency_parameter, None)
    kwargs = entry.keyword_arguments(entry.model.model_validate(kwargs))
    if key is not None:
        kwargs[entry.idempotency_parameter] = key
    try:
        output = entry.fn(**kwargs)
        if isinstance(output, Coroutine):
            import asyncio

            output = asyncio.run(output)
    except MemoryError:
        raise
    except Exception as exc:
        return {"ok": False, "error_type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
    try:
        return {"ok": True, "output": entry.jsonable_output(output)}
    except TypeError as exc:
        return {"ok": False, "error_type": "non_json_output", "error": str(exc)}


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for this SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main() -> None:
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # descriptors the parent let a spawned process inherit
    control = socket.socket(fileno=0)
    try:
        _Template(control).serve()
    finally:
        control.detach()
    os._exit(0)


if __name__ == "__main__":
    main()
