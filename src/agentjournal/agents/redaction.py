"""PII and secret redaction, for memory items and (optionally) every journal payload.

Each kind is a pattern plus, where the format has one, a checksum: a card number must pass the
Luhn check, an IBAN the mod-97 check, an IP address must parse, a phone number must have a
plausible digit count. A near miss (16 digits failing Luhn) is left alone. A redaction leaves
`[REDACTED:<kind>]` in place and records the kind and a count, never the value.

Kinds: bearer_token, api_key, secret (a URL's password, `password=…` in text, or the value of a
key named like password/api_key/token in a JSON object), email, iban, card, national_id (US SSN
written 123-45-6789, Canadian SIN and India's Aadhaar with their checksums, UK National Insurance
number), ip (v4, v6), phone (international +…, North American with separators, national 0… with
separators).

    journal = Journal.open(url, create=True, redact=Redactor())   # no payload is stored with an e-mail in it
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Finding", "Redactor", "iban_valid", "luhn_valid", "verhoeff_valid"]


@dataclass(frozen=True)
class Finding:
    """`count` values of one `kind` were removed (the values themselves are not kept)."""

    kind: str
    count: int


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 must be 1."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(digits: str) -> bool:
    """The Verhoeff checksum of India's Aadhaar numbers (it catches every single-digit error and swap)."""
    if not digits.isdigit():
        return False
    check = 0
    for index, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][int(char)]]
    return check == 0


def _luhn_digits(match: re.Match[str]) -> bool:
    return luhn_valid(re.sub(r"\D", "", match.group(0)))


def _verhoeff_digits(match: re.Match[str]) -> bool:
    return verhoeff_valid(re.sub(r"\D", "", match.group(0)))


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"[ -]", "", match.group(0))
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _iban(match: re.Match[str]) -> bool:
    return iban_valid(match.group(0))


def _ip(match: re.Match[str]) -> bool:
    text = match.group(0)
    if ":" in text and sum(char in "0123456789abcdefABCDEF" for char in text) < 3:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    if match.group(0).startswith("+"):
        return 8 <= len(digits) <= 15
    if match.group(0).startswith(("0", "(0")):
        return 9 <= len(digits) <= 12
    return len(digits) == 10


@dataclass(frozen=True)
class _Probe:
    """Cheap facts about a string, computed once, that let most detectors skip it without a regex scan."""

    text: str
    lower: str
    digits: int


_NOT_DIGITS = str.maketrans("", "", "0123456789")


def _probe(text: str) -> _Probe:
    return _Probe(text, text.lower(), len(text) - len(text.translate(_NOT_DIGITS)))


def _always(probe: _Probe) -> bool:
    return True


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[re.Match[str]], bool] | None = None
    gate: Callable[[_Probe], bool] = _always
    """False when the string cannot hold this kind (e.g. too few digits for a card)."""


_KEY_PREFIXES = re.compile(r"sk-|[srp]k_|akia|asia|gh|glpat-|xox|aiza")
_SECRET_WORDS = re.compile(r"pass|pwd|secret|key|token")

# Order matters: tokens and keys first (they contain digit runs), then structured numbers, then phones.
_DETECTORS: list[_Detector] = [
    _Detector(
        "bearer_token",
        re.compile(r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9._~+/-]{8,}=*)"),
        gate=lambda p: "bearer" in p.lower,
    ),
    _Detector(  # a URL's password
        "secret",
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\[REDACTED:)(?P<value>[^/\s@]+)@"),
        gate=lambda p: "://" in p.text,
    ),
    _Detector(
        "secret",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|client[_-]?secret)"
            r"(?P<sep>\s*[:=]\s*)(?!\[REDACTED:)(?P<value>\"[^\"\s]+\"|'[^'\s]+'|[^\s,;\"']+)"
        ),
        gate=lambda p: _SECRET_WORDS.search(p.lower) is not None,
    ),
    _Detector(  # a JWT
        "bearer_token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
        gate=lambda p: "eyJ" in p.text,
    ),
    _Detector(
        "api_key",
        re.compile(
            r"\b(?:"
            r"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"  # GitHub
            r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
            r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
            r"|AIza[0-9A-Za-z_-]{35}"  # Google
            r")"
        ),
        gate=lambda p: _KEY_PREFIXES.search(p.lower) is not None,
    ),
    _Detector(
        "email",
        re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        gate=lambda p: "@" in p.text,
    ),
    _Detector(
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        _iban,
        gate=lambda p: p.digits >= 4,
    ),
    _Detector("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card, gate=lambda p: p.digits >= 13),
    _Detector(  # US SSN
        "national_id",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}(?![\d-])"),
        gate=lambda p: p.digits >= 9,
    ),
    _Detector(  # Canadian Social Insurance Number, 046 454 286 (Luhn-checked)
        "national_id",
        re.compile(r"(?<![\d-])\d{3}[- ]\d{3}[- ]\d{3}(?![\d-])"),
        _luhn_digits,
        gate=lambda p: p.digits >= 9,
    ),
    _Detector(  # India's Aadhaar, 2345 6789 0124 (Verhoeff-checked)
        "national_id",
        re.compile(r"(?<![\d-])[2-9]\d{3}[ -]\d{4}[ -]\d{4}(?![\d-])"),
        _verhoeff_digits,
        gate=lambda p: p.digits >= 12,
    ),
    _Detector(  # UK National Insurance number
        "national_id",
        re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        gate=lambda p: p.digits >= 6,
    ),
    _Detector(
        "ip",
        re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)"),
        _ip,
        gate=lambda p: p.digits >= 4 and p.text.count(".") >= 3,
    ),
    _Detector(
        "ip",
        re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"),
        _ip,
        gate=lambda p: p.text.count(":") >= 2,
    ),
    _Detector(
        "phone",
        re.compile(
            r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?!\w)"  # +44 20 7946 0958, +1-202-555-0143
            r"|(?<![\w(])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?!\w)"  # (202) 555-0143, 202.555.0143
            r"|(?<![\w(])(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[ .-])\d{2,8}(?:[ .-]\d{2,8}){0,3}(?![\w-])"  # 030 1234567
        ),
        _phone,
        gate=lambda p: p.digits >= 8,
    ),
]

KINDS: tuple[str, ...] = tuple(dict.fromkeys(detector.kind for detector in _DETECTORS))

SECRET_KEYS = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|passphrase|secret|api[_-]?key|access[_-]?token|refresh[_-]?token"
    r"|auth[_-]?token|client[_-]?secret|private[_-]?key|authorization|cookie)$"
)


MIN_LENGTH = 6
"""Shorter strings cannot hold any kind (the shortest, an e-mail address, is a@b.co)."""


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


class Redactor:
    """Removes PII and secrets from text and JSON values. Callable on a dict, for `Journal.open(redact=...)`."""

    def __init__(self, kinds: Iterable[str] | None = None, *, extra: dict[str, str | re.Pattern[str]] | None = None):
        chosen = set(KINDS if kinds is None else kinds)
        unknown = chosen - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.kinds = frozenset(chosen)
        self._detectors = [detector for detector in _DETECTORS if detector.kind in chosen]
        for kind, pattern in (extra or {}).items():
            self._detectors.append(_Detector(kind, re.compile(pattern) if isinstance(pattern, str) else pattern))
        self._min_length = 1 if extra else MIN_LENGTH
        self._secret_values = "secret" in self.kinds

    def redact_text(self, text: str) -> tuple[str, list[Finding]]:
        counts: Counter[str] = Counter()
        text = self._scrub(text, counts)
        return text, _findings(counts)

    def redact(self, value: Any) -> tuple[Any, list[Finding]]:
        """Walk a JSON value (dicts, lists, strings, numbers); keys are scrubbed too."""
        counts: Counter[str] = Counter()
        return self._walk(value, counts, None), _findings(counts)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        redacted, _ = self.redact(data)
        return redacted  # type: ignore[no-any-return]

    def _scrub(self, text: str, counts: Counter[str]) -> str:
        if len(text) < self._min_length:
            return text
        probe = _probe(text)
        for detector in self._detectors:
            if not detector.gate(probe):
                continue

            def replace(match: re.Match[str], detector: _Detector = detector) -> str:
                if detector.valid is not None and not detector.valid(match):
                    return match.group(0)
                counts[detector.kind] += 1
                if "value" not in match.re.groupindex:
                    return marker(detector.kind)
                # Only the value goes; the words that announced it ("Bearer", "password=") stay.
                start, end = match.span("value")
                whole = match.group(0)
                return whole[: start - match.start()] + marker(detector.kind) + whole[end - match.start() :]

            text = detector.pattern.sub(replace, text)
        return text

    def _walk(self, value: Any, counts: Counter[str], key: str | None) -> Any:
        kind = type(value)
        if kind is str or isinstance(value, str):
            if key is not None and value and self._secret_values and _secret_key(key):
                counts["secret"] += 1
                return marker("secret")
            return self._scrub(value, counts)
        if kind is dict or isinstance(value, dict):
            result: dict[Any, Any] = {}
            for item_key, item in value.items():
                text_key = item_key if isinstance(item_key, str) else None
                new_key = self._scrub(item_key, counts) if text_key is not None else item_key
                while new_key in result:  # two keys redacted to the same marker: keep both values
                    new_key = f"{new_key}#"
                result[new_key] = self._walk(item, counts, text_key)
            return result
        if kind is list or kind is tuple:
            return [self._walk(item, counts, None) for item in value]
        if kind is int and abs(value) >= 10**12:
            text = self._scrub(str(value), counts)  # a card number stored as a JSON number
            return value if text == str(value) else text
        return value


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return SECRET_KEYS.match(key) is not None


def _findings(counts: Counter[str]) -> list[Finding]:
    return [Finding(kind, counts[kind]) for kind in sorted(counts)]
