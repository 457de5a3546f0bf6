"""The policy guard: seed 001's file verbatim, each of its rules, the general form, and refused files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentjournal.agents.policy import OPERATORS, Decision, Policy, PolicyError, RunMetrics, seed_policy_path
from agentjournal.journal import Journal, NewEvent

# Seed 001's policy, exactly as the article prints it.
SEED_001 = """version: 1
rules:
  - name: deny_external_email_without_approval
    when:
      tool: send_email
      input:
        recipient_domain_not_in: ["yourcompany.com"]
    action: require_human_approval
  - name: deny_destructive_sql
    when:
      tool: query_sql
      input:
        sql_matches_regex: "(?i)\\\\b(delete|drop|truncate|alter)\\\\b"
    action: deny
  - name: cap_ticket_creation_rate
    when:
      tool: create_ticket
      run_metrics:
        tickets_created_gt: 3
    action: deny
"""


@pytest.fixture(scope="module")
def seed() -> Policy:
    return Policy.load(seed_policy_path())


def test_the_packaged_policy_is_the_seed_verbatim(seed: Policy) -> None:
    text = seed_policy_path().read_text()
    assert text == SEED_001
    assert seed.version == hashlib.sha256(text.encode()).hexdigest()
    assert [rule.name for rule in seed.rules] == [
        "deny_external_email_without_approval",
        "deny_destructive_sql",
        "cap_ticket_creation_rate",
    ]
    assert seed.default_action == "allow"
    assert Policy.from_yaml(SEED_001).version == seed.version


# ----- deny_destructive_sql ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE customers",
        "delete from orders where id = 1",
        "TRUNCATE audit_log",
        "alter table users add column x int",
        "select 1; Drop table t",
    ],
)
def test_destructive_sql_is_denied(seed: Policy, sql: str) -> None:
    decision = seed.evaluate("query_sql", {"sql": sql}, RunMetrics())
    assert (decision.action, decision.rule) == ("deny", "deny_destructive_sql")
    assert "sql" in decision.reason


@pytest.mark.parametrize(
    "sql",
    ["select * from deleted_orders", "select dropdown_label from ui", "select count(*) from alterations", "select 1"],
)
def test_sql_that_only_contains_the_words_inside_names_is_allowed(seed: Policy, sql: str) -> None:
    assert seed.evaluate("query_sql", {"sql": sql}, RunMetrics()) == Decision(
        "allow", None, "no rule matched query_sql; the default action is allow"
    )


def test_the_sql_rule_only_judges_query_sql(seed: Policy) -> None:
    assert seed.evaluate("search_docs", {"sql": "drop table x"}, RunMetrics()).action == "allow"


# ----- deny_external_email_without_approval -----------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"to": "customer@gmail.com"},
        {"recipient": "partner@othercorp.com"},
        {"to": ["alice@yourcompany.com", "leak@evil.io"]},
        {"to": "alice@yourcompany.com, leak@evil.io"},
        {"to": "alice@yourcompany.com", "cc": "leak@evil.io"},
        {"to": "alice@yourcompany.com", "bcc": ["leak@evil.io"]},
        {"to": "spoof@yourcompany.com.evil.io"},
        {"to": "lookalike@notyourcompany.com"},
        {"to": "no-domain-at-all"},
        {"to": "Eve <eve@evil.io>"},
    ],
)
def test_email_outside_the_company_needs_approval(seed: Policy, arguments: dict[str, Any]) -> None:
    decision = seed.evaluate("send_email", {"subject": "hi", **arguments}, RunMetrics())
    assert (decision.action, decision.rule) == ("require_human_approval", "deny_external_email_without_approval")


@pytest.mark.parametrize(
    "arguments",
    [
        {"to": "alice@yourcompany.com"},
        {"to": "Alice@YourCompany.COM"},
        {"to": ["alice@yourcompany.com", "bob@eu.yourcompany.com"]},
        {"recipient": "Alice <alice@yourcompany.com>"},
        {"subject": "no recipient at all"},
    ],
)
def test_email_inside_the_company_is_allowed(seed: Policy, arguments: dict[str, Any]) -> None:
    assert seed.evaluate("send_email", arguments, RunMetrics()).action == "allow"


# ----- cap_ticket_creation_rate -----------------------------------------------------------------


def run_with_tickets(journal: Journal, run: str, count: int) -> RunMetrics:
    events = [NewEvent("RunStarted", {"agent": "support"})]
    for index in range(count):
        events.append(NewEvent("ToolProposed", {"tool": "create_ticket", "arguments": {"title": f"t{index}"}}))
        events.append(NewEvent("PolicyEvaluated", {"tool": "create_ticket", "rule": None, "action": "allow"}))
        events.append(NewEvent("ToolExecuted", {"tool": "create_ticket", "output": {"id": index}}))
    journal.append(run, events)
    return RunMetrics.from_events(journal.read_stream(run))


def test_ticket_creation_is_capped_by_the_runs_own_events(seed: Policy, sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        for created, expected in [(0, "allow"), (3, "allow"), (4, "deny"), (7, "deny")]:
            metrics = run_with_tickets(journal, f"run-{created}", created)
            assert metrics.tickets_created == created
            decision = seed.evaluate("create_ticket", {"title": "another"}, metrics)
            assert decision.action == expected, (created, decision)
        assert (
            seed.evaluate("create_ticket", {}, run_with_tickets(journal, "run-x", 4)).rule == "cap_ticket_creation_rate"
        )


def test_run_metrics_fold_every_counted_event() -> None:
    metrics = RunMetrics()
    for event_type, data in [
        ("ToolExecuted", {"tool": "search_docs", "cost_usd": 0.01}),
        ("ToolExecuted", {"tool": "search_docs"}),
        ("ToolFailed", {"tool": "query_sql", "error_type": "timeout"}),
        ("PolicyEvaluated", {"action": "deny"}),
        ("PolicyEvaluated", {"action": "require_human_approval"}),
        ("ToolApproved", {"approval_id": "a"}),
        ("ModelCalled", {"cost_usd": 0.25, "input_tokens": 100, "output_tokens": 20}),
        ("ResponseDrafted", {"text": "ignored"}),
    ]:
        metrics.apply(event_type, data)
    assert metrics.get("tool_calls") == 2 and metrics.get("calls_search_docs") == 2 and metrics.get("calls_x") == 0
    assert metrics.get("tool_failures") == 1 and metrics.get("denials") == 1
    assert metrics.get("approvals_required") == 1 and metrics.get("approvals") == 1
    assert metrics.get("cost_usd") == pytest.approx(0.26) and metrics.get("tokens") == 120
    with pytest.raises(KeyError, match="unknown run metric 'karma'"):
        metrics.get("karma")


# ----- the general form ------------------------------------------------------------------------


def one_rule(when: str, action: str = "deny", extra: str = "") -> Policy:
    return Policy.from_yaml(f"version: 1\n{extra}rules:\n  - name: r\n    when:\n{when}\n    action: {action}\n")


@pytest.mark.parametrize(
    ("condition", "arguments", "matches"),
    [
        ("mode_equals: fast", {"mode": "fast"}, True),
        ("mode: fast", {"mode": "slow"}, False),
        ("mode_not_equals: fast", {"mode": "slow"}, True),
        ("region_in: [eu, us]", {"region": "eu"}, True),
        ("region_in: [eu, us]", {"region": "apac"}, False),
        ("region_not_in: [eu, us]", {"region": "apac"}, True),
        ("path_matches_regex: '^/etc/'", {"path": "/etc/passwd"}, True),
        ("path_matches_regex: '^/etc/'", {"path": "/home/etc/x"}, False),
        ("url_domain_in: [example.com]", {"url": "api.example.com"}, True),
        ("url_domain_not_in: [example.com]", {"url": "example.org"}, True),
        ("amount_gt: 100", {"amount": 100}, False),
        ("amount_gte: 100", {"amount": 100}, True),
        ("amount_lt: 100", {"amount": 99.5}, True),
        ("amount_lte: 100", {"amount": 101}, False),
        ("amount_gt: 100", {"amount": "1000"}, False),  # text is not a number
        ("amount_gt: 100", {"other": 1000}, False),  # a missing field never matches
        ("amount: {gt: 10, lte: 20}", {"amount": 15}, True),
        ("amount: {gt: 10, lte: 20}", {"amount": 25}, False),
        ("sql: {matches_regex: '(?i)drop'}", {"sql": "DROP x"}, True),
        ("customer.tier_in: [gold]", {"customer": {"tier": "gold"}}, True),
        ("customer.tier_in: [gold]", {"customer": {"name": "x"}}, False),
        ("customer.tier_in: [gold]", {"customer": "gold"}, False),
    ],
)
def test_input_operators(condition: str, arguments: dict[str, Any], matches: bool) -> None:
    policy = one_rule(f"      input:\n        {condition}")
    assert policy.evaluate("any_tool", arguments, RunMetrics()).action == ("deny" if matches else "allow")


def test_every_operator_is_covered_by_the_table() -> None:
    source = Path(__file__).read_text()
    assert all(re.search(rf"_{name}: |{{{name}: ", source) for name in OPERATORS), "an operator has no test row"


def test_a_rule_matches_a_list_of_tools_and_every_condition_must_hold() -> None:
    when = "      tool: [refund, charge]\n      input:\n        amount_gt: 500\n"
    policy = one_rule(when + "      run_metrics:\n        calls_refund_gte: 1")
    busy = RunMetrics(calls_by_tool={"refund": 1})
    assert policy.evaluate("refund", {"amount": 600}, busy).action == "deny"
    assert policy.evaluate("charge", {"amount": 600}, busy).action == "deny"
    assert policy.evaluate("refund", {"amount": 600}, RunMetrics()).action == "allow"
    assert policy.evaluate("refund", {"amount": 10}, busy).action == "allow"
    assert policy.evaluate("lookup", {"amount": 600}, busy).action == "allow"


def test_deny_beats_approval_beats_allow_whatever_the_order() -> None:
    rules = {
        "allow": "  - name: ok\n    action: allow\n",
        "require_human_approval": "  - name: ask\n    action: require_human_approval\n",
        "deny": "  - name: refuse\n    when:\n      tool: wipe\n    action: deny\n",
    }
    for order in (["allow", "require_human_approval", "deny"], ["deny", "require_human_approval", "allow"]):
        policy = Policy.from_yaml("version: 1\nrules:\n" + "".join(rules[name] for name in order))
        decision = policy.evaluate("wipe", {}, RunMetrics())
        assert (decision.action, decision.rule) == ("deny", "refuse")
        assert set(decision.matched_rules) == {"ok", "ask", "refuse"}
        assert policy.evaluate("read", {}, RunMetrics()).action == "require_human_approval"


def test_the_default_action_is_configurable() -> None:
    policy = one_rule("      tool: search_docs", action="allow", extra="default_action: deny\n")
    assert policy.default_action == "deny"
    assert policy.evaluate("search_docs", {}, RunMetrics()).action == "allow"
    decision = policy.evaluate("send_email", {}, RunMetrics())
    assert (decision.action, decision.rule) == ("deny", None)
    assert "default action is deny" in decision.reason


def test_a_rule_reason_is_shown_with_the_decision() -> None:
    policy = Policy.from_yaml(
        "version: 1\nrules:\n  - name: r\n    action: deny\n    reason: Nothing runs on Fridays\n"
    )
    assert policy.evaluate("x", {}).reason == "x denied by rule r: Nothing runs on Fridays"


# ----- malformed files are refused with file, line and problem ----------------------------------

HEAD = "version: 1\nrules:\n  - name: a\n"
INPUT = HEAD + "    when:\n      input:\n"
METRICS = HEAD + "    when:\n      run_metrics:\n"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("version: 1\nrules:\n  - name: a\n    action: deny\n   bad: [\n", 5, "not valid YAML"),
        (
            INPUT + "        x: {matches_regexp: a}\n    action: deny\n",
            6,
            "unknown operator 'matches_regexp' (did you mean 'matches_regex'?)",
        ),
        (
            INPUT + "        sql_matches_regexp: a\n    action: deny\n",
            6,
            "unknown operator",
        ),
        (
            METRICS + "        tickets_created_gtt: 3\n    action: deny\n",
            6,
            "unknown operator",
        ),
        (
            INPUT + "        sql_matches_regex: '(unclosed'\n    action: deny\n",
            6,
            "bad regular expression '(unclosed'",
        ),
        ("version: 1\nrules:\n  - name: a\n    action: block\n", 4, "unknown action 'block'"),
        ("version: 1\nrules:\n  - name: a\n    action: deny\n  - action: deny\n", 5, "rule 2 has no `name:`"),
        ("version: 1\nrules:\n  - name: a\n    action: deny\n  - name: a\n    action: allow\n", 5, "used twice"),
        ("version: 1\nrules:\n  - name: a\n", 3, "has no `action:`"),
        (
            "version: 1\nrules:\n  - name: a\n    whenn: {}\n    action: deny\n",
            4,
            "unknown key 'whenn' (did you mean 'when'?)",
        ),
        (
            METRICS + "        karma_gt: 3\n    action: deny\n",
            6,
            "unknown run metric",
        ),
        (
            INPUT + "        to_domain_in: [not a domain]\n    action: deny\n",
            6,
            "not a list of domains",
        ),
        (
            INPUT + "        n_gt: many\n    action: deny\n",
            6,
            "expects a number",
        ),
        (
            INPUT + "        n_in: 3\n    action: deny\n",
            6,
            "non-empty list",
        ),
        ("version: 2\nrules: []\n", 1, "unsupported policy version 2"),
        ("rules: []\n", 1, "missing `version:`"),
        ("version: 1\n", 1, "missing `rules:`"),
        ("version: 1\nrules: {a: 1}\n", 2, "must be a list"),
        ("version: 1\ndefault_action: maybe\nrules: []\n", 2, "unknown action 'maybe'"),
        ("version: 1\nrules:\n  - name: a\n    when:\n      tool: []\n    action: deny\n", 5, "empty list"),
        ("version: 1\nrules:\n  - name: a\n    action: deny\n    action: allow\n", 5, "appears twice"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)
def test_a_malformed_policy_is_refused_with_its_line(text: str, line: int, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        Policy.load(path)
    error = caught.value
    assert (error.source, error.line) == (str(path), line), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"{path}, line {line}: ")


def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(PolicyError, match="empty"):
        Policy.load(tmp_path / "empty.yaml")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.load(tmp_path / "absent.yaml")


def test_an_empty_rule_list_allows_everything() -> None:
    policy = Policy.from_yaml("version: 1\nrules: []\n")
    assert policy.evaluate("anything", {}, RunMetrics()).action == "allow"
    assert Policy.allow_all().evaluate("anything", {}).action == "allow"


# ----- reasons, checks against the agent's tools, and past runs judged again ---------------------


def test_decisions_explain_themselves_in_words(seed: Policy) -> None:
    assert seed.evaluate("query_sql", {"sql": "DROP TABLE t"}).reason == (
        r"query_sql denied by rule deny_destructive_sql: sql matches /(?i)\b(delete|drop|truncate|alter)\b/"
    )
    assert seed.evaluate("send_email", {"to": "x@gmail.com"}).reason == (
        "send_email held for human approval by rule deny_external_email_without_approval: "
        "recipient is outside yourcompany.com"
    )
    assert seed.evaluate("create_ticket", {}, RunMetrics(tickets_created=4)).reason == (
        "create_ticket denied by rule cap_ticket_creation_rate: run metric tickets_created (4) > 3"
    )


SEED_TOOLS = {
    "search_docs": ["query"],
    "query_sql": ["sql"],
    "create_ticket": ["title", "priority"],
    "send_email": ["to", "subject", "body"],
}


def test_the_seed_policy_fits_the_seed_tools(seed: Policy) -> None:
    seed.check_tools(SEED_TOOLS)


@pytest.mark.parametrize(
    ("tools", "line", "problem"),
    [
        ({**SEED_TOOLS, "send_email": ["subject"]}, 3, "tests input field 'recipient', which send_email does not have"),
        ({name: args for name, args in SEED_TOOLS.items() if name != "query_sql"}, 9, "names tool 'query_sql'"),
        ({**SEED_TOOLS, "query_sql": ["statement"]}, 9, "tests input field 'sql'"),
    ],
)
def test_a_rule_that_can_never_match_the_agents_tools_is_refused(
    seed: Policy, tools: dict[str, list[str]], line: int, problem: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        seed.check_tools(tools)
    assert caught.value.line == line and problem in caught.value.problem


def record_run(journal: Journal, run: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    """A run journaled under a permissive policy: every call was allowed and executed."""
    events = [NewEvent("RunStarted", {"agent": "ops"})]
    for index, (tool, arguments) in enumerate(calls):
        call = f"c{index}"
        events += [
            NewEvent("ToolProposed", {"tool": tool, "arguments": arguments, "call_id": call}),
            NewEvent("PolicyEvaluated", {"tool": tool, "rule": None, "action": "allow", "reason": "", "call_id": call}),
            NewEvent("ToolExecuted", {"tool": tool, "output": None, "call_id": call}),
        ]
    journal.append(run, events)


def test_past_runs_are_judged_again_under_a_new_policy(seed: Policy, sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        record_run(journal, "run-a", [("query_sql", {"sql": "select 1"}), ("query_sql", {"sql": "drop table users"})])
        record_run(journal, "run-b", [("create_ticket", {"title": f"t{n}"}) for n in range(5)])
        record_run(journal, "run-c", [("send_email", {"to": "ops@yourcompany.com"})])
        past = seed.reevaluate(journal.iter_all())
        assert len(past) == 8
        changed = [(p.stream_id, p.version, p.tool, p.now.action, p.now.rule) for p in past if p.changed]
        assert changed == [
            ("run-a", 5, "query_sql", "deny", "deny_destructive_sql"),
            ("run-b", 14, "create_ticket", "deny", "cap_ticket_creation_rate"),  # the fifth ticket: 4 created before
        ]
        assert all(p.recorded is not None and p.recorded.action == "allow" for p in past)


# ----- the `agentjournal policy` commands --------------------------------------------------------


@pytest.fixture
def cli() -> Any:
    from typer.testing import CliRunner

    from agentjournal.cli import main  # noqa: F401  (registers every command module)
    from agentjournal.cli.app import app, close_journal, console, errors

    runner = CliRunner()

    def invoke(*args: str) -> Any:
        old = console.width, errors.width
        console.width = errors.width = 200
        try:
            return runner.invoke(app, list(args))
        finally:
            console.width, errors.width = old
            close_journal()

    return invoke


def test_policy_check_lists_the_rules(cli: Any) -> None:
    result = cli("policy", "check", str(seed_policy_path()))
    assert result.exit_code == 0, result.output
    assert "3 rule(s), default allow" in result.output
    assert "deny_destructive_sql" in result.output and "recipient is outside yourcompany.com" in result.output


def test_policy_check_refuses_a_malformed_file_with_its_line(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nrules:\n  - name: a\n    action: block\n")
    result = cli("policy", "check", str(path))
    assert result.exit_code == 1
    assert f"{path}, line 4: rule 'a': unknown action 'block'" in result.output
    assert "Traceback" not in result.output


def test_policy_check_against_the_agents_tools(cli: Any) -> None:
    ok = cli("policy", "check", str(seed_policy_path()), "--agents", f"{__name__}:seed_agents")
    assert ok.exit_code == 0, ok.output
    bad = cli("policy", "check", str(seed_policy_path()), "--agents", f"{__name__}:agents_without_sql")
    assert bad.exit_code == 1 and "names tool 'query_sql', which the agent does not have" in bad.output


def seed_agents() -> list[Any]:
    return [_agent(["search_docs", "query_sql", "create_ticket", "send_email"])]


def agents_without_sql() -> list[Any]:
    return [_agent(["search_docs", "create_ticket", "send_email"])]


def _agent(names: list[str]) -> Any:
    from agentjournal.agents.agent import Agent
    from agentjournal.agents.models.scripted import ScriptedModel
    from agentjournal.agents.tools import tool

    def make(name: str) -> Any:
        def sql(sql: str) -> str:
            return sql

        def email(to: str, subject: str) -> str:
            return to

        def other(query: str = "", title: str = "") -> str:
            return query

        return tool(name=name)({"query_sql": sql, "send_email": email}.get(name, other))

    return Agent(name="ops", instructions="x", model=ScriptedModel([]), tools=[make(name) for name in names])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["query_sql", '{"sql": "drop table users"}'], "deny  query_sql denied by rule deny_destructive_sql"),
        (["send_email", '{"to": "x@gmail.com"}'], "require_human_approval  send_email held for human approval"),
        (["create_ticket", "{}", "--metric", "tickets_created=4"], "run metric tickets_created (4) > 3"),
        (["create_ticket", "{}", "--metric", "tickets_created=3"], "allow  no rule matched create_ticket"),
    ],
)
def test_policy_eval_decides_one_call(cli: Any, args: list[str], expected: str) -> None:
    result = cli("policy", "eval", str(seed_policy_path()), *args)
    assert result.exit_code == 0, result.output
    assert expected in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query_sql", "{not json"], "arguments are not JSON"),
        (["query_sql", "[1]"], "must be a JSON object"),
        (["query_sql", "{}", "--metric", "karma=3"], "unknown run metric"),
        (["query_sql", "{}", "--metric", "tickets_created=many"], "expected name=number"),
    ],
)
def test_policy_eval_refuses_bad_input(cli: Any, args: list[str], message: str) -> None:
    result = cli("policy", "eval", str(seed_policy_path()), *args)
    assert result.exit_code == 2 and message in result.output  # a usage error, named by Typer


def test_policy_replay_lists_past_calls_a_new_policy_would_change(
    cli: Any, seed: Policy, sqlite_or_postgres_url: str
) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        record_run(journal, "run-a", [("query_sql", {"sql": "select 1"}), ("query_sql", {"sql": "drop table users"})])
        record_run(journal, "run-b", [("search_docs", {"query": "refunds"})])
        record_run(journal, "test-c", [("query_sql", {"sql": "truncate t"})])  # not a run stream
    result = cli("--db", sqlite_or_postgres_url, "policy", "replay", str(seed_policy_path()))
    assert result.exit_code == 0, result.output
    assert "3 past call(s) judged; 1 would be decided differently, in 1 run(s)" in result.output
    assert "run-a" in result.output and "deny_destructive_sql" in result.output and "test-c" not in result.output
    failing = cli("--db", sqlite_or_postgres_url, "policy", "replay", str(seed_policy_path()), "--fail-on-change")
    assert failing.exit_code == 1
    everything = cli("--db", sqlite_or_postgres_url, "policy", "replay", str(seed_policy_path()), "--all")
    assert everything.output.count("run-") >= 3


def test_calls_made_with_no_policy_were_allowed_so_allowing_them_now_is_no_change(
    cli: Any, sqlite_or_postgres_url: str
) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        journal.append(
            "run-old",
            [
                NewEvent("RunStarted", {"agent": "ops"}),
                NewEvent("ToolProposed", {"tool": "search_docs", "arguments": {"query": "x"}, "call_id": "c0"}),
                NewEvent("ToolExecuted", {"tool": "search_docs", "output": None, "call_id": "c0"}),
                NewEvent("ToolProposed", {"tool": "query_sql", "arguments": {"sql": "drop table t"}, "call_id": "c1"}),
                NewEvent("ToolExecuted", {"tool": "query_sql", "output": None, "call_id": "c1"}),
            ],
        )
    args = ("--db", sqlite_or_postgres_url, "policy", "replay", str(seed_policy_path()), "--fail-on-change")
    result = cli(*args, "--json")
    assert result.exit_code == 1
    rows = [orjson.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(row["tool"], row["then"], row["then_under_a_policy"], row["now"]) for row in rows] == [
        ("query_sql", "allow", False, "deny")
    ]
    table = cli(*args)
    assert "2 past call(s) judged; 1 would be decided differently" in table.output
    assert "allow (no policy) → deny" in table.output
    assert "(1 stricter, 0 looser)" in table.output
    looser_only = cli(*args[:-1], "--fail-on", "looser")
    assert looser_only.exit_code == 0, looser_only.output  # the change is stricter, not looser
    stricter = cli(*args[:-1], "--fail-on", "stricter")
    assert stricter.exit_code == 1 and "1 past call(s) in 1 run(s) would be decided stricter" in stricter.output
    assert rows[0]["direction"] == "stricter"
    wrong = cli(*args[:-1], "--fail-on", "worse")
    assert wrong.exit_code == 2 and "is not one of: stricter, looser," in wrong.output
