"""The run view: each graph run of a thread recorded as a run of the contract, from its checkpoints.

How a LangGraph thread maps to runs (docs/integrations/langgraph.md says the same):

- A run starts at a root checkpoint whose source is "input" (`graph.invoke(input, config)`), or at a
  "loop" checkpoint when no run of the thread is open (`graph.invoke(None, config)` after a finished or
  failed run, or time travel from an old checkpoint). RunStarted carries the input: the last human
  message's text, else the input as JSON. The run's id is the checkpoint metadata's `run_id` when the
  application set one, else `lg-<checkpoint id>`; the checkpoint event names it (`run`).
- Every checkpoint (subgraphs' too) adds the messages its list channels grew by: an AIMessage becomes a
  ModelCalled (model, tokens from `usage_metadata`, text, tool calls; latency: the step's wall time) and a
  ToolProposed per tool call; a ToolMessage becomes ToolExecuted (or ToolFailed when its status is
  "error") and ObservationCaptured. Each message is recorded once (by message id, by tool call id).
- A run is waiting while a node is interrupted (`interrupt()`), and continues when the graph resumes.
- It completes at the first root checkpoint with nothing left to run (no trigger channel holds a value):
  the answer is the last AI message's text. A task error that no error handler takes aborts it
  (RunAborted with the exception); a new input while it is still open cancels it.

Runs are derived from the thread's events, which are the record: after a restart (or a failure while
writing a run event) the view re-reads the open run and records what it misses, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from langchain_core.messages import BaseMessage

from agentjournal.agents.models.prices import cost_usd
from agentjournal.integrations.langgraph._codec import mark
from agentjournal.integrations.langgraph._thread import CheckpointRecord, ThreadIndex, WriteRecord
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder
from agentjournal.journal import Journal, StreamNotFoundError
from agentjournal.journal.envelope import canonical_json
from agentjournal.model import Repository
from agentjournal.runs import RunState, run_stream
from agentjournal.runs import events as ev

if TYPE_CHECKING:
    from agentjournal.agents.policy import Policy

ERROR: Final = "__error__"
ERROR_SOURCE_NODE: Final = "__error_source_node__"
INTERRUPT: Final = "__interrupt__"
_TRIGGERS: Final = ("branch:to:", "join:")
_TRIGGER_NAMES: Final = ("__start__", "__pregel_tasks")
_INPUT_CHARS: Final = 4000
_ACTOR: Final = "langgraph"


def is_trigger(channel: str) -> bool:
    """A channel whose value makes a node run next (a StateGraph edge, START, a Send)."""
    return channel.startswith(_TRIGGERS) or channel in _TRIGGER_NAMES


def text_of(content: Any) -> str:
    """A message's text: its content, or the text blocks of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block if isinstance(block, str) else str(block.get("text", ""))
            for block in content
            if isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")
        ]
        return "".join(parts)
    return "" if content is None else str(content)


def _json(value: Any) -> Any:
    """`value` as JSON the run contract can hold (anything else as its text)."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


class RunView:
    """The contract runs of one thread; the saver calls it with the thread's lock held."""

    def __init__(
        self,
        journal: Journal,
        index: ThreadIndex,
        thread_id: object,
        *,
        agent: str,
        model: str,
        policy: Policy | None,
        tenant_id: str | None,
    ) -> None:
        self.journal = journal
        self.index = index
        self.thread_id = thread_id
        self.agent = agent
        self.model = model
        self.policy = policy
        self.tenant_id = tenant_id
        # every run event is written at once: the view checks the stream's version against its own
        self.recorder = RunRecorder(journal, buffer=False)
        self.run: RecordedRun | None = None
        self.recorded: set[str] = set()
        """Ids of the AI messages the open run recorded as model calls (content keys for those without one)."""
        self._identified: set[str] = set()
        """The content keys of the recorded messages that had an id."""
        self._deferred: dict[str, list[WriteRecord]] = {}
        self._pending: str | None = None
        """A run named by a checkpoint that is not stored yet (it is in the batch being appended)."""
        self._attach()

    # ----- which run is open -------------------------------------------------------------------------

    def _attach(self) -> None:
        """The thread's newest run, if it is still open, and what of it the journal lacks."""
        starts = [record for record in self._own_in_order() if record.run]
        if not starts:
            return
        first = starts[-1]
        assert first.run is not None
        try:
            self.run = self.recorder.resume(first.run)
        except RecorderError:
            return  # finished
        except StreamNotFoundError:  # the process stopped between the checkpoint and its RunStarted
            self._start(first, {})
        self._remember_recorded()
        for record in self._own_in_order():
            if record.event_version >= first.event_version:
                self._observe(record)
                if self.run is None:
                    return

    def _own_in_order(self) -> list[CheckpointRecord]:
        return sorted(
            (record for record in self.index.checkpoints.values() if record.origin == self.index.stream),
            key=lambda record: record.event_version,
        )

    def _remember_recorded(self) -> None:
        assert self.run is not None
        for event in self.journal.read_stream(self.run.stream_id):
            if event.type == "ModelCalled":
                langgraph = event.data.get("langgraph") or {}
                message_id, content_key = langgraph.get("message_id"), langgraph.get("content_key")
                if message_id:
                    self.recorded.add(message_id)
                if content_key and content_key != message_id:
                    self._identified.add(content_key)

    def names_run(self, data: dict[str, Any], ns: str) -> None:
        """Called while a checkpoint event is built: name the run it starts, if it starts one."""
        data.pop("run", None)
        if ns:
            return
        metadata = {**self._parent_metadata(data), **(data.get("m") or {})}
        source = metadata.get("source")
        if source == "input" or (source == "loop" and self._open_run() is None and self._pending is None):
            wanted = metadata.get("run_id")
            if isinstance(wanted, str) and wanted and self.journal.stream_version(run_stream(wanted)) == 0:
                data["run"] = wanted
            else:
                data["run"] = f"lg-{data['id']}"
            self._pending = data["run"]

    def _parent_metadata(self, data: dict[str, Any]) -> dict[str, Any]:
        ref = data.get("p")
        if isinstance(ref, int):
            found = self.index.events.get((self.index.stream, ref))
            if isinstance(found, CheckpointRecord):
                return found.metadata
        elif isinstance(ref, str):
            parent = self.index.checkpoints.get(("", ref))
            if parent is not None:
                return parent.metadata
        return {}

    def _open_run(self) -> RecordedRun | None:
        if self.run is not None and self.run.state.finished:
            self.run = None
        return self.run

    def current(self, *, fresh: bool = False) -> RecordedRun | None:
        """The open run; `fresh`: reloaded first when another process appended to it (a human approved)."""
        run = self._open_run()
        if run is None or not fresh:
            return run
        if self.journal.stream_version(run.stream_id) != run.state.version:
            self.run = run = self.recorder.resume(run.run_id)
        return self._open_run()

    # ----- what the saver reports ------------------------------------------------------------------

    def checkpoint_saved(self, record: CheckpointRecord, config: dict[str, Any]) -> None:
        if record.ns == "" and record.run:
            self._start(record, config)
        self._observe(record)

    def writes_saved(self, records: list[WriteRecord]) -> None:
        """A task error ends the run, once the checkpoint it ran from is recorded."""
        for write in records:
            if write.ns != "" or write.channel != ERROR:
                continue
            same_task = self.index.writes.get((write.ns, write.checkpoint_id), {})
            if any(
                other.task_id == write.task_id and other.channel == ERROR_SOURCE_NODE for other in same_task.values()
            ):
                continue  # an error handler node takes it
            self._deferred.setdefault(write.checkpoint_id, []).append(write)
            record = self.index.checkpoints.get(("", write.checkpoint_id))
            if record is not None and record.event_version <= self.index.version:
                self._errors(record)

    def _observe(self, record: CheckpointRecord) -> None:
        run = self.current()
        if run is None:
            return
        for message, node in self._new_messages(record):
            self._message(run, message, node, record)
        if record.ns == "":
            self._errors(record)
            if self.run is not None and self._done(record):
                self._complete(run, record)

    # ----- starting and ending ------------------------------------------------------------------------

    def _start(self, record: CheckpointRecord, config: dict[str, Any]) -> None:
        assert record.run is not None
        if self._pending == record.run:
            self._pending = None
        if self.journal.stream_version(run_stream(record.run)) > 0:
            self.run = self.recorder.resume(record.run) if not self._finished(record.run) else None
            return
        open_run = self._open_run()
        if open_run is not None:
            self._record(
                open_run,
                ev.RunCancelled(
                    reason=f"a new input reached thread {self.thread_id!r} before this run finished", by=_ACTOR
                ),
                _ACTOR,
            )
        configurable = config.get("configurable") or {}
        user_id = configurable.get("user_id")
        self.recorded.clear()
        self._identified.clear()
        # RunStarted pins the policy the guard enforces; the view's own recorder decides nothing (a call a
        # ToolNode runs without the guard is recorded, not judged).
        self.run = RunRecorder(self.journal, policy=self.policy, buffer=False).start(
            agent=self.agent,
            model=self.model,
            input=self._input(record),
            run_id=record.run,
            user_id=user_id if isinstance(user_id, str) else None,
            tenant_id=self.tenant_id,
        )
        self.run.recorder = self.recorder

    def _finished(self, run_id: str) -> bool:
        state = Repository(self.journal, RunState).load(run_stream(run_id))
        return state.finished

    def _input(self, record: CheckpointRecord) -> str:
        if record.metadata.get("source") != "input":
            return f"(continues thread {self.thread_id} from checkpoint {record.parent_id or record.id})"
        source = record.sources.get("__start__")
        value = self.index.value(record.ns, "__start__", source) if source and source.entry is not None else None
        messages = [item for item in _walk_messages(value) if item.type == "human"]
        if messages:
            text = text_of(messages[-1].content)
        elif isinstance(value, str):
            text = value
        else:
            text = canonical_json(_json(value)).decode()
            if len(text) > _INPUT_CHARS:
                text = text[:_INPUT_CHARS] + f"… ({len(text):,} characters; the whole input is on the thread)"
        return text if text.strip() else "(empty input)"

    def _done(self, record: CheckpointRecord) -> bool:
        if any(is_trigger(channel) and record.has_value(channel) for channel in record.sources):
            return False
        return not any(write.channel == INTERRUPT for write in self.index.pending(record))

    def _complete(self, run: RecordedRun, record: CheckpointRecord) -> None:
        answer = self._answer(record)
        drafted = self._record(run, ev.ResponseDrafted(text=answer, agent=self.agent), self.agent)
        final = self._record(run, ev.ResponseFinalized(text=answer), _ACTOR, drafted)
        self._record(run, ev.RunCompleted(outcome="answered"), _ACTOR, final)
        self.run = None

    def _answer(self, record: CheckpointRecord) -> str:
        """The last AI message of the final state, else a sentence saying what the state holds."""
        described = []
        for channel, source in record.sources.items():
            if source.entry is None or is_trigger(channel):
                continue
            value = self.index.value(record.ns, channel, source)
            for message in reversed(list(_walk_messages(value))):
                if message.type == "ai" and text_of(message.content).strip():
                    return text_of(message.content)
            described.append(f"{channel} ({len(value)} items)" if isinstance(value, (list, dict)) else channel)
        step = record.metadata.get("step")
        holds = f"; its state holds {', '.join(sorted(described))}" if described else ""
        return f"The graph finished at step {step} (checkpoint {record.id}){holds}."

    def _errors(self, record: CheckpointRecord) -> None:
        waiting = self._deferred.pop(record.id, None)
        run = self._open_run()
        if not waiting or run is None:
            return
        error = self.index.codec.decode(waiting[0].entry)
        kind = type(error).__name__ if isinstance(error, BaseException) else "error"
        reason = f"node task {waiting[0].task_path or waiting[0].task_id} failed: {kind}: {error}"
        self._record(run, ev.RunAborted(reason=reason, error_type=kind), _ACTOR)
        self.run = None

    # ----- messages --------------------------------------------------------------------------------------

    def _new_messages(self, record: CheckpointRecord) -> Iterator[tuple[BaseMessage, str | None]]:
        """The messages the checkpoint's list channels grew by, with the node that wrote each (when known)."""
        for channel, entry in record.own.items():
            source = record.sources.get(channel)
            if source is None or source.entry is None:
                continue
            kind = mark(entry)
            if kind == "+w":
                for ref in entry["+w"]:
                    write = self.index._write(record.origin, ref)
                    node = _node(write.task_path)
                    for item in _walk_messages(self.index.codec.decode(write.entry)):
                        yield item, node
                continue
            full = kind != "+"
            tail = self.index.value(record.ns, channel, source) if full else self.index.codec.decode(entry["+"])
            for item in _walk_messages(tail):
                yield item, None

    def _message(self, run: RecordedRun, message: BaseMessage, node: str | None, record: CheckpointRecord) -> None:
        if message.type == "ai":
            self.model_reply(run, message, node, record)
        elif message.type == "tool":
            self.tool_reply(run, message, self._latency(record))

    def model_reply(
        self,
        run: RecordedRun,
        message: BaseMessage,
        node: str | None,
        record: CheckpointRecord | None,
        conversation: list[Any] | None = None,
    ) -> None:
        """An AIMessage: ModelCalled, and ToolProposed for each call it asks for (each once)."""
        # A subgraph's write may be stored before add_messages gave the message its id, and its parent's
        # checkpoint holds it with the id: the content key (the message without its id) makes them one call.
        content_key = hashlib.sha256(canonical_json(_json(message.model_dump(exclude={"id"})))).hexdigest()
        key = message.id or content_key
        if message.id:  # the same id, or seen before it had one
            duplicate = message.id in self.recorded or content_key in self.recorded
            self._identified.add(content_key)
        else:
            duplicate = content_key in self.recorded or content_key in self._identified
        self.recorded.add(key)
        if duplicate:
            return
        metadata = message.response_metadata or {}
        model = str(metadata.get("model_name") or metadata.get("model") or "unknown")
        usage = getattr(message, "usage_metadata", None) or {}
        calls = [
            {"id": str(call.get("id") or ""), "name": str(call["name"]), "arguments": _json(call.get("args") or {})}
            for call in getattr(message, "tool_calls", None) or []
        ]
        prior = conversation if conversation is not None else self._conversation(record, message)
        response: dict[str, Any] = {"text": text_of(message.content) or None}
        if calls:
            response["tool_calls"] = calls
        input_tokens = int(usage.get("input_tokens") or 0)
        output_tokens = int(usage.get("output_tokens") or 0)
        called = ev.ModelCalled.model_validate(
            {
                "model": model,
                "stage": "act" if calls else "respond",
                "request_fingerprint": hashlib.sha256(canonical_json(_json([_wire(m) for m in prior]))).hexdigest(),
                "new_messages": self._new_since_last_reply(run, prior),
                "response": response,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": cost_usd(model, input_tokens, output_tokens),
                "latency_ms": self._latency(record),
                "step": run.state.step + 1,
                "agent": self.agent,
                "langgraph": {
                    "message_id": key,
                    "content_key": content_key,
                    "node": node,
                    "checkpoint_id": record.id if record else None,
                    "ns": record.ns if record else None,
                },
            }
        )
        self._record(run, called, f"model:{model}")
        for call in calls:
            if call["id"] and call["id"] not in run.state.calls:
                run.tool_call(call["name"], call["arguments"], call_id=call["id"])

    def tool_reply(self, run: RecordedRun, message: BaseMessage, latency_ms: float = 0.0) -> None:
        """A ToolMessage: the call's result (ToolExecuted or ToolFailed, then ObservationCaptured), once."""
        call_id = str(getattr(message, "tool_call_id", "") or "")
        if not call_id:
            return
        call = run.state.calls.get(call_id)
        if call is None:
            run.tool_call(str(getattr(message, "name", None) or "unknown_tool"), {}, call_id=call_id)
            call = run.state.calls[call_id]
        if call.observed or call.status in ("executed", "failed", "refused"):
            return
        if getattr(message, "status", "success") == "error":
            run.tool_result(call_id, error=text_of(message.content), error_type="tool_error", latency_ms=latency_ms)
        else:
            run.tool_result(call_id, _json(message.content), latency_ms=latency_ms)

    def _conversation(self, record: CheckpointRecord | None, message: BaseMessage) -> list[Any]:
        """The messages before `message` in the list channel that holds it."""
        if record is None:
            return []
        for channel, source in record.sources.items():
            if source.entry is None or "messages" not in channel:
                continue
            value = self.index.list_value(record.ns, channel, source)
            if value is None:
                continue
            for position in range(len(value) - 1, -1, -1):
                if value[position] is message or (
                    isinstance(value[position], BaseMessage) and message.id and value[position].id == message.id
                ):
                    return value[:position]
        return []

    def _new_since_last_reply(self, run: RecordedRun, prior: list[Any]) -> list[dict[str, Any]]:
        start = 0
        for position in range(len(prior) - 1, -1, -1):
            if isinstance(prior[position], BaseMessage) and prior[position].type == "ai":
                start = position + 1
                break
        else:  # the first model call: the first human message is the run's input (RunStarted)
            if prior and isinstance(prior[0], BaseMessage) and prior[0].type == "human":
                start = 1
        new: list[dict[str, Any]] = []
        for item in prior[start:]:
            if not isinstance(item, BaseMessage):
                continue
            if item.type == "human":
                new.append({"role": "user", "content": text_of(item.content)})
            elif item.type == "tool":
                call = run.state.calls.get(str(getattr(item, "tool_call_id", "")))
                ref = call.executed_version if call and call.executed_version else run.state.version
                new.append({"role": "tool", "ref": ref, "tool_call_id": getattr(item, "tool_call_id", None)})
            else:
                new.append({"role": item.type, "ref": run.state.version})
        return new

    def _latency(self, record: CheckpointRecord | None) -> float:
        """The step's wall time: from the checkpoint it ran from to the checkpoint it made."""
        if record is None or record.parent is None:
            return 0.0
        try:
            spent = datetime.fromisoformat(record.ts) - datetime.fromisoformat(record.parent.ts)
        except ValueError:
            return 0.0
        return max(spent.total_seconds() * 1000, 0.0)

    def _record(self, run: RecordedRun, payload: ev.RunEvent, actor: str, caused_by: str | None = None) -> str:
        return run.record(payload, actor, caused_by or run.state.last_event_id)

    def refresh(self) -> None:
        """Reload the open run (another process appended to it since this one last did)."""
        if self.run is not None:
            self.run = self.recorder.resume(self.run.run_id)


def _walk_messages(value: Any) -> Iterator[BaseMessage]:
    """The LangChain messages in a value: a message, a list of them, or a dict of such values (an input)."""
    if isinstance(value, BaseMessage):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, BaseMessage):
                yield item
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (list, BaseMessage)):
                yield from _walk_messages(item)


def _wire(message: Any) -> Any:
    if isinstance(message, BaseMessage):
        return [message.type, text_of(message.content), getattr(message, "tool_calls", None) or []]
    return message


def _node(task_path: str) -> str | None:
    """The node of a task path such as "~__pregel_pull, model"."""
    parts = [part.strip() for part in task_path.split(",")]
    return parts[1] if len(parts) > 1 and parts[0].endswith("__pregel_pull") else None
