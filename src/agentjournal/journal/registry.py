"""Event types as pydantic models with a schema version, and upcasters for old versions.

Old events are never rewritten: on read, an event stored at schema version v passes
through the upcasters v -> v+1 -> ... -> current. Registration refuses chains that would
leave a stored version unreadable (a gap) or never end (a cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from agentjournal.journal.envelope import RecordedEvent
from agentjournal.journal.errors import SchemaRegistryError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Step:
    to_version: int
    upcast: Upcaster


class EventRegistry:
    """Which event types exist, at which schema version, and how to read their old versions."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[type[BaseModel], int]] = {}
        self._types_by_model: dict[type[BaseModel], str] = {}
        self._steps: dict[str, dict[int, _Step]] = {}

    def register(self, model: type[ModelT], *, type: str | None = None, schema_version: int = 1) -> type[ModelT]:
        """Register `model` as the current shape of `type` (the class name by default)."""
        name = type or model.__name__
        if schema_version < 1:
            raise SchemaRegistryError(f"{name}: schema_version must be 1 or more, got {schema_version}")
        if name in self._models and self._models[name][0] is not model:
            raise SchemaRegistryError(f"event type {name!r} is already registered to {self._models[name][0].__name__}")
        self._check_chain(name, self._steps.get(name, {}), schema_version)
        self._models[name] = (model, schema_version)
        self._types_by_model[model] = name
        return model

    def event(self, *, type: str | None = None, schema_version: int = 1) -> Callable[[type[ModelT]], type[ModelT]]:
        """Class decorator form of `register`."""
        return lambda model: self.register(model, type=type, schema_version=schema_version)

    def add_upcaster(self, type: str, from_version: int, upcast: Upcaster, *, to_version: int | None = None) -> None:
        target = from_version + 1 if to_version is None else to_version
        steps = dict(self._steps.get(type, {}))
        if from_version in steps:
            raise SchemaRegistryError(f"{type}: an upcaster from version {from_version} is already registered")
        steps[from_version] = _Step(target, upcast)
        current = self._models.get(type, (None, None))[1]
        self._check_chain(type, steps, current)
        self._steps[type] = steps

    def upcaster(
        self, type: str, from_version: int, *, to_version: int | None = None
    ) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of `add_upcaster`."""

        def decorate(upcast: Upcaster) -> Upcaster:
            self.add_upcaster(type, from_version, upcast, to_version=to_version)
            return upcast

        return decorate

    @staticmethod
    def _check_chain(type: str, steps: dict[int, _Step], current: int | None) -> None:
        for start in steps:
            seen = [start]
            version = start
            while version in steps:
                version = steps[version].to_version
                if version in seen:
                    path = " -> ".join(map(str, [*seen, version]))
                    raise SchemaRegistryError(f"{type}: upcasters form a cycle: {path}")
                seen.append(version)
            if current is not None and version != current:
                path = " -> ".join(map(str, seen))
                raise SchemaRegistryError(
                    f"{type}: upcasters from version {start} stop at version {version} ({path}), "
                    f"but the current schema version is {current}: an upcaster from {version} is missing"
                )

    def schema_version(self, type: str) -> int:
        return self._models[type][1] if type in self._models else 1

    def type_of(self, model: BaseModel) -> str:
        try:
            return self._types_by_model[model.__class__]
        except KeyError:
            raise SchemaRegistryError(
                f"{model.__class__.__name__} is not a registered event type; register it with EventRegistry.register"
            ) from None

    @property
    def has_upcasters(self) -> bool:
        return bool(self._steps)

    def has_upcaster(self, type: str, from_version: int) -> bool:
        return from_version in self._steps.get(type, {})

    def upcast(self, event: RecordedEvent) -> RecordedEvent:
        """The event in its current schema; events without upcasters pass through untouched."""
        steps = self._steps.get(event.type)
        if not steps or event.schema_version not in steps:
            return event
        data, version = event.data, event.schema_version
        while version in steps:
            step = steps[version]
            data, version = step.upcast(dict(data)), step.to_version
        return event.with_data(data, version)

    def decode(self, event: RecordedEvent) -> BaseModel:
        """The event's data as its registered pydantic model (after upcasting)."""
        if event.type not in self._models:
            raise SchemaRegistryError(f"event type {event.type!r} is not registered")
        return self._models[event.type][0].model_validate(self.upcast(event).data)
