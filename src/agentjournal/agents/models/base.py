"""The small interface every model adapter implements, and the switch that keeps tests offline.

A request is provider-neutral: instructions (the system prompt), the conversation as plain
dicts, and the tools the model may call. Messages use three shapes::

    {"role": "user", "content": "..."}
    {"role": "assistant", "content": "..." | None, "tool_calls": [{"id", "name", "arguments"}]}
    {"role": "tool", "tool_call_id": "...", "name": "...", "content": "<JSON text>"}
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import orjson

from agentjournal.journal.errors import AgentJournalError

Message = dict[str, Any]
ClientT = TypeVar("ClientT")


class ModelError(AgentJournalError):
    """A model request that failed (bad reply, provider error, blocked request)."""


class RealModelRequestBlocked(ModelError):
    """A request to a real provider while real requests are switched off (as in the test suite)."""


_real_requests_allowed: ContextVar[bool] = ContextVar("agentjournal_real_model_requests", default=True)


def real_requests_allowed() -> bool:
    return _real_requests_allowed.get()


def set_real_requests_allowed(allowed: bool) -> None:
    """Switch requests to real providers on or off for this context (the test suite switches them off)."""
    _real_requests_allowed.set(allowed)


@contextmanager
def real_requests(allowed: bool) -> Iterator[None]:
    """`with real_requests(False):` blocks requests to real providers inside the block."""
    token = _real_requests_allowed.set(allowed)
    try:
        yield
    finally:
        _real_requests_allowed.reset(token)


def check_real_request(provider: str) -> None:
    """Called by every real adapter before it sends anything."""
    if not _real_requests_allowed.get():
        raise RealModelRequestBlocked(
            f"a real {provider} model request was attempted while real model requests are switched off "
            "(use ScriptedModel in tests, or `with real_requests(True):` around a mocked transport)"
        )


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about a tool: its name, description and JSON schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    instructions: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    json_output: bool = False
    """Ask for a JSON object as the reply (the planner's contract)."""

    def fingerprint(self, model: str, messages_digest: bytes | None = None) -> str:
        """SHA-256 of the whole request as `model` sees it: instructions, tools and every message.

        The messages enter through a hash chain (`chain_digest`), so a caller that keeps the chain
        as the conversation grows passes it in and fingerprints each call in time independent of
        the conversation's length.
        """
        if messages_digest is None:
            messages_digest = b""
            for message in self.messages:
                messages_digest = chain_digest(messages_digest, message)
        header = {
            "model": model,
            "instructions": self.instructions,
            "tools": [[spec.name, spec.description, spec.parameters] for spec in self.tools],
            "json_output": self.json_output,
            "messages": len(self.messages),
            "messages_digest": messages_digest.hex(),
        }
        return hashlib.sha256(orjson.dumps(header, option=orjson.OPT_SORT_KEYS)).hexdigest()


def chain_digest(previous: bytes, message: Message) -> bytes:
    """The running digest of a conversation after one more message."""
    return hashlib.sha256(previous + orjson.dumps(message, option=orjson.OPT_SORT_KEYS)).digest()


@dataclass(frozen=True)
class ModelResponse:
    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    """The model that answered, as the provider names it."""

    def to_dict(self) -> dict[str, Any]:
        """The recorded form (in ModelCalled.response); `from_dict` reads it back for replay."""
        reply: dict[str, Any] = {"text": self.text}
        if self.tool_calls:
            reply["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return reply

    @classmethod
    def from_dict(cls, data: dict[str, Any], **usage: Any) -> ModelResponse:
        calls = [ToolCall(c["id"], c["name"], dict(c.get("arguments") or {})) for c in data.get("tool_calls", [])]
        return cls(text=data.get("text"), tool_calls=calls, **usage)


class Model(ABC):
    """An LLM: one async request in, one reply out. Adapters wrap a provider's SDK."""

    name: str
    """The model name recorded in RunStarted and ModelCalled (e.g. `gpt-4o-mini`)."""

    @abstractmethod
    async def request(self, request: ModelRequest) -> ModelResponse: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class PerLoop(Generic[ClientT]):
    """One SDK client per running event loop, made there on first use and closed when that loop ends.

    An SDK client's connection pool belongs to the event loop it first ran on, and `asyncio.run`
    (so every `Runtime.run_sync`) starts a new loop. `make()` returns a client for the current
    loop and whether this object owns it. Closing rides on `loop.shutdown_asyncgens()`, which
    `asyncio.run` calls while the loop still runs: each client is held by a suspended async
    generator whose `finally` closes it if owned and forgets it. A loop closed without that step
    (`run_until_complete`, then `close()`) cannot close anything any more: its entry is dropped
    at the next request and its client left to the garbage collector. Entries are keyed weakly
    by the loop, so finished loops leave nothing behind.
    """

    def __init__(self, make: Callable[[], tuple[ClientT, bool]], close: Callable[[ClientT], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._lock = threading.Lock()  # loops in other threads may ask at the same time
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[ClientT, AsyncIterator[None]]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> ClientT:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            for closed in [other for other in self._clients if other.is_closed()]:
                del self._clients[closed]
            client, owned = self._make()
            keeper = self._keep(client, owned)
            self._clients[loop] = (client, keeper)
        await keeper.__anext__()  # runs to the `yield`, which registers the generator with this loop
        return client

    async def _keep(self, client: ClientT, owned: bool) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._lock:
                self._clients.pop(asyncio.get_running_loop(), None)
            if owned:
                with suppress(Exception):  # the loop is ending: nobody is left to tell
                    await self._close(client)


_ANOTHER_LOOP = "belongs to the event loop it was first used on, and this request runs on another one"


@dataclass(frozen=True)
class SDK(Generic[ClientT]):
    """What an adapter tells `sdk_clients` about its provider's SDK (both SDKs share one design)."""

    provider: str
    """As messages name it, e.g. "OpenAI"."""
    adapter: str
    """The adapter class, e.g. "OpenAIModel"."""
    client_type: type[Any]
    default_pool: Callable[..., Any]
    """The SDK's DefaultAsyncHttpxClient."""
    own_pool_type: type[Any]
    """The pool class the SDK makes when it is given none (a client holding another can't be copied)."""


def sdk_clients(
    sdk: SDK[ClientT],
    model: str,
    *,
    client: Any,
    http_client: Any,
    settings: dict[str, Any],
) -> PerLoop[ClientT]:
    """The clients of one adapter, one per event loop.

    From the settings: a new client per loop, with a pool of its own (not the SDK's default,
    whose `__del__` would close it on whatever loop runs then); the first is built now, so bad
    settings fail here. A ready `client=` serves its first loop and is copied, with a new pool,
    for the others; a function (`client=` or `http_client=`) is called once per loop. A ready
    `http_client=` (or a client holding one) cannot be rebuilt for another loop: a request there
    fails with a ModelError that says what to pass instead. What the caller passed is never closed.
    """
    first: tuple[ClientT, bool] | None
    following: Callable[[], ClientT]

    def refuse_http_client() -> ClientT:
        raise ModelError(
            f"{sdk.provider} {model}: the http_client passed to {sdk.adapter} {_ANOTHER_LOOP} (each "
            "Runtime.run_sync starts a new event loop); pass http_client= a function that returns a new httpx "
            "AsyncClient, e.g. http_client=lambda: httpx.AsyncClient(...)"
        )

    def copy(ready: Any) -> ClientT:
        if not isinstance(ready._client, sdk.own_pool_type):
            raise ModelError(
                f"{sdk.provider} {model}: the client passed to {sdk.adapter} holds its own http_client, which "
                f"{_ANOTHER_LOOP} (each Runtime.run_sync starts a new event loop); pass client= a function "
                f"that returns a new {sdk.client_type.__name__}, or the settings (api_key=, base_url=, "
                "http_client= a function that returns a new httpx AsyncClient)"
            )
        pool = sdk.default_pool(base_url=ready.base_url, timeout=ready.timeout)
        return cast(ClientT, ready.copy(http_client=pool))

    def make(pool: Any) -> ClientT:
        return cast(ClientT, sdk.client_type(**settings, http_client=pool))

    def build() -> ClientT:
        return make(http_client() if callable(http_client) else sdk.default_pool())

    if isinstance(client, sdk.client_type):
        ready = client
        first, following = (ready, False), lambda: copy(ready)
    elif client is not None:
        first, following = None, client
    elif http_client is None or callable(http_client):
        first, following = (build(), True), build
    else:  # a ready http_client stays the caller's: not closed here, and of no use on another loop
        first, following = (make(http_client), False), refuse_http_client

    def for_loop() -> tuple[ClientT, bool]:
        """The first loop gets the client at hand (then forgotten, so it can go with its loop), others a new one."""
        nonlocal first
        taken, first = first, None
        return taken if taken is not None else (following(), True)

    async def close(made: ClientT) -> None:
        await made.close()  # type: ignore[attr-defined]

    return PerLoop(for_loop, close)
