"""A relay to NATS JetStream and a NATS consumer for the fault-injection tests over the real server.

The relay, run by `agentjournal worker -m fault_nats:relays`, publishes the outbox's doorbell
messages to the stream AJ_FAULT_STREAM (subjects AJ_FAULT_PREFIX + destination) through NATS at
AJ_FAULT_NATS. Every publish JetStream acknowledged is written as a line `node dispatch-id n` to
AJ_FAULT_PUBLISHES. With AJ_FAULT_KILL_AT=n,m,... the relay SIGKILLs its own process right after
the PubAck of message n, before its checkpoint moves (once per n: a marker file in
AJ_FAULT_MARKS). With AJ_FAULT_FREEZE_AFTER=N it touches AJ_FAULT_FREEZE_MARKER after its Nth
publish and sleeps, so that the test can SIGSTOP it there, holding the relay's lease.

The consumer, run by `python fault_nats.py`, is a NatsConsumer (durable `doorbell`) whose
receive is fault_relay.py's doorbell Receiver on the journal at AJ_FAULT_DB; each ring it
commits is written, after the commit, as a line `node dispatch-id n` to AJ_FAULT_EFFECTS: the
count outside the system. Faults, at AJ_FAULT_RATE in all over the first two deliveries of a
dispatch that a process sees (decided by a hash of the node, the dispatch and the delivery, so
that a run repeats; bounded, so that no message's nak delay, which doubles per delivery, grows
long): the receiver raises before committing (half of the rate), or commits and then raises as
if the ack were lost (the other half); both are nak'd and delivered again. With AJ_FAULT_KILL_AT
it SIGKILLs its process between the commit of message n and its ack (once per n). Each fault is
written as a line `node kind dispatch-id` to AJ_FAULT_FAULTS. SIGTERM stops it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from fault_relay import Door, ring  # the relay and the consumer run with tests/messaging on the path

from agentjournal.journal import Journal
from agentjournal.messaging import Backoff, Dispatch, Received, Receiver, Relay
from agentjournal.messaging.nats import NatsConsumer, NatsTransport
from agentjournal.model import Repository

NODE = os.environ.get("AJ_FAULT_NODE", "node")
RATE = float(os.environ.get("AJ_FAULT_RATE", "0"))
KILL_AT = frozenset(int(n) for n in os.environ.get("AJ_FAULT_KILL_AT", "").split(",") if n)
MARKS = Path(os.environ.get("AJ_FAULT_MARKS", "."))
FREEZE_AFTER = int(os.environ.get("AJ_FAULT_FREEZE_AFTER", "0"))
FREEZE_MARKER = Path(os.environ.get("AJ_FAULT_FREEZE_MARKER", os.devnull))
DURABLE = "doorbell"
FAULTY_DELIVERIES = 2


def write_line(variable: str, line: str) -> None:
    """Append one line to the file named by `variable` (one write: the lines of processes never mix)."""
    with open(os.environ.get(variable, os.devnull), "a") as out:
        out.write(line + "\n")


def first_time(what: str) -> bool:
    """True once per `what`, across processes and restarts: the marker file is created exclusively."""
    try:
        os.close(os.open(MARKS / what, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class KillingTransport:
    """A NatsTransport that records each acknowledged publish, and kills or freezes its process after some."""

    def __init__(self, transport: NatsTransport) -> None:
        self.transport = transport
        self.published = 0

    def deliver(self, dispatch: Dispatch) -> None:
        self.transport.deliver(dispatch)  # returns once JetStream stored it (or had it already)
        n = dispatch.payload["n"]
        write_line("AJ_FAULT_PUBLISHES", f"{NODE} {dispatch.dispatch_id} {n}")
        self.published += 1
        if n in KILL_AT and first_time(f"relay-kill-{n}"):
            os.kill(os.getpid(), signal.SIGKILL)  # acknowledged by JetStream, not yet by the relay's checkpoint
        if FREEZE_AFTER and self.published == FREEZE_AFTER:
            FREEZE_MARKER.touch()
            time.sleep(3)  # the test freezes the process here, holding the lease, before the checkpoint moves

    def close(self) -> None:
        self.transport.close()


def relays() -> list[Relay]:
    nats = NatsTransport(
        os.environ["AJ_FAULT_NATS"],
        stream=os.environ["AJ_FAULT_STREAM"],
        subject_prefix=os.environ["AJ_FAULT_PREFIX"],
        timeout=1.0,
        connect_timeout=1.0,
    )
    return [Relay("bells", KillingTransport(nats), backoff=Backoff(max_attempts=1000, base=0.01, cap=0.2))]


def chance(*key: object) -> float:
    """A number in [0, 1) fixed by `key`."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FaultyDoorbell:
    """The doorbell receiver, failing as the module's docstring says."""

    def __init__(self, journal: Journal) -> None:
        self.receive = Receiver(Repository(journal, Door), ring)
        self.seen: Counter[str] = Counter()

    def __call__(self, dispatch: Dispatch) -> None:
        self.seen[dispatch.dispatch_id] += 1
        delivery = self.seen[dispatch.dispatch_id]
        fault = chance(NODE, dispatch.dispatch_id, delivery) if delivery <= FAULTY_DELIVERIES else 1.0
        if fault < RATE / 2:
            write_line("AJ_FAULT_FAULTS", f"{NODE} raise-before {dispatch.dispatch_id}")
            raise ConnectionError("injected: the receiver failed before committing")
        n = dispatch.payload["n"]
        if self.receive(dispatch) is Received.HANDLED:
            write_line("AJ_FAULT_EFFECTS", f"{NODE} {dispatch.dispatch_id} {n}")
            if n in KILL_AT and first_time(f"consumer-kill-{n}"):
                write_line("AJ_FAULT_FAULTS", f"{NODE} kill {dispatch.dispatch_id}")
                os.kill(os.getpid(), signal.SIGKILL)  # committed, not acknowledged
        if fault < RATE:
            write_line("AJ_FAULT_FAULTS", f"{NODE} raise-after {dispatch.dispatch_id}")
            raise TimeoutError("injected: the acknowledgement was lost after the receiver committed")


def _no_traceback_of_injected_faults(record: logging.LogRecord) -> bool:
    """Keep the log readable: the message names an injected fault already, its traceback says nothing more."""
    if record.exc_info and "injected: " in str(record.exc_info[1]):
        record.exc_info = None
    return True


def consume() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_no_traceback_of_injected_faults)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("agentjournal.nats", "agentjournal.receivers"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    journal = Journal.open(os.environ["AJ_FAULT_DB"])
    consumer = NatsConsumer(
        os.environ["AJ_FAULT_NATS"],
        stream=os.environ["AJ_FAULT_STREAM"],
        durable=DURABLE,
        subjects=[f"{os.environ['AJ_FAULT_PREFIX']}doorbell"],
        receive=FaultyDoorbell(journal),
        ack_wait=2.0,  # a killed consumer's unacknowledged batch comes again after this
        batch=10,
        fetch_timeout=0.2,
        nak_delay=0.01,  # doubling per delivery: 0.64 s at the 7th
        timeout=1.0,
        connect_timeout=1.0,
    )
    print(f"consumer {NODE}: consuming {DURABLE} of {consumer.stream}", file=sys.stderr, flush=True)
    try:
        consumer.run(stopping.is_set, retry_delay=0.05, max_retry_delay=0.5)
    finally:
        consumer.close()
        journal.close()


if __name__ == "__main__":
    consume()
