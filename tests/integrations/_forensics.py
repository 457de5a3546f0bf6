"""What every integration must give after a run through it, checked with the functions the CLI calls.

`assert_forensics(journal, run_id)` is the issue's list, one check per command:

- `agentjournal explain run-<id>` (`forensics.timeline`): every event of the run in plain words, by the
  explainer registered for its type (not the default built from the type's name), none of them failing;
- `agentjournal state run-<id> --at N` (`runs.aggregate_for`, then `Repository.load_at_version` and
  `snapshot_state`): the run is recognised as a run, and answers at every version;
- `agentjournal lineage <event id>` (`forensics.causes`): from the answer (the run's ResponseFinalized, or
  its last event when it has not answered) back to a RunStarted, through the run's own RunStarted, with
  the user's message as the root's input when `question` is given;
- `agentjournal metrics` (the runs read model brought up to date, then `projections.metrics.metrics`):
  the run is in the runs read model with its status, and counted in its agent's group with its tokens;
- `agentjournal verify` (`Journal.verify`): the journal's hash chains hold.

The integrations' own tests add what is theirs (which calls, which handoff, which answer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentjournal.forensics import causes, explainers, timeline
from agentjournal.journal import Journal
from agentjournal.model import Repository
from agentjournal.projections import ProjectionRunner, builtin_projections
from agentjournal.projections.metrics import metrics
from agentjournal.projections.queries import list_runs
from agentjournal.runs import RunState, aggregate_for, run_stream


def assert_forensics(journal: Journal, run_id: str, *, question: str | None = None) -> RunState:
    """Explain, state at every N, lineage from the answer, metrics and verify for run `run_id`; returns its
    state. `question`: the user's message the lineage must end at."""
    stream = run_stream(run_id)
    events = journal.read_stream(stream)
    assert events and events[0].type == "RunStarted", f"{stream} is not a run: {[e.type for e in events[:3]]}"

    # explain
    entries = timeline(journal, stream)
    assert [entry.event.version for entry in entries] == [event.version for event in events]
    known = set(explainers.registered())
    for entry in entries:
        explanation = entry.explanation
        assert entry.event.type in known, f"{stream}@{entry.event.version}: no explainer for {entry.event.type}"
        assert explanation.title and "explainer_error" not in explanation.tags, (entry.event.type, explanation)

    # state --at N
    assert aggregate_for(journal, stream) is RunState
    repository = Repository(journal, RunState)
    for event in events:
        at = repository.load_at_version(stream, event.version)
        assert at.version == event.version and isinstance(at.snapshot_state(), dict)
    state = repository.load(stream)
    assert state.version == events[-1].version and state.run_id == run_id

    # lineage: from the answer back to the user's message
    answer = next((event for event in reversed(events) if event.type == "ResponseFinalized"), events[-1])
    chain = causes(journal, answer.event_id)
    assert chain.events[0].event_id == answer.event_id
    assert chain.root.type == "RunStarted", [(event.stream_id, event.type) for event in chain.events]
    assert events[0].event_id in {event.event_id for event in chain.events}, "the lineage misses the run's start"
    if question is not None:
        assert chain.root.data["input"] == question

    # metrics (and the runs read model they are computed from)
    for projection in builtin_projections():
        ProjectionRunner(journal, projection).catch_up()
    [row] = list_runs(journal, run_ids=[run_id])
    assert row.status == state.status
    started = events[0].recorded_at
    groups = metrics(journal, by="agent", since=started - timedelta(minutes=1), until=datetime.now(UTC))
    [group] = [group for group in groups if group.group == (row.root_agent or "(none)")]
    assert group.runs >= 1 and group.tokens >= state.metrics.tokens

    # verify
    assert journal.verify().ok
    return state
