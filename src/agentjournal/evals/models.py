"""A scripted candidate model made from a dataset: offline evaluations, CI examples, tests and benchmarks.

`recorded_replies(dataset, name=...)` answers each item's conversation (found by its input) the
way the recorded run was answered, turn by turn, under another model name; so an evaluation of
it exercises the whole replay without any provider. Its knobs play a candidate that changes:
`answer` rewrites the final answers, `skip_tool` forgets one tool's calls, `cost_factor` scales
the recorded tokens and cost (a dearer or cheaper model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentjournal.agents.models.base import ModelRequest, ModelResponse, ToolCall
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.evals.dataset import Dataset, DatasetItem
from agentjournal.evals.replay import EvaluationError

__all__ = ["recorded_replies"]


def recorded_replies(
    dataset: Dataset,
    *,
    name: str,
    answer: Callable[[DatasetItem, str | None], str | None] | None = None,
    skip_tool: str | None = None,
    cost_factor: float = 1.0,
) -> ScriptedModel:
    by_input = {item.input: item for item in dataset.items}
    turns_of: dict[str, list[dict[str, Any]]] = {
        item.id: [
            event.data
            for event in item.recording
            if event.type == "ModelCalled"
            and not (
                skip_tool and [call["name"] for call in event.data["response"].get("tool_calls") or ()] == [skip_tool]
            )
        ]
        for item in dataset.items
    }

    def reply(request: ModelRequest) -> ModelResponse:
        said = next((m["content"] for m in request.messages if m["role"] == "user" and m["content"] in by_input), None)
        if said is None:
            raise EvaluationError(f"model {name}: this conversation is not one of the dataset's inputs")
        item = by_input[said]
        turns = turns_of[item.id]
        done = sum(1 for message in request.messages if message["role"] == "assistant")
        index = min(done, len(turns) - 1)
        recorded = turns[index]["response"]
        text = recorded.get("text")
        if answer is not None and index == len(turns) - 1:
            text = answer(item, text)
        return ModelResponse(
            text=text,
            tool_calls=[ToolCall(c["id"], c["name"], c["arguments"]) for c in recorded.get("tool_calls") or ()],
            input_tokens=int(turns[index]["input_tokens"] * cost_factor),
            output_tokens=int(turns[index]["output_tokens"] * cost_factor),
            cost_usd=turns[index]["cost_usd"] * cost_factor,
        )

    return ScriptedModel(reply, name=name)
