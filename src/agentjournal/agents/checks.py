"""Output checks: seed 001's response builder, where a drafted answer is checked before the user sees it.

Each check passes the draft, rewrites it (the redactor removing an e-mail address) or blocks it
(the agent's fallback answer is sent instead). Every outcome is an event on the run:
OutputChecked when a check passed, GuardrailTriggered (seed 002) when it rewrote or blocked.
Checks run in order; a rewrite is what the next check sees; the first block ends the checking.

    Agent(..., output_checks=[RedactOutput(), PolicyCheck(policy), output_check("no-promises")(my_fn)])

A check is pure: it must not do I/O (it runs again, identically, when a run is replayed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agentjournal.agents.policy import Policy
from agentjournal.agents.redaction import Redactor
from agentjournal.runs import RunState

__all__ = ["ANSWER_TOOL", "CheckResult", "OutputCheck", "PolicyCheck", "RedactOutput", "output_check"]

ANSWER_TOOL = "final_answer"
"""The tool name a policy rule uses to judge the answer: `when: {tool: final_answer, input: {text_...}}`."""


@dataclass(frozen=True)
class CheckResult:
    outcome: Literal["passed", "rewritten", "blocked"]
    reason: str = ""
    text: str | None = None
    """The new text, when rewritten."""
    findings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.outcome == "rewritten") != (self.text is not None):
            raise ValueError("a rewritten check result carries the new text, and only a rewritten one")


class OutputCheck(ABC):
    name: str

    @abstractmethod
    def check(self, text: str, state: RunState) -> CheckResult: ...


class RedactOutput(OutputCheck):
    """Removes PII and secrets from the answer (agents.redaction), recording which kinds and how many."""

    def __init__(self, redactor: Redactor | None = None, *, name: str = "redact") -> None:
        self.redactor = redactor or Redactor()
        self.name = name

    def check(self, text: str, state: RunState) -> CheckResult:
        clean, found = self.redactor.redact_text(text)
        if not found:
            return CheckResult("passed")
        kinds = ", ".join(f"{finding.kind} x{finding.count}" for finding in found)
        findings = [{"kind": finding.kind, "count": finding.count} for finding in found]
        return CheckResult("rewritten", f"removed {kinds}", clean, findings)


class PolicyCheck(OutputCheck):
    """The policy guard on the answer: rules naming the tool `final_answer` judge `{"text": answer}`.

    `deny` blocks the answer. A rule that sends it to a human blocks it too (an answer cannot yet
    wait for a reviewer): the user gets the fallback and the run records why.
    """

    def __init__(self, policy: Policy, *, name: str = "policy") -> None:
        self.policy = policy
        self.name = name

    def check(self, text: str, state: RunState) -> CheckResult:
        decision = self.policy.evaluate(ANSWER_TOOL, {"text": text}, state.run_metrics())
        if decision.action == "allow":
            return CheckResult("passed", decision.reason)
        return CheckResult("blocked", decision.reason)


class _FunctionCheck(OutputCheck):
    def __init__(self, name: str, fn: Callable[[str, RunState], CheckResult | str | bool | None]) -> None:
        self.name = name
        self.fn = fn

    def check(self, text: str, state: RunState) -> CheckResult:
        verdict = self.fn(text, state)
        if isinstance(verdict, CheckResult):
            return verdict
        if verdict is None or verdict is True:
            return CheckResult("passed")
        if verdict is False:
            return CheckResult("blocked", f"{self.name} refused the answer")
        if isinstance(verdict, str):
            return (
                CheckResult("passed")
                if verdict == text
                else CheckResult("rewritten", f"{self.name} rewrote it", verdict)
            )
        raise TypeError(f"output check {self.name!r} returned {verdict!r}; return a CheckResult, a str, a bool or None")


def output_check(name: str) -> Callable[[Callable[[str, RunState], CheckResult | str | bool | None]], OutputCheck]:
    """Make a check of a function `(text, state) ->` None/True (pass), False (block), str (rewrite) or CheckResult."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an output check needs a name, got {name!r}")
    return lambda fn: _FunctionCheck(name, fn)
