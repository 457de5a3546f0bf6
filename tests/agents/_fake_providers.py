"""A local HTTP server that answers like the OpenAI and Anthropic APIs (not collected: no test_ prefix).

The real SDK clients talk to it over TCP on 127.0.0.1, with HTTP/1.1 keep-alive, so their
connection pools, event-loop binding and error handling run as they do against the provider.
Each connection is counted, so a test can tell a reused connection from a new one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Status:
    """An HTTP error reply with a JSON body."""

    code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Raw:
    """A 200 reply whose body is sent as is (e.g. JSON that does not parse)."""

    body: bytes


@dataclass(frozen=True)
class Drop:
    """Close the connection after reading the request, without answering."""


Reply = dict[str, Any] | Status | Raw | Drop
Script = list[Reply] | Callable[[dict[str, Any]], Reply]
"""Replies in order (reply N answers request N), or a function from the request body to the reply."""


class FakeProvider:
    """What the server saw (paths, JSON bodies, connections) and the script it answers from."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.paths: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.connections = 0
        self.closed = 0
        self.port = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply_to(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        with self._lock:
            self.paths.append(path)
            self.headers.append(headers)
            self.requests.append(body)
            index = len(self.requests) - 1
        if callable(self.script):
            return self.script(body)
        return self.script[index]

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def disconnected(self) -> None:
        with self._lock:
            self.closed += 1

    def wait_closed(self, count: int, timeout_s: float = 2.0) -> bool:
        """Whether `count` connections have been closed (by either side) within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.closed >= count:
                return True
            time.sleep(0.005)
        return self.closed >= count


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections alive between requests
    timeout = 10  # a kept-alive connection nobody closes frees its thread eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.provider.connected()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.provider.disconnected()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        reply = self.server.provider.reply_to(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if isinstance(reply, Drop):
            self.close_connection = True
            return
        if isinstance(reply, Raw):
            self._send(200, reply.body)
        elif isinstance(reply, Status):
            self._send(reply.code, json.dumps(reply.body).encode())
        else:
            self._send(200, json.dumps(reply).encode())

    def _send(self, code: int, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: FakeProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


@contextmanager
def serving(script: Script) -> Iterator[FakeProvider]:
    """Serve `script` on a free port of 127.0.0.1 for the duration of the block."""
    provider = FakeProvider(script)
    server = _Server(provider)
    provider.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def openai_reply(message: dict[str, Any], prompt: int = 120, completion: int = 30) -> dict[str, Any]:
    """A Chat Completions reply (`ChatCompletion`) holding one assistant message."""
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def openai_tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return openai_reply(
        {
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            ],
        }
    )


def anthropic_reply(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    """A Messages API reply (`Message`)."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 200, "output_tokens": 40},
    }


def anthropic_tool_use(name: str, arguments: dict[str, Any], call_id: str = "toolu_1") -> dict[str, Any]:
    return anthropic_reply([{"type": "tool_use", "id": call_id, "name": name, "input": arguments}], "tool_use")
