"""The client side: every `call_tool` to any MCP server recorded in the run and decided by its policy.

    async with JournaledSession(ClientSession(read, write)) as session:   # or JournaledSession(Client(...))
        await session.initialize()
        with recorder.start(agent="refunds", input=question) as run:
            result = await session.call_tool("lookup_order", {"order_id": "ORD-5521"})

Inside a recorded run (`current_run()`), a call is proposed in the run and the run's policy decides it:
allowed, it is claimed (unless the server listed the tool as read-only), sent, and its result recorded;
denied, the server is never called and the caller gets an error result saying why; held for a human,
the caller gets an error result naming the approval. Once a human decided (in any process), calling the
tool again with the same arguments in the run (or `resume_call(call_id)`) sends it if approved, with the
arguments the reviewer saw, and answers with the refusal if rejected. On replay (a recorder made by
`Replay`), nothing is sent: each call is answered with its recorded result.

Outside a run, a session given a `recorder` records each call as a run of its own; without one it
refuses to call (a journaled session never makes an unrecorded call: `session.session` is the raw one).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

from mcp import Client, ClientSession
from mcp.types import Tool

from agentjournal.integrations.mcp._calls import (
    RUN_META_KEY,
    Execute,
    OneCall,
    Withheld,
    offload,
    one_call_run,
    open_call,
    proceed,
    read_only,
    resume_one_call,
    resume_step,
)
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder, current_run

__all__ = ["JournaledSession"]

S = TypeVar("S", ClientSession, Client)


class JournaledSession(Generic[S]):
    """A `ClientSession` or `mcp.Client` whose `call_tool` is recorded and policy-gated.

    Everything else is the wrapped session's (`initialize`, `list_tools`, resources, prompts, ...).
    `propagate=False` keeps the run's ids out of the request's `_meta` (by default a call carries
    `io.agentjournal/run`: the run, the call, the event that sent it and its idempotency key, so a
    journaled server links its run to this one)."""

    def __init__(
        self,
        session: S,
        *,
        recorder: RunRecorder | None = None,
        agent: str = "mcp-client",
        user_id: str | None = None,
        propagate: bool = True,
    ) -> None:
        if not isinstance(session, ClientSession | Client):
            raise TypeError(f"JournaledSession wraps an mcp ClientSession or Client, not {type(session).__name__}")
        self.session: S = session
        self.recorder = recorder
        self.agent = agent
        self.user_id = user_id
        self.propagate = propagate
        self._tools: dict[str, Tool] = {}

    # ----- the calls ----------------------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        read_timeout_seconds: float | None = None,
        progress_callback: Any = None,
        *,
        meta: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        **options: Any,
    ) -> Any:
        """The session's `call_tool`, recorded and decided first. `call_id` names the call in the run
        (by default the id the model's last reply gave this tool and these arguments). Returns the
        server's CallToolResult, or an error CallToolResult when the call was withheld
        (`agentjournal.integrations.mcp.withheld(result)` says why)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"call_tool needs a tool name, got {name!r}")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise TypeError(f"call_tool {name}: arguments must be a mapping, not {type(arguments).__name__}")
        given = dict(arguments or {})
        execute = self._sender(read_timeout_seconds, progress_callback, meta, options)
        claim = not self._read_only(name)
        run = current_run()
        if run is not None:
            step = await offload(run, open_call, run, name, given, call_id=call_id, claim=claim, end=False)
            return await proceed(run, step, execute, hint=_in_run_hint, end=False)
        spec = self._one_call(name)
        return await one_call_run(spec, name, given, execute, claim=claim, hint=_one_call_hint)

    async def resume_call(
        self,
        call_id: str,
        *,
        run_id: str | None = None,
        read_timeout_seconds: float | None = None,
        progress_callback: Any = None,
        meta: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Send a call that waited for a human, once approved, with the exact arguments the reviewer saw.

        Inside the run (`with recorder.resume(run_id):`, or the run that proposed it) give the call id;
        for a run of its own (made outside a run) also its `run_id`, and that run ends with the call.
        Rejected (or expired): an error result, nothing sent. Still waiting: the held result again.
        Already run: its recorded result, nothing sent again."""
        execute = self._sender(read_timeout_seconds, progress_callback, meta, options)
        if run_id is None:
            run = current_run()
            if run is None:
                raise RecorderError(
                    f"resume_call({call_id!r}) outside a run: resume the run first (`with recorder.resume(run_id):`)"
                    " or pass run_id= for a call this session recorded as a run of its own"
                )
            step = await offload(run, resume_step, run, call_id, end=False)
            return await proceed(run, step, execute, hint=_in_run_hint, end=False)
        recorder = self._recorder(f"resume_call({call_id!r}, run_id={run_id!r})")
        return await resume_one_call(recorder, run_id, execute, hint=_one_call_hint, call_id=call_id)

    # ----- what the server told us about its tools -------------------------------------------------

    async def list_tools(self, *args: Any, **kwargs: Any) -> Any:
        """The session's `list_tools`; the wrapper remembers which tools the server says are read-only
        (`readOnlyHint`: their calls are not claimed) and their schemas (pinned in runs of their own)."""
        listed = await self.session.list_tools(*args, **kwargs)
        for tool in listed.tools:
            self._tools[tool.name] = tool
        return listed

    def _read_only(self, name: str) -> bool:
        return read_only(self._tools.get(name))

    # ----- helpers -----------------------------------------------------------------------------------

    def _sender(
        self,
        read_timeout_seconds: float | None,
        progress_callback: Any,
        meta: Mapping[str, Any] | None,
        options: dict[str, Any],
    ) -> Execute:
        session: Any = self.session  # ClientSession and Client name their call_tool overloads differently

        async def send(run: RecordedRun, call_id: str, arguments: dict[str, Any]) -> Any:
            call = run.state.calls[call_id]
            sent_meta = dict(meta) if meta else None
            if self.propagate:
                link = {
                    "run_id": run.run_id,
                    "call_id": call_id,
                    "event_id": run.state.last_event_id,
                    "correlation_id": run.correlation_id,
                }
                if call.claim is not None:
                    link["idempotency_key"] = call.claim.idempotency_key
                sent_meta = {**(sent_meta or {}), RUN_META_KEY: link}
            return await session.call_tool(
                call.tool, arguments, read_timeout_seconds, progress_callback, meta=sent_meta, **options
            )

        return send

    def _recorder(self, what: str) -> RunRecorder:
        if self.recorder is None:
            raise RecorderError(
                f"{what} outside a recorded run: start one (`with recorder.start(...):`), or give the session"
                " recorder= to record each call as a run of its own; `session.session` calls unrecorded"
            )
        return self.recorder

    def _one_call(self, name: str) -> OneCall:
        recorder = self._recorder(f"call_tool({name!r})")
        tool = self._tools.get(name)
        specs: tuple[dict[str, Any], ...] = ()
        if tool is not None:
            specs = ({"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema},)
        return OneCall(recorder, self.agent, user_id=self.user_id, tools=specs)

    # ----- the wrapped session ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name == "session":  # not set yet (a half-built object): no recursion
            raise AttributeError(name)
        return getattr(self.session, name)

    async def __aenter__(self) -> JournaledSession[S]:
        await self.session.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.session.__aexit__(kind, error, tb)


def _in_run_hint(decision: Withheld) -> str:
    return (
        f"call {decision.tool} again with the same arguments inside run {decision.run_id}"
        f" (or `await session.resume_call({decision.call_id!r})`)"
    )


def _one_call_hint(decision: Withheld) -> str:
    return f"send it with `await session.resume_call({decision.call_id!r}, run_id={decision.run_id!r})`"
