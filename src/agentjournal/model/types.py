"""Which Aggregate type a stream folds into: registered per stream-id prefix, importable by path.

The CLI's `state STREAM` asks `agentjournal.runs.aggregate_for`, which uses this registry first
and recognises runs of the contract by their first event; any other stream folds into
StreamSummary.
"""

from __future__ import annotations

import importlib

from agentjournal.model.aggregate import Aggregate
from agentjournal.model.errors import AggregateLoadError
from agentjournal.model.summary import StreamSummary


class AggregateTypes:
    """A registry from stream-id prefixes to Aggregate types; the longest matching prefix wins."""

    def __init__(self, default: type[Aggregate] = StreamSummary) -> None:
        self.default = default
        self._by_prefix: dict[str, type[Aggregate]] = {}

    def register(self, prefix: str, aggregate_type: type[Aggregate]) -> None:
        if not (isinstance(aggregate_type, type) and issubclass(aggregate_type, Aggregate)):
            raise TypeError(f"expected an Aggregate subclass for prefix {prefix!r}, got {aggregate_type!r}")
        self._by_prefix[prefix] = aggregate_type

    def for_stream(self, stream_id: str) -> type[Aggregate]:
        matches = [prefix for prefix in self._by_prefix if stream_id.startswith(prefix)]
        return self._by_prefix[max(matches, key=len)] if matches else self.default

    def registered(self) -> dict[str, type[Aggregate]]:
        return dict(self._by_prefix)


aggregate_types = AggregateTypes()
"""The default registry the CLI consults."""


def import_object(path: str, what: str) -> object:
    """`package.module:attr` -> the object, with an error that says which part is wrong."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise AggregateLoadError(f"{what} {path!r} is not of the form package.module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AggregateLoadError(f"{what} {path!r}: cannot import module {module_name!r} ({exc})") from None
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AggregateLoadError(f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    return target


def load_aggregate_type(path: str) -> type[Aggregate]:
    """An Aggregate subclass named `package.module:Class`."""
    found = import_object(path, "aggregate")
    if not (isinstance(found, type) and issubclass(found, Aggregate)):
        raise AggregateLoadError(f"aggregate {path!r} is {found!r}, not an Aggregate subclass")
    return found
