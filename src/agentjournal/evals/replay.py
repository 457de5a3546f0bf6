"""Counterfactual replay: re-run each dataset item with a candidate, answering tools from the recording.

The runtime's decider runs the candidate's agents under a third driver. While the candidate
asks exactly what the recorded run asked (the same request fingerprint), the recorded model
reply is reused; from the first request that differs (the divergence, recorded with what
changed) the candidate's model answers. Tool calls are answered from the recording whenever
the candidate asks for the same tool with the same arguments; a call the recording does not
have is refused (the item stops), stubbed, or run live when the tool is read-only and listed
in `live_tools`. A side-effecting tool never runs in an evaluation. Recorded human decisions
are reused for the same tool and arguments; an approval with none leaves the item waiting.

Everything is written to the evaluation journal: each replay is a run of the run contract
(its RunStarted carries `evaluation`), and the stream `eval-<id>` holds the evaluation's
events (runs.evaluations). The evaluation id derives from the dataset version, the
candidate's fingerprint and the settings, so running the same replay again resumes it. A replay
is written in one append when it ends, and the items' ItemReplayed are group-committed after
their runs: an interruption loses at most the items in flight, which the resumed replay runs
again under the next attempt's run id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentjournal.agents.agent import Agent, RunOptions
from agentjournal.agents.decider import AskModel, Draft, Recall, RunTool, Wait
from agentjournal.agents.driver import Driver, RunStopped, Superseded
from agentjournal.agents.models.base import ModelResponse
from agentjournal.agents.replay import Recording, added_messages, differences, replace_started
from agentjournal.agents.runtime import Runtime
from agentjournal.agents.tools import Observation
from agentjournal.evals.candidates import Candidate, all_agents, fingerprint
from agentjournal.evals.dataset import Dataset, DatasetItem
from agentjournal.evals.trajectory import arguments_key
from agentjournal.journal import ConcurrencyError, Journal, NewEvent, RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError
from agentjournal.journal.ids import uuid7
from agentjournal.runs import RunState, new_event, run_stream
from agentjournal.runs import evaluations as evs
from agentjournal.runs import events as ev

__all__ = ["Evaluation", "EvaluationError", "ItemResult", "ReplaySettings", "replay_dataset", "replay_dataset_sync"]

Unmatched = Literal["refuse", "stub", "live"]
ACTOR = "evaluator"


class EvaluationError(AgentJournalError):
    """An evaluation that cannot run as asked: a tool that may not run live, an agent the candidate lacks, ..."""


@dataclass(frozen=True)
class ReplaySettings:
    repeat: int = 1
    """Replays of each item (a model is not deterministic: the spread is the noise the gate sees)."""
    unmatched: Unmatched = "refuse"
    """A call the recording has no result for: refuse (the item stops), stub, or live (`live_tools` only)."""
    live_tools: frozenset[str] = frozenset()
    """Read-only tools that may run for real when the recording has no result (with `unmatched="live"`)."""
    stubs: Mapping[str, Any] = field(default_factory=dict)
    """Tool name -> the output a stubbed call returns (without one, the stub is an error the model sees)."""
    reuse_model_replies: bool = True
    """Answer a request identical to the recorded one with the recorded reply (no model call)."""
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise EvaluationError(f"repeat must be at least 1, got {self.repeat}")
        if self.concurrency < 1:
            raise EvaluationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.unmatched not in ("refuse", "stub", "live"):
            raise EvaluationError(f"unmatched must be refuse, stub or live, got {self.unmatched!r}")
        if self.live_tools and self.unmatched != "live":
            raise EvaluationError("live tools run only with unmatched='live'")

    def identity(self) -> dict[str, Any]:
        """What makes two replays the same evaluation (concurrency does not)."""
        return {
            "repeat": self.repeat,
            "unmatched": self.unmatched,
            "live_tools": sorted(self.live_tools),
            "stubs": dict(self.stubs),
            "reuse_model_replies": self.reuse_model_replies,
        }


@dataclass(frozen=True)
class ItemResult:
    item: str
    repeat: int
    run_id: str
    status: str
    response: str | None
    divergence: dict[str, Any] | None
    unanswered: list[dict[str, Any]]


@dataclass(frozen=True)
class Evaluation:
    evaluation_id: str
    candidate: str
    dataset_version: str
    results: tuple[ItemResult, ...]
    resumed: int
    """Replays that an earlier, interrupted run of the same evaluation had already done."""

    @property
    def diverged(self) -> list[ItemResult]:
        return [result for result in self.results if result.divergence is not None]


class CounterfactualDriver(Driver):
    """The driver of one evaluation replay: the recording answers what it can, the candidate the rest."""

    def __init__(
        self, runtime: Runtime, state: RunState, options: RunOptions, recording: Recording, settings: ReplaySettings
    ) -> None:
        super().__init__(runtime, state, options)
        self.recording = recording
        self.settings = settings
        self.redact = None
        self.closing = False
        """Write on flush: only once the replay ended (`finish`)."""
        self.model_calls = 0
        self.recalls = 0
        self.divergence: dict[str, Any] | None = None
        self.unanswered: list[dict[str, Any]] = []
        self.results: dict[tuple[str, bytes], list[Observation]] = {}
        self.last: dict[tuple[str, bytes], Observation] = {}
        for call_id, proposed in recording.proposed.items():
            key = arguments_key(proposed["tool"], proposed["arguments"])
            self.results.setdefault(key, []).extend(recording.outcomes.get(call_id, ()))
        self.decisions: dict[tuple[str, str], list[RecordedEvent]] = {}
        hashes = {
            event.data["approval_id"]: event.data["arguments_hash"]
            for event in recording.events
            if event.type == "ApprovalRequested"
        }
        for approval_id, decision in recording.decisions.items():
            decided = (str(decision.data["tool"]), hashes.get(approval_id, ""))
            self.decisions.setdefault(decided, []).append(decision)

    async def flush(self) -> None:
        """Nothing real happens in an evaluation, so a replay is written in one batch when it ends (`closing`)."""
        if self.closing:
            await super().flush()

    async def finish(self) -> None:
        """Write the whole replay, at version 0: Superseded when an earlier attempt already wrote this run."""
        self.closing = True
        await self.flush()

    def diverge(self, what: str, step: int, changes: list[str], recorded: Any, requested: Any) -> None:
        if self.divergence is None:
            self.divergence = {
                "what": what,
                "step": step,
                "changes": changes,
                "recorded": recorded,
                "requested": requested,
            }

    async def call_model(self, ask: AskModel) -> tuple[ModelResponse, float]:
        index = self.model_calls
        self.model_calls += 1
        models = self.recording.models
        if self.divergence is None:
            recorded = models[index].data if index < len(models) else None
            if recorded is not None and recorded["request_fingerprint"] == ask.fingerprint:
                if self.settings.reuse_model_replies:
                    usage = {key: recorded[key] for key in ("input_tokens", "output_tokens", "cost_usd")}
                    reply = ModelResponse.from_dict(recorded["response"], model=recorded["model"], **usage)
                    return reply, float(recorded["latency_ms"])
            else:
                agent = self.runtime.agent(ask.agent)
                changes = (
                    differences(self.recording, index, ask, agent)
                    if recorded is not None
                    else ["the recording has no such call"]
                )
                self.diverge(
                    f"model call {index + 1}",
                    ask.step,
                    changes,
                    None
                    if recorded is None
                    else {"model": recorded["model"], "new messages": added_messages(self.recording.messages(index))},
                    {"model": ask.model.name, "new messages": added_messages(ask.request.messages)},
                )
        return await super().call_model(ask)

    async def run_tool(self, run: RunTool) -> Observation:
        key = arguments_key(run.tool.name, run.arguments)
        queue = self.results.get(key)
        if queue:
            self.last[key] = observation = queue.pop(0)
            return observation
        if key in self.last and not run.tool.side_effecting:  # a read-only call asked again: the same answer
            return self.last[key]
        call = {"tool": run.tool.name, "arguments": run.arguments}
        self.diverge(f"tool call {run.tool.name}", self.state.step, ["the recording has no result for it"], None, call)
        settings = self.settings
        if settings.unmatched == "live" and run.tool.name in settings.live_tools and not run.tool.side_effecting:
            self.unanswered.append({**call, "answer": "live"})
            return await super().run_tool(run)
        if settings.unmatched == "stub":
            self.unanswered.append({**call, "answer": "stub"})
            if run.tool.name in settings.stubs:
                return Observation(True, settings.stubs[run.tool.name])
            return Observation.failure("not_recorded", f"{run.tool.name} is not available in this evaluation")
        self.unanswered.append({**call, "answer": "refused"})
        raise RunStopped(
            f"evaluation: the recording has no result for {run.tool.name}({canonical_json(run.arguments).decode()}), "
            "and unanswered calls are refused"
        )

    async def recall(self, recall: Recall) -> list[dict[str, Any]]:
        recalls = self.recording.recalls
        if self.recalls >= len(recalls):
            return []
        self.recalls += 1
        return list(recalls[self.recalls - 1]["items"])

    async def waiting(self, wait: Wait) -> bool:
        """A human decision recorded for the same tool and arguments is reused; with none the item waits."""
        approval = self.state.approvals.get(wait.approval_id or "")
        if approval is None:
            return False
        decisions = self.decisions.get((approval.tool, approval.arguments_hash))
        if not decisions:
            return False
        decision = decisions.pop(0)
        model = ev.ToolApproved if decision.type == "ToolApproved" else ev.ToolRejected
        payload = model.model_validate({**decision.data, "approval_id": approval.approval_id})
        self.stage(Draft(payload, decision.actor or "human", approval.requested_id, uuid7()))
        return True


def _no_blob(ref: str) -> Any:
    raise EvaluationError(f"the dataset item refers to {ref} but does not hold it")


def evaluation_id(dataset: Dataset, candidate: Candidate, agents: Sequence[Agent], settings: ReplaySettings) -> str:
    identity = {
        "dataset": dataset.version,
        "candidate": candidate.name,
        "agents": fingerprint(agents),
        "settings": settings.identity(),
    }
    return f"{candidate.name}-{hashlib.sha256(canonical_json(identity)).hexdigest()[:12]}"


def _check_live_tools(agents: Sequence[Agent], live_tools: frozenset[str]) -> None:
    tools = {tool.name: tool for agent in agents for tool in agent.registry}
    for name in sorted(live_tools):
        if name not in tools:
            raise EvaluationError(f"live tool {name!r}: no agent has it; the tools are {', '.join(sorted(tools))}")
        if tools[name].side_effecting:
            raise EvaluationError(
                f"live tool {name!r} has side effects: side-effecting tools never run in an evaluation"
            )


def _started(
    evaluation: str, candidate: Candidate, dataset: Dataset, agents: Sequence[Agent], settings: ReplaySettings
) -> list[NewEvent]:
    started = evs.EvaluationStarted(
        evaluation_id=evaluation,
        dataset_version=dataset.version,
        dataset_source=dataset.header.source,
        items=len(dataset.items),
        candidate=candidate.name,
        candidate_fingerprint=fingerprint(agents),
        description=candidate.description,
        repeat=settings.repeat,
        unmatched=settings.unmatched,
        live_tools=sorted(settings.live_tools),
        reuse_model_replies=settings.reuse_model_replies,
        agents={
            agent.name: {
                "version": agent.version,
                "model": agent.model.name,
                "prompt_version": agent.prompt_version,
                "policy_version": agent.policy.version if agent.policy else None,
            }
            for agent in agents
        },
    )
    events = [new_event(started, actor=ACTOR)]
    for index, item in enumerate(dataset.items):
        described = evs.EvaluationItem(
            item=item.id,
            index=index,
            agent=item.agent,
            model=item.model,
            route=item.route,
            tenant_id=item.tenant_id,
            input=item.input,
            reference=item.reference.model_dump(mode="json") if item.reference else None,
            baseline=item.trajectory.model_dump(mode="json"),
        )
        events.append(new_event(described, actor=ACTOR, tenant_id=item.tenant_id))
    return events


def _result_of(data: dict[str, Any]) -> ItemResult:
    return ItemResult(
        item=data["item"],
        repeat=int(data["repeat"]),
        run_id=data["run_id"],
        status=data["status"],
        response=data.get("response"),
        divergence=data.get("divergence"),
        unanswered=list(data.get("unanswered") or ()),
    )


async def replay_dataset(
    journal: Journal,
    dataset: Dataset,
    candidate: Candidate,
    agents: Sequence[Agent],
    settings: ReplaySettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Replay every item of `dataset` with `candidate` applied to `agents`, into the evaluation journal `journal`.

    Items an earlier, interrupted run of the same evaluation finished are not replayed again.
    """
    settings = settings or ReplaySettings()
    candidate_agents = candidate.apply(agents)
    _check_live_tools(candidate_agents, settings.live_tools)
    evaluation = evaluation_id(dataset, candidate, candidate_agents, settings)
    stream = evs.evaluation_stream(evaluation)
    recorded = await asyncio.to_thread(journal.read_stream, stream)
    if not recorded:
        try:
            await asyncio.to_thread(
                journal.append, stream, _started(evaluation, candidate, dataset, candidate_agents, settings), 0
            )
        except ConcurrencyError:  # another process started the same evaluation a moment ago
            recorded = await asyncio.to_thread(journal.read_stream, stream)
    done = {
        (event.data["item"], int(event.data["repeat"])): _result_of(event.data)
        for event in recorded
        if event.type == "ItemReplayed"
    }
    runtime = Runtime(journal, agents=candidate_agents, options=RunOptions(backoff_s=0.0, approval_ttl_s=None))
    by_name = all_agents(candidate_agents)
    replayer = _Replayer(runtime, by_name, evaluation, candidate, settings)
    todo = [(item, repeat) for item in dataset.items for repeat in range(1, settings.repeat + 1)]
    total = len(todo)
    finished = len(done)
    if progress is not None:
        progress(finished, total)
    gate = asyncio.Semaphore(settings.concurrency)
    queued: list[NewEvent] = []
    writing = asyncio.Lock()

    async def record(event: NewEvent) -> None:
        """Group commit: whoever takes the lock writes every ItemReplayed queued by then, in one append."""
        queued.append(event)
        async with writing:
            if all(waiting is not event for waiting in queued):
                return  # written by the holder before us
            batch = queued[:]
            del queued[:]
            await asyncio.to_thread(journal.append, stream, batch)

    async def one(item: DatasetItem, repeat: int) -> ItemResult:
        nonlocal finished
        async with gate:
            result = await replayer.replay(item, repeat)
            await record(_replayed(evaluation, item, repeat, result, by_name))
        finished += 1
        if progress is not None:
            progress(finished, total)
        return result

    new = await asyncio.gather(*(one(item, repeat) for item, repeat in todo if (item.id, repeat) not in done))
    by_key = {**done, **{(result.item, result.repeat): result for result in new}}
    results = tuple(by_key[(item.id, repeat)] for item, repeat in todo)
    return Evaluation(evaluation, candidate.name, dataset.version, results, resumed=len(done))


def _replayed(
    evaluation: str, item: DatasetItem, repeat: int, result: ItemResult, agents: Mapping[str, Agent]
) -> NewEvent:
    payload = evs.ItemReplayed(
        item=item.id,
        repeat=repeat,
        run_id=result.run_id,
        status=result.status,
        response=result.response,
        divergence=result.divergence,
        unanswered=result.unanswered,
        model=agents[item.agent].model.name,
    )
    event_id = str(_uuid(evaluation, item.id, repeat))
    return new_event(payload, actor=ACTOR, tenant_id=item.tenant_id, event_id=event_id)


def _uuid(*parts: Any) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "agentjournal-eval:" + "/".join(str(part) for part in parts))


@dataclass(frozen=True)
class _Replayer:
    """Replays one item of one evaluation at a time."""

    runtime: Runtime
    agents: Mapping[str, Agent]
    evaluation: str
    candidate: Candidate
    settings: ReplaySettings

    async def replay(self, item: DatasetItem, repeat: int) -> ItemResult:
        recording = Recording(item.id, item.events(), _no_blob)
        started = ev.RunStarted.model_validate(recording.started)
        agent = self.agents.get(started.agent)
        if agent is None:
            raise EvaluationError(
                f"run {item.id} was started by agent {started.agent!r}, which candidate {self.candidate.name} "
                f"does not have; its agents are {', '.join(sorted(self.agents))}"
            )
        limits = started.limits
        options = RunOptions(
            max_steps=limits.get("max_steps", 20),
            budget_usd=limits.get("budget_usd"),
            budget_tokens=limits.get("budget_tokens"),
            max_attempts=limits.get("max_attempts", 3),
            backoff_s=0.0,
            approval_ttl_s=None,
        )
        pinned = replace_started(started, agent, options).model_dump(mode="json")
        marker = {"id": self.evaluation, "candidate": self.candidate.name, "item": item.id, "repeat": repeat}
        base = f"{self.evaluation}-{item.id}-r{repeat}"
        for attempt in range(1, 100):
            run_id = base if attempt == 1 else f"{base}-a{attempt}"
            start = ev.RunStarted.model_validate({**pinned, "run_id": run_id, "evaluation": marker})
            state = self.runtime.repository.create(run_stream(run_id))
            driver = CounterfactualDriver(self.runtime, state, options, recording, self.settings)
            driver.correlation_id = uuid7()
            driver.tenant_id = recording.tenant_id
            driver.stage(Draft(start, ACTOR, None, uuid7()))
            result = await driver.drive()
            try:
                await driver.finish()
            except Superseded:  # an earlier, interrupted attempt wrote this run: close it, replay as the next
                await _close_interrupted(self.runtime, run_id)
                continue
            return ItemResult(
                item=item.id,
                repeat=repeat,
                run_id=run_id,
                status=result.status,
                response=result.output,
                divergence=driver.divergence,
                unanswered=driver.unanswered,
            )
        raise EvaluationError(f"run {base}: 99 interrupted attempts; something keeps stopping this replay")


async def _close_interrupted(runtime: Runtime, run_id: str) -> None:
    state = await runtime.aload(run_id)
    if state.finished:
        return
    cancelled = ev.RunCancelled(reason="the evaluation was interrupted; this item is replayed again", by=ACTOR)
    closing = new_event(cancelled, actor=ACTOR, tenant_id=state.tenant_id, causation_id=state.last_event_id)
    with contextlib.suppress(ConcurrencyError):  # another process is closing it
        await asyncio.to_thread(runtime.journal.append, state.stream_id, closing, state.version)


def replay_dataset_sync(
    journal: Journal,
    dataset: Dataset,
    candidate: Candidate,
    agents: Sequence[Agent],
    settings: ReplaySettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    return asyncio.run(replay_dataset(journal, dataset, candidate, agents, settings, progress=progress))
