"""The fingerprint of a model request, as the SDK sends it: instructions, tools, handoffs, every input item.

The SDK sends the whole conversation on every turn, so a fingerprint computed from scratch would
cost more at step 200 than at step 2. A `RequestHasher` follows one conversation: it keeps each
input item it has hashed and hashes only the items after the part that is unchanged (checked item
by item, so a conversation rewritten in the middle is hashed again from there). The recording and
the replay compute it the same way, so a replay that sends another request is caught.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentjournal.integrations.openai_agents._common import jsonable, sha256
from agentjournal.journal.envelope import canonical_json

__all__ = ["RequestDigest", "RequestHasher", "tool_specs"]


@dataclass(frozen=True)
class RequestDigest:
    fingerprint: str
    """SHA-256 over the hashes below and the output schema: what a replay must send again."""
    prompt_hash: str
    tools_hash: str
    input_hash: str
    items: int
    """How many input items the request had."""
    new_from: int
    """The first item this conversation had not sent before (the rest was sent by earlier requests)."""


def tool_specs(tools: Sequence[Any], handoffs: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The tools and handoffs a model is offered, as the model sees them (name, description, JSON schema)."""
    specs: list[dict[str, Any]] = []
    for tool in tools:
        schema = getattr(tool, "params_json_schema", None)
        if schema is not None:
            specs.append({"name": tool.name, "description": tool.description, "parameters": schema})
        else:
            specs.append({"name": str(getattr(tool, "name", type(tool).__name__)), "type": type(tool).__name__})
    for handoff in handoffs:
        specs.append(
            {
                "name": handoff.tool_name,
                "description": handoff.tool_description,
                "parameters": handoff.input_json_schema,
                "handoff_to": handoff.agent_name,
            }
        )
    return specs


class RequestHasher:
    """Fingerprints the requests of one conversation, hashing each input item once."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._hashes: list[bytes] = []
        self._tools: tuple[list[Any], list[dict[str, Any]], str] = ([], [], sha256([]))
        """The last tools offered, their handoffs' specs and their hash (tools are the same objects each turn)."""

    def digest(
        self,
        instructions: str | None,
        input: str | list[Any],
        tools: Sequence[Any],
        handoffs: Sequence[Any],
        output_schema: Any,
    ) -> RequestDigest:
        """The request's digest (hashing only the input items this conversation had not sent before)."""
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        same = 0
        for seen, item in zip(self._items, items, strict=False):
            if seen is not item and seen != item:
                break
            same += 1
        self._hashes[same:] = [hashlib.sha256(canonical_json(jsonable(item))).digest() for item in items[same:]]
        self._items = items
        input_hash = hashlib.sha256(b"".join(self._hashes)).hexdigest()
        prompt_hash = hashlib.sha256((instructions or "").encode()).hexdigest()
        tools_hash = self._tools_hash(tools, handoffs)
        schema = None
        if output_schema is not None and not output_schema.is_plain_text():
            schema = output_schema.json_schema()
        fingerprint = sha256(
            {"instructions": prompt_hash, "tools": tools_hash, "input": input_hash, "output_schema": schema}
        )
        return RequestDigest(fingerprint, prompt_hash, tools_hash, input_hash, len(items), same)

    def _tools_hash(self, tools: Sequence[Any], handoffs: Sequence[Any]) -> str:
        """The hash of the tools and handoffs offered; the tools' schemas are hashed again only when they change."""
        offered = tool_specs((), handoffs)  # handoffs are built anew each turn, and are small
        last_tools, last_offered, last_hash = self._tools
        same = len(last_tools) == len(tools) and all(a is b for a, b in zip(last_tools, tools, strict=True))
        if same and offered == last_offered:
            return last_hash
        tools_hash = sha256(tool_specs(tools, handoffs))
        self._tools = (list(tools), offered, tools_hash)
        return tools_hash
