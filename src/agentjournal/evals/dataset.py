"""Datasets: past runs selected from the journal, written as JSON Lines, read back validated.

The first line is a header (format, when, from where, which selection); every other line is
one run: its input, its trajectory (tool calls with the policy's and humans' decisions and
their results, model calls), its outcome and usage, an optional reference (expected answer,
labels, expected tools) and the recording, the run's own events with large outputs inlined,
from which a counterfactual replay answers. The trajectory is a view of the recording, and
reading a dataset checks that it still is. A dataset's version is the SHA-256 of its items'
canonical JSON, so editing a reference makes a new version and reformatting does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentjournal.agents.blobs import BlobStore
from agentjournal.evals.trajectory import Trajectory
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError
from agentjournal.journal.location import redact
from agentjournal.projections.queries import list_runs
from agentjournal.runs import run_stream, upcast
from agentjournal.runs.summary import FINISHED

__all__ = [
    "DATASET_FORMAT",
    "Dataset",
    "DatasetError",
    "DatasetItem",
    "Reference",
    "Selection",
    "build_dataset",
    "read_references",
]

DATASET_FORMAT: Final = 1


class DatasetError(AgentJournalError):
    """A dataset file that cannot be read, or a selection that cannot be made; names the file and line."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Record):
    """What a run should have done, for the quality scorers."""

    expected: str | None = None
    """The expected answer."""
    labels: list[str] = []
    tools: list[str] | None = None
    """The expected tools, in order."""


class Selection(_Record):
    """Which past runs make the dataset; every field narrows it. A saved selection is a YAML file of these."""

    agent: str | None = None
    route: str | None = None
    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: list[str] = Field(default_factory=lambda: sorted(FINISHED))
    run_ids: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)

    @classmethod
    def load(cls, path: str | Path) -> Selection:
        """A saved selection: a YAML mapping of these fields (e.g. `agent: refund-agent`, `since: 2026-11-01`)."""
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise DatasetError(str(path), f"cannot read the selection: {exc}") from None
        try:
            return cls.model_validate(loaded or {})
        except ValidationError as exc:
            raise DatasetError(str(path), _problems(exc)) from None


class RecordedEventData(_Record):
    """One event of a recording, as the dataset stores it."""

    event_id: str
    type: str
    schema_version: int = 1
    recorded_at: datetime
    actor: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any]


class DatasetItem(_Record):
    id: str
    """The recorded run's id."""
    agent: str
    model: str
    route: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    started_at: datetime
    input: str
    trajectory: Trajectory
    reference: Reference | None = None
    recording: list[RecordedEventData]

    def events(self) -> list[RecordedEvent]:
        """The recording as journal events of stream `run-<id>`."""
        return _events(self.id, self.recording)

    @classmethod
    def of_run(
        cls,
        run_id: str,
        events: Sequence[RecordedEvent],
        blob: Callable[[str], Any],
        reference: Reference | None = None,
    ) -> DatasetItem:
        """An item from a run's stored events; large outputs are inlined so the item stands alone."""
        recording = [_portable(upcast(event), blob) for event in events]
        started = recording[0].data
        trajectory = Trajectory.of(_events(run_id, recording))
        return cls(
            id=run_id,
            agent=str(started["agent"]),
            model=str(started["model"]),
            route=started.get("route"),
            tenant_id=recording[0].tenant_id,
            user_id=started.get("user_id"),
            started_at=recording[0].recorded_at,
            input=str(started["input"]),
            trajectory=trajectory,
            reference=reference,
            recording=recording,
        )


def _portable(event: RecordedEvent, blob: Callable[[str], Any]) -> RecordedEventData:
    data = event.data
    if event.type == "ToolExecuted" and data.get("output_ref"):
        data = {**data, "output": blob(data["output_ref"]), "output_ref": None}
    return RecordedEventData(
        event_id=event.event_id,
        type=event.type,
        schema_version=event.schema_version,
        recorded_at=event.recorded_at,
        actor=event.actor,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        data=data,
    )


def _events(run_id: str, recording: Sequence[RecordedEventData]) -> list[RecordedEvent]:
    stream_id = run_stream(run_id)
    return [
        RecordedEvent(
            event_id=event.event_id,
            stream_id=stream_id,
            version=version,
            position=0,
            type=event.type,
            schema_version=event.schema_version,
            recorded_at=event.recorded_at,
            actor=event.actor,
            tenant_id=event.tenant_id,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            traceparent=None,
            data_json=b"",
            metadata_json=b"{}",
            prev_hash="",
            hash="",
            data=event.data,
        )
        for version, event in enumerate(recording, start=1)
    ]


class DatasetHeader(_Record):
    agentjournal_dataset: Literal[1] = DATASET_FORMAT
    created_at: datetime
    source: str
    """The journal the runs were read from (its URL without a password)."""
    selection: Selection


@dataclass(frozen=True)
class Dataset:
    header: DatasetHeader
    items: tuple[DatasetItem, ...]

    @cached_property
    def version(self) -> str:
        """`sha256:<hex>` of the items' canonical JSON: the same runs and references, the same version."""
        digest = hashlib.sha256()
        for line in self._lines():
            digest.update(line)
        return f"sha256:{digest.hexdigest()}"

    def _lines(self) -> Iterator[bytes]:
        for item in self.items:
            yield canonical_json(item.model_dump(mode="json")) + b"\n"

    def write(self, path: str | Path) -> Path:
        """Write the dataset as JSON Lines (written next to the target, then moved over it)."""
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("wb") as out:
                out.write(canonical_json(self.header.model_dump(mode="json")) + b"\n")
                out.writelines(self._lines())
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DatasetError(str(target), f"cannot write the dataset: {exc.strerror or exc}") from None
        return target

    @classmethod
    def read(cls, path: str | Path) -> Dataset:
        """Read and validate a dataset; the error names the line and what is wrong with it."""
        source = Path(path)
        try:
            lines = source.read_bytes().splitlines()
        except OSError as exc:
            raise DatasetError(str(source), f"cannot read the dataset: {exc.strerror or exc}") from None
        if not lines or not lines[0].strip():
            raise DatasetError(f"{source}:1", "empty: a dataset starts with its header line")
        header = DatasetHeader.model_validate(_line(source, 1, lines[0], _header_problem))
        items: list[DatasetItem] = []
        seen: dict[str, int] = {}
        for number, raw in enumerate(lines[1:], start=2):
            if not raw.strip():
                continue
            item = _item(source, number, raw)
            if item.id in seen:
                raise DatasetError(f"{source}:{number}", f"run {item.id} is already item {seen[item.id]}")
            seen[item.id] = number
            items.append(item)
        if not items:
            raise DatasetError(str(source), "the dataset holds no runs")
        return cls(header, tuple(items))

    def item(self, run_id: str) -> DatasetItem:
        for item in self.items:
            if item.id == run_id:
                return item
        raise DatasetError(self.header.source, f"no run {run_id!r} in the dataset")

    def with_references(self, references: dict[str, Reference]) -> Dataset:
        """The same runs with these references (by run id) set."""
        unknown = sorted(set(references) - {item.id for item in self.items})
        if unknown:
            raise DatasetError("references", f"no such run in the dataset: {', '.join(unknown)}")
        items = tuple(
            item.model_copy(update={"reference": references[item.id]}) if item.id in references else item
            for item in self.items
        )
        return Dataset(self.header, items)


def _header_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("agentjournal_dataset") is None:
        return "the first line is not a dataset header (write datasets with `agentjournal eval dataset`)"
    if value["agentjournal_dataset"] != DATASET_FORMAT:
        return f"dataset format {value['agentjournal_dataset']!r}; this agentjournal reads format {DATASET_FORMAT}"
    try:
        DatasetHeader.model_validate(value)
    except ValidationError as exc:
        return _problems(exc)
    return None


def _line(source: Path, number: int, raw: bytes, problem: Callable[[Any], str | None]) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"{source}:{number}", f"not JSON: {exc}") from None
    found = problem(value)
    if found:
        raise DatasetError(f"{source}:{number}", found)
    return value


def _item(source: Path, number: int, raw: bytes) -> DatasetItem:
    value = _line(source, number, raw, lambda v: None if isinstance(v, dict) else "a run is a JSON object")
    try:
        item = DatasetItem.model_validate(value)
    except ValidationError as exc:
        raise DatasetError(f"{source}:{number}", _problems(exc)) from None
    if not item.recording or item.recording[0].type != "RunStarted":
        raise DatasetError(f"{source}:{number}", f"run {item.id}: the recording must begin with RunStarted")
    try:
        folded = Trajectory.of(item.events())
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{source}:{number}", f"run {item.id}: the recording cannot be folded: {exc}") from None
    if folded != item.trajectory:
        raise DatasetError(
            f"{source}:{number}", f"run {item.id}: the trajectory does not match the recording (edited by hand?)"
        )
    return item


def _reference_problem(value: Any) -> str | None:
    return None if isinstance(value, dict) and "id" in value else 'expected {"id": run_id, "expected": ...}'


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the line'}: {error['msg']}" for error in exc.errors()[:3]
    )


def build_dataset(
    journal: Journal,
    selection: Selection | None = None,
    *,
    references: dict[str, Reference] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The runs `selection` picks (from the runs read model, brought up to date), oldest first."""
    selection = selection or Selection()
    rows = list_runs(
        journal,
        status=selection.status,
        since=selection.since,
        until=selection.until,
        agent=selection.agent,
        route=selection.route,
        tenant_id=selection.tenant,
        run_ids=selection.run_ids,
        limit=selection.limit,
    )
    if selection.run_ids is not None:
        missing = sorted({run_id.removeprefix("run-") for run_id in selection.run_ids} - {row.run_id for row in rows})
        if missing:
            raise DatasetError(redact(journal.url), f"no such run (or not in the selection): {', '.join(missing)}")
    if not rows:
        raise DatasetError(redact(journal.url), "no run matches the selection")
    rows.sort(key=lambda row: (row.started_at or datetime.min.replace(tzinfo=UTC), row.run_id))
    blobs = BlobStore(journal)
    items = []
    for done, row in enumerate(rows, start=1):
        events = journal.read_stream(run_stream(row.run_id))
        reference = (references or {}).get(row.run_id)
        items.append(DatasetItem.of_run(row.run_id, events, blobs.get, reference))
        if progress is not None:
            progress(done, len(rows))
    header = DatasetHeader(created_at=datetime.now(UTC), source=redact(journal.url), selection=selection)
    return Dataset(header, tuple(items))


def read_references(path: str | Path) -> dict[str, Reference]:
    """References from JSON Lines: `{"id": run_id, "expected": ..., "labels": [...], "tools": [...]}` a line."""
    source = Path(path)
    try:
        lines = source.read_bytes().splitlines()
    except OSError as exc:
        raise DatasetError(str(source), f"cannot read the references: {exc.strerror or exc}") from None
    found: dict[str, Reference] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        value = _line(source, number, raw, _reference_problem)
        run_id = str(value.pop("id")).removeprefix("run-")
        try:
            found[run_id] = Reference.model_validate(value)
        except ValidationError as exc:
            raise DatasetError(f"{source}:{number}", _problems(exc)) from None
    return found
