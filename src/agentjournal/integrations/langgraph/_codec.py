"""How a channel value or a write is stored inside a thread's events: as JSON when it is plain JSON, else
through the saver's serializer (LangGraph's JsonPlusSerializer by default), large values once by content hash.

An *entry* is plain JSON or a small JSON object:

- the value itself, when it is plain JSON that reads back exactly (str, finite float, int, bool, list, and
  dict with str keys in sorted order, since the journal's canonical JSON sorts keys) and not a dict;
  `{"j": value}` for such a dict;
  `{"n": 1}` for None itself (LangGraph's trigger channels hold None at every step, and a JSON `null`
  makes the journal scan the payload for NaN);
- `{"t": type, "b": base64}`: the serializer's `dumps_typed` output (msgpack for LangChain messages,
  pydantic models, ...);
- `{"blob": "blob-<sha256>"}`: one of the two above, stored once on its own stream (a value above the
  blob threshold, e.g. a long document that many checkpoints or threads carry).

Channel values also have delta entries, which `_thread` resolves against the parent checkpoint:
`{"w": [version, index]}` (the value is that write's value), `{"+": entry}` and `{"+w": [[version, index],
...]}` (the parent's list plus a tail), `{"e": 1}` (the channel is empty at this version).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from agentjournal.agents.blobs import BlobStore
from agentjournal.journal import Journal

Entry = Any
"""A plain JSON value (not a dict), or a dict with one of the keys below."""
_MARKS = ("+", "+w", "w", "e")


def mark(entry: Entry) -> str | None:
    """What a channel entry is beyond a value: "+" / "+w" (adds to the parent's list), "w" (a write's value),
    "e" (empty), or None (a value)."""
    if type(entry) is dict:
        for key in _MARKS:
            if key in entry:
                return key
    return None


_SCALARS = (str, bool, type(None))
_INT_RANGE = (-(2**63), 2**63 - 1)
_MAX_DEPTH = 200


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """True when `value` survives canonical JSON unchanged (types, dict key order and all)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT_RANGE[0] <= value <= _INT_RANGE[1])
    if kind is float:
        return math.isfinite(value)
    if depth >= _MAX_DEPTH:
        return False
    if kind is list:
        return all(is_plain_json(item, depth + 1) for item in value)
    if kind is dict:
        keys = list(value)
        if not all(type(key) is str for key in keys) or keys != sorted(keys):
            return False
        return all(is_plain_json(item, depth + 1) for item in value.values())
    return False


def fresh(value: Any) -> Any:
    """A copy of a decoded JSON value that a caller may change without changing the saver's index."""
    kind = type(value)
    if kind is list:
        if all(isinstance(item, _SCALARS) or type(item) in (int, float) for item in value):
            return value.copy()
        return orjson.loads(orjson.dumps(value))
    if kind is dict:
        return orjson.loads(orjson.dumps(value))
    return value


class Codec:
    """Encodes values into entries and back, for one saver (its serializer, its blob threshold)."""

    def __init__(
        self, journal: Journal, serde: SerializerProtocol, *, plain_json: bool | None, blob_threshold: int
    ) -> None:
        self.serde = serde
        # Plain JSON bypasses the serializer, so it is used only when the serializer is LangGraph's own: a
        # custom one (an EncryptedSerializer, say) sees every value.
        self.plain_json = isinstance(serde, JsonPlusSerializer) if plain_json is None else plain_json
        self.blob_threshold = blob_threshold
        self.blobs = BlobStore(journal)

    def encode(self, value: Any) -> Entry:
        if value is None:
            return {"n": 1}
        if self.plain_json and is_plain_json(value):
            entry: Entry = {"j": value} if type(value) is dict else value
            if self._small(value):
                return entry
            encoded = orjson.dumps(value)
            if len(encoded) <= self.blob_threshold:
                return entry
        else:
            kind, data = self.serde.dumps_typed(value)
            entry = {"t": kind, "b": base64.b64encode(data).decode("ascii")}
            if len(data) * 4 // 3 <= self.blob_threshold:
                return entry
        return {"blob": self.blobs.put(entry)}

    def _small(self, value: Any) -> bool:
        """Cheaply true for values far below the blob threshold (no encoding needed to know)."""
        if type(value) is str:
            return len(value) * 4 <= self.blob_threshold  # at most 4 bytes per character in UTF-8
        return not isinstance(value, (list, dict))

    def decode(self, entry: Entry) -> Any:
        if type(entry) is not dict:
            return fresh(entry)
        if "n" in entry:
            return None
        if "j" in entry:
            return fresh(entry["j"])
        if "t" in entry:
            return self.serde.loads_typed((entry["t"], base64.b64decode(entry["b"])))
        if "blob" in entry:
            return self.decode(self.blobs.get(entry["blob"]))
        raise ValueError(f"not a value entry: {sorted(entry)}")
