"""The saga of the saga tests, and a script that runs it in a process of its own (to be killed with -9).

Its three steps a, b, c send their effects to a receiver kept in files of a folder (`FileReceiver`):
every delivery is counted, outside the system, and an idempotency key is applied once, as a receiver
that dedupes by key does. The saga's input says what goes wrong:

- `fail`: the step whose action raises;
- `hang`: `<step>:<phase>` where the process stops, after the effect is applied and before its outcome
  is recorded, and waits to be killed (it writes the file `hung` first; a resumed process goes on);
- a file `broken-<step>` in the folder makes that step's compensation fail; deleting it is the fix.

    python saga_child.py URL start SAGA_ID FOLDER [INPUT_JSON]
    python saga_child.py URL resume SAGA_ID [GO_FILE]   (with GO_FILE: waits until it exists)
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agentjournal.journal import Journal
from agentjournal.messaging import SagaDefinition, SagaRunner, Step, StepContext


class FileReceiver:
    """The external system: deliveries.jsonl counts every call, applied.jsonl holds each key's effect once."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def deliver(self, key: str, effect: dict[str, Any]) -> dict[str, Any]:
        with open(self.folder / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one check-and-apply at a time, across processes
            with open(self.folder / "deliveries.jsonl", "a") as log:
                log.write(json.dumps({"key": key, "pid": os.getpid()}) + "\n")
            applied = self.applied()
            if key not in applied:
                with open(self.folder / "applied.jsonl", "a") as log:
                    log.write(json.dumps({"key": key, "effect": effect}) + "\n")
                applied[key] = effect
            return applied[key]

    def deliveries(self) -> list[str]:
        return [json.loads(line)["key"] for line in self._lines("deliveries.jsonl")]

    def applied(self) -> dict[str, Any]:
        return {record["key"]: record["effect"] for record in map(json.loads, self._lines("applied.jsonl"))}

    def _lines(self, name: str) -> list[str]:
        path = self.folder / name
        return path.read_text().splitlines() if path.exists() else []


def _step(name: str) -> Any:
    def run(step: StepContext) -> dict[str, Any]:
        folder = Path(step.input["folder"])
        if step.phase == "compensation" and (folder / f"broken-{name}").exists():
            raise ConnectionError(f"the {name} service refused the undo")
        if step.phase == "action" and step.input.get("fail") == name:
            raise RuntimeError(f"{name} cannot be done")
        effect = {"step": name, "phase": step.phase, "saw": sorted(step.results), "undoes": step.result}
        FileReceiver(folder).deliver(step.idempotency_key, effect)
        if step.input.get("hang") == f"{name}:{step.phase}" and not (folder / "hung").exists():
            (folder / "hung").write_text(str(os.getpid()))
            time.sleep(600)  # killed here, with -9, before the outcome is recorded
        return {"done": step.idempotency_key}

    return run


ABC = SagaDefinition("abc", [Step(name, _step(name), _step(name)) for name in ("a", "b", "c")])
SAGAS = [ABC]


def main(url: str, command: str, *args: str) -> None:
    with Journal.open(url) as journal:
        runner = SagaRunner(journal, SAGAS)
        if command == "start":
            saga_id, folder, *extra = args
            result = runner.start("abc", {"folder": folder, **json.loads(extra[0] if extra else "{}")}, saga_id=saga_id)
        else:
            saga_id, *go = args
            while go and not Path(go[0]).exists():
                time.sleep(0.005)
            result = runner.resume(saga_id)
    print(json.dumps({"status": result.status, "waiting": result.waiting}))


if __name__ == "__main__":
    main(*sys.argv[1:])
