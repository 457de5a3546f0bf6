"""The redactor: every kind found (positives), near misses left alone (negatives), values never kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentjournal.agents.redaction import KINDS, Finding, Redactor, iban_valid, luhn_valid, verhoeff_valid
from agentjournal.journal import Journal, NewEvent

REDACTOR = Redactor()

POSITIVES = [
    ("email", "write to alice.smith+refunds@example.co.uk today"),
    ("email", "CC: Bob_O'Neil@mail.example.org"),
    ("phone", "call +44 20 7946 0958"),
    ("phone", "call +1-202-555-0143 now"),
    ("phone", "call (202) 555-0143"),
    ("phone", "call 202.555.0143"),
    ("phone", "ruf an: 030 1234567"),
    ("phone", "appelle le 06 12 34 56 78"),
    ("card", "visa 4111 1111 1111 1111"),
    ("card", "mastercard 5555-5555-5555-4444"),
    ("card", "amex 378282246310005"),
    ("card", "card=4012888888881881;"),
    ("iban", "pay to GB82 WEST 1234 5698 7654 32"),
    ("iban", "IBAN DE89370400440532013000"),
    ("iban", "FR1420041010050500013M02606"),
    ("national_id", "SSN 123-45-6789"),
    ("national_id", "NI number AB 12 34 56 C"),
    ("national_id", "SIN 130 692 544"),
    ("national_id", "SIN 046-454-286"),
    ("national_id", "Aadhaar 2345 6789 0124"),
    ("national_id", "NINO JG103759A"),
    ("ip", "from 192.168.1.10"),
    ("ip", "host 8.8.8.8:53"),
    ("ip", "from 2001:db8::1"),
    ("ip", "v6 fe80::1ff:fe23:4567:890a"),
    ("api_key", "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123"),
    ("api_key", "anthropic sk-ant-api03-abcdefghijklmnopqrstuvwx"),
    ("api_key", "aws AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "token ghp_" + "a1B2" * 9),
    ("api_key", "stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("api_key", "slack xoxb-123456789012-abcdefghij"),
    ("api_key", "google AIza" + "SyA1234567890abcdefghijklmnopqrstuv"),
    ("bearer_token", "Authorization: Bearer abc.def-ghi_jkl~123"),
    ("bearer_token", "authorization: bearer 0123456789abcdef"),
    ("secret", "DATABASE_URL=postgresql://app:s3cr3t@db.internal:5432/prod"),
    ("secret", "login with password=hunter2 today"),
    ("secret", 'config api_key: "abc123"'),
    ("bearer_token", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmU"),
]

NEGATIVES = [
    "the order total was 1,234.56 EUR",
    "order 12345678 shipped",
    "invoice 2026-01-15 due 2026-02-15",
    "at 2026-11-22T10:00:00Z",
    "meeting at 12:30:45",
    "visa 4111 1111 1111 1112",  # 16 digits failing Luhn
    "tracking 1234567812345678",  # 16 digits failing Luhn
    "pay to GB82 WEST 1234 5698 7654 33",  # IBAN failing mod-97
    "SSN 000-12-3456",  # an SSN never starts with 000
    "SSN 666-12-3456",  # nor 666
    "SIN 130 692 545",  # fails Luhn
    "Aadhaar 2345 6789 0120",  # fails Verhoeff
    "version 1.2.3",
    "address 256.1.1.1",
    "std::vector<int> and a::b",
    "user@localhost has no domain",
    "sk-short",
    "AKIA-not-a-key",
    "the bearer of bad news",
    "call 123-4567",  # too few digits for any phone form
    "zip 90210",
    "sku ABC-123-XYZ",
    "the password is long enough",
    "see https://docs.example.com/path",
]


@pytest.mark.parametrize(("kind", "text"), POSITIVES)
def test_each_kind_is_found(kind: str, text: str) -> None:
    redacted, findings = REDACTOR.redact_text(text)
    assert findings == [Finding(kind, 1)], redacted
    assert f"[REDACTED:{kind}]" in redacted


@pytest.mark.parametrize("text", NEGATIVES)
def test_near_misses_are_left_alone(text: str) -> None:
    assert REDACTOR.redact_text(text) == (text, [])


def test_every_kind_has_a_positive_case() -> None:
    assert {kind for kind, _ in POSITIVES} == set(KINDS)


def test_a_finding_records_the_kind_and_count_never_the_value() -> None:
    text = "mail a@example.com and b@example.com, card 4111111111111111"
    redacted, findings = REDACTOR.redact_text(text)
    assert redacted == "mail [REDACTED:email] and [REDACTED:email], card [REDACTED:card]"
    assert findings == [Finding("card", 1), Finding("email", 2)]
    assert "example" not in repr(findings) and "4111" not in repr(findings)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("12a", False)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82WEST12345698765432", True),
        ("gb82 west 1234 5698 7654 32", True),
        ("GB82WEST12345698765433", False),
        ("GB82", False),
    ],
)
def test_iban_mod_97(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


@pytest.mark.parametrize(("digits", "valid"), [("2363", True), ("2364", False), ("234567890124", True), ("x1", False)])
def test_verhoeff(digits: str, valid: bool) -> None:
    assert verhoeff_valid(digits) is valid


def test_json_values_are_walked_keys_included() -> None:
    value = {
        "user": {"email": "a@example.com", "password": "hunter2", "api_key": "anything-at-all"},
        "contacts": ["+44 20 7946 0958", {"ip": "10.0.0.1"}],
        "bob@example.com": "key holding an address",
        "card_as_number": 4111111111111111,
        "amount": 123456789012345,  # a large number failing Luhn stays a number
        "ok": True,
        "nothing": None,
    }
    redacted, findings = REDACTOR.redact(value)
    assert redacted == {
        "user": {"email": "[REDACTED:email]", "password": "[REDACTED:secret]", "api_key": "[REDACTED:secret]"},
        "contacts": ["[REDACTED:phone]", {"ip": "[REDACTED:ip]"}],
        "[REDACTED:email]": "key holding an address",
        "card_as_number": "[REDACTED:card]",
        "amount": 123456789012345,
        "ok": True,
        "nothing": None,
    }
    assert {finding.kind: finding.count for finding in findings} == {
        "email": 2,
        "secret": 2,
        "phone": 1,
        "ip": 1,
        "card": 1,
    }


def test_keys_that_collide_after_redaction_keep_both_values() -> None:
    redacted, _ = REDACTOR.redact({"a@example.com": 1, "b@example.com": 2})
    assert sorted(redacted.values()) == [1, 2]


def test_only_the_value_after_its_label_is_removed() -> None:
    assert REDACTOR.redact_text("postgresql://app:s3cr3t@db:5432/x and Bearer abcdefgh12345678")[0] == (
        "postgresql://app:[REDACTED:secret]@db:5432/x and Bearer [REDACTED:bearer_token]"
    )


def test_kinds_can_be_chosen_and_extended() -> None:
    only_email = Redactor(["email"], extra={"order_id": r"\bORD-\d{6}\b"})
    text, findings = only_email.redact_text("a@example.com 4111111111111111 ORD-123456")
    assert text == "[REDACTED:email] 4111111111111111 [REDACTED:order_id]"
    assert findings == [Finding("email", 1), Finding("order_id", 1)]
    with pytest.raises(ValueError, match="unknown redaction kind"):
        Redactor(["emails"])


def test_a_journal_opened_with_the_redactor_stores_no_email(sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url, redact=Redactor()) as journal:
        journal.append(
            "run-1",
            [
                NewEvent("RunStarted", {"input": "refund for carol@example.com, card 4111 1111 1111 1111"}),
                NewEvent("ToolProposed", {"tool": "send_email", "arguments": {"to": ["dave@example.com"]}}),
            ],
        )
        events = journal.read_stream("run-1")
        assert events[0].data["input"] == "refund for [REDACTED:email], card [REDACTED:card]"
        assert events[1].data["arguments"]["to"] == ["[REDACTED:email]"]
        assert journal.verify().first_broken is None
    # What is on disk, read back without the redactor, has no address in it either.
    with Journal.open(sqlite_or_postgres_url) as plain:
        stored = "".join(_text(event.data_json) for event in plain.read_stream("run-1"))
        assert "@example.com" not in stored and "4111" not in stored
        assert plain.verify().first_broken is None


def test_a_journal_without_the_redactor_stores_the_payload_as_given(sqlite_url: str) -> None:
    with Journal.open(sqlite_url) as journal:
        journal.append("run-1", NewEvent("RunStarted", {"input": "carol@example.com"}))
        assert journal.read_stream("run-1")[0].data["input"] == "carol@example.com"


def _text(raw: bytes | str | memoryview) -> str:
    return raw if isinstance(raw, str) else bytes(raw).decode()


# ----- properties -------------------------------------------------------------------------------

_WORDS = st.sampled_from(["refund", "order", "the", "card", "number", "is", "call", "me", "on", "please", "ok"])


def _with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable: one check digit always fits")


@settings(max_examples=150, deadline=None)
@given(body=st.from_regex(r"4[0-9]{14}", fullmatch=True), before=_WORDS, after=_WORDS, spaced=st.booleans())
def test_any_luhn_valid_card_is_found(body: str, before: str, after: str, spaced: bool) -> None:
    number = _with_check_digit(body)
    shown = " ".join(number[i : i + 4] for i in range(0, 16, 4)) if spaced else number
    redacted, findings = REDACTOR.redact_text(f"{before} {shown} {after}")
    assert redacted == f"{before} [REDACTED:card] {after}"
    assert findings == [Finding("card", 1)]


@settings(max_examples=150, deadline=None)
@given(body=st.from_regex(r"[1-9][0-9]{14}", fullmatch=True), before=_WORDS)
def test_no_sixteen_digit_number_failing_luhn_is_touched(body: str, before: str) -> None:
    number = next(body + digit for digit in "0123456789" if not luhn_valid(body + digit))
    assert REDACTOR.redact_text(f"{before} {number}") == (f"{before} {number}", [])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.sampled_from([text for _, text in POSITIVES] + NEGATIVES)), max_size=8))
def test_redaction_is_idempotent_and_counts_its_markers(parts: list[str]) -> None:
    text = " ".join(parts)
    once, findings = REDACTOR.redact_text(text)
    assert REDACTOR.redact_text(once) == (once, [])
    assert sum(finding.count for finding in findings) == once.count("[REDACTED:") - text.count("[REDACTED:")


def test_the_async_journal_takes_the_redactor_too(sqlite_url: str) -> None:
    import asyncio

    from agentjournal.journal import AsyncJournal

    async def main() -> str:
        journal = await AsyncJournal.open(sqlite_url, redact=Redactor())
        try:
            await journal.append("run-1", NewEvent("RunStarted", {"input": "mail erin@example.com"}))
            return str((await journal.read_stream("run-1"))[0].data["input"])
        finally:
            await journal.aclose()

    assert asyncio.run(main()) == "mail [REDACTED:email]"
