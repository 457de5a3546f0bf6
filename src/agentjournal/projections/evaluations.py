"""The evaluations read model: each offline evaluation's items, scored on both sides, for the replay delta.

It reads the evaluation streams (`eval-<id>`, runs.evaluations) wherever they are, which is the
evaluation journal. One row per evaluation says its candidate and when it was last scored; one
row per (evaluation, item) says the item's route, tenant, the baseline's recorded model and the
candidate's, and folds its scores the way the gate reads them: per side and repeat, the mean of
the scorers a metric has; per item, the mean over the candidate's repeats; the policy moves
(calls decided stricter or looser than the baseline) of its worst repeat. Scores arrive after
the replays and an item may be scored again with new scorers, so each item keeps every
scorer's value (`scores`, JSON) and its columns are computed again from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from agentjournal.journal import RecordedEvent
from agentjournal.projections.base import Projection, Tx
from agentjournal.runs import evaluations as evs

EVALUATION_COLUMNS = ("evaluation_id", "candidate", "dataset_version", "items", "repeats", "started_at", "scored_at")
ITEM_COLUMNS = (
    "evaluation_id",
    "item",
    "item_index",
    "agent",
    "route",
    "tenant_id",
    "model",
    "candidate_model",
    "repeats",
    "baseline_quality",
    "candidate_quality",
    "baseline_cost_usd",
    "candidate_cost_usd",
    "baseline_latency_ms",
    "candidate_latency_ms",
    "policy_stricter",
    "policy_looser",
    "scored_at",
    "scores",
)
_MEANS = {"quality": "quality", "cost": "cost_usd", "latency": "latency_ms"}
"""The metrics an item keeps a mean of, and their columns' suffix."""
Payload = evs.EvaluationStarted | evs.EvaluationItem | evs.ItemReplayed | evs.ScoreRecorded
_DECODERS: dict[str, type[Payload]] = {
    kind.__name__: kind for kind in (evs.EvaluationStarted, evs.EvaluationItem, evs.ItemReplayed, evs.ScoreRecorded)
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return sum(found) / len(found) if found else None


@dataclass
class ItemScores:
    """What an item's scores fold to, kept with its row.

    `values`: "<side>/<repeat>/<metric>" -> {"<scorer>@<version>": value}, so a score journaled
    again replaces itself and a new scorer (or a new version of one) adds to the mean. `moves`:
    the candidate's repeat -> [stricter, looser] calls, from its policy score's details.
    """

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    moves: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> ItemScores:
        data = orjson.loads(text)
        return cls(data["values"], data["moves"])

    def to_json(self) -> str:
        return orjson.dumps({"values": self.values, "moves": self.moves}, option=orjson.OPT_SORT_KEYS).decode()

    def add(self, score: evs.ScoreRecorded) -> None:
        key = f"{score.side}/{score.repeat}/{score.metric}"
        self.values.setdefault(key, {})[f"{score.scorer}@{score.scorer_version}"] = score.value
        if score.metric == "policy" and score.side == "candidate":
            self.moves[str(score.repeat)] = [len(score.details.get(name) or ()) for name in ("stricter", "looser")]

    def repeats(self) -> list[int]:
        """The candidate's repeats that have a score, in order."""
        found = {int(key.split("/")[1]) for key in self.values if key.startswith("candidate/")}
        return sorted(found)

    def mean(self, side: evs.Side, metric: str) -> float | None:
        """The baseline's mean over its scorers; the candidate's mean over its repeats of that."""
        per_repeat = [
            _mean(scorers.values())
            for key, scorers in sorted(self.values.items())
            if key.startswith(f"{side}/") and key.endswith(f"/{metric}") and scorers
        ]
        return _mean(value for value in per_repeat if value is not None)

    def worst_moves(self) -> tuple[int, int]:
        """(stricter, looser) of the repeat with the most calls decided differently (the first of a tie)."""
        ordered = [self.moves[repeat] for repeat in sorted(self.moves, key=int)]
        stricter, looser = max(ordered, key=sum, default=[0, 0])
        return stricter, looser


class EvaluationsProjection(Projection):
    """aj_rm_evaluations and aj_rm_evaluation_items: the evaluations and their items, scored."""

    name: ClassVar[str] = "evaluations"
    event_types: ClassVar[tuple[str, ...]] = tuple(_DECODERS)
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_evaluations", "aj_rm_evaluation_items")

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        decoded = list(_decode(events))
        if not decoded:
            return
        evaluations, ids = _load_evaluations(tx, decoded)
        new_items = {(event.stream_id, p.item) for event, p in decoded if isinstance(p, evs.EvaluationItem)}
        wanted: dict[str, set[str]] = {}
        for event, payload in decoded:
            evaluation = ids.get(event.stream_id)
            if (
                evaluation is not None
                and isinstance(payload, evs.ItemReplayed | evs.ScoreRecorded)
                and (event.stream_id, payload.item) not in new_items
            ):
                wanted.setdefault(evaluation, set()).add(payload.item)
        items = _load_items(tx, wanted)
        scores: dict[tuple[str, str], ItemScores] = {}
        changed_evaluations: set[str] = set()
        changed_items: set[tuple[str, str]] = set()
        for event, payload in decoded:
            at = event.recorded_at.timestamp()
            if isinstance(payload, evs.EvaluationStarted):
                evaluation = payload.evaluation_id
                evaluations[evaluation] = {
                    "evaluation_id": evaluation,
                    "candidate": _text(payload.candidate),
                    "dataset_version": _text(payload.dataset_version),
                    "items": payload.items,
                    "repeats": payload.repeat,
                    "started_at": at,
                    "scored_at": None,
                }
                changed_evaluations.add(evaluation)
                continue
            found = ids.get(event.stream_id)
            if found is None:
                continue  # not an evaluation (its stream does not start with EvaluationStarted)
            key = (found, payload.item)
            if isinstance(payload, evs.EvaluationItem):
                items[key] = _new_item(found, payload)
                scores[key] = ItemScores()
                changed_items.add(key)
                continue
            row = items.get(key)
            if row is None:
                continue  # an item the evaluation never described
            if isinstance(payload, evs.ItemReplayed):
                row["candidate_model"] = row["candidate_model"] or _text(payload.model)
            else:
                if key not in scores:
                    scores[key] = ItemScores.from_json(row["scores"])
                scores[key].add(payload)
                row["scored_at"] = at
                evaluations[found]["scored_at"] = at
                changed_evaluations.add(found)
            changed_items.add(key)
        for key, folded in scores.items():
            _derive(items[key], folded)
        tx.upsert(
            "aj_rm_evaluations",
            EVALUATION_COLUMNS,
            ("evaluation_id",),
            [tuple(evaluations[e][c] for c in EVALUATION_COLUMNS) for e in sorted(changed_evaluations)],
        )
        tx.upsert(
            "aj_rm_evaluation_items",
            ITEM_COLUMNS,
            ("evaluation_id", "item"),
            [tuple(items[key][c] for c in ITEM_COLUMNS) for key in sorted(changed_items)],
        )


def _decode(events: Iterable[RecordedEvent]) -> Iterable[tuple[RecordedEvent, Payload]]:
    """(event, payload) of each evaluation event that fits its schema; EvaluationStarted only as a stream's first."""
    for event in events:
        if not event.stream_id.startswith(evs.EVALUATION_PREFIX):
            continue
        decoder = _DECODERS.get(event.type)
        if decoder is None or (decoder is evs.EvaluationStarted) != (event.version == 1):
            continue
        try:
            payload = decoder.model_validate(event.data)
        except ValidationError:
            continue
        yield event, payload


def _load_evaluations(
    tx: Tx, decoded: Sequence[tuple[RecordedEvent, Payload]]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The batch's evaluations already in the read model, and each evaluation stream's evaluation id.

    The id is the one EvaluationStarted gives, which is not always the stream's name minus
    `eval-` (`evaluation_stream` keeps an id that already starts with it), so a stream whose
    start was applied in an earlier batch is looked up under both.
    """
    ids = {event.stream_id: p.evaluation_id for event, p in decoded if isinstance(p, evs.EvaluationStarted)}
    earlier = sorted({event.stream_id for event, _ in decoded} - ids.keys())
    names = {stream: (stream.removeprefix(evs.EVALUATION_PREFIX), stream) for stream in earlier}
    rows = tx.select_in(
        f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM aj_rm_evaluations WHERE evaluation_id IN ({{}})",
        sorted({name for pair in names.values() for name in pair}),
    )
    found = {row[0]: dict(zip(EVALUATION_COLUMNS, row, strict=True)) for row in rows}
    for stream, pair in names.items():
        known = next((name for name in pair if name in found), None)
        if known is not None:
            ids[stream] = known
    return found, ids


def _load_items(tx: Tx, wanted: dict[str, set[str]], chunk: int = 500) -> dict[tuple[str, str], dict[str, Any]]:
    sql = f"SELECT {', '.join(ITEM_COLUMNS)} FROM aj_rm_evaluation_items WHERE evaluation_id = ? AND item IN ({{}})"
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for evaluation in sorted(wanted):
        names = sorted(wanted[evaluation])
        for start in range(0, len(names), chunk):
            part = names[start : start + chunk]
            for row in tx.fetchall(sql.format(", ".join("?" * len(part))), [evaluation, *part]):
                found[(row[0], row[1])] = dict(zip(ITEM_COLUMNS, row, strict=True))
    return found


def _new_item(evaluation: str, item: evs.EvaluationItem) -> dict[str, Any]:
    return {
        "evaluation_id": evaluation,
        "item": item.item,
        "item_index": item.index,
        "agent": _text(item.agent),
        "route": _text(item.route),
        "tenant_id": _text(item.tenant_id),
        "model": _text(item.model),
        "candidate_model": None,
        "scored_at": None,
    }


def _derive(row: dict[str, Any], folded: ItemScores) -> None:
    """The row's score columns, computed again from everything it was scored with."""
    row["repeats"] = len(folded.repeats())
    for metric, column in _MEANS.items():
        row[f"baseline_{column}"] = folded.mean("baseline", metric)
        row[f"candidate_{column}"] = folded.mean("candidate", metric)
    row["policy_stricter"], row["policy_looser"] = folded.worst_moves()
    row["scores"] = folded.to_json()
