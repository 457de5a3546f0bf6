"""The decider: what a run does next, as pure code over its state. No I/O happens here.

`decide(state, turn)` looks at a RunState and returns one decision: events to record, a model
to ask, a tool to run, blobs or memory to fetch, a reason to wait, or that the run is done.
What an effect produced comes back through `model_replied`, `model_failed`, `tool_finished`
and `recalled`, which turn it into events. A driver (agents.driver) performs the effects and
folds the events into the state; the live driver and the replay driver differ only in how
they perform them. Everything a decision needs that is not in the state (the agents, the
options, the time, fresh ids, fetched blobs) comes in the `Turn`, so the same state and turn
always give the same decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agentjournal.agents.agent import HANDOFF_PREFIX, Agent, RunOptions
from agentjournal.agents.models.base import Model, ModelRequest, ModelResponse, ToolCall, chain_digest
from agentjournal.agents.planner import PlanValidationError, validate_plan
from agentjournal.agents.tools import (
    Observation,
    Tool,
    ToolArgumentsError,
    UnknownToolError,
    idempotency_key,
    validate_arguments,
)
from agentjournal.journal.envelope import canonical_json
from agentjournal.runs import RunState
from agentjournal.runs import events as ev
from agentjournal.runs.state import Claim, Message
from agentjournal.runs.state import ToolCall as CallRecord

__all__ = [
    "PLAN_INSTRUCTIONS",
    "AskModel",
    "Decision",
    "Done",
    "Draft",
    "FetchBlobs",
    "Recall",
    "Record",
    "RunTool",
    "Turn",
    "Wait",
    "WireCache",
    "approval_id_for",
    "arguments_hash",
    "decide",
    "model_failed",
    "model_replied",
    "recalled",
    "started",
    "tool_claimed",
    "tool_finished",
]

PLAN_INSTRUCTIONS = (
    "\n\nFirst reply with a plan only: one JSON object {runId, maxSteps (1-20), budgetUsd (0.01-10), "
    "steps: [{id, objective, tool, input, successCriteria}], stopConditions: [..]}. Tools: {tools}."
)


def arguments_hash(arguments: dict[str, Any]) -> str:
    """What an approval is bound to: SHA-256 of the canonical JSON of the exact arguments shown."""
    return hashlib.sha256(canonical_json(arguments)).hexdigest()


def approval_id_for(run_id: str, call_id: str) -> str:
    return "apr-" + hashlib.sha256(f"{run_id}\n{call_id}".encode()).hexdigest()[:12]


# ----- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """An event to record: its payload, who acts, what caused it, and its (pre-assigned) id."""

    payload: ev.RunEvent
    actor: str
    caused_by: str | None
    event_id: str


@dataclass(frozen=True)
class Record:
    events: tuple[Draft, ...]
    durable: bool = False
    """Write now (before anything else happens), not with the next batch."""


@dataclass(frozen=True)
class AskModel:
    agent: str
    model: Model
    stage: ev.Stage
    request: ModelRequest
    fingerprint: str
    prompt_hash: str
    tools_hash: str
    step: int
    caused_by: str | None


@dataclass(frozen=True)
class RunTool:
    call_id: str
    agent: str
    tool: Tool
    arguments: dict[str, Any]
    idempotency_key: str
    attempt: int
    claim: bool
    """Claim the call in the journal first: it has a side effect or a human approved it."""
    caused_by: str | None
    calls_so_far: int
    delay_s: float = 0.0
    reclaimed_from: str | None = None


@dataclass(frozen=True)
class FetchBlobs:
    refs: tuple[str, ...]


@dataclass(frozen=True)
class Recall:
    query: str
    tenant_id: str | None
    user_id: str
    agent: str
    k: int


@dataclass(frozen=True)
class Wait:
    reason: str
    approval_id: str | None = None


@dataclass(frozen=True)
class Done:
    pass


Decision = Record | AskModel | RunTool | FetchBlobs | Recall | Wait | Done


class WireCache:
    """The conversation as the model sees it, and its running digest, built incrementally.

    A memo, not state: each step converts only the messages added since the last one, so a
    step costs the same however long the run is.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.wire: list[dict[str, Any]] = []
        self.digests: list[bytes] = []

    def build(self, state: RunState, blobs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bytes]:
        messages = state.messages
        start = 0
        while start < min(len(messages), len(self.messages)) and messages[start] is self.messages[start]:
            start += 1
        del self.messages[start:], self.wire[start:], self.digests[start:]
        for message in messages[start:]:
            wire = state.wire(message, blobs.__getitem__)
            self.messages.append(message)
            self.wire.append(wire)
            self.digests.append(chain_digest(self.digests[-1] if self.digests else b"", wire))
        return list(self.wire), (self.digests[-1] if self.digests else b"")


@dataclass
class Turn:
    """What a decision may look at besides the state. Nothing in it does I/O."""

    agents: Mapping[str, Agent]
    options: RunOptions
    now: datetime
    worker: str
    new_id: Callable[[], str]
    blobs: Mapping[str, Any] = field(default_factory=dict)
    wire: WireCache = field(default_factory=WireCache)
    claim_alive: Callable[[str, Claim], bool] = lambda call_id, claim: not claim.expired(datetime.now(UTC))
    """Whether the worker holding a claim on a call is still at it (the driver knows its own and its host's)."""

    def agent(self, name: str) -> Agent:
        return self.agents[name]


# ----- starting ---------------------------------------------------------------------------------


def started(
    agent: Agent, input: str, run_id: str, *, user_id: str | None, route: str | None, options: RunOptions
) -> ev.RunStarted:
    """The run's first event: everything it runs with, pinned."""
    return ev.RunStarted(
        run_id=run_id,
        agent=agent.name,
        agent_version=agent.version,
        model=agent.model.name,
        prompt_version=agent.prompt_version,
        tool_schemas=agent.tool_schema_hashes(),
        input=input,
        policy_version=agent.policy.version if agent.policy else None,
        route=route,
        user_id=user_id,
        limits=options.limits(),
        planner_model=agent.planner_model.name if agent.planner_model else None,
    )


# ----- the next step ----------------------------------------------------------------------------


def decide(state: RunState, turn: Turn) -> Decision:
    """The next thing run `state` must do."""
    if state.finished:
        return Done()
    agent = turn.agent(state.agent)
    unproposed = _unproposed(state)
    planned = unproposed is not None and state.plan is not None and unproposed[1].event_id == _plan_message_id(state)
    if unproposed is not None and not planned:  # every call of a reply is proposed (and judged) before any runs
        call, message = unproposed
        exceeded = _over_budget(state, turn.options, 0.0, 0)
        if exceeded is not None:
            return _abort_budget(turn, exceeded, message.event_id)
        return Record(_propose(state, turn, agent, call, step=state.step, caused_by=message.event_id))
    if state.open_call_ids:
        return _resolve(state, turn, state.calls[state.open_call_ids[0]])
    if unproposed is not None:  # the plan's next step, once the one before it is done
        call, _ = unproposed
        exceeded = _over_budget(state, turn.options, 0.0, 0)
        if exceeded is not None:
            return _abort_budget(turn, exceeded, state.last_event_id)
        if state.step >= _max_steps(state, turn.options):
            return _ask(state, turn, agent, "respond")  # which stops the run at its step limit
        step = _propose(state, turn, agent, call, step=state.step + 1, caused_by=state.plan_id)
        return Record(step, durable=True)
    if agent.memory is not None and state.recalled is None and state.user_id and state.summary.metrics.model_calls == 0:
        return Recall(state.input, state.tenant_id, state.user_id, agent.name, turn.options.memory_items)
    if agent.planner and state.plan is None:
        return _ask(state, turn, agent, "plan")
    return _ask(state, turn, agent, "respond" if state.plan is not None else "act")


def _unproposed(state: RunState) -> tuple[ToolCall, Message] | None:
    """The first tool call of the last model reply that has no ToolProposed (or handoff) yet."""
    for message in reversed(state.messages):
        if message.role != "assistant":
            continue
        for raw in message.tool_calls:
            if raw["id"] not in state.calls:
                return ToolCall(raw["id"], raw["name"], dict(raw.get("arguments") or {})), message
        return None
    return None


def _plan_message_id(state: RunState) -> str | None:
    """The planning reply, whose tool calls are the plan's steps."""
    for message in reversed(state.messages):
        if message.role == "assistant" and any(str(c["id"]).startswith("plan-") for c in message.tool_calls):
            return message.event_id
    return None


def _resolve(state: RunState, turn: Turn, call: CallRecord) -> Decision:
    """Move the oldest open call forward: observe its outcome, wait for a human, or run it."""
    if call.status == "executed":
        return Record(
            (
                _draft(
                    turn,
                    ev.ObservationCaptured(tool=call.tool, call_id=call.call_id, ok=True),
                    "orchestrator",
                    call.result_id,
                ),
            )
        )
    if call.status == "failed":
        return Record(
            (_failure(turn, call, call.error_type or "error", call.error or "", call.result_id),), durable=True
        )
    if call.status == "rejected":
        approval = state.approvals[call.approval_id or ""]
        reason = f"{approval.by} rejected the call: {approval.reason}"
        return Record((_failure(turn, call, "rejected_by_human", reason, call.decided_id),), durable=True)
    if call.status == "waiting_approval":
        approval = state.approvals[call.approval_id or ""]
        if not approval.expired(turn.now):
            return Wait(f"approval {approval.approval_id} of {call.tool} by a human", approval.approval_id)
        rejected = ev.ToolRejected(
            approval_id=approval.approval_id,
            by="system",
            reason=f"the approval expired at {approval.expires_at}",
            tool=call.tool,
        )
        return Record((_draft(turn, rejected, "orchestrator", approval.requested_id),), durable=True)
    arguments = call.arguments
    if call.status == "approved":
        approval = state.approvals[call.approval_id or ""]
        shown = approval.arguments_hash
        if arguments_hash(approval.arguments) != shown or approval.approved_hash != shown:
            return _abort(
                turn,
                f"call {call.call_id}: the approved arguments are not the ones shown; it was not run",
                call.decided_id,
            )
        arguments = approval.arguments
    try:
        tool = _capped(turn.agent(call.agent).registry.get(call.tool), turn.options)
    except UnknownToolError as exc:  # the agent's code no longer has the tool the run proposed
        return Record(
            (_failure(turn, call, "unknown_tool", str(exc), call.decided_id or call.proposed_id),), durable=True
        )
    reclaimed_from = None
    if call.status == "claimed" and call.claim is not None:
        if turn.claim_alive(call.call_id, call.claim):
            return Wait(
                f"call {call.call_id} ({call.tool}) is claimed by {call.claim.worker} until {call.claim.expires_at}"
            )
        reclaimed_from = call.claim.worker
    delay = turn.options.backoff(call.attempts) if call.status == "retrying" else 0.0
    return RunTool(
        call_id=call.call_id,
        agent=call.agent,
        tool=tool,
        arguments=arguments,
        idempotency_key=idempotency_key(state.run_id, f"{call.step}.{call.index}", tool.name),
        attempt=call.attempts + 1,
        claim=tool.side_effecting or call.approval_id is not None,
        caused_by=call.claim.event_id if call.claim is not None else (call.decided_id or call.proposed_id),
        calls_so_far=state.metrics.calls_by_tool.get(tool.name, 0),
        delay_s=delay,
        reclaimed_from=reclaimed_from,
    )


def _capped(tool: Tool, options: RunOptions) -> Tool:
    if options.tool_timeout_s is not None and tool.timeout_s > options.tool_timeout_s:
        return replace(tool, timeout_s=options.tool_timeout_s)
    return tool


def _propose(
    state: RunState, turn: Turn, agent: Agent, call: ToolCall, *, step: int, caused_by: str | None
) -> tuple[Draft, ...]:
    """A proposed call and what the guard decides about it; a handoff switches the agent."""
    if call.name.startswith(HANDOFF_PREFIX) and call.name.removeprefix(HANDOFF_PREFIX) in agent.handoff_names:
        return _handoff(turn, agent, call, caused_by)
    proposed = _draft(
        turn,
        ev.ToolProposed(tool=call.name, arguments=call.arguments, step=step, call_id=call.id, agent=agent.name),
        agent.name,
        caused_by,
    )
    drafts = [proposed]
    try:
        tool = agent.registry.get(call.name)
        arguments = validate_arguments(tool, call.arguments)
    except UnknownToolError as exc:
        return (proposed, _observe_refusal(turn, call, "unknown_tool", str(exc), proposed.event_id))
    except ToolArgumentsError as exc:
        return (proposed, _observe_refusal(turn, call, "invalid_arguments", str(exc), proposed.event_id))
    if agent.policy is None:
        return (proposed,)
    decision = agent.policy.evaluate(tool.name, arguments, state.run_metrics())
    evaluated = _draft(
        turn,
        ev.PolicyEvaluated(
            tool=tool.name, rule=decision.rule, action=decision.action, reason=decision.reason, call_id=call.id
        ),
        "policy_guard",
        proposed.event_id,
    )
    drafts.append(evaluated)
    if decision.action == "deny":
        drafts.append(_observe_refusal(turn, call, "policy_denied", decision.reason, evaluated.event_id))
    elif decision.action == "require_human_approval":
        ttl = turn.options.approval_ttl_s
        expires = (turn.now + timedelta(seconds=ttl)).isoformat(timespec="microseconds") if ttl else None
        requested = ev.ApprovalRequested(
            approval_id=approval_id_for(state.run_id, call.id),
            tool=tool.name,
            arguments=arguments,
            arguments_hash=arguments_hash(arguments),
            expires_at=expires,
            call_id=call.id,
        )
        drafts.append(_draft(turn, requested, "policy_guard", evaluated.event_id))
    return tuple(drafts)


def _handoff(turn: Turn, agent: Agent, call: ToolCall, caused_by: str | None) -> tuple[Draft, ...]:
    target = call.name.removeprefix(HANDOFF_PREFIX)
    if target not in turn.agents:
        known = ", ".join(sorted(turn.agents))
        reason = f"{agent.name} handed off to {target!r}, which this runtime does not know (known: {known})"
        return _abort(turn, reason, caused_by).events
    receiver = turn.agents[target]
    handoff = _draft(
        turn,
        ev.HandoffInitiated(
            from_agent=agent.name,
            to_agent=target,
            reason=str(call.arguments.get("reason") or f"{agent.name} handed over to {target}"),
            call_id=call.id,
            agent_version=receiver.version,
            prompt_version=receiver.prompt_version,
            tool_schemas=receiver.tool_schema_hashes(),
        ),
        "orchestrator",
        caused_by,
    )
    observed = _draft(
        turn, ev.ObservationCaptured(tool=call.name, call_id=call.id, ok=True), "orchestrator", handoff.event_id
    )
    return (handoff, observed)


def _observe_refusal(turn: Turn, call: ToolCall, error_type: str, error: str, caused_by: str | None) -> Draft:
    observed = ev.ObservationCaptured(tool=call.name, call_id=call.id, ok=False, error_type=error_type, error=error)
    return _draft(turn, observed, "orchestrator", caused_by)


def _failure(turn: Turn, call: CallRecord, error_type: str, error: str, caused_by: str | None) -> Draft:
    observed = ev.ObservationCaptured(
        tool=call.tool, call_id=call.call_id, ok=False, error_type=error_type, error=error
    )
    return _draft(turn, observed, "orchestrator", caused_by)


# ----- model turns ------------------------------------------------------------------------------


def _ask(state: RunState, turn: Turn, agent: Agent, stage: ev.Stage) -> Decision:
    last_id = state.last_event_id
    exceeded = _over_budget(state, turn.options, 0.0, 0)
    if exceeded is not None:
        return _abort_budget(turn, exceeded, last_id)
    limit = _max_steps(state, turn.options)
    if state.step >= limit:
        return _abort(turn, f"reached the limit of {limit} steps without an answer", last_id)
    missing = tuple(ref for ref in dict.fromkeys(state.blob_refs()) if ref not in turn.blobs)
    if missing:
        return FetchBlobs(missing)
    instructions = agent.instructions
    if stage == "plan":
        instructions += PLAN_INSTRUCTIONS.replace("{tools}", ", ".join(agent.registry.names()))
    model = agent.stage_model(stage)
    messages, digest = turn.wire.build(state, turn.blobs)
    tools = agent.tool_specs() if stage == "act" else []
    request = ModelRequest(instructions, messages, tools, json_output=stage == "plan")
    return AskModel(
        agent=agent.name,
        model=model,
        stage=stage,
        request=request,
        fingerprint=request.fingerprint(model.name, digest),
        prompt_hash=hashlib.sha256(instructions.encode()).hexdigest(),
        tools_hash=tools_hash(request),
        step=state.step + 1,
        caused_by=last_id,
    )


def tools_hash(request: ModelRequest) -> str:
    return hashlib.sha256(canonical_json([[s.name, s.description, s.parameters] for s in request.tools])).hexdigest()


def model_replied(state: RunState, turn: Turn, ask: AskModel, response: ModelResponse, latency_ms: float) -> Record:
    """What a model's reply means for the run: record it, then plan, answer, or abort."""
    name = response.model or ask.model.name
    called = _draft(
        turn,
        ev.ModelCalled(
            model=name,
            stage=ask.stage,
            request_fingerprint=ask.fingerprint,
            new_messages=_new_messages(state),
            response=response.to_dict(),
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cost_usd=response.cost_usd,
            latency_ms=latency_ms,
            step=ask.step,
            agent=ask.agent,
            prompt_hash=ask.prompt_hash,
            tools_hash=ask.tools_hash,
        ),
        f"model:{name}",
        ask.caused_by,
    )
    exceeded = _over_budget(state, turn.options, response.cost_usd, response.input_tokens + response.output_tokens)
    if exceeded is not None:
        return Record((called, *_abort_budget(turn, exceeded, called.event_id).events), durable=True)
    agent = turn.agent(ask.agent)
    if ask.stage == "plan":
        try:
            plan = validate_plan(response.text or "", agent.registry.names())
        except PlanValidationError as exc:
            rejected = _draft(
                turn, ev.PlanRejected(errors=exc.errors, fallback=agent.fallback_response), "planner", called.event_id
            )
            return Record(
                (
                    called,
                    rejected,
                    *_respond(
                        state, turn, agent, agent.fallback_response, caused_by=rejected.event_id, outcome="fallback"
                    ),
                ),
                durable=True,
            )
        generated = _draft(turn, ev.PlanGenerated(plan=plan.model_dump(mode="json")), "planner", called.event_id)
        return Record((called, generated), durable=True)
    if ask.stage == "act" and response.tool_calls:
        ids = [call.id for call in response.tool_calls]
        reused = sorted({i for i in ids if i in state.calls or ids.count(i) > 1})
        if reused:
            reason = f"the model reused tool call id(s) {', '.join(reused)} at step {ask.step}"
            return Record((called, *_abort(turn, reason, called.event_id).events), durable=True)
        return Record((called,))
    return Record(
        (called, *_respond(state, turn, agent, response.text or "", caused_by=called.event_id, outcome="answered")),
        durable=True,
    )


def model_failed(state: RunState, turn: Turn, ask: AskModel, error: str) -> Record:
    return _abort(turn, f"the model call at step {ask.step} failed: {error}", ask.caused_by, "ModelError")


def _new_messages(state: RunState) -> list[dict[str, Any]]:
    """Messages added since the previous model call, as references to the events that hold them."""
    added: list[dict[str, Any]] = []
    for message in reversed(state.messages):
        if message.role == "assistant":
            break
        entry: dict[str, Any] = {"role": message.role, "ref": message.version}
        if message.tool_call_id is not None:
            entry["tool_call_id"] = message.tool_call_id
        added.append(entry)
    added.reverse()
    return added


def _respond(
    state: RunState, turn: Turn, agent: Agent, text: str, *, caused_by: str, outcome: str
) -> tuple[Draft, ...]:
    """The response stage: draft, the output checks, the answer, the end of the run."""
    draft = _draft(turn, ev.ResponseDrafted(text=text, agent=agent.name), agent.name, caused_by)
    drafts = [draft]
    last = draft.event_id
    for check in agent.output_checks:
        result = check.check(text, state)
        payload: ev.RunEvent
        if result.outcome == "passed":
            payload = ev.OutputChecked(check=check.name, outcome="passed", reason=result.reason)
        else:
            payload = ev.GuardrailTriggered(
                check=check.name, outcome=result.outcome, reason=result.reason, findings=result.findings
            )
        checked = _draft(turn, payload, "response_builder", last)
        drafts.append(checked)
        last = checked.event_id
        if result.outcome == "rewritten" and result.text is not None:
            text = result.text
        elif result.outcome == "blocked":
            text, outcome = agent.fallback_response, "fallback"
            break
    final = _draft(turn, ev.ResponseFinalized(text=text), "orchestrator", last)
    completed = ev.RunCompleted(outcome="fallback" if outcome == "fallback" else "answered")
    return (*drafts, final, _draft(turn, completed, "orchestrator", final.event_id))


# ----- tools ------------------------------------------------------------------------------------


def tool_claimed(state: RunState, turn: Turn, run: RunTool) -> Draft:
    """The claim a worker appends (at the version it saw) before it runs a call."""
    expires = turn.now + timedelta(seconds=run.tool.timeout_s + turn.options.claim_grace_s)
    claim = ev.ToolClaimed(
        call_id=run.call_id,
        tool=run.tool.name,
        attempt=run.attempt,
        worker=turn.worker,
        expires_at=expires.isoformat(timespec="microseconds"),
        idempotency_key=run.idempotency_key,
        reclaimed_from=run.reclaimed_from,
    )
    return _draft(turn, claim, "tool_executor", run.caused_by)


def tool_finished(
    state: RunState, turn: Turn, run: RunTool, observation: Observation, output_ref: str | None
) -> Record:
    """A tool's outcome: its output and the observation, or a failed attempt (retried or given up)."""
    claim = state.calls[run.call_id].claim
    caused_by = claim.event_id if claim is not None else run.caused_by
    if observation.ok:
        executed = _draft(
            turn,
            ev.ToolExecuted(
                tool=run.tool.name,
                output=None if output_ref else observation.output,
                output_ref=output_ref,
                latency_ms=observation.latency_ms,
                attempt=run.attempt,
                call_id=run.call_id,
                cost_usd=observation.cost_usd,
            ),
            "tool_executor",
            caused_by,
        )
        observed = _draft(
            turn,
            ev.ObservationCaptured(tool=run.tool.name, call_id=run.call_id, ok=True),
            "orchestrator",
            executed.event_id,
        )
        return Record((executed, observed), durable=run.claim)
    retry = observation.retryable and run.attempt < turn.options.max_attempts
    failed = _draft(
        turn,
        ev.ToolFailed(
            tool=run.tool.name,
            error_type=observation.error_type or "error",
            error=observation.error or "",
            attempt=run.attempt,
            will_retry=retry,
            call_id=run.call_id,
            latency_ms=observation.latency_ms,
        ),
        "tool_executor",
        caused_by,
    )
    if retry:
        return Record((failed,), durable=True)
    told = ev.ObservationCaptured(
        tool=run.tool.name,
        call_id=run.call_id,
        ok=False,
        error_type=observation.error_type or "error",
        error=observation.error or "",
    )
    return Record((failed, _draft(turn, told, "orchestrator", failed.event_id)), durable=True)


# ----- memory -----------------------------------------------------------------------------------


def recalled(state: RunState, turn: Turn, recall: Recall, items: list[dict[str, Any]]) -> Record:
    """What memory gave the agent, recorded with the texts (so replay and audit see the same context)."""
    event = ev.MemoryRecalled(query=recall.query, items=items)
    return Record((_draft(turn, event, "memory", state.last_event_id),))


# ----- limits -----------------------------------------------------------------------------------


def _max_steps(state: RunState, options: RunOptions) -> int:
    if state.plan is not None:
        return min(options.max_steps, int(state.plan["maxSteps"]) + 1)
    return options.max_steps


def _over_budget(state: RunState, options: RunOptions, extra_usd: float, extra_tokens: int) -> ev.BudgetExceeded | None:
    budget_usd = options.budget_usd
    if state.plan is not None:
        plan_budget = float(state.plan["budgetUsd"])
        budget_usd = plan_budget if budget_usd is None else min(budget_usd, plan_budget)
    spent = state.cost_usd + extra_usd
    if budget_usd is not None and spent > budget_usd:
        return ev.BudgetExceeded(kind="usd", limit=budget_usd, spent=round(spent, 8))
    tokens = state.tokens + extra_tokens
    if options.budget_tokens is not None and tokens > options.budget_tokens:
        return ev.BudgetExceeded(kind="tokens", limit=options.budget_tokens, spent=tokens)
    return None


def _abort_budget(turn: Turn, exceeded: ev.BudgetExceeded, caused_by: str | None) -> Record:
    if exceeded.kind == "usd":
        reason = f"budget exceeded: spent ${exceeded.spent:.4f} of the ${exceeded.limit:.4f} allowed"
    else:
        reason = f"budget exceeded: used {int(exceeded.spent)} tokens of the {int(exceeded.limit)} allowed"
    budget = _draft(turn, exceeded, "orchestrator", caused_by)
    return Record((budget, *_abort(turn, reason, budget.event_id).events), durable=True)


def _abort(turn: Turn, reason: str, caused_by: str | None, error_type: str | None = None) -> Record:
    return Record(
        (_draft(turn, ev.RunAborted(reason=reason, error_type=error_type), "orchestrator", caused_by),), durable=True
    )


def _draft(turn: Turn, payload: ev.RunEvent, actor: str, caused_by: str | None) -> Draft:
    return Draft(payload, actor, caused_by, turn.new_id())
