"""NATS JetStream: a relay transport that publishes dispatches, and a consumer that hands them to a receiver.

    transport = NatsTransport("nats://127.0.0.1:4222")          # a relay's transport
    Relay("crm", transport).runner(journal).catch_up()

    consumer = NatsConsumer(durable="crm", subjects=["agentjournal.crm.>"], receive=receiver)
    consumer.run(stop=stopping.is_set)                          # on the receiving node

Every dispatch is published to `<prefix><destination>` with the header `Nats-Msg-Id` set to its
dispatch id, so JetStream stores a repeat published within the stream's duplicate window only
once; a repeat older than the window is stored again and the receiver's dedupe ring drops it.
The consumer acknowledges a message only after the receiver returned (its effect committed) and
with a double ack, so a crash or a lost ack means a redelivery, never a lost message.

Both classes are synchronous (relays and workers are) and each owns a private asyncio loop on a
background thread, where nats-py runs. nats-py's own reconnection is off: a lost connection
fails the operation in flight with a clear error, and the next call connects again, which keeps
every failure visible to the relay's retries and to the consumer's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

try:
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ImportError(
        f"the NATS JetStream relay needs the `nats` extra: pip install 'agentjournal[nats]' ({exc})"
    ) from exc

import orjson

from agentjournal.journal.errors import AgentJournalError, InvalidEventError
from agentjournal.journal.location import redact
from agentjournal.messaging.outbox import Dispatch
from agentjournal.messaging.relays import UndeliverableError

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT_PREFIX",
    "DEFAULT_URL",
    "MSG_ID_HEADER",
    "NAK_DELAY_CAP",
    "InvalidSubjectError",
    "NatsConsumer",
    "NatsError",
    "NatsTransport",
    "Receive",
    "check_subject",
]

logger = logging.getLogger("agentjournal.nats")

T = TypeVar("T")
Receive = Callable[[Dispatch], object]
"""Commits a dispatch's effect in the receiver's own transaction (dropping repeats) or raises."""

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "AGENTJOURNAL"
DEFAULT_SUBJECT_PREFIX = "agentjournal."
MSG_ID_HEADER = "Nats-Msg-Id"
NAK_DELAY_CAP = 60.0
"""The longest a failed message waits before JetStream delivers it again."""

_TOKEN = re.compile(r"[^\s.*>\x00-\x1f\x7f]+")
"""A subject token: no whitespace or control characters, no dot, no wildcard."""
_NAME = re.compile(r"[^\s.*>/\\\x00-\x1f\x7f]+")
"""A stream or consumer name: a token that can also be a file name on the server."""

# OSError includes TimeoutError: every handler catches TimeoutError (nats-py's and asyncio's) first.
_CONNECTION_ERRORS = (
    OSError,
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
)


class NatsError(AgentJournalError):
    """A NATS operation that failed: an unreachable server, a stream that is not as needed, no PubAck."""


class InvalidSubjectError(NatsError, UndeliverableError):
    """A destination that is not a NATS subject: no retry can publish it, so the relay dead-letters it."""


def check_subject(subject: str, what: str = "subject") -> str:
    """`subject` if it is a literal NATS subject (dot-separated tokens, no wildcards); raises otherwise."""
    if not isinstance(subject, str) or not all(_TOKEN.fullmatch(token) for token in subject.split(".")):
        raise InvalidSubjectError(
            f"{what} {subject!r} is not a NATS subject: use dot-separated tokens without spaces, '*' or '>'"
        )
    return subject


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise NatsError(f"{what} {name!r} is not a valid JetStream name: no spaces, '.', '*', '>' or slashes")
    return name


def _check_filter(subject: str) -> str:
    """A consumer's filter: tokens, where a token may be `*` and the last may be `>`."""
    tokens = subject.split(".") if isinstance(subject, str) else [""]
    for index, token in enumerate(tokens):
        if token == "*" or (token == ">" and index == len(tokens) - 1) or _TOKEN.fullmatch(token):
            continue
        raise NatsError(f"consumer filter {subject!r} is not a NATS subject filter (tokens, '*', a final '>')")
    return subject


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise NatsError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _LoopThread:
    """A private asyncio loop on a daemon thread, where the sync API runs its coroutines."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop; its own timeouts should fire first, `timeout` is the backstop."""
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise NatsError("a NATS call from inside its own event loop would deadlock")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise NatsError(f"a NATS operation did not finish within {timeout:.1f}s") from None
        except concurrent.futures.CancelledError:
            raise NatsError("a NATS operation was cancelled (the connection closed under it)") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _Connection:
    """One nats-py client on a loop thread: connects on demand, and again after a loss."""

    def __init__(self, url: str, *, timeout: float, connect_timeout: float, name: str) -> None:
        self.url = url
        self.where = redact(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.name = name
        self.client: Client | None = None
        self._loop: _LoopThread | None = None
        self._closed = False

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coroutine.close()
            raise NatsError(f"the NATS connection to {self.where} is closed")
        if self._loop is None:
            self._loop = _LoopThread(f"agentjournal-{self.name}")
        return self._loop.call(coroutine, (timeout or self.timeout) + 2 * self.connect_timeout + 5)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def connect(self) -> Client:
        """A connected client; raises NatsError naming the URL when the server does not answer."""
        if self.client is not None:
            if self.client.is_connected:
                return self.client
            await self.discard()
        seen: list[Exception] = []
        connecting = True

        async def on_error(error: Exception) -> None:
            """nats-py's asynchronous errors. A lost connection also fails the call in flight, which
            reports it, so it is only noted here; anything else (a slow consumer, a permission) is a warning."""
            seen.append(error)
            if not connecting:
                lost = isinstance(error, OSError | nats.errors.StaleConnectionError | nats.errors.ConnectionClosedError)
                logger.log(logging.INFO if lost else logging.WARNING, "NATS at %s: %s", self.where, _describe(error))

        client = Client()
        try:
            # One attempt and one quick retry, then NoServersError: a wrong port fails in milliseconds,
            # a silent host after 2 * connect_timeout. nats-py types connect_timeout as int; it takes seconds.
            await client.connect(
                servers=[self.url],
                name=f"agentjournal-{self.name}",
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=cast(int, self.connect_timeout),
                error_cb=on_error,
            )
        except (TimeoutError, *_CONNECTION_ERRORS, nats.errors.Error) as error:
            await _abandon(client)
            cause = seen[-1] if isinstance(error, nats.errors.NoServersError) and seen else error
            if isinstance(cause, nats.errors.AuthorizationError):
                raise NatsError(f"NATS at {self.where} refused the credentials: {_describe(cause)}") from None
            reason = f"no answer within {self.connect_timeout:g}s" if isinstance(cause, TimeoutError) else None
            raise NatsError(f"cannot reach NATS at {self.where}: {reason or _describe(cause)}") from None
        connecting = False
        self.client = client
        return client

    async def discard(self) -> None:
        """Forget the client (lost or unusable), closing it without waiting on a dead socket."""
        client, self.client = self.client, None
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.close(), self.connect_timeout)
            except Exception as error:
                logger.debug("closing the NATS client of %s: %s", self.where, _describe(error))

    def lost(self, error: BaseException, doing: str) -> NatsError:
        """The error for a connection that broke while `doing`; the next call reconnects."""
        return NatsError(f"lost the connection to NATS at {self.where} while {doing}: {_describe(error)}")

    async def _finish(self) -> None:
        """Flush (the server has everything sent: acks, naks, terms), then close. Not nats-py's drain():
        it waits for a pull subscription's queue, which fetch() never marks done, so it always timed out."""
        client, self.client = self.client, None
        if client is None or client.is_closed:
            return
        try:
            if client.is_connected:
                await client.flush(timeout=cast(int, self.timeout))
        except Exception as error:
            logger.warning("flushing the NATS connection to %s: %s", self.where, _describe(error))
        finally:
            await client.close()

    def close(self) -> None:
        """Flush what is pending, close the connection and stop the loop thread; idempotent."""
        if self._closed:
            return
        loop, self._loop = self._loop, None
        if loop is not None:
            try:
                loop.call(self._finish(), self.timeout + 5)
            except NatsError as error:
                logger.warning("closing the NATS connection to %s: %s", self.where, error)
            finally:
                loop.stop()
        self._closed = True


async def _ensure_stream(js: JetStreamContext, stream: str, subjects: str, duplicate_window: float, where: str) -> None:
    """Create the stream when it is missing; refuse one that exists but does not capture `subjects`."""
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(
            name=stream, subjects=[subjects], duplicate_window=duplicate_window, storage=StorageType.FILE
        )
        try:
            await js.add_stream(config)
            return
        except nats.js.errors.BadRequestError:  # created meanwhile by another node: check that one
            info = await js.stream_info(stream)
    except nats.js.errors.ServiceUnavailableError as error:
        raise NatsError(f"JetStream at {where} is not available: {_describe(error)}") from None
    except nats.errors.NoRespondersError:
        raise NatsError(f"JetStream is not enabled at {where} (start nats-server with -js)") from None
    if subjects not in (info.config.subjects or []):
        raise NatsError(
            f"JetStream stream {stream!r} at {where} exists but does not capture {subjects!r} "
            f"(its subjects: {', '.join(info.config.subjects or []) or 'none'}): use another stream or prefix"
        )
    if info.config.duplicate_window != duplicate_window:
        logger.warning(
            "JetStream stream %s keeps a %.1fs duplicate window, not the %.1fs asked for: repeats older than %.1fs "
            "are stored again (the receivers drop them)",
            stream,
            info.config.duplicate_window,
            duplicate_window,
            info.config.duplicate_window,
        )


class NatsTransport:
    """A relay transport: `deliver` publishes a dispatch to JetStream and returns once it is stored.

    The first call connects and creates the stream (subjects `<subject_prefix>>`) when it is
    missing. `timeout` bounds the wait for the PubAck; `connect_timeout` bounds a connection attempt.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        duplicate_window: float = 120.0,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.stream = _check_name(stream, "stream")
        if not isinstance(subject_prefix, str) or not subject_prefix.endswith("."):
            raise NatsError(f"subject_prefix must end with '.', got {subject_prefix!r}")
        check_subject(subject_prefix[:-1], "subject prefix")
        self.subject_prefix = subject_prefix
        self.duplicate_window = _positive(duplicate_window, "duplicate_window")
        self.timeout = _positive(timeout, "timeout")
        self._connection = _Connection(
            url, timeout=self.timeout, connect_timeout=_positive(connect_timeout, "connect_timeout"), name="relay"
        )
        self._js: JetStreamContext | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NatsTransport({redact(self.url)!r}, stream={self.stream!r}, subject_prefix={self.subject_prefix!r})"

    def subject(self, destination: str) -> str:
        """The subject a destination is published to; raises InvalidSubjectError for a bad destination."""
        return self.subject_prefix + check_subject(destination, "destination")

    def deliver(self, dispatch: Dispatch) -> None:
        """Publish `dispatch` and wait for its PubAck (a duplicate counts: JetStream has it already)."""
        subject = self.subject(dispatch.destination)
        data = orjson.dumps(dispatch.to_json())
        with self._lock:
            self._connection.call(self._publish(subject, data, dispatch.dispatch_id))

    def stored(self) -> int:
        """How many messages the stream holds now (each dispatch once, within the duplicate window)."""
        with self._lock:
            return self._connection.call(self._stored())

    def close(self) -> None:
        """Close the connection and stop the loop thread; deliver raises afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> NatsTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _jetstream(self) -> JetStreamContext:
        if self._js is not None and self._connection.connected:
            return self._js
        self._js = None
        client = await self._connection.connect()
        js = client.jetstream(timeout=self.timeout)
        try:
            await _ensure_stream(
                js, self.stream, f"{self.subject_prefix}>", self.duplicate_window, self._connection.where
            )
        except NatsError:
            await self._connection.discard()
            raise
        except (*_CONNECTION_ERRORS, nats.errors.Error) as error:
            await self._connection.discard()
            raise NatsError(
                f"NATS at {self._connection.where}: cannot check JetStream stream {self.stream!r}: {_describe(error)}"
            ) from None
        self._js = js
        return js

    async def _publish(self, subject: str, data: bytes, dispatch_id: str) -> None:
        js = await self._jetstream()
        doing = f"publishing dispatch {dispatch_id} to {subject}"
        try:
            ack = await js.publish(
                subject, data, timeout=self.timeout, stream=self.stream, headers={MSG_ID_HEADER: dispatch_id}
            )
        except TimeoutError as error:
            if not self._connection.connected:
                await self._connection.discard()
                raise self._connection.lost(error, doing) from None
            raise NatsError(
                f"no PubAck from JetStream stream {self.stream!r} within {self.timeout:.1f}s for dispatch "
                f"{dispatch_id} on {subject} (NATS at {self._connection.where})"
            ) from None
        except nats.js.errors.NoStreamResponseError:
            self._js = None  # the next call creates the stream again
            raise NatsError(
                f"no JetStream stream answered on {subject} for dispatch {dispatch_id} (stream {self.stream!r} "
                f"deleted? NATS at {self._connection.where}; the next delivery creates it again)"
            ) from None
        except nats.errors.MaxPayloadError as error:
            raise UndeliverableError(
                f"dispatch {dispatch_id} ({len(data)} bytes) is larger than NATS at {self._connection.where} "
                f"accepts: {_describe(error)}"
            ) from None
        except nats.js.errors.APIError as error:
            raise NatsError(
                f"JetStream refused dispatch {dispatch_id} on {subject}: {error.description or _describe(error)}"
            ) from None
        except _CONNECTION_ERRORS as error:
            await self._connection.discard()
            raise self._connection.lost(error, doing) from None
        if ack.duplicate:
            logger.debug("dispatch %s was already in stream %s (seq %s): a duplicate", dispatch_id, ack.stream, ack.seq)

    async def _stored(self) -> int:
        js = await self._jetstream()
        try:
            info = await js.stream_info(self.stream)
        except _CONNECTION_ERRORS as error:
            await self._connection.discard()
            raise self._connection.lost(error, f"reading stream {self.stream!r}") from None
        return int(info.state.messages)


class NatsConsumer:
    """A durable JetStream pull consumer that hands each dispatch to `receive`, acking only after it returned.

    A receiver that raises gets the message again after a nak delay (doubling per delivery, up to
    a minute); a message that is not a dispatch is terminated and logged. `ack_wait` is how long
    JetStream waits for an ack before it delivers again (a consumer that died, an ack that was
    lost); `max_deliver` (-1: no limit) caps the deliveries, after which a failing message stays
    in the stream but is given up on, with an error in the log.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str = DEFAULT_STREAM,
        durable: str,
        receive: Receive,
        subjects: Sequence[str] = (f"{DEFAULT_SUBJECT_PREFIX}>",),
        ack_wait: float = 30.0,
        max_deliver: int = -1,
        batch: int = 32,
        fetch_timeout: float = 1.0,
        nak_delay: float = 1.0,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> None:
        if not callable(receive):
            raise NatsError(f"receive must be a function of a Dispatch, got {receive!r}")
        if isinstance(subjects, str):
            subjects = [subjects]
        if not subjects:
            raise NatsError("a consumer needs at least one subject filter")
        if isinstance(max_deliver, bool) or not isinstance(max_deliver, int) or max_deliver == 0 or max_deliver < -1:
            raise NatsError(f"max_deliver must be -1 (no limit) or at least 1, got {max_deliver!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise NatsError(f"batch must be at least 1, got {batch!r}")
        self.url = url
        self.stream = _check_name(stream, "stream")
        self.durable = _check_name(durable, "durable consumer name")
        self.receive = receive
        self.subjects = tuple(_check_filter(subject) for subject in subjects)
        self.ack_wait = _positive(ack_wait, "ack_wait")
        self.max_deliver = max_deliver
        self.batch = batch
        self.fetch_timeout = _positive(fetch_timeout, "fetch_timeout")
        self.nak_delay = _positive(nak_delay, "nak_delay")
        self.timeout = _positive(timeout, "timeout")
        self._connection = _Connection(
            url,
            timeout=self.timeout,
            connect_timeout=_positive(connect_timeout, "connect_timeout"),
            name=f"consumer-{durable}",
        )
        self._subscription: JetStreamContext.PullSubscription | None = None

    def __repr__(self) -> str:
        return f"NatsConsumer({redact(self.url)!r}, stream={self.stream!r}, durable={self.durable!r})"

    def step(self) -> int:
        """Fetch one batch and settle each message (ack, nak or term); returns how many (0: none came).

        Raises NatsError when the server cannot be reached or the connection breaks; the messages
        not acknowledged by then are delivered again after `ack_wait`.
        """
        messages = self._connection.call(self._fetch(), self.fetch_timeout + self.timeout)
        for settled, message in enumerate(messages):
            try:
                self._handle(message)
            except NatsError as error:
                left = len(messages) - settled - 1
                if left:
                    logger.warning("%s; %d more fetched message(s) come again after ack_wait", error, left)
                raise
        return len(messages)

    def run(self, stop: Callable[[], bool], *, retry_delay: float = 0.5, max_retry_delay: float = 10.0) -> int:
        """Consume until `stop()` is true; server trouble is logged and retried with backoff. Returns the
        messages settled."""
        settled, failures = 0, 0
        while not stop():
            try:
                settled += self.step()
                failures = 0
            except NatsError as error:
                failures += 1
                delay = min(max_retry_delay, retry_delay * 2 ** (failures - 1))
                logger.warning("consumer %s: %s; again in %.1fs", self.durable, error, delay)
                deadline = time.monotonic() + delay
                while not stop() and time.monotonic() < deadline:
                    time.sleep(min(0.05, delay))
        return settled

    def close(self) -> None:
        """Flush the acks sent, close the connection and stop the loop thread."""
        self._connection.close()

    def __enter__(self) -> NatsConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- one message ---------------------------------------------------------------

    def _handle(self, message: Msg) -> None:
        seq, delivered = _sequence(message)
        try:
            data = orjson.loads(message.data)
            if not isinstance(data, dict):
                raise InvalidEventError(f"not a dispatch: a JSON {type(data).__name__}, not an object")
            dispatch = Dispatch.from_json(data)
        except (orjson.JSONDecodeError, InvalidEventError) as error:
            reason = f"not JSON ({error})" if isinstance(error, orjson.JSONDecodeError) else str(error)
            logger.error(
                "consumer %s: terminating message %s on %s (stream %s seq %s): %s; data: %r",
                self.durable,
                _msg_id(message) or "without a Nats-Msg-Id",
                message.subject,
                self.stream,
                seq,
                reason,
                message.data[:200],
            )
            self._settle(message.term(), f"terminating stream seq {seq}")
            return
        try:
            self.receive(dispatch)
        except Exception as error:
            final = isinstance(error, UndeliverableError)  # e.g. older than the receiver's dedupe ring
            if final or (self.max_deliver > 0 and delivered >= self.max_deliver):
                logger.error(
                    "consumer %s: giving up on dispatch %s to %s after %d deliveries (%s); it stays in "
                    "stream %s at seq %s: %s",
                    self.durable,
                    dispatch.dispatch_id,
                    dispatch.destination,
                    delivered,
                    "no retry can deliver it" if final else "max_deliver",
                    self.stream,
                    seq,
                    _describe(error),
                    exc_info=error,
                )
                self._settle(message.term(), f"terminating dispatch {dispatch.dispatch_id}")
                return
            delay = min(NAK_DELAY_CAP, self.nak_delay * 2 ** max(0, delivered - 1))
            logger.warning(
                "consumer %s: the receiver failed on dispatch %s to %s (delivery %d): %s; again in %.1fs",
                self.durable,
                dispatch.dispatch_id,
                dispatch.destination,
                delivered,
                _describe(error),
                delay,
                exc_info=error,
            )
            self._settle(message.nak(delay=delay), f"nak of dispatch {dispatch.dispatch_id}")
            return
        self._settle(message.ack_sync(timeout=self.timeout), f"acknowledging dispatch {dispatch.dispatch_id}")

    def _settle(self, acknowledgement: Coroutine[Any, Any, object], doing: str) -> None:
        """Send an ack/nak/term; a lost ack only means a redelivery that the receiver drops."""
        try:
            self._connection.call(self._send(acknowledgement, doing))
        except _AckTimeout as error:
            logger.warning(
                "consumer %s: %s was not confirmed (%s): JetStream delivers it again after ack_wait and the "
                "receiver drops the repeat",
                self.durable,
                doing,
                error,
            )

    async def _send(self, acknowledgement: Coroutine[Any, Any, object], doing: str) -> None:
        try:
            await acknowledgement
        except TimeoutError as error:
            if not self._connection.connected:
                await self._forget()
                raise self._connection.lost(error, doing) from None
            raise _AckTimeout(_describe(error)) from None
        except _CONNECTION_ERRORS as error:
            await self._forget()
            raise self._connection.lost(error, doing) from None

    # ----- the subscription ------------------------------------------------------------

    async def _fetch(self) -> list[Msg]:
        subscription = await self._subscribe()
        try:
            return await subscription.fetch(self.batch, timeout=self.fetch_timeout)
        except TimeoutError:
            if not self._connection.connected:
                await self._forget()
                raise self._connection.lost(
                    nats.errors.ConnectionClosedError(), f"fetching from {self.durable}"
                ) from None
            return []
        except nats.js.errors.NotFoundError as error:
            await self._forget()
            raise NatsError(
                f"consumer {self.durable!r} of stream {self.stream!r} is gone at {self._connection.where}: "
                f"{error.description or _describe(error)}"
            ) from None
        except _CONNECTION_ERRORS as error:
            await self._forget()
            raise self._connection.lost(error, f"fetching from {self.durable}") from None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        if self._subscription is not None and self._connection.connected:
            return self._subscription
        self._subscription = None
        client = await self._connection.connect()
        js = client.jetstream(timeout=self.timeout)
        try:
            await self._ensure_consumer(js)
            self._subscription = await js.pull_subscribe_bind(self.durable, stream=self.stream)
        except NatsError:
            await self._forget()
            raise
        except (*_CONNECTION_ERRORS, nats.errors.Error) as error:
            await self._forget()
            raise NatsError(
                f"NATS at {self._connection.where}: cannot bind consumer {self.durable!r} of stream "
                f"{self.stream!r}: {_describe(error)}"
            ) from None
        return self._subscription

    async def _ensure_consumer(self, js: JetStreamContext) -> None:
        """Create the durable consumer when missing; refuse one that filters other subjects."""
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError as error:
            if error.err_code == 10059:
                raise NatsError(
                    f"JetStream stream {self.stream!r} does not exist at {self._connection.where} (a NatsTransport "
                    "creates it on its first delivery)"
                ) from None
            config = ConsumerConfig(
                durable_name=self.durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=self.max_deliver,
            )
            if len(self.subjects) == 1:
                config.filter_subject = self.subjects[0]
            else:
                config.filter_subjects = list(self.subjects)
            await js.add_consumer(self.stream, config)
            return
        except nats.errors.NoRespondersError:
            raise NatsError(
                f"JetStream is not enabled at {self._connection.where} (start nats-server with -js)"
            ) from None
        config = info.config
        filters = tuple(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))
        if set(filters) != set(self.subjects):
            raise NatsError(
                f"consumer {self.durable!r} of stream {self.stream!r} exists with filter {', '.join(filters) or '>'}, "
                f"not {', '.join(self.subjects)}: use another durable name or delete it"
            )
        if config.ack_wait != self.ack_wait or (config.max_deliver or -1) != self.max_deliver:
            logger.warning(
                "consumer %s of stream %s exists with ack_wait %.1fs and max_deliver %s; those apply, not %.1fs and %s",
                self.durable,
                self.stream,
                config.ack_wait or 0.0,
                config.max_deliver,
                self.ack_wait,
                self.max_deliver,
            )

    async def _forget(self) -> None:
        self._subscription = None
        await self._connection.discard()


async def _abandon(client: Client) -> None:
    """Close the socket a failed connect may have left open (nats-py raises without closing it)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 1.0)


class _AckTimeout(Exception):
    """An ack the server did not confirm in time while the connection stayed up."""


def _sequence(message: Msg) -> tuple[int | str, int]:
    """The stream sequence and the delivery count of a JetStream message (for logs and the nak delay)."""
    try:
        metadata = message.metadata
    except Exception:
        return "?", 1
    return metadata.sequence.stream, metadata.num_delivered


def _msg_id(message: Msg) -> str | None:
    return (message.headers or {}).get(MSG_ID_HEADER)
