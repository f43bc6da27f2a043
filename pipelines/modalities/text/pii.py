"""Personal-data masking for ticket texts: e-mail addresses, phone numbers, card numbers.

Regular expressions find candidates; a check on the digits decides (a card number must pass
the Luhn check, a phone number must have a plausible digit count), so order numbers, dates,
amounts and random 16-digit references stay as they are. Kinds run e-mail, card, phone: a
card number would otherwise also look like a long phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
# 13-19 digits (ISO/IEC 7812 card lengths), single spaces or dashes allowed between digits.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
# Digit groups joined by space, dot or dash, optionally after +country code and (area code).
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,8}){1,5}(?![\w])"
)
# E.164 allows at most 15 digits; national numbers without a country code have 10-11.
_INTERNATIONAL_DIGITS = range(8, 16)
_NATIONAL_DIGITS = range(10, 12)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def is_card(candidate: str) -> bool:
    return luhn_valid(_digits(candidate))


def is_phone(candidate: str) -> bool:
    if "(" not in candidate and not re.search(r"[ .-]", candidate.strip()):
        return False
    n = len(_digits(candidate))
    allowed = _INTERNATIONAL_DIGITS if candidate.startswith("+") else _NATIONAL_DIGITS
    return n in allowed


_KINDS: dict[str, tuple[re.Pattern[str], Callable[[str], bool] | None]] = {
    "email": (EMAIL, None),
    "card": (CARD, is_card),
    "phone": (PHONE, is_phone),
}
ORDER = ("email", "card", "phone")


def mask(text: str, kinds: list[str], tokens: dict[str, str]) -> tuple[str, dict[str, int]]:
    """The text with each found item of `kinds` replaced by its token, and counts per kind."""
    counts = dict.fromkeys(kinds, 0)
    for kind in ORDER:
        if kind in kinds:
            text, counts[kind] = _mask_kind(text, kind, tokens[kind])
    return text, counts


def _mask_kind(text: str, kind: str, token: str) -> tuple[str, int]:
    pattern, accept = _KINDS[kind]
    found = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        if accept is not None and not accept(match.group(0)):
            return match.group(0)
        found += 1
        return token

    return pattern.sub(replace, text), found
