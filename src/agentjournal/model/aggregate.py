"""The Aggregate base: state folded from the events of one stream, and the events it decides.

A subclass keeps its state in annotated attributes, folds events in `when`, and stages
new events with `record` from its command methods; `Repository.save` appends them with
optimistic concurrency. Snapshots dump the annotated attributes through pydantic, so any
pydantic model, dataclass, or plain JSON type round-trips without extra code.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_origin, get_type_hints

from pydantic import TypeAdapter

from agentjournal.journal import NewEvent, RecordedEvent
from agentjournal.model.errors import AggregateLoadError

_BOOKKEEPING = frozenset({"stream_id", "version", "pending"})


class Aggregate:
    """State folded from the events of one stream."""

    snapshot_every: ClassVar[int | None] = None
    """Take a snapshot every N events (None: never)."""
    state_version: ClassVar[int] = 1
    """Bump when the state's shape changes: snapshots taken at another state version are ignored."""

    stream_id: str
    version: int
    pending: list[NewEvent]

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.version = 0
        self.pending = []

    @classmethod
    def type_name(cls) -> str:
        """The name snapshots are stored under."""
        return f"{cls.__module__}.{cls.__qualname__}"

    def when(self, event: RecordedEvent) -> None:
        """Fold one event into the state. No I/O: it runs again on every load and replay."""

    def apply(self, event: RecordedEvent) -> None:
        if event.version != self.version + 1:
            raise AggregateLoadError(
                f"{type(self).__name__} {self.stream_id!r}: cannot apply version {event.version} "
                f"on top of version {self.version}"
            )
        try:
            self.when(event)
        except Exception as exc:
            raise AggregateLoadError(
                f"{type(self).__name__} cannot fold {self.stream_id!r} version {event.version} ({event.type}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.version = event.version

    def record(self, event: NewEvent) -> None:
        """Stage a new event; `Repository.save` appends it and then applies it."""
        self.pending.append(event)

    def snapshot_state(self) -> dict[str, Any]:
        """The state as JSON types: every attribute except stream_id, version and pending."""
        adapters = _adapters(type(self))
        state = {}
        for name, value in vars(self).items():
            if name in _BOOKKEEPING or name.startswith("_"):
                continue
            adapter = adapters.get(name)
            state[name] = adapter.dump_python(value, mode="json") if adapter else value
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        """The inverse of `snapshot_state`: annotated attributes are validated back into their types."""
        adapters = _adapters(type(self))
        for name, value in state.items():
            adapter = adapters.get(name)
            setattr(self, name, adapter.validate_python(value) if adapter else value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stream_id={self.stream_id!r}, version={self.version})"


_adapter_cache: dict[type[Aggregate], dict[str, TypeAdapter[Any]]] = {}


def _adapters(cls: type[Aggregate]) -> dict[str, TypeAdapter[Any]]:
    """A pydantic adapter per annotated state attribute of `cls` (built once per class)."""
    cached = _adapter_cache.get(cls)
    if cached is not None:
        return cached
    try:
        hints = get_type_hints(cls)
    except NameError:
        # Annotations that cannot be resolved (a class defined by exec'd code, say): those
        # attributes are snapshotted as plain JSON values, the others through pydantic.
        hints = {}
        for klass in reversed(cls.__mro__):
            own = vars(klass).get("__annotations__", {})
            try:
                resolved = get_type_hints(klass)
            except NameError:
                resolved = {}
            for name in own:
                if name in resolved:
                    hints[name] = resolved[name]
                else:
                    hints.pop(name, None)
    adapters = {
        name: TypeAdapter(hint)
        for name, hint in hints.items()
        if name not in _BOOKKEEPING and not name.startswith("_") and get_origin(hint) is not ClassVar
    }
    _adapter_cache[cls] = adapters
    return adapters
