"""Durable sagas on SQLite and PostgreSQL: compensation in reverse, repair, racing resumers, kill -9.

The effects of the steps are counted outside the saga, by a receiver that applies each idempotency
key once (in memory here; in files for the tests with real processes, see saga_child.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from agentjournal.agents import Policy, current_run, tool
from agentjournal.agents.saga_steps import tool_step
from agentjournal.journal import Journal, NewEvent, RecordedEvent, StreamClosedError
from agentjournal.messaging import (
    SagaDefinition,
    SagaDefinitionError,
    SagaError,
    SagaNotFoundError,
    SagaRunner,
    SagaStateError,
    Step,
    StepContext,
    current_step,
    list_sagas,
    load_saga,
    load_sagas,
    saga_stream,
)
from agentjournal.model import AggregateLoadError

from .saga_child import ABC, SAGAS, FileReceiver

CHILD = Path(__file__).with_name("saga_child.py")
Invoke = Callable[..., Result]


@pytest.fixture
def url(sqlite_or_postgres_url: str) -> str:
    return sqlite_or_postgres_url


@pytest.fixture
def journal(url: str) -> Iterator[Journal]:
    with Journal.open(url) as opened:
        yield opened


class Receiver:
    """An external system in memory: every delivery is counted, each idempotency key applied once."""

    def __init__(self) -> None:
        self.deliveries: list[str] = []
        self.applied: dict[str, Any] = {}
        self._lock = threading.Lock()

    def deliver(self, step: StepContext) -> Any:
        with self._lock:
            self.deliveries.append(step.idempotency_key)
            effect = {"id": f"{step.step}-{len(self.applied) + 1}", "saw": sorted(step.results), "undoes": step.result}
            return self.applied.setdefault(step.idempotency_key, effect)


def shop(receiver: Receiver, *, fail: str | None = None, broken: set[str] | None = None) -> SagaDefinition:
    """reserve -> charge -> ship; `fail` names the step whose action raises, `broken` the compensations that do."""
    broken = broken if broken is not None else set()

    def make(name: str) -> Callable[[StepContext], Any]:
        def run(step: StepContext) -> Any:
            if step.phase == "action" and name == fail:
                raise RuntimeError(f"{name} is not possible today")
            if step.phase == "compensation" and name in broken:
                raise ConnectionError(f"the {name} service is down")
            return receiver.deliver(step)

        return run

    return SagaDefinition("shop", [Step(name, make(name), make(name)) for name in ("reserve", "charge", "ship")])


def types(journal: Journal, saga_id: str) -> list[str]:
    return [event.type for event in journal.read_stream(saga_stream(saga_id))]


def events_of(journal: Journal, saga_id: str, kind: str) -> list[RecordedEvent]:
    return [event for event in journal.read_stream(saga_stream(saga_id)) if event.type == kind]


# ----- the paths -----------------------------------------------------------------------------------


def test_the_happy_path_runs_each_step_once_and_records_each_transition(journal: Journal) -> None:
    receiver = Receiver()
    definition = shop(receiver)
    result = SagaRunner(journal, [definition]).start("shop", {"order": "ORD-1"}, saga_id="order-1")

    assert (result.status, result.waiting, result.error) == ("completed", None, None)
    assert types(journal, "order-1") == ["SagaStarted", *["StepStarted", "StepCompleted"] * 3, "SagaCompleted"]
    assert receiver.deliveries == ["order-1:reserve:action", "order-1:charge:action", "order-1:ship:action"]
    assert receiver.applied["order-1:ship:action"]["saw"] == ["charge", "reserve"]  # the earlier results
    assert result.results == {
        name: receiver.applied[f"order-1:{name}:action"] for name in ("reserve", "charge", "ship")
    }
    [started] = events_of(journal, "order-1", "SagaStarted")
    assert started.data["input"] == {"order": "ORD-1"} and started.data["steps"] == ["reserve", "charge", "ship"]
    with pytest.raises(StreamClosedError):  # a finished saga is final
        journal.append(saga_stream("order-1"), NewEvent("Anything"))
    again = SagaRunner(journal, [definition]).resume("order-1")
    assert again.status == "completed" and len(receiver.deliveries) == 3


def test_a_failure_at_step_3_compensates_step_2_then_step_1(journal: Journal) -> None:
    receiver = Receiver()
    result = SagaRunner(journal, [shop(receiver, fail="ship")]).start("shop", {}, saga_id="order-2")

    assert result.status == "compensated"
    assert (result.failed_step, result.error) == ("ship", "RuntimeError: ship is not possible today")
    assert receiver.deliveries == [
        "order-2:reserve:action",
        "order-2:charge:action",
        "order-2:charge:compensation",
        "order-2:reserve:compensation",
    ]
    # Each compensation is given its own step's result.
    assert receiver.applied["order-2:charge:compensation"]["undoes"] == receiver.applied["order-2:charge:action"]
    assert types(journal, "order-2") == [
        "SagaStarted",
        *["StepStarted", "StepCompleted"] * 2,
        "StepStarted",
        "StepFailed",
        *["CompensationStarted", "StepCompensated"] * 2,
        "SagaCompensated",
    ]
    state = load_saga(journal, "order-2")
    assert {name: step.status for name, step in state.steps.items()} == {
        "reserve": "compensated",
        "charge": "compensated",
        "ship": "failed",
    }


def test_a_failed_compensation_needs_repair_and_retry_after_the_fix_finishes_the_rollback(journal: Journal) -> None:
    receiver, broken = Receiver(), {"charge"}
    runner = SagaRunner(journal, [shop(receiver, fail="ship", broken=broken)])
    result = runner.start("shop", {}, saga_id="order-3")

    assert result.status == "needs_repair"
    assert result.error == "the compensation of charge failed: ConnectionError: the charge service is down"
    assert types(journal, "order-3")[-2:] == ["CompensationStarted", "CompensationFailed"]
    assert [state.saga_id for state in list_sagas(journal, status="needs_repair")] == ["order-3"]
    assert load_saga(journal, "order-3").current_step == "charge"
    assert runner.resume("order-3").status == "needs_repair"  # a resume does not repair

    still = runner.retry("order-3", by="alice", reason="tried before the fix")
    assert still.status == "needs_repair"  # not fixed yet: it fails again, and says so
    broken.clear()  # the fix
    repaired = runner.retry("order-3", by="alice", reason="the payment service is back")

    assert repaired.status == "compensated"
    assert receiver.deliveries[-2:] == ["order-3:charge:compensation", "order-3:reserve:compensation"]
    attempts = events_of(journal, "order-3", "CompensationStarted")
    charge = [event.data for event in attempts if event.data["step"] == "charge"]
    assert [data["attempt"] for data in charge] == [1, 2, 3]
    assert {data["idempotency_key"] for data in charge} == {"order-3:charge:compensation"}
    [_, retried] = events_of(journal, "order-3", "RetryRequested")
    assert retried.data == {"step": "charge", "by": "alice", "reason": "the payment service is back"}
    assert [e.data["step"] for e in events_of(journal, "order-3", "StepCompensated")] == ["charge", "reserve"]
    with pytest.raises(SagaStateError, match="'order-3' does not need repair: it is compensated"):
        runner.retry("order-3")


def test_two_resumers_racing_in_one_process_run_each_action_once(url: str) -> None:
    receiver = Receiver()
    definition = shop(receiver)
    with Journal.open(url) as journal:
        SagaRunner(journal, [definition]).start("shop", {}, saga_id="race", run=False)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[Any] = []

    class Racing:
        """A journal whose first append waits for the other resumer: both decide on the same version."""

        def __init__(self, journal: Journal) -> None:
            self.journal, self.waited = journal, False

        def append(self, *args: Any, **kwargs: Any) -> Any:
            if not self.waited:
                self.waited = True
                barrier.wait()
            return self.journal.append(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.journal, name)

    def resume() -> None:
        with Journal.open(url) as journal:
            outcomes.append(SagaRunner(Racing(journal), [definition]).resume("race"))  # type: ignore[arg-type]

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(Counter(receiver.deliveries).values()) == [1, 1, 1]
    with Journal.open(url) as journal:
        assert load_saga(journal, "race").status == "completed"
        assert [e.data["attempt"] for e in events_of(journal, "race", "StepStarted")] == [1, 1, 1]
    waiting = [outcome for outcome in outcomes if outcome.status != "completed"]
    assert len(outcomes) == 2 and all("is being run by" in (outcome.waiting or "") for outcome in waiting)


def _child(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    outcome: dict[str, Any] = json.loads(out.splitlines()[-1])
    return outcome


def test_resumer_processes_racing_run_each_action_once(url: str, journal: Journal, tmp_path: Path) -> None:
    SagaRunner(journal, SAGAS).start("abc", {"folder": str(tmp_path)}, saga_id="race-p", run=False)
    go = tmp_path / "go"
    processes = [_child(url, "resume", "race-p", str(go)) for _ in range(4)]
    time.sleep(1.0)  # every process is up and waiting for the go
    go.touch()
    outcomes = [_finished(process) for process in processes]

    receiver = FileReceiver(tmp_path)
    assert Counter(receiver.deliveries()) == {f"race-p:{name}:action": 1 for name in "abc"}
    assert load_saga(journal, "race-p").status == "completed"
    assert [e.data["attempt"] for e in events_of(journal, "race-p", "StepStarted")] == [1, 1, 1]
    assert {outcome["status"] for outcome in outcomes} <= {"completed", "running"}


# ----- kill -9 -------------------------------------------------------------------------------------


def _kill_when_hung(process: subprocess.Popen[str], folder: Path) -> None:
    """kill -9 the saga process once it stopped between an effect and its outcome (and in any case)."""
    try:
        deadline = time.monotonic() + 60
        while not (folder / "hung").exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the saga process never reached its hanging point"
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)  # reaped: the pid is gone, as a crashed worker's is
    assert process.returncode == -signal.SIGKILL


def test_kill_9_between_an_action_and_its_result_then_resume_runs_it_again_with_the_same_key(
    url: str, journal: Journal, tmp_path: Path
) -> None:
    _kill_when_hung(_child(url, "start", "killed-a", str(tmp_path), json.dumps({"hang": "b:action"})), tmp_path)
    interrupted = load_saga(journal, "killed-a")
    assert (interrupted.status, interrupted.steps["b"].status) == ("running", "started")

    assert _finished(_child(url, "resume", "killed-a")) == {"status": "completed", "waiting": None}
    receiver = FileReceiver(tmp_path)
    # b's action was delivered twice, with one key, and applied once; nothing else was repeated.
    assert Counter(receiver.deliveries()) == {"killed-a:a:action": 1, "killed-a:b:action": 2, "killed-a:c:action": 1}
    assert sorted(receiver.applied()) == ["killed-a:a:action", "killed-a:b:action", "killed-a:c:action"]
    first, again = [e.data for e in events_of(journal, "killed-a", "StepStarted") if e.data["step"] == "b"]
    assert again["attempt"] == 2 and again["resumed_from"] == first["worker"] != again["worker"]
    assert again["idempotency_key"] == first["idempotency_key"] == "killed-a:b:action"
    assert load_saga(journal, "killed-a").steps["b"].resumed == 1


@pytest.mark.parametrize("hang", ["b:compensation", "a:compensation"])
def test_kill_9_while_compensating_then_resume_never_compensates_twice(
    hang: str, url: str, journal: Journal, tmp_path: Path
) -> None:
    saga = f"killed-{hang[0]}"
    _kill_when_hung(_child(url, "start", saga, str(tmp_path), json.dumps({"fail": "c", "hang": hang})), tmp_path)
    assert load_saga(journal, saga).steps[hang[0]].status == "compensating"

    assert _finished(_child(url, "resume", saga))["status"] == "compensated"
    receiver = FileReceiver(tmp_path)
    expected = {f"{saga}:a:action": 1, f"{saga}:b:action": 1, f"{saga}:b:compensation": 1, f"{saga}:a:compensation": 1}
    expected[f"{saga}:{hang}"] = 2  # the interrupted one again, with its key; a recorded one never
    assert Counter(receiver.deliveries()) == expected
    assert sorted(receiver.applied()) == sorted(key for key in expected)
    assert [e.data["step"] for e in events_of(journal, saga, "StepCompensated")] == ["b", "a"]
    assert types(journal, saga)[-1] == "SagaCompensated"


# ----- whose step is it ----------------------------------------------------------------------------


class Crash(BaseException):
    """A process that dies mid-step, simulated in-process: nothing is recorded after the start."""


def test_a_step_held_by_a_live_worker_elsewhere_is_left_to_it_until_its_claim_expires(journal: Journal) -> None:
    calls: list[int] = []

    def flaky(step: StepContext) -> Any:
        calls.append(step.attempt)
        if step.attempt == 1:
            raise Crash
        return {"attempt": step.attempt, "resumed": step.resumed}

    definition = SagaDefinition("one", [Step("only", flaky, claim_s=1.5)])
    elsewhere = SagaRunner(journal, [definition], worker="another-host:4242/abcdef")
    with pytest.raises(Crash):
        elsewhere.start("one", {}, saga_id="held")
    waiting = SagaRunner(journal, [definition]).resume("held")
    assert waiting.status == "running" and "another-host:4242/abcdef" in (waiting.waiting or "")
    time.sleep(1.6)
    done = SagaRunner(journal, [definition]).resume("held")
    assert done.status == "completed" and done.results == {"only": {"attempt": 2, "resumed": True}}
    assert calls == [1, 2]


def test_a_step_whose_worker_died_in_this_process_runs_again_at_once(journal: Journal) -> None:
    receiver = Receiver()
    crash = {"charge"}

    def charge(step: StepContext) -> Any:
        receiver.deliver(step)
        if crash:
            crash.clear()
            raise Crash
        return {"charged": True}

    definition = SagaDefinition("pay", [Step("charge", charge)])
    with pytest.raises(Crash):
        SagaRunner(journal, [definition]).start("pay", {}, saga_id="pay-1")
    assert SagaRunner(journal, [definition]).resume("pay-1").status == "completed"
    assert receiver.deliveries == ["pay-1:charge:action"] * 2 and len(receiver.applied) == 1


# ----- steps that are agents' tool calls, under the policy guard ----------------------------------

CHARGES: dict[str, dict[str, Any]] = {}


@tool(side_effecting=True)
def charge_card(amount: float, idempotency_key: str = "") -> dict[str, Any]:
    """Charge the customer's card."""
    run = current_run()
    step = current_step()
    assert run is not None and step is not None
    return CHARGES.setdefault(idempotency_key, {"charge_id": f"ch-{len(CHARGES) + 1}", "saga": run.run_id})


@tool(side_effecting=True)
def refund_card(charge_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Refund a charge."""
    return {"refunded": charge_id}


POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: no_large_charges
    when: {tool: charge_card, input: {amount_gt: 1000}}
    action: deny
    reason: charges above $1,000 go through finance
  - name: medium_charges_need_a_human
    when: {tool: charge_card, input: {amount_gt: 100}}
    action: require_human_approval
"""
)


def checkout(receiver: Receiver) -> SagaDefinition:
    return SagaDefinition(
        "checkout",
        [
            Step("reserve", receiver.deliver, receiver.deliver),
            tool_step(
                charge_card,
                lambda step: {"amount": step.input["amount"]},
                compensation=refund_card,
                compensation_arguments=lambda step: {"charge_id": step.result["charge_id"]},
                policy=POLICY,
            ),
        ],
    )


def test_a_tool_step_runs_the_tool_with_the_steps_idempotency_key(journal: Journal) -> None:
    CHARGES.clear()
    result = SagaRunner(journal, [checkout(Receiver())]).start("checkout", {"amount": 40}, saga_id="buy-1")
    assert result.status == "completed"
    assert CHARGES == {"buy-1:charge_card:action": {"charge_id": "ch-1", "saga": "buy-1"}}
    assert result.results["charge_card"] == {"charge_id": "ch-1", "saga": "buy-1"}


@pytest.mark.parametrize(
    ("amount", "error_type", "error"),
    [
        (5000, "policy_denied", "charge_card denied by rule no_large_charges: charges above $1,000 go through finance"),
        (500, "needs_approval", "a saga step cannot wait for a human's approval"),
        ("lots", "invalid_arguments", "tool 'charge_card': invalid arguments: amount"),
    ],
)
def test_a_tool_call_the_guard_refuses_fails_its_step_with_the_reason_and_rolls_back(
    amount: Any, error_type: str, error: str, journal: Journal
) -> None:
    CHARGES.clear()
    receiver = Receiver()
    result = SagaRunner(journal, [checkout(receiver)]).start("checkout", {"amount": amount}, saga_id="buy-2")
    assert result.status == "compensated" and not CHARGES  # the tool never ran
    [failed] = events_of(journal, "buy-2", "StepFailed")
    assert failed.data["error_type"] == error_type and error in failed.data["error"]
    assert receiver.deliveries == ["buy-2:reserve:action", "buy-2:reserve:compensation"]


# ----- bad inputs ----------------------------------------------------------------------------------


def test_an_unknown_saga_id_is_a_clear_error(journal: Journal) -> None:
    runner = SagaRunner(journal, [shop(Receiver())])
    for call in (runner.resume, runner.retry, runner.load):
        with pytest.raises(SagaNotFoundError, match=r"no saga 'nope' in .*`agentjournal sagas list` shows the sagas"):
            call("nope")
    journal.append("saga-not-one", NewEvent("StepStarted", {"step": "x"}))  # a stream of that name, no saga
    with pytest.raises(SagaNotFoundError):
        load_saga(journal, "not-one")
    assert list_sagas(journal) == []


def test_retry_on_a_saga_that_does_not_need_repair_is_refused(journal: Journal) -> None:
    runner = SagaRunner(journal, [shop(Receiver())])
    runner.start("shop", {}, saga_id="fine")
    with pytest.raises(SagaStateError, match=r"saga 'fine' does not need repair: it is completed"):
        runner.retry("fine")
    runner.start("shop", {}, saga_id="waiting", run=False)
    with pytest.raises(SagaStateError, match=r"does not need repair: it is running"):
        runner.retry("waiting")
    assert types(journal, "waiting") == ["SagaStarted"]  # a refused retry writes nothing


def test_a_definition_with_duplicate_or_bad_step_names_is_refused() -> None:
    def noop(step: StepContext) -> None:
        return None

    with pytest.raises(SagaDefinitionError, match="saga 'twice' has two steps named 'a'; step names must be unique"):
        SagaDefinition("twice", [Step("a", noop), Step("b", noop), Step("a", noop)])
    with pytest.raises(SagaDefinitionError, match="step name 'a b' must be 1 to 64 letters"):
        Step("a b", noop)
    with pytest.raises(SagaDefinitionError, match="has no steps"):
        SagaDefinition("empty", [])
    with pytest.raises(SagaDefinitionError, match="the compensation must be callable"):
        Step("a", noop, "undo")  # type: ignore[arg-type]
    with pytest.raises(SagaDefinitionError, match="claim_s must be positive"):
        Step("a", noop, claim_s=0)


def test_a_step_that_returns_no_json_fails_with_a_message_and_the_saga_rolls_back(journal: Journal) -> None:
    receiver = Receiver()
    definition = SagaDefinition(
        "odd",
        [Step("first", receiver.deliver, receiver.deliver), Step("second", lambda step: {1, 2}, receiver.deliver)],
    )
    result = SagaRunner(journal, [definition]).start("odd", {}, saga_id="odd-1")
    assert result.status == "compensated"
    [failed] = events_of(journal, "odd-1", "StepFailed")
    assert failed.data["error_type"] == "non_json_result"
    assert failed.data["error"].startswith("the action of step 'second' is a set, which is not JSON")
    assert receiver.deliveries == ["odd-1:first:action", "odd-1:first:compensation"]


def test_starting_resuming_and_loading_definitions_refuse_what_cannot_work(journal: Journal) -> None:
    receiver = Receiver()
    runner = SagaRunner(journal, [shop(receiver)])
    runner.start("shop", {}, saga_id="once")
    with pytest.raises(SagaStateError, match="saga 'once' already exists"):
        runner.start("shop", {}, saga_id="once")
    with pytest.raises(SagaDefinitionError, match=r"no saga definition named 'nope' here \(known: shop\)"):
        runner.start("nope", {})
    with pytest.raises(SagaError, match="the saga's input is a dict, which is not JSON"):
        runner.start("shop", {"when": object()})
    runner.start("shop", {}, saga_id="later", run=False)
    other = SagaDefinition("shop", [Step("reserve", receiver.deliver)])
    with pytest.raises(SagaDefinitionError, match=r"was started with the steps \['reserve', 'charge', 'ship'\]"):
        SagaRunner(journal, [other]).resume("later")
    with pytest.raises(SagaDefinitionError, match="another saga definition named 'shop'"):
        runner.register(other)
    with pytest.raises(AggregateLoadError, match=r"not of the form package\.module:attr"):
        load_sagas("no-colon")
    with pytest.raises(SagaDefinitionError, match="not a SagaDefinition or a list of them"):
        load_sagas("messaging.saga_child:ABC.name")
    assert load_sagas("messaging.saga_child:SAGAS") == [ABC]


# ----- the command line ----------------------------------------------------------------------------


def _one_line_error(result: Result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().startswith("error: ") and text in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_sagas_list_show_and_retry_after_a_fix(url: str, journal: Journal, invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "broken-b").touch()
    runner = SagaRunner(journal, SAGAS)
    runner.start("abc", {"folder": str(tmp_path), "fail": "c"}, saga_id="repair-me")
    runner.start("abc", {"folder": str(tmp_path)}, saga_id="all-good")
    sagas = ("--sagas", "messaging.saga_child:SAGAS")

    listed = invoke(url, "sagas", "list")
    assert listed.exit_code == 0, listed.output
    [row] = [line.split() for line in listed.stdout.splitlines() if line.startswith("repair-me")]
    assert row[:4] == ["repair-me", "abc", "needs_repair", "b"]
    assert "2 saga(s)" in listed.stdout
    only = invoke(url, "sagas", "list", "--status", "needs_repair", "--json")
    assert [json.loads(line)["saga_id"] for line in only.stdout.splitlines()] == ["repair-me"]
    shown = invoke(url, "sagas", "show", "repair-me")
    assert shown.exit_code == 0, shown.output
    assert "needs_repair" in shown.stdout and "compensation_failed" in shown.stdout
    assert "Compensation of b failed (ConnectionError): needs repair" in shown.stdout
    assert "agentjournal sagas retry repair-me" in shown.stdout
    [record] = [json.loads(line) for line in invoke(url, "sagas", "show", "repair-me", "--json").stdout.splitlines()]
    assert record["status"] == "needs_repair" and [e["type"] for e in record["events"]][-1] == "CompensationFailed"

    not_yet = invoke(url, "sagas", "retry", "repair-me", *sagas)
    assert not_yet.exit_code == 1 and "saga repair-me: needs_repair: the compensation of b failed" in not_yet.stdout
    (tmp_path / "broken-b").unlink()  # the fix
    fixed = invoke(url, "sagas", "retry", "repair-me", *sagas, "--by", "alice", "--reason", "the b service is up")
    assert fixed.exit_code == 0, fixed.output
    assert "saga repair-me: compensated" in fixed.stdout
    assert Counter(FileReceiver(tmp_path).deliveries())["repair-me:b:compensation"] == 1
    assert load_saga(journal, "repair-me").status == "compensated"

    _one_line_error(invoke(url, "sagas", "retry", "repair-me", *sagas), "'repair-me' does not need repair")
    _one_line_error(invoke(url, "sagas", "retry", "all-good", *sagas), "it is completed")
    _one_line_error(invoke(url, "sagas", "retry", "nope", *sagas), "no saga 'nope'")
    _one_line_error(invoke(url, "sagas", "show", "nope"), "no saga 'nope'")
    _one_line_error(invoke(url, "sagas", "retry", "all-good", "--sagas", "nothing.here:SAGAS"), "cannot import")


def test_sagas_resume_continues_a_saga_a_crash_left(url: str, journal: Journal, invoke: Invoke, tmp_path: Path) -> None:
    SagaRunner(journal, SAGAS).start("abc", {"folder": str(tmp_path)}, saga_id="left", run=False)
    resumed = invoke(url, "sagas", "resume", "--sagas", "messaging.saga_child:SAGAS")
    assert resumed.exit_code == 0, resumed.output
    assert "saga left: completed" in resumed.stdout
    again = invoke(url, "sagas", "resume", "--sagas", "messaging.saga_child:SAGAS")
    assert "no saga is running or compensating" in again.stdout
    assert Counter(FileReceiver(tmp_path).deliveries()) == {f"left:{name}:action": 1 for name in "abc"}


def test_the_demo_books_the_slot_then_a_second_run_rolls_back(invoke: Invoke, tmp_path: Path) -> None:
    db_file = tmp_path / "demo.db"
    url = f"sqlite:///{db_file}"
    first = invoke(url, "demo", "--db-file", str(db_file))
    assert first.exit_code == 0, first.output
    assert "saga book-demo-lead-456 completed" in first.stdout and "again" in first.stdout
    second = invoke(url, "demo", "--db-file", str(db_file))
    assert second.exit_code == 0, second.output
    out = " ".join(second.stdout.split())
    assert "already holds the demo's two runs" in out
    assert "book_calendar_slot failed (SlotTaken)" in out and "Compensated create_opportunity" in out
    assert "saga book-demo-lead-457 rolled back cleanly" in out
    assert "compensated create_opportunity, then qualify_lead" in out
    with Journal.open(url) as journal:
        assert [state.status for state in list_sagas(journal)] == ["compensated", "completed"]
        assert types(journal, "book-demo-lead-457")[-1] == "SagaCompensated"
        assert [e.type for e in journal.read_stream("demo-calendar")] == ["SlotBooked"]  # lead-456 keeps it
        assert [e.type for e in journal.read_stream("demo-crm")] == [
            "OpportunityCreated",
            "OpportunityCreated",
            "OpportunityDeleted",
        ]
        assert [e.type for e in journal.read_stream("demo-leads")] == ["LeadQualified"] * 2 + ["LeadUnqualified"]
        assert journal.verify().ok
    sagas = ("--sagas", "agentjournal.agents.demo_sagas:SAGAS")
    _one_line_error(invoke(url, "sagas", "retry", "book-demo-lead-457", *sagas), "does not need repair")
