"""The runtime: start, resume, cancel and replay runs; every transition is an event on `run-<id>`.

The journal is the only state: the next step is always decided (agents.decider) from the run
folded from its stream, which is why a run continues in any process after a crash, an approval
or a restart. A driver (agents.driver) performs each step and writes it with optimistic
concurrency, so two workers never both advance a run, and a side-effecting call is claimed in
the journal before it runs, so it runs once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentjournal.agents import decider
from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.decider import Draft
from agentjournal.agents.driver import Driver, RunError, RunResult, Superseded, resumed_options, worker_name
from agentjournal.journal import AsyncJournal, ConcurrencyError, Journal, StreamClosedError
from agentjournal.journal.context import current_context
from agentjournal.journal.ids import uuid7
from agentjournal.model import Repository, import_object
from agentjournal.runs import RunState, new_event, run_stream
from agentjournal.runs import events as ev

if TYPE_CHECKING:
    from agentjournal.agents.replay import ReplayResult

__all__ = ["RunError", "RunResult", "Runtime", "arguments_hash", "load_agents"]

arguments_hash = decider.arguments_hash


def load_agents(path: str) -> list[Agent]:
    """The agents named by `package.module:attr` (a list of Agent or a function returning one)."""
    found: Any = import_object(path, "agents")
    if callable(found) and not isinstance(found, Agent):
        try:
            found = found()
        except TypeError as exc:
            raise RunError(f"agents {path!r} is a function that cannot be called without arguments: {exc}") from None
    items = [found] if isinstance(found, Agent) else list(found) if isinstance(found, list | tuple) else None
    if not items or not all(isinstance(item, Agent) for item in items):
        raise RunError(f"agents {path!r} is {found!r}, not an Agent or a list of Agent")
    return items


class Runtime:
    """Runs agents and records every transition; resumes, cancels and replays runs by id."""

    def __init__(
        self,
        journal: Journal,
        *,
        agents: Sequence[Agent] = (),
        options: RunOptions | None = None,
        worker: str | None = None,
    ) -> None:
        self.journal = journal
        self.async_journal = AsyncJournal(journal)
        self.options = options or RunOptions()
        self.worker = worker or worker_name()
        self.repository: Repository[RunState] = Repository(journal, RunState)
        self.blobs = BlobStore(journal)
        self.agents: dict[str, Agent] = {}
        for agent in agents:
            self.register(agent)

    def register(self, agent: Agent) -> Agent:
        """Make `agent` (and the Agent objects it hands off to) resolvable by name for resumes and handoffs."""
        known = self.agents.get(agent.name)
        if known is not None and known is not agent:
            raise RunError(f"another agent named {agent.name!r} is already registered")
        self.agents[agent.name] = agent
        for target in agent.handoffs:
            if isinstance(target, Agent) and target.name not in self.agents:
                self.register(target)
        return agent

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "(none)"
            raise RunError(f"agent {name!r} is not registered with this runtime; registered: {known}") from None

    # ----- running -------------------------------------------------------------------------------

    async def run(
        self,
        agent: Agent,
        input: str,
        *,
        run_id: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        route: str | None = None,
        options: RunOptions | None = None,
    ) -> RunResult:
        """Start a run and drive it until it completes, aborts, is cancelled or waits for a human."""
        self.register(agent)
        options = options or self.options
        run_id = (run_id or uuid7()).removeprefix("run-")
        if not isinstance(input, str) or not input.strip():
            raise RunError(f"run {run_id}: the input must be non-empty text, got {input!r}")
        driver = Driver(self, self.repository.create(run_stream(run_id)), options)
        event_id = uuid7()
        driver.correlation_id = current_context().correlation_id or event_id
        driver.tenant_id = tenant_id
        start = decider.started(agent, input, run_id, user_id=user_id, route=route, options=options)
        driver.stage(Draft(start, "orchestrator", None, event_id))
        try:
            await driver.flush()
        except Superseded:
            raise RunError(f"run {run_id} already exists in {self.journal.url}") from None
        return await driver.drive()

    def run_sync(self, agent: Agent, input: str, **options: Any) -> RunResult:
        """`run` for code without an event loop."""
        return asyncio.run(self.run(agent, input, **options))

    async def resume(self, run_id: str, *, options: RunOptions | None = None) -> RunResult:
        """Continue a run from its journal (after a crash, a restart or a human decision)."""
        state = await self.aload(run_id)
        if state.finished:
            return RunResult(state.run_id, state.status, state.final_response, state)
        self.agent(state.agent)
        return await Driver(self, state, options or resumed_options(self.options, state.limits)).drive()

    def resume_sync(self, run_id: str, **options: Any) -> RunResult:
        return asyncio.run(self.resume(run_id, **options))

    async def replay(self, run_id: str) -> ReplayResult:
        """Re-execute run `run_id` with this runtime's agents and the recorded replies (see agents.replay)."""
        from agentjournal.agents.replay import replay  # replay builds on the runtime

        return await replay(self.journal, run_id, list(self.agents.values()))

    # ----- workers -------------------------------------------------------------------------------

    async def resume_ready(self, *, stalled_after: float | None = None) -> list[RunResult]:
        """Resume every run a human unblocked, and (with `stalled_after` seconds) every run that stalled."""
        from agentjournal.projections.queries import runs_to_resume

        ids = await asyncio.to_thread(runs_to_resume, self.journal, stalled_after=stalled_after)
        return [await self.resume(run_id) for run_id in ids]

    async def serve(
        self,
        should_stop: Callable[[], bool],
        *,
        every_s: float = 1.0,
        stalled_after: float | None = None,
        report: Callable[[str, RunResult | Exception], None] | None = None,
    ) -> None:
        """Resume runs as humans unblock them (and stalled ones), until `should_stop()`: a worker's loop.

        A run that cannot be resumed here (its agent is not registered) is reported once and left
        alone, so one bad run does not stop the others.
        """
        from agentjournal.projections.queries import runs_to_resume

        given_up: set[str] = set()
        while not should_stop():
            for run_id in await asyncio.to_thread(runs_to_resume, self.journal, stalled_after=stalled_after):
                if run_id in given_up or should_stop():
                    continue
                try:
                    outcome: RunResult | Exception = await self.resume(run_id)
                except RunError as exc:
                    given_up.add(run_id)
                    outcome = exc
                if report is not None:
                    report(run_id, outcome)
            await _sleep_until(should_stop, every_s)

    # ----- reading -------------------------------------------------------------------------------

    def load(self, run_id: str) -> RunState:
        return self.repository.load(run_stream(run_id))

    async def aload(self, run_id: str) -> RunState:
        """`load` off the event loop's thread."""
        return await asyncio.to_thread(self.load, run_id)

    def load_at_step(self, run_id: str, step: int) -> RunState:
        """The run as it was at the end of step `step`: what the agent knew before its next model call."""
        stream = run_stream(run_id)
        if step < 0:
            raise RunError(f"run {run_id}: steps start at 0 (the user's message), got {step}")
        events = self.journal.read_stream(stream)
        if not events:
            raise RunError(f"no run {run_id!r} in {self.journal.url}")
        if step == 0:
            return self.repository.load_at_version(stream, 1)
        steps = [e for e in events if e.type == "ModelCalled" or (e.type == "ToolProposed" and e.data["step"] > 0)]
        last = max((int(e.data["step"]) for e in steps), default=0)
        if step > last:
            raise RunError(f"run {run_id} has steps 0..{last}; there is no step {step}")
        after = next((e.version for e in steps if int(e.data["step"]) > step), events[-1].version + 1)
        return self.repository.load_at_version(stream, after - 1)

    # ----- cancelling ----------------------------------------------------------------------------

    def cancel(self, run_id: str, reason: str = "cancelled", *, by: str | None = None) -> bool:
        """Append RunCancelled unless the run has finished; a worker advancing it stops at its next write.

        The run's pending approvals close with it (in RunState and in the approvals read model).
        Returns False when the run had already finished.
        """
        stream = run_stream(run_id)
        while True:
            state = self.repository.load(stream)
            if state.finished:
                return False
            event = new_event(
                ev.RunCancelled(reason=reason, by=by),
                actor=by or "orchestrator",
                tenant_id=state.tenant_id,
                correlation_id=state.correlation_id,
                causation_id=state.last_event_id,
            )
            try:
                self.journal.append(stream, [event], expected_version=state.version)
            except ConcurrencyError:
                continue
            except StreamClosedError:
                return False
            return True


async def _sleep_until(should_stop: Callable[[], bool], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not should_stop() and loop.time() < deadline:
        await asyncio.sleep(min(0.05, seconds))
