"""The NATS JetStream transport and consumer, against the real server (tests/conftest.py: nats_url).

Each test uses a stream of its own, deleted afterwards. The receivers here commit each effect
as a journal event whose id is the dispatch id, so the journal's idempotent append is the
dedupe, and the journal is the count of effects made outside NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agentjournal import Journal
from agentjournal.journal import NewEvent
from agentjournal.messaging.nats import (
    InvalidSubjectError,
    NatsConsumer,
    NatsError,
    NatsTransport,
    check_subject,
)
from agentjournal.messaging.outbox import Dispatch, Message, append_with_outbox, dispatch_id
from agentjournal.messaging.relays import Relay, Transport, UndeliverableError, failures

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Place:
    """A test's own stream: its name, its subject prefix, and the server's URL."""

    url: str
    stream: str
    prefix: str

    @property
    def everything(self) -> str:
        return f"{self.prefix}>"

    def transport(self, url: str | None = None, **options: Any) -> NatsTransport:
        return NatsTransport(url or self.url, stream=self.stream, subject_prefix=self.prefix, **options)

    def consumer(self, receive: Callable[[Dispatch], object], url: str | None = None, **options: Any) -> NatsConsumer:
        options.setdefault("durable", "receiver")
        options.setdefault("subjects", [self.everything])
        options.setdefault("fetch_timeout", 0.2)
        return NatsConsumer(url or self.url, stream=self.stream, receive=receive, **options)


def admin(url: str, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
    """Run `work(js)` on a connection of its own: what an operator's tool would see."""
    import nats

    async def main() -> Any:
        client = await nats.connect(url, allow_reconnect=False)
        try:
            return await work(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(main())


def consumer_state(place: Place, durable: str = "receiver") -> tuple[int, int]:
    """(messages delivered but not acknowledged, messages not delivered yet) of a durable consumer."""

    async def info(js: Any) -> tuple[int, int]:
        found = await js.consumer_info(place.stream, durable)
        return found.num_ack_pending, found.num_pending

    return admin(place.url, info)  # type: ignore[no-any-return]


@pytest.fixture
def place(nats_url: str) -> Iterator[Place]:
    name = f"AJTEST_{uuid.uuid4().hex[:12]}"
    yield Place(nats_url, name, f"{name.lower()}.")

    async def delete(js: Any) -> None:
        import nats.js.errors

        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)

    admin(nats_url, delete)


def dispatch(n: int, destination: str = "crm", *, payload: dict[str, Any] | None = None) -> Dispatch:
    return Dispatch(
        dispatch_id=dispatch_id("run-1", n, 0),
        destination=destination,
        type="CreateOpportunity",
        payload=payload if payload is not None else {"n": n},
        cause_stream="run-1",
        cause_version=n,
        index=0,
        position=n,
        correlation_id="corr-1",
    )


class Effects:
    """A receiver that commits each dispatch as one journal event with the dispatch id as event id."""

    def __init__(self, journal: Journal, fail: Callable[[Dispatch, int], bool] = lambda d, n: False) -> None:
        self.journal = journal
        self.fail = fail
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, dispatch: Dispatch) -> None:
        with self.lock:
            self.calls[dispatch.dispatch_id] += 1
            attempt = self.calls[dispatch.dispatch_id]
        event = NewEvent("OpportunityCreated", {"n": dispatch.payload["n"]}, event_id=dispatch.dispatch_id)
        self.journal.append(f"crm-{dispatch.payload['n']}", [event])
        if self.fail(dispatch, attempt):
            raise RuntimeError(f"the ack was lost after commit (attempt {attempt})")

    def committed(self) -> list[str]:
        return [event.event_id for event in self.journal.read_all(0, 100_000)]


def consume_until(consumer: NatsConsumer, done: Callable[[], bool], seconds: float = 20.0) -> None:
    """Step at least once, then until `done()`."""
    deadline = time.monotonic() + seconds
    consumer.step()
    while not done():
        assert time.monotonic() < deadline, "the consumer did not get every message in time"
        consumer.step()


# ----- publish and consume ---------------------------------------------------------------


def test_published_dispatches_arrive_whole_in_order_and_on_their_subjects(place: Place) -> None:
    sent = [dispatch(1), dispatch(2, "calendar.book"), dispatch(3, payload={"nested": {"ü": [1, 2.5, None]}, "n": 3})]
    got: list[Dispatch] = []
    calendar: list[Dispatch] = []
    with place.transport() as transport:
        for item in sent:
            transport.deliver(item)
        assert transport.stored() == 3
    with (
        place.consumer(got.append) as everything,
        place.consumer(calendar.append, durable="calendar", subjects=[f"{place.prefix}calendar.>"]) as only,
    ):
        consume_until(everything, lambda: len(got) >= 3)
        consume_until(only, lambda: len(calendar) >= 1)
        assert everything.step() == 0  # all acknowledged: nothing comes again
    assert got == sent
    assert calendar == [sent[1]]
    assert consumer_state(place) == (0, 0)


def test_the_msg_id_is_the_dispatch_id(place: Place) -> None:
    with place.transport() as transport:
        transport.deliver(dispatch(7))

    async def first(js: Any) -> Any:
        return await js.get_msg(place.stream, 1)

    stored = admin(place.url, first)
    assert stored.headers["Nats-Msg-Id"] == dispatch(7).dispatch_id
    assert stored.subject == f"{place.prefix}crm"


def test_the_same_dispatch_published_twice_within_the_window_is_stored_once(place: Place) -> None:
    got: list[Dispatch] = []
    with place.transport() as transport:
        transport.deliver(dispatch(1))
        transport.deliver(dispatch(1))  # a relay's retry after a lost PubAck
        with place.transport() as restarted:  # a relay restarted before its checkpoint moved
            restarted.deliver(dispatch(1))
        assert transport.stored() == 1
        transport.deliver(dispatch(2))
        assert transport.stored() == 2
    with place.consumer(got.append) as consumer:
        consume_until(consumer, lambda: len(got) >= 2)
        assert consumer.step() == 0
    assert got == [dispatch(1), dispatch(2)]


def test_a_repeat_older_than_the_window_is_stored_again_and_the_receiver_drops_it(place: Place) -> None:
    journal = Journal.open("memory://")
    effects = Effects(journal)
    with place.transport(duplicate_window=0.5) as transport:
        transport.deliver(dispatch(1))
        deadline = time.monotonic() + 10
        while transport.stored() < 2:  # JetStream forgets the id once the window has passed
            assert time.monotonic() < deadline, "JetStream never forgot the Msg-Id"
            time.sleep(0.3)
            transport.deliver(dispatch(1))
    with place.consumer(effects) as consumer:
        consume_until(consumer, lambda: effects.calls[dispatch(1).dispatch_id] >= 2)
    assert effects.committed() == [dispatch(1).dispatch_id]


def test_a_relay_over_nats_delivers_the_outbox_once_and_dead_letters_a_bad_destination(
    place: Place, sqlite_url: str
) -> None:
    journal = Journal.open(sqlite_url)
    for n in range(1, 6):
        destination = "crm bad" if n == 3 else "crm"
        append_with_outbox(
            journal,
            "run-1",
            [NewEvent("ToolExecuted", {"n": n})],
            expected_version=n - 1,
            messages=[Message(destination, "CreateOpportunity", {"n": n})],
        )
    effects = Effects(Journal.open("memory://"))
    transport: Transport = place.transport()
    with place.transport() as second:
        assert Relay("crm", transport).runner(journal).catch_up() == 5
        assert Relay("crm-again", second).runner(journal).catch_up() == 5  # a second relay, same messages
        assert second.stored() == 4  # JetStream stored each good dispatch once
    transport.close()
    dead = failures(journal, status="dead")
    assert {failure.relay for failure in dead} == {"crm", "crm-again"}
    assert all("is not a NATS subject" in failure.error and failure.attempts == 1 for failure in dead)
    with place.consumer(effects) as consumer:
        consume_until(consumer, lambda: len(effects.calls) >= 4)
        assert consumer.step() == 0
    assert sorted(effects.journal.read_all(0, 10)[i].data["n"] for i in range(4)) == [1, 2, 4, 5]


# ----- failures on the receiving side -----------------------------------------------------


def test_a_receiver_that_raises_gets_the_message_again_and_the_effect_is_committed_once(place: Place) -> None:
    journal = Journal.open("memory://")
    effects = Effects(journal, fail=lambda d, attempt: d.payload["n"] % 2 == 0 and attempt == 1)
    sent = [dispatch(n) for n in range(1, 9)]
    with place.transport() as transport:
        for item in sent:
            transport.deliver(item)
    with place.consumer(effects, nak_delay=0.05) as consumer:
        consume_until(consumer, lambda: all(effects.calls[d.dispatch_id] == 2 for d in sent[1::2]))
        time.sleep(0.2)
        assert consumer.step() == 0
    assert sorted(effects.committed()) == sorted(d.dispatch_id for d in sent)
    assert {d.payload["n"]: effects.calls[d.dispatch_id] for d in sent} == {n: 1 if n % 2 else 2 for n in range(1, 9)}
    assert consumer_state(place) == (0, 0)


def test_a_consumer_stopped_after_the_receiver_raised_loses_nothing(place: Place) -> None:
    def refuse(dispatch: Dispatch) -> None:
        raise RuntimeError("the receiver's database is down")

    got: list[Dispatch] = []
    with place.transport() as transport:
        transport.deliver(dispatch(1))
    with place.consumer(refuse, nak_delay=0.2) as failing:
        assert failing.step() == 1  # nak'd, not acknowledged
    assert consumer_state(place) == (1, 0)
    with place.consumer(got.append) as second:
        consume_until(second, lambda: bool(got))
    assert got == [dispatch(1)]
    assert consumer_state(place) == (0, 0)


CHILD = """
import os, signal, sys
from agentjournal.messaging.nats import NatsConsumer

def receive(dispatch):
    with open(sys.argv[4], "w") as out:
        out.write(dispatch.dispatch_id)
    os.kill(os.getpid(), signal.SIGKILL)  # killed after the receiver committed, before the ack

NatsConsumer(sys.argv[1], stream=sys.argv[2], durable="receiver", subjects=[sys.argv[3]], receive=receive,
             ack_wait=1.0, fetch_timeout=0.2).run(stop=lambda: False)
"""


def test_a_consumer_killed_between_commit_and_ack_gets_the_message_again(place: Place, tmp_path: Any) -> None:
    seen = tmp_path / "seen"
    with place.transport() as transport:
        transport.deliver(dispatch(1))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, place.url, place.stream, place.everything, str(seen)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert seen.read_text() == dispatch(1).dispatch_id
    assert consumer_state(place) == (1, 0)  # delivered, never acknowledged

    journal = Journal.open("memory://")
    journal.append("crm-1", [NewEvent("OpportunityCreated", {"n": 1}, event_id=dispatch(1).dispatch_id)])
    effects = Effects(journal)  # the child's commit is there already: the redelivery must not add one
    with place.consumer(effects, ack_wait=1.0) as restarted:
        consume_until(restarted, lambda: bool(effects.calls))
    assert effects.calls == Counter({dispatch(1).dispatch_id: 1})
    assert effects.committed() == [dispatch(1).dispatch_id]
    assert consumer_state(place) == (0, 0)


def test_a_message_that_is_not_a_dispatch_is_terminated_and_logged(
    place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Dispatch] = []
    with place.transport() as transport:
        transport.deliver(dispatch(1))  # creates the stream

    async def publish_junk(js: Any) -> None:
        await js.publish(f"{place.prefix}crm", b"not json at all")
        await js.publish(f"{place.prefix}crm", b"[1, 2]")
        await js.publish(f"{place.prefix}crm", b'{"dispatch_id": "d-1"}', headers={"Nats-Msg-Id": "d-1"})

    admin(place.url, publish_junk)
    with (
        caplog.at_level(logging.ERROR, logger="agentjournal.nats"),
        place.consumer(got.append, ack_wait=0.5) as consumer,
    ):
        consume_until(consumer, lambda: consumer_state(place) == (0, 0))
        time.sleep(0.8)  # past ack_wait: a terminated message is not delivered again
        assert consumer.step() == 0
    assert got == [dispatch(1)]
    terminated = [record.getMessage() for record in caplog.records if "terminating" in record.getMessage()]
    assert len(terminated) == 3, terminated
    assert "not JSON (" in terminated[0] and "b'not json at all'" in terminated[0]
    assert "a JSON list, not an object" in terminated[1]
    assert "d-1" in terminated[2] and "KeyError" in terminated[2]


def test_a_receiver_that_says_no_retry_can_help_gets_the_message_terminated(
    place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Dispatch] = []

    def beyond(dispatch: Dispatch) -> None:
        calls.append(dispatch)
        raise UndeliverableError("older than the dedupe ring")

    with place.transport() as transport:
        transport.deliver(dispatch(1))
    with (
        caplog.at_level(logging.ERROR, logger="agentjournal.nats"),
        place.consumer(beyond, ack_wait=0.5, nak_delay=0.05) as consumer,
    ):
        assert consumer.step() == 1
        time.sleep(0.8)
        assert consumer.step() == 0
    assert calls == [dispatch(1)]
    assert any("giving up on dispatch" in record.getMessage() for record in caplog.records)


def test_max_deliver_bounds_the_redeliveries_of_a_failing_message(
    place: Place, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Dispatch] = []

    def broken(dispatch: Dispatch) -> None:
        calls.append(dispatch)
        raise RuntimeError("always")

    with place.transport() as transport:
        transport.deliver(dispatch(1))
    with (
        caplog.at_level(logging.ERROR, logger="agentjournal.nats"),
        place.consumer(broken, max_deliver=3, nak_delay=0.05) as consumer,
    ):
        consume_until(consumer, lambda: len(calls) >= 3)
        time.sleep(0.5)
        assert consumer.step() == 0
    assert len(calls) == 3
    assert any("after 3 deliveries (max_deliver)" in record.getMessage() for record in caplog.records)


# ----- failures on the publishing side ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_wrong_port_fails_fast_and_names_the_url(place: Place) -> None:
    port = free_port()
    started = time.monotonic()
    with (
        place.transport(f"nats://relay:s3cret@127.0.0.1:{port}") as transport,
        pytest.raises(NatsError, match=rf"^cannot reach NATS at nats://relay:\*\*\*@127\.0\.0\.1:{port}: ") as caught,
    ):
        transport.deliver(dispatch(1))
    assert time.monotonic() - started < 2.0
    assert "s3cret" not in str(caught.value)
    with (
        place.consumer(lambda d: None, f"nats://127.0.0.1:{port}") as consumer,
        pytest.raises(NatsError, match=rf"^cannot reach NATS at nats://127\.0\.0\.1:{port}: "),
    ):
        consumer.step()


def test_a_server_that_never_answers_fails_after_the_connect_timeout(place: Place) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP, never says INFO
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with (
            place.transport(url, connect_timeout=0.3) as transport,
            pytest.raises(NatsError, match=r"^cannot reach NATS at .*: no answer within 0\.3s$"),
        ):
            transport.deliver(dispatch(1))
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("destination", ["crm orders", "crm.*", "crm.>", "crm..book", ".crm", "crm.", "tab\tbed"])
def test_an_invalid_destination_is_refused_before_publishing(place: Place, destination: str) -> None:
    with place.transport(f"nats://127.0.0.1:{free_port()}") as nowhere:  # no I/O happens: no connection error
        with pytest.raises(InvalidSubjectError, match="is not a NATS subject") as caught:
            nowhere.deliver(dispatch(1, destination))
        assert isinstance(caught.value, UndeliverableError)  # the relay makes it a dead letter at once
    with place.transport() as transport:
        with pytest.raises(InvalidSubjectError):
            transport.deliver(dispatch(1, destination))
        assert transport.stored() == 0


def test_subjects_and_options_are_checked_when_configured() -> None:
    assert check_subject("calendar.book-slot") == "calendar.book-slot"
    with pytest.raises(NatsError, match=r"subject_prefix must end with '\.'"):
        NatsTransport(subject_prefix="agentjournal")
    with pytest.raises(NatsError, match="not a valid JetStream name"):
        NatsTransport(stream="A.B")
    with pytest.raises(NatsError, match="timeout must be a positive number"):
        NatsTransport(timeout=0)
    with pytest.raises(NatsError, match="not a NATS subject filter"):
        NatsConsumer(durable="d", receive=print, subjects=["a.>.b"])
    with pytest.raises(NatsError, match="max_deliver must be -1"):
        NatsConsumer(durable="d", receive=print, max_deliver=0)
    with pytest.raises(NatsError, match="not a valid JetStream name"):
        NatsConsumer(durable="my consumer", receive=print)


def test_a_closed_transport_refuses_to_deliver(place: Place) -> None:
    transport = place.transport()
    transport.deliver(dispatch(1))
    transport.close()
    transport.close()
    with pytest.raises(NatsError, match="is closed"):
        transport.deliver(dispatch(2))


def test_a_stream_deleted_under_the_transport_is_created_again(place: Place) -> None:
    async def delete(js: Any) -> None:
        await js.delete_stream(place.stream)

    with place.transport() as transport:
        transport.deliver(dispatch(1))
        admin(place.url, delete)
        with pytest.raises(NatsError, match=r"no JetStream stream answered .* the next delivery creates it again"):
            transport.deliver(dispatch(2))
        transport.deliver(dispatch(2))
        assert transport.stored() == 1


def test_a_dispatch_larger_than_the_server_accepts_is_undeliverable(place: Place) -> None:
    with place.transport() as transport:
        with pytest.raises(UndeliverableError, match="is larger than NATS at nats://"):
            transport.deliver(dispatch(1, payload={"n": 1, "blob": "x" * 2_000_000}))
        transport.deliver(dispatch(2))  # the connection survives the refusal
        assert transport.stored() == 1


def test_a_stream_that_does_not_capture_the_prefix_is_refused(place: Place) -> None:
    async def create(js: Any) -> None:
        await js.add_stream(name=place.stream, subjects=[f"{place.prefix}other"])

    admin(place.url, create)
    with place.transport() as transport, pytest.raises(NatsError, match="exists but does not capture"):
        transport.deliver(dispatch(1))


def test_a_consumer_before_the_stream_exists_says_so_and_its_loop_waits(place: Place) -> None:
    got: list[Dispatch] = []
    with place.consumer(got.append) as consumer:
        with pytest.raises(NatsError, match="does not exist"):
            consumer.step()
        stop = threading.Event()
        loop = threading.Thread(target=consumer.run, kwargs={"stop": stop.is_set, "retry_delay": 0.05})
        loop.start()
        try:
            time.sleep(0.3)
            with place.transport() as transport:
                transport.deliver(dispatch(1))
            deadline = time.monotonic() + 15
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            loop.join(10)
    assert got == [dispatch(1)]


def test_an_existing_durable_with_another_filter_is_refused(place: Place) -> None:
    with place.transport() as transport:
        transport.deliver(dispatch(1))
    with place.consumer(lambda d: None) as first:
        first.step()
    with (
        place.consumer(lambda d: None, subjects=[f"{place.prefix}calendar.>"]) as other,
        pytest.raises(NatsError, match="exists with filter"),
    ):
        other.step()


def test_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "try:\n    import agentjournal.messaging.nats\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'agentjournal[nats]'" in shown


# ----- the connection drops mid-stream ------------------------------------------------------


class Proxy:
    """A TCP proxy to the NATS server that a test can cut (every connection) and stop (no new ones)."""

    def __init__(self, target: str) -> None:
        host_port = target.rsplit("/", 1)[-1].rsplit("@", 1)[-1]
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self.start()

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        self._accepting.set()
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        listener.close()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every open connection, as a failing network or a restarting server would."""
        with self._lock:
            ends, self._sockets = self._sockets, []
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def stop(self) -> None:
        self._accepting.clear()
        time.sleep(0.1)
        self.cut()


def deliver_retrying(transport: NatsTransport, item: Dispatch, failures: list[str]) -> None:
    """What the relay does: retry a failed delivery (the message may or may not have been stored)."""
    for _ in range(200):
        try:
            transport.deliver(item)
            return
        except NatsError as error:
            failures.append(str(error))
            time.sleep(0.05)
    raise AssertionError(f"dispatch {item.dispatch_id} was never delivered: {failures[-3:]}")


def test_delivery_resumes_without_loss_when_the_connection_drops_mid_stream(place: Place) -> None:
    proxy = Proxy(place.url)
    journal = Journal.open("memory://")
    effects = Effects(journal)
    sent = [dispatch(n) for n in range(1, 201)]
    publish_failures: list[str] = []
    stop = threading.Event()
    consumer = place.consumer(effects, url=proxy.url, ack_wait=1.0, batch=10, timeout=1.0)
    loop = threading.Thread(target=consumer.run, kwargs={"stop": stop.is_set, "retry_delay": 0.05})
    try:
        with place.transport(proxy.url, timeout=1.0) as transport:
            for index, item in enumerate(sent):
                if index in (50, 120):
                    proxy.cut()  # publisher and consumer lose their connections together
                if index == 160:
                    proxy.stop()  # and now nobody can connect for a while
                    threading.Timer(0.5, proxy.start).start()
                deliver_retrying(transport, item, publish_failures)
                if index == 20:
                    loop.start()
            assert transport.stored() == len(sent)  # every dispatch stored once, retries included
        deadline = time.monotonic() + 60
        while len(effects.committed()) < len(sent):
            assert time.monotonic() < deadline, f"only {len(effects.committed())} of {len(sent)} effects arrived"
            time.sleep(0.1)
        stop.set()
        loop.join(10)
    finally:
        stop.set()
        consumer.close()
        proxy.stop()
    assert publish_failures, "the cut never reached the publisher: this test tested nothing"
    assert all("NATS at nats://127.0.0.1:" in failure for failure in publish_failures)
    assert sorted(effects.committed()) == sorted(item.dispatch_id for item in sent)
    assert set(effects.calls) == {item.dispatch_id for item in sent}
    assert consumer_state(place) == (0, 0)


def test_the_stop_signal_is_checked_between_fetches(place: Place) -> None:
    got: list[Dispatch] = []
    with place.transport() as transport:
        transport.deliver(dispatch(1))
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return bool(got)

    with place.consumer(got.append) as consumer:
        started = time.monotonic()
        assert consumer.run(stop) == 1
    assert got == [dispatch(1)]
    assert time.monotonic() - started < 10
    assert calls >= 2
