"""A small MCP server for the MCP integration's tests, run as a real process over stdio.

    python mcp_shop_server.py --log calls.txt                        # a plain MCP server
    python mcp_shop_server.py --log calls.txt --journal URL [--policy policy.yaml]  # journaled
    python mcp_shop_server.py --lowlevel ...                         # the SDK's low-level Server

Every tool invocation appends the tool's name and arguments to the `--log` file (one JSON line), so a
test can see which calls reached the tool functions and which did not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server import Server, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from pydantic import BaseModel


class CallLog:
    """Where the tool functions write down that they ran."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __call__(self, tool: str, **arguments: Any) -> None:
        if self.path is not None:
            with self.path.open("a") as log:
                log.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


class Order(BaseModel):
    order_id: str
    status: str
    amount: float


def build_server(logged: CallLog) -> MCPServer:
    mcp = MCPServer("shop", log_level="WARNING")

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup_order(order_id: str) -> Order:
        """Look an order up."""
        logged("lookup_order", order_id=order_id)
        return Order(order_id=order_id, status="delivered", amount=89.99)

    @mcp.tool()
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund (part of) an order."""
        logged("issue_refund", order_id=order_id, amount=amount)
        return {"refund_id": f"REF-{order_id}", "amount": amount}

    @mcp.tool()
    def delete_order(order_id: str) -> str:
        """Delete an order."""
        logged("delete_order", order_id=order_id)
        return f"deleted {order_id}"

    @mcp.tool()
    def cancel_order(order_id: str) -> str:
        """Cancel an order; fails for orders that have shipped."""
        logged("cancel_order", order_id=order_id)
        raise ToolError(f"order {order_id} has shipped and cannot be cancelled")

    @mcp.tool()
    async def slow_refund(order_id: str, ctx: Context, seconds: float = 0.0) -> str:
        """A refund that takes a while and reports its progress."""
        logged("slow_refund", order_id=order_id, seconds=seconds)
        await ctx.report_progress(0.5, 1.0, "half way")
        await anyio.sleep(seconds)
        return f"refunded {order_id}"

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    def what_i_got(ctx: Context) -> dict[str, Any]:
        """The `_meta` this call arrived with (the tests read what a journaled client sent)."""
        logged("what_i_got")
        meta = ctx.request_context.meta or {}
        return {"meta": {key: value for key, value in meta.items() if key.startswith("io.agentjournal")}}

    return mcp


def build_lowlevel_server(logged: CallLog) -> Server[Any]:
    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        schema = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
        return ListToolsResult(
            tools=[Tool(name="delete_order", input_schema=schema), Tool(name="lookup_order", input_schema=schema)]
        )

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        arguments = params.arguments or {}
        logged(params.name, **arguments)
        text = f"{params.name} {arguments.get('order_id')}: done"
        return CallToolResult(content=[TextContent(type="text", text=text)])

    return Server("shop-lowlevel", on_list_tools=list_tools, on_call_tool=call_tool)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path)
    parser.add_argument("--journal")
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--lowlevel", action="store_true")
    args = parser.parse_args(argv)
    logged = CallLog(args.log)
    server: MCPServer | Server[Any] = build_lowlevel_server(logged) if args.lowlevel else build_server(logged)
    if args.journal:
        from agentjournal import Journal
        from agentjournal.agents import Policy
        from agentjournal.integrations import RunRecorder
        from agentjournal.integrations.mcp import journal_server

        policy = Policy.load(args.policy) if args.policy else None
        journal = Journal.open(args.journal)
        journal_server(server, RunRecorder(journal, policy=policy))
    if isinstance(server, MCPServer):
        server.run()
    else:
        from mcp.server.stdio import stdio_server

        async def serve() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(serve)


if __name__ == "__main__":
    main(sys.argv[1:])
