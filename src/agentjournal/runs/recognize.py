"""Which aggregate a stream folds into: a run is recognised by its first event, not by its name.

`agentjournal state`, bisect and what-if ask this. A stream whose first event is the run
contract's RunStarted folds into RunState; any other stream (a user's own `run-` stream with
their own event types included) into what the registry says for its prefix, by default the
generic StreamSummary.
"""

from __future__ import annotations

from agentjournal.journal import Journal
from agentjournal.model import Aggregate, AggregateTypes, aggregate_types
from agentjournal.runs.events import is_run_start
from agentjournal.runs.state import RunState

__all__ = ["aggregate_for", "is_run"]


def is_run(journal: Journal, stream_id: str) -> bool:
    """True when `stream_id` holds a run of the contract (one short read of its first event)."""
    first = journal.read_stream(stream_id, 1, 1)
    return bool(first) and is_run_start(first[0])


def aggregate_for(journal: Journal, stream_id: str, types: AggregateTypes = aggregate_types) -> type[Aggregate]:
    """RunState for a run; otherwise the type registered for the stream's prefix (StreamSummary by default)."""
    registered = types.for_stream(stream_id)
    if registered is not types.default:
        return registered
    return RunState if is_run(journal, stream_id) else registered
