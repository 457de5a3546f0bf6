"""The server side: every tool call an MCP server written with the SDK receives is a run, under policy.

    mcp = MCPServer("shop")                                   # or the low-level mcp.server.Server
    journal_server(mcp, RunRecorder(journal, policy=policy))  # appends JournalMiddleware to mcp.middleware
    mcp.run()

The middleware sits in the SDK's own chain (`Server.middleware`, which wraps every inbound message
before validation): for each `tools/call` it starts a run of its own (RunStarted with the call as the
input, the server as the agent), records the proposal and the policy's decision, and calls the tool
function only when the policy allows it; the result (or the error) is recorded and the run ends with
it. A denied call never reaches the tool; a held call waits for a human, and the client calls again
with `_meta: {"io.agentjournal/approval": "<approval id>"}` to have it run once approved. Calls from a
journaled client carry its run's correlation id, and the run starts caused by the client's event.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, Tool

from agentjournal.agents.decider import arguments_hash
from agentjournal.integrations.mcp._calls import (
    APPROVAL_META_KEY,
    RUN_META_KEY,
    OneCall,
    ResultNotRecorded,
    Withheld,
    error_result,
    one_call_run,
    read_only,
    resume_one_call,
)
from agentjournal.integrations.recorder import RecordedRun, RunRecorder
from agentjournal.projections.queries import find_approval

__all__ = ["JournalMiddleware", "journal_server"]

logger = logging.getLogger(__name__)

UserOf = Callable[[ServerRequestContext[Any, Any]], str | None]
ListTools = Callable[[], Awaitable[Sequence[Tool]]]


class JournalMiddleware:
    """`ServerMiddleware` that journals and policy-gates every `tools/call`, one run per call.

    `agent` names the server in its runs; `user_id(ctx)` says whom a call is for (by default the
    authenticated token's subject, else its client id, else nobody); `tools()` lists the server's
    tools, to pin the called tool's schema in RunStarted (journal_server passes MCPServer.list_tools).
    Other methods (tools/list, resources, prompts, notifications) pass through untouched."""

    def __init__(
        self,
        recorder: RunRecorder,
        *,
        agent: str = "mcp-server",
        user_id: UserOf | None = None,
        tools: ListTools | None = None,
    ) -> None:
        if not isinstance(recorder, RunRecorder):
            raise TypeError(f"JournalMiddleware needs a RunRecorder, not {type(recorder).__name__}")
        self.recorder = recorder
        self.agent = agent
        self.user_id = user_id
        self.tools = tools

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        params = dict(ctx.params or {})
        name, given = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or not (given is None or isinstance(given, Mapping)):
            return await call_next(ctx)  # malformed: the SDK refuses it (invalid params), and no tool runs
        arguments = dict(given or {})
        meta = dict(ctx.meta or {})
        raised: list[BaseException] = []

        async def execute(run: RecordedRun, call_id: str, sent: dict[str, Any]) -> Any:
            try:  # the exact arguments recorded (for an approved call: those the reviewer saw)
                return await call_next(dataclasses.replace(ctx, params={**params, "arguments": sent}))
            except BaseException as exc:
                raised.append(exc)
                raise

        try:
            approval_id = meta.get(APPROVAL_META_KEY)
            if approval_id is not None:
                return await self._resume(approval_id, name, arguments, execute)
            tool = await self._tool(name)
            specs = () if tool is None else (_spec(tool),)
            spec = OneCall(self.recorder, self.agent, user_id=self._user(ctx), tools=specs)
            link = meta.get(RUN_META_KEY)
            link = link if isinstance(link, Mapping) else {}
            correlation_id, cause = link.get("correlation_id"), link.get("event_id")
            with self.recorder.journal.context(
                correlation_id=correlation_id if isinstance(correlation_id, str) else None,
                causation_id=cause if isinstance(cause, str) else None,
            ):
                claim = not read_only(tool)  # written and claimed before the tool can act
                result: HandlerResult = await one_call_run(spec, name, arguments, execute, claim=claim, hint=_hint)
                return result
        except ResultNotRecorded as exc:
            logger.error("%s", exc)
            raise MCPError(INTERNAL_ERROR, f"{exc}; the client gets no result") from exc
        except Exception as exc:
            if raised and exc is raised[0]:
                raise  # the tool's (or the SDK's) own error, recorded as the call's failure
            logger.error("agentjournal could not record the call to %s: %s", name, exc)
            ran = " (it had run)" if raised else ", so it was not run"
            raise MCPError(INTERNAL_ERROR, f"agentjournal could not record the call to {name}{ran}: {exc}") from exc

    async def _resume(self, approval_id: Any, name: str, arguments: dict[str, Any], execute: Any) -> HandlerResult:
        if not isinstance(approval_id, str):
            return error_result(f"_meta {APPROVAL_META_KEY} must be an approval id (text); nothing was called")
        journal = self.recorder.journal
        found = await anyio.to_thread.run_sync(lambda: find_approval(journal, approval_id))
        if found is None:
            return error_result(f"there is no approval {approval_id} in this server's journal; nothing was called")
        if found.tool != name or found.arguments_hash != arguments_hash(arguments):
            return error_result(
                f"approval {approval_id} is for {found.tool} with the arguments the reviewer saw, not this call"
                f" to {name}; nothing was called"
            )
        result: HandlerResult = await resume_one_call(
            self.recorder, found.run_id, execute, hint=_hint, approval_id=approval_id
        )
        return result

    def _user(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        if self.user_id is not None:
            return self.user_id(ctx)
        token = get_access_token()
        if token is None:
            return None
        return token.subject or token.client_id

    async def _tool(self, name: str) -> Tool | None:
        if self.tools is None:
            return None
        return next((tool for tool in await self.tools() if tool.name == name), None)


def _spec(tool: Tool) -> dict[str, Any]:
    """The called tool's schema, pinned in its run's RunStarted."""
    return {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema}


def journal_server(
    server: MCPServer[Any] | Server[Any],
    recorder: RunRecorder,
    *,
    agent: str | None = None,
    user_id: UserOf | None = None,
) -> JournalMiddleware:
    """Journal every tool call `server` receives: appends a JournalMiddleware (innermost, so the SDK's
    OpenTelemetry span is active when the run is written) and returns it. The runs' agent is the
    server's name unless `agent` names another."""
    if not isinstance(server, MCPServer | Server):
        raise TypeError(f"journal_server needs an MCPServer or a low-level mcp Server, not {type(server).__name__}")
    tools: ListTools | None = server.list_tools if isinstance(server, MCPServer) else None
    middleware = JournalMiddleware(recorder, agent=agent or server.name, user_id=user_id, tools=tools)
    server.middleware.append(middleware)
    return middleware


def _hint(decision: Withheld) -> str:
    return (
        f"call {decision.tool} again with the same arguments and"
        f' `_meta: {{"{APPROVAL_META_KEY}": "{decision.approval_id}"}}` to have it run'
    )
