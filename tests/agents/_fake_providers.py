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


@dataclass(frozen=True)
class Sse:
    """A 200 reply of server-sent events (`stream=True`): `(event name or None, JSON data or "[DONE]")`."""

    events: list[tuple[str | None, dict[str, Any] | str]]

    def body(self) -> bytes:
        lines = []
        for name, data in self.events:
            if name is not None:
                lines.append(f"event: {name}")
            lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}")
            lines.append("")
        return ("\n".join(lines) + "\n").encode()


Reply = dict[str, Any] | Status | Raw | Drop | Sse
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
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)
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
        if isinstance(reply, Sse):
            self._send(200, reply.body(), "text/event-stream")
        elif isinstance(reply, Raw):
            self._send(200, reply.body)
        elif isinstance(reply, Status):
            self._send(reply.code, json.dumps(reply.body).encode())
        else:
            self._send(200, json.dumps(reply).encode())

    def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
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


# ----- streams and the Responses API (the integrations' client wrappers) ----------------------------------


def anthropic_stream(reply: dict[str, Any]) -> Sse:
    """A Messages API reply (`anthropic_reply`) as the server-sent events of `stream=True`."""
    start = {
        **reply,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": reply["usage"]["input_tokens"], "output_tokens": 1},
    }
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(reply["content"]):
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
        else:
            opened = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            text = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": text[:5]},
                {"type": "input_json_delta", "partial_json": text[5:]},
            ]
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": opened}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": reply["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": reply["usage"]["output_tokens"]},
    }
    events += [("message_delta", delta), ("message_stop", {"type": "message_stop"})]
    return Sse(events)


def openai_stream(reply: dict[str, Any]) -> Sse:
    """A Chat Completions reply (`openai_reply`) as the chunks of `stream=True` with usage included."""
    message = reply["choices"][0]["message"]
    base = {"id": reply["id"], "object": "chat.completion.chunk", "created": reply["created"], "model": reply["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events: list[tuple[str | None, dict[str, Any] | str]] = [(None, chunk({"role": "assistant", "content": ""}))]
    for word in (message.get("content") or "").split(" ") if message.get("content") else []:
        events.append((None, chunk({"content": word + " "})))
    for index, call in enumerate(message.get("tool_calls") or []):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        events.append((None, chunk({"tool_calls": [head]})))
        events.append(
            (None, chunk({"tool_calls": [{"index": index, "function": {"arguments": call["function"]["arguments"]}}]}))
        )
    events.append((None, chunk({}, reply["choices"][0]["finish_reason"])))
    events.append((None, {**base, "choices": [], "usage": reply["usage"]}))
    events.append((None, "[DONE]"))
    return Sse(events)


def responses_reply(output: list[dict[str, Any]], prompt: int = 150, completion: int = 25) -> dict[str, Any]:
    """A Responses API reply (`Response`) with these output items."""
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_760_000_000,
        "model": "gpt-4.1-mini-2025-04-14",
        "status": "completed",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def responses_text(text: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    return responses_reply(
        [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": content}]
    )


def responses_function_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }
    return responses_reply([item])


def responses_stream(reply: dict[str, Any]) -> Sse:
    """A Responses API reply as the events of `stream=True` (created, then completed with the whole reply)."""
    created = {**reply, "status": "in_progress", "output": []}
    return Sse(
        [
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
            ("response.completed", {"type": "response.completed", "sequence_number": 1, "response": reply}),
        ]
    )
