"""Policy-as-code: YAML rules that allow, deny or send a tool call to a human.

Seed 001's file loads verbatim. The general form of a rule::

    version: 1
    default_action: allow            # optional; allow | deny | require_human_approval
    rules:
      - name: deny_destructive_sql   # required, unique
        description: ...             # optional
        when:                        # optional; every condition present must hold
          tool: query_sql            # a name or a list of names; absent = every tool
          input:                     # conditions on the (validated) tool arguments
            sql_matches_regex: "(?i)\\bdrop\\b"      # <field>_<operator>: value
            limit: {gt: 100, lte: 1000}               # or <field>: {operator: value, ...}
            mode: fast                                # or <field>: value  (equals)
          run_metrics:               # conditions on counters derived from the run's events
            tickets_created_gt: 3
        action: deny                 # allow | deny | require_human_approval
        reason: ...                  # optional, shown with the decision

Operators: equals, not_equals, in, not_in, matches_regex, domain_in, domain_not_in, gt, gte, lt, lte.
A field inside a nested argument is named by a dotted path (`customer.email_domain_in`).
Every matching rule is considered; deny beats require_human_approval beats allow; when no rule
matches, the default action applies. A field the call does not have never matches.

Recipients: the field `recipient` is the set of e-mail addresses in the call's `recipient`,
`recipients`, `to`, `cc` and `bcc` arguments (strings, comma-separated strings or lists), so seed
001's `recipient_domain_not_in` holds when ANY address is outside the listed domains (a subdomain
of a listed domain is inside; an address without a domain is outside). `domain_in` holds when all
addresses are inside. Any other field with a domain operator reads addresses or bare domains.

Run metrics count what the run has done so far, before the call being decided: seed 001's
`tickets_created_gt: 3` is read as written, so a run's first four create_ticket calls are allowed
(3 > 3 is false for the fourth) and every one after the fourth ticket is denied.

A malformed file is refused at load with the file, the line and what is wrong (PolicyError).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agentjournal.journal import RecordedEvent
from agentjournal.journal.errors import AgentJournalError
from agentjournal.runs import METRIC_EVENT_TYPES, RunMetrics, upcast

__all__ = [
    "OPERATORS",
    "RELEVANT_EVENT_TYPES",
    "Action",
    "Condition",
    "Decision",
    "Direction",
    "PastDecision",
    "Policy",
    "PolicyError",
    "Rule",
    "RunMetrics",
    "direction",
    "seed_policy_path",
]

Action = Literal["allow", "deny", "require_human_approval"]
ACTIONS: tuple[Action, ...] = get_args(Action)
_STRENGTH: dict[str, int] = {"allow": 0, "require_human_approval": 1, "deny": 2}
Direction = Literal["stricter", "looser", "unchanged"]


def direction(then: Action | None, now: Action | None) -> Direction:
    """How a decision moved: allow < require_human_approval < deny; no policy allowed the call."""
    before, after = _STRENGTH[then or "allow"], _STRENGTH[now or "allow"]
    return "stricter" if after > before else "looser" if after < before else "unchanged"


RELEVANT_EVENT_TYPES = METRIC_EVENT_TYPES
"""The run events that RunMetrics and `Policy.reevaluate` read; filter a journal read with them."""

RECIPIENT_FIELDS = ("recipient", "recipients", "to", "cc", "bcc")
"""The arguments that together make the `recipient` field."""


class PolicyError(AgentJournalError, ValueError):
    """A policy file that cannot be loaded: names the file, the line and what is wrong."""

    def __init__(self, source: str, line: int | None, message: str):
        self.source = source
        self.line = line
        self.problem = message
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")


# ----- conditions ----------------------------------------------------------------------------


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _addresses(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, str):
            found.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            found.append(str(item))
    return found


def _domain(address: str) -> str | None:
    """The domain of an address (`Name <a@b.com>` or `a@b.com`) or a bare domain; None if there is none."""
    match = re.search(r"<([^<>]*)>\s*$", address)
    text = (match.group(1) if match else address).strip().lower().rstrip(".")
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if not text or not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", text):
        return None
    return text


def _inside(address: str, domains: list[str]) -> bool:
    domain = _domain(address)
    return domain is not None and any(domain == d or domain.endswith("." + d) for d in domains)


def _op_equals(value: Any, expected: Any) -> bool:
    return bool(value == expected)


def _op_not_equals(value: Any, expected: Any) -> bool:
    return bool(value != expected)


def _op_in(value: Any, expected: Any) -> bool:
    return value in expected


def _op_not_in(value: Any, expected: Any) -> bool:
    return value not in expected


def _op_matches_regex(value: Any, expected: re.Pattern[str]) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return any(expected.search(item if isinstance(item, str) else str(item)) for item in items)


def _op_domain_in(value: Any, expected: list[str]) -> bool:
    addresses = _addresses(value)
    return bool(addresses) and all(_inside(address, expected) for address in addresses)


def _op_domain_not_in(value: Any, expected: list[str]) -> bool:
    return any(not _inside(address, expected) for address in _addresses(value))


def _op_gt(value: Any, expected: float) -> bool:
    return _numeric(value) and value > expected


def _op_gte(value: Any, expected: float) -> bool:
    return _numeric(value) and value >= expected


def _op_lt(value: Any, expected: float) -> bool:
    return _numeric(value) and value < expected


def _op_lte(value: Any, expected: float) -> bool:
    return _numeric(value) and value <= expected


_PHRASES = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "matches_regex": "matches",
    "domain_in": "is within",
    "domain_not_in": "is outside",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
}


def _words(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_words(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": _op_equals,
    "not_equals": _op_not_equals,
    "in": _op_in,
    "not_in": _op_not_in,
    "matches_regex": _op_matches_regex,
    "domain_in": _op_domain_in,
    "domain_not_in": _op_domain_not_in,
    "gt": _op_gt,
    "gte": _op_gte,
    "lt": _op_lt,
    "lte": _op_lte,
}
_NUMERIC_OPERATORS = ("gt", "gte", "lt", "lte")
# Longest first, so `recipient_domain_not_in` splits as (recipient, domain_not_in), not (recipient_domain_not, in).
_SUFFIXES = sorted(OPERATORS, key=len, reverse=True)


def _lookup(arguments: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """An argument by name, or inside nested objects by a dotted path (`customer.email`)."""
    if path in arguments:
        return True, arguments[path]
    value: Any = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


@dataclass(frozen=True)
class Condition:
    """One test: `<scope>.<field> <operator> <value>`, scope being input or run_metrics."""

    scope: Literal["input", "run_metrics"]
    field: str
    operator: str
    value: Any

    def holds(self, arguments: Mapping[str, Any], metrics: RunMetrics) -> bool:
        if self.scope == "run_metrics":
            actual: Any = metrics.get(self.field)
        elif self.field == "recipient" and self.operator.startswith("domain_"):
            present = [arguments[name] for name in RECIPIENT_FIELDS if arguments.get(name) is not None]
            if not present:
                return False
            actual = [address for item in present for address in _addresses(item)]
        else:
            found, actual = _lookup(arguments, self.field)
            if not found:
                return False
        return OPERATORS[self.operator](actual, self.value)

    def describe(self, metrics: RunMetrics | None = None) -> str:
        """In words, e.g. `sql matches /(?i)drop/`; a run metric shows its current value."""
        shown = f"/{self.value.pattern}/" if isinstance(self.value, re.Pattern) else _words(self.value)
        subject = self.field
        if self.scope == "run_metrics":
            subject = f"run metric {self.field}"
            if metrics is not None:
                subject += f" ({_words(metrics.get(self.field))})"
        return f"{subject} {_PHRASES[self.operator]} {shown}"


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    tools: tuple[str, ...] | None
    conditions: tuple[Condition, ...]
    description: str = ""
    reason: str = ""
    line: int = 0

    def matches(self, tool: str, arguments: Mapping[str, Any], metrics: RunMetrics) -> bool:
        if self.tools is not None and tool not in self.tools:
            return False
        return all(condition.holds(arguments, metrics) for condition in self.conditions)

    def explain(self, tool: str, metrics: RunMetrics | None = None) -> str:
        """Why this rule decided `tool`: its own `reason:`, or its conditions in words."""
        verdict = {"allow": "allowed", "deny": "denied", "require_human_approval": "held for human approval"}
        because = self.reason or " and ".join(condition.describe(metrics) for condition in self.conditions)
        return f"{tool} {verdict[self.action]} by rule {self.name}" + (f": {because}" if because else "")


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one tool call; `rule` is None when the default action applied."""

    action: Action
    rule: str | None
    reason: str
    matched_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class PastDecision:
    """A past tool call judged again: what was decided then (`recorded`) and what this policy decides now."""

    stream_id: str
    version: int
    call_id: str | None
    tool: str
    arguments: dict[str, Any]
    recorded: Decision | None
    now: Decision

    @property
    def then(self) -> Action:
        """What was decided then; a call recorded without any policy was allowed (it ran)."""
        return self.recorded.action if self.recorded else "allow"

    @property
    def direction(self) -> Direction:
        return direction(self.then, self.now.action)

    @property
    def changed(self) -> bool:
        return self.direction != "unchanged"


# ----- the policy ----------------------------------------------------------------------------


class Policy:
    """A loaded policy. `version` is the sha256 of the file's text, pinned in each run that uses it."""

    SUPPORTED_VERSIONS = (1,)

    def __init__(self, rules: list[Rule], *, default_action: Action = "allow", version: str = "", source: str = ""):
        self.rules = tuple(rules)
        self.default_action: Action = default_action
        self.version = version
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(str(path), None, f"cannot read the policy file: {exc}") from None
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> Policy:
        return _Parser(text, source).parse()

    @classmethod
    def allow_all(cls) -> Policy:
        """A policy with no rules: every call is allowed (the version says so)."""
        return cls([], default_action="allow", version=hashlib.sha256(b"").hexdigest(), source="<allow-all>")

    def evaluate(self, tool: str, arguments: Mapping[str, Any], metrics: RunMetrics | None = None) -> Decision:
        """Decide one (already validated) tool call. Deny beats approval beats allow."""
        metrics = metrics if metrics is not None else RunMetrics()
        matched = [rule for rule in self.rules if rule.matches(tool, arguments, metrics)]
        if not matched:
            reason = f"no rule matched {tool}; the default action is {self.default_action}"
            return Decision(self.default_action, None, reason)
        strongest = max(matched, key=lambda rule: _STRENGTH[rule.action])  # first of the strongest, in file order
        reason = strongest.explain(tool, metrics)
        return Decision(strongest.action, strongest.name, reason, tuple(rule.name for rule in matched))

    def check_tools(self, tools: Mapping[str, Iterable[str]]) -> None:
        """Refuse rules that can never match these tools ({name: argument names}, `ToolRegistry.argument_names()`).

        A misspelt tool or field would otherwise make a deny rule silently inert.
        """
        known = {name: set(arguments) for name, arguments in tools.items()}
        for rule in self.rules:
            for name in rule.tools or ():
                if name not in known:
                    raise PolicyError(
                        self.source,
                        rule.line,
                        f"rule {rule.name!r} names tool {name!r}, which the agent does not have; "
                        f"its tools: {', '.join(sorted(known)) or '(none)'}",
                    )
            if rule.tools is None:
                continue
            fields = set().union(*(known[name] for name in rule.tools))
            for condition in rule.conditions:
                if condition.scope != "input" or condition.field.split(".")[0] in fields:
                    continue
                if condition.field == "recipient" and fields & set(RECIPIENT_FIELDS):
                    continue
                raise PolicyError(
                    self.source,
                    rule.line,
                    f"rule {rule.name!r} tests input field {condition.field!r}, which {', '.join(rule.tools)} "
                    f"does not have; arguments: {', '.join(sorted(fields)) or '(none)'}",
                )

    def reevaluate(self, events: Iterable[RecordedEvent]) -> list[PastDecision]:
        """Decide every past ToolProposed again under this policy, with the run metrics of that moment.

        Answers "which past runs would this rule have stopped?": compare `recorded` (the decision
        journaled then, from PolicyEvaluated) with `now`. Events of several runs may be interleaved;
        each stream keeps its own metrics. A journal opened with a redactor stored redacted
        arguments, and they are judged as stored.
        """
        metrics: dict[str, RunMetrics] = {}
        found: list[PastDecision] = []
        by_call: dict[tuple[str, str], int] = {}
        for stored in events:
            event = upcast(stored)
            run = metrics.setdefault(event.stream_id, RunMetrics())
            data = event.data
            if event.type == "ToolProposed":
                tool, arguments = str(data.get("tool")), data.get("arguments") or {}
                call_id = data.get("call_id")
                if call_id is not None:
                    by_call[(event.stream_id, str(call_id))] = len(found)
                found.append(
                    PastDecision(
                        event.stream_id,
                        event.version,
                        call_id,
                        tool,
                        arguments,
                        None,
                        self.evaluate(tool, arguments, run),
                    )
                )
            elif event.type == "PolicyEvaluated" and (event.stream_id, str(data.get("call_id"))) in by_call:
                index = by_call.pop((event.stream_id, str(data.get("call_id"))))
                recorded = Decision(data.get("action", "allow"), data.get("rule"), str(data.get("reason", "")))
                found[index] = replace(found[index], recorded=recorded)
            run.apply(event.type, data)
        return found

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"no rule named {name!r} in {self.source}")

    def __repr__(self) -> str:
        return f"Policy({self.source!r}, {len(self.rules)} rules, version {self.version[:12]})"


class _Parser:
    """Walks the YAML node tree (not the plain data) so every error can name its line."""

    RULE_KEYS = ("name", "description", "when", "action", "reason")
    WHEN_KEYS = ("tool", "input", "run_metrics")
    TOP_KEYS = ("version", "default_action", "rules", "description")

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.loader = yaml.SafeLoader("")

    def fail(self, node: Node | None, message: str) -> PolicyError:
        return PolicyError(self.source, node.start_mark.line + 1 if node is not None else None, message)

    def parse(self) -> Policy:
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise PolicyError(self.source, line, f"not valid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise PolicyError(self.source, None, f"not valid YAML: {exc}") from None
        if root is None:
            raise PolicyError(self.source, None, "the policy file is empty; it needs `version: 1` and `rules:`")
        top = self.mapping(root, "the policy file", self.TOP_KEYS)
        if "version" not in top:
            raise self.fail(root, "missing `version:` (the policy format version, 1)")
        node = top["version"][1]
        version = self.scalar(node)
        if version not in Policy.SUPPORTED_VERSIONS:
            raise self.fail(node, f"unsupported policy version {version!r}; supported: 1")
        default: Action = "allow"
        if "default_action" in top:
            default = self.action(top["default_action"][1], "default_action")
        if "rules" not in top:
            raise self.fail(root, "missing `rules:` (a list of rules; it may be empty: `rules: []`)")
        rules_node = top["rules"][1]
        if not isinstance(rules_node, SequenceNode):
            raise self.fail(rules_node, "`rules` must be a list of rules")
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for index, rule_node in enumerate(rules_node.value, start=1):
            rule = self.rule(rule_node, index)
            if rule.name in seen:
                raise self.fail(rule_node, f"rule name {rule.name!r} is used twice (first at line {seen[rule.name]})")
            seen[rule.name] = rule.line
            rules.append(rule)
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return Policy(rules, default_action=default, version=digest, source=self.source)

    # -- nodes --

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value), got {self.kind(node)}")
        found: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.fail(key_node, f"{what}: keys must be text, got {key!r}")
            if key in found:
                raise self.fail(key_node, f"{what}: key {key!r} appears twice")
            if allowed is not None and key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(allowed)}"
                raise self.fail(key_node, f"{what}: unknown key {key!r}{suggestion}")
            found[key] = (key_node, value_node)
        return found

    def scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"expected a single value, got {self.kind(node)}")
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            raise self.fail(node, f"cannot read this value: {exc}") from None

    def data(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return [self.data(item) for item in node.value]
        return {key: self.data(value) for key, (_, value) in self.mapping(node, "value").items()}

    @staticmethod
    def kind(node: Node) -> str:
        return {MappingNode: "a mapping", SequenceNode: "a list", ScalarNode: "a single value"}.get(type(node), "?")

    def text_value(self, node: Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, f"{what} must be non-empty text, got {value!r}")
        return value

    def action(self, node: Node, what: str) -> Action:
        value = self.scalar(node)
        if value not in ACTIONS:
            hint = difflib.get_close_matches(str(value), ACTIONS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise self.fail(node, f"{what}: unknown action {value!r}{suggestion}; use one of {', '.join(ACTIONS)}")
        return cast(Action, value)

    # -- rules --

    def rule(self, node: Node, index: int) -> Rule:
        keys = self.mapping(node, f"rule {index}", self.RULE_KEYS)
        if "name" not in keys:
            raise self.fail(node, f"rule {index} has no `name:`")
        name = self.text_value(keys["name"][1], f"rule {index}: name")
        what = f"rule {name!r}"
        if "action" not in keys:
            raise self.fail(node, f"{what} has no `action:` (allow, deny or require_human_approval)")
        action = self.action(keys["action"][1], what)
        tools: tuple[str, ...] | None = None
        conditions: list[Condition] = []
        if "when" in keys:
            when = self.mapping(keys["when"][1], f"{what}: when", self.WHEN_KEYS)
            if "tool" in when:
                tools = self.tools(when["tool"][1], what)
            if "input" in when:
                conditions.extend(self.conditions(when["input"][1], "input", what))
            if "run_metrics" in when:
                conditions.extend(self.conditions(when["run_metrics"][1], "run_metrics", what))
        description = self.text_value(keys["description"][1], f"{what}: description") if "description" in keys else ""
        reason = self.text_value(keys["reason"][1], f"{what}: reason") if "reason" in keys else ""
        return Rule(name, action, tools, tuple(conditions), description, reason, node.start_mark.line + 1)

    def tools(self, node: Node, what: str) -> tuple[str, ...]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        if not items:
            raise self.fail(node, f"{what}: `tool` is an empty list")
        return tuple(self.text_value(item, f"{what}: tool") for item in items)

    def conditions(self, node: Node, scope: Literal["input", "run_metrics"], what: str) -> list[Condition]:
        found: list[Condition] = []
        for key, (key_node, value_node) in self.mapping(node, f"{what}: {scope}").items():
            if isinstance(value_node, MappingNode):
                for op_name, (op_key, op_value) in self.mapping(value_node, f"{what}: {scope}.{key}").items():
                    if op_name not in OPERATORS:
                        raise self.unknown_operator(op_key, what, op_name)
                    found.append(self.condition(scope, key, op_name, op_value, what))
                continue
            field_name, operator = self.split(key)
            if operator is None:
                self.check_typo(key_node, what, key)
                operator = "equals"
            if scope == "run_metrics" and not RunMetrics.is_known(field_name):
                raise self.unknown_metric(key_node, what, key)
            found.append(self.condition(scope, field_name, operator, value_node, what))
        return found

    @staticmethod
    def split(key: str) -> tuple[str, str | None]:
        for suffix in _SUFFIXES:
            if key.endswith("_" + suffix) and len(key) > len(suffix) + 1:
                return key[: -len(suffix) - 1], suffix
        return key, None

    def check_typo(self, node: Node, what: str, key: str) -> None:
        """A key with no operator is an equality test, unless its tail looks like a misspelt operator."""
        parts = key.split("_")
        for size in (3, 2, 1):
            if len(parts) > size:
                tail = "_".join(parts[-size:])
                if difflib.get_close_matches(tail, OPERATORS, n=1, cutoff=0.8):
                    raise self.unknown_operator(node, what, tail)

    def unknown_operator(self, node: Node, what: str, operator: str) -> PolicyError:
        hint = difflib.get_close_matches(operator, OPERATORS, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return self.fail(node, f"{what}: unknown operator {operator!r}{suggestion}; operators: {', '.join(OPERATORS)}")

    def unknown_metric(self, node: Node, what: str, key: str) -> PolicyError:
        return self.fail(
            node,
            f"{what}: unknown run metric in {key!r}; metrics: {', '.join(RunMetrics.NAMES)}, calls_<tool> "
            f"(written <metric>_<operator>, e.g. tickets_created_gt)",
        )

    def condition(
        self, scope: Literal["input", "run_metrics"], field_name: str, operator: str, node: Node, what: str
    ) -> Condition:
        if scope == "run_metrics" and not RunMetrics.is_known(field_name):
            raise self.unknown_metric(node, what, field_name)
        value = self.data(node)
        where = f"{what}: {scope}.{field_name} {operator}"
        if operator == "matches_regex":
            if not isinstance(value, str):
                raise self.fail(node, f"{where}: the pattern must be text, got {value!r}")
            try:
                value = re.compile(value)
            except re.error as exc:
                raise self.fail(node, f"{where}: bad regular expression {value!r}: {exc}") from None
        elif operator in ("in", "not_in", "domain_in", "domain_not_in"):
            if not isinstance(value, list) or not value:
                raise self.fail(node, f"{where}: expects a non-empty list, got {value!r}")
            if operator.startswith("domain_"):
                domains = [str(item).strip().lower().lstrip("@").rstrip(".") for item in value]
                if not all(_domain(d) for d in domains):
                    raise self.fail(node, f"{where}: {value!r} is not a list of domains (like example.com)")
                value = domains
        elif operator in _NUMERIC_OPERATORS and not _numeric(value):
            raise self.fail(node, f"{where}: expects a number, got {value!r}")
        elif scope == "run_metrics" and not _numeric(value):
            raise self.fail(node, f"{where}: a run metric is compared with a number, got {value!r}")
        return Condition(scope, field_name, operator, value)


def seed_policy_path() -> Path:
    """Seed 001's policy file, shipped verbatim as package data."""
    return Path(__file__).with_name("policies") / "seed001.yaml"
