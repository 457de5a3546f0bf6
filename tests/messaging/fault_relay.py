"""An in-process relay and a process manager for the fault-injection tests, run by
`agentjournal worker -m fault_relay:relays` (or `fault_relay:managers`).

Its receiver is a doorbell per door (the journal at AJ_FAULT_DB); every ring it commits is
also written, after the commit, as a line `node dispatch-id` to AJ_FAULT_EFFECTS: the count
outside the system. Faults, chosen at random per delivery with AJ_FAULT_RATE in all:
the receiver raises before committing (half of the rate), commits and then raises as if the
acknowledgement were lost (the other half, less 1 point), or commits and then SIGKILLs its own
process before the relay records the delivery (1 point). With AJ_FAULT_FREEZE_AFTER=N it touches
AJ_FAULT_FREEZE_MARKER after its Nth ring and sleeps, so the test can SIGSTOP it right there.

The process manager rings the doorbell for every OrderPlaced; with AJ_FAULT_RATE it SIGKILLs its
process while deciding (1 in 50 decisions), after the decisions before it in the batch were
recorded and before its checkpoint moved past them.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any, ClassVar

from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.messaging import (
    Backoff,
    Decision,
    Dispatch,
    HandlerTransport,
    Message,
    ProcessManager,
    Received,
    Receiver,
    Receiving,
    Relay,
)
from agentjournal.model import Repository

NODE = os.environ.get("AJ_FAULT_NODE", "node")
RATE = float(os.environ.get("AJ_FAULT_RATE", "0"))
EFFECTS = Path(os.environ.get("AJ_FAULT_EFFECTS", os.devnull))
FREEZE_AFTER = int(os.environ.get("AJ_FAULT_FREEZE_AFTER", "0"))
FREEZE_MARKER = Path(os.environ.get("AJ_FAULT_FREEZE_MARKER", os.devnull))


class Door(Receiving):
    snapshot_every = 50
    rings: int = 0

    def when(self, event: RecordedEvent) -> None:
        if event.type == "BellRang":
            self.rings += 1


def ring(door: Door, dispatch: Dispatch) -> None:
    door.record(NewEvent("BellRang", {"n": dispatch.payload["n"]}))


class FaultyDoorbell:
    def __init__(self, journal: Journal) -> None:
        self.receive = Receiver(Repository(journal, Door), ring)
        self.rung = 0

    def __call__(self, dispatch: Dispatch) -> None:
        fault = random.random()
        if fault < RATE / 2:
            raise ConnectionError("injected: the receiver failed before committing")
        if self.receive(dispatch) is Received.HANDLED:
            with EFFECTS.open("a") as effects:
                effects.write(f"{NODE} {dispatch.dispatch_id}\n")
            self.rung += 1
            if FREEZE_AFTER and self.rung == FREEZE_AFTER:
                FREEZE_MARKER.touch()
                time.sleep(3)  # the test freezes the process here, after the effect, before the relay records it
        if fault > 1 - 0.01 and RATE:
            os.kill(os.getpid(), signal.SIGKILL)  # between the receiver's commit and the relay's checkpoint
        if fault > 1 - RATE / 2:
            raise TimeoutError("injected: the acknowledgement was lost after the receiver committed")


def relays() -> list[Relay]:
    journal = Journal.open(os.environ["AJ_FAULT_DB"])
    transport = HandlerTransport({"doorbell": FaultyDoorbell(journal)})
    return [Relay("bells", transport, backoff=Backoff(max_attempts=1000, base=0.005, cap=0.05))]


class RingOnOrder(ProcessManager):
    name: ClassVar[str] = "ring-on-order"
    event_types: ClassVar[tuple[str, ...]] = ("OrderPlaced",)

    def key(self, event: RecordedEvent) -> str | None:
        return str(event.data["n"])

    def decide(self, state: dict[str, Any], event: RecordedEvent) -> Decision | None:
        if RATE and random.random() < 0.02:
            os.kill(os.getpid(), signal.SIGKILL)
        ring = Message("doorbell", "RingBell", {"stream": f"door-{event.data['n'] % 40}", "n": event.data["n"]})
        return Decision({"rang": True}, [ring], done=True)


def managers() -> list[ProcessManager]:
    return [RingOnOrder()]
