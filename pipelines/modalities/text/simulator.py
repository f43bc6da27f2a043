"""Seeded customer-service ticket simulator: intent-labelled texts plus the dirt that the text
cleaning rules (pipelines/modalities/text/rules.py) must catch.

Texts come from per-intent templates (pipelines/modalities/text/ticket_phrases.py) with slot fillers
and alternations; confusable intents share vocabulary, so TF-IDF + logistic regression lands
near 87% accuracy (20,000 clean tickets, 75/25 split) rather than 100%. Then each row gets
at most one kind of dirt, drawn with the rates of TicketDirt (exclusive kinds, so each rate
is the share of rows with that dirt).

Determinism without a driver loop: labels, dirt kinds and duplicate sources are drawn with
one numpy generator; each row's text comes from its own generator seeded by (seed,
ticket_id), inside a batched Dataset.map, so num_proc does not change a single character.
A duplicate regenerates its source row's clean text from the source's own seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields
from functools import partial
from typing import Unpack

import datasets

from pipelines.core.config_checks import DirtShares
from pipelines.core.simulator import DUPLICATE_KINDS, RowSimulation, SimulationOptions
from pipelines.errors import PipelineError
from pipelines.modalities.text import ticket_phrases as P


@dataclass(frozen=True)
class TicketDirt(DirtShares):
    """Share of rows that get each kind of dirt (kinds are exclusive: the sum must be <= 1)."""

    empty: float = 0.01  # "" or whitespace only
    too_short: float = 0.01  # < 10 characters
    too_long: float = 0.01  # > 512 characters (a pasted mail thread)
    foreign: float = 0.02  # German, French, Spanish or Italian
    abusive: float = 0.01  # a ticket plus an insult line (>= 2 abusive words)
    exact_duplicate: float = 0.02  # an earlier ticket again (sometimes other case/spacing)
    near_duplicate: float = 0.02  # an earlier ticket with one or two words changed
    email: float = 0.02
    phone: float = 0.02
    card: float = 0.02  # a Luhn-valid 16-digit card number
    mojibake: float = 0.02  # UTF-8 bytes decoded as cp1252 or latin-1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PipelineError(f"TicketDirt.{f.name} = {value!r}: expected a number")
            if not 0.0 <= value <= 1.0:
                raise PipelineError(f"TicketDirt.{f.name} = {value!r}: expected a number in [0, 1]")
        self.check_total("TicketDirt", "row")


NO_DIRT = TicketDirt(**{f.name: 0.0 for f in fields(TicketDirt)})


TICKETS = RowSimulation("simulate_tickets", id_column="ticket_id", content_column="text")


def simulate_tickets(
    n_rows: int, seed: int, dirt: TicketDirt | None = None, **options: Unpack[SimulationOptions]
) -> datasets.Dataset:
    """Columns ticket_id (int64), text (str), label (str intent); with_dirt_column adds
    `dirt`, the injected kind ("" for a clean row): ground truth for measuring the rules."""
    dirt = TicketDirt() if dirt is None else dirt
    return TICKETS.simulate(
        n_rows, seed, P.INTENT_SHARES, dirt.rates(), partial(_write_row, seed), **options
    )


def _row_rng(seed: int, ticket_id: int) -> random.Random:
    return random.Random(f"ticket:{seed}:{ticket_id}")


def _write_row(
    seed: int, ticket_id: int, label: str, kind: str, source: int, source_label: str
) -> tuple[str, str]:
    rng = _row_rng(seed, ticket_id)
    if kind in DUPLICATE_KINDS:
        original = clean_ticket(_row_rng(seed, source), source_label)
        copy = _exact_copy if kind == "exact_duplicate" else _near_copy
        return copy(original, rng), source_label
    text = clean_ticket(rng, label)
    if kind == "foreign":
        return _foreign(rng, label)
    return (_DIRTY[kind](text, rng, label) if kind else text), label


# --- clean tickets -------------------------------------------------------------------------

_ALTERNATION = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)\}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,?!])")
_SPACES = re.compile(r"\s{2,}")


def clean_ticket(rng: random.Random, label: str) -> str:
    """One ticket of the intent: [opener] body [context] [closer]."""
    parts = [rng.choice(P.OPENERS), _body(rng, label)]
    if rng.random() < 0.75:
        parts.append(rng.choice(P.CONTEXT))
    if rng.random() < 0.35:
        parts.append(rng.choice(P.CONTEXT))
    parts.append(rng.choice(P.CLOSERS))
    return _expand(" ".join(parts), rng)


def _body(rng: random.Random, label: str) -> str:
    shared = [t for pair, ts in P.AMBIGUOUS.items() if label in pair for t in ts]
    if shared and rng.random() < P.AMBIGUOUS_SHARE:
        return rng.choice(shared)
    return rng.choice(P.INTENT_TEMPLATES[label])


def _expand(template: str, rng: random.Random) -> str:
    text = _ALTERNATION.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = _SLOT.sub(lambda m: _fill(m.group(1), rng), text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text)).strip()
    return text[0].upper() + text[1:] if text else text


def _fill(slot: str, rng: random.Random) -> str:
    generated = _GENERATED.get(slot)
    if generated is not None:
        return generated(rng)
    return rng.choice(P.SLOTS[slot])


def _amount(rng: random.Random) -> str:
    value = f"{rng.randint(3, 1500)}.{rng.randint(0, 99):02d}"
    return rng.choice([f"${value}", f"£{value}", f"{value} USD", f"{value} dollars", f"${value}"])


def _when(rng: random.Random) -> str:
    return rng.choice(
        [
            "yesterday",
            "today",
            "this morning",
            "last night",
            f"last {rng.choice(P.SLOTS['weekday'])}",
            f"on {rng.choice(P.SLOTS['month'])} {rng.randint(1, 28)}",
            f"on {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}",
            f"{rng.randint(2, 9)} days ago",
        ]
    )


def _error(rng: random.Random) -> str:
    return rng.choice(
        [
            f"error E-{rng.randint(1000, 9999)}",
            f"error code {rng.randint(100, 599)}",
            "'Something went wrong'",
            "a timeout",
            f"error {rng.choice([400, 401, 403, 500, 502, 503])}",
            "a blank screen",
        ]
    )


def _not_a_card(rng: random.Random) -> str:
    """A 16-digit reference that fails the Luhn check: masking must leave it alone."""
    digits = [rng.randint(0, 9) for _ in range(15)]
    bad = (luhn_check_digit(digits) + rng.randint(1, 9)) % 10
    return "".join(map(str, [*digits, bad]))


_GENERATED = {
    "amount": _amount,
    "amount2": _amount,
    "when": _when,
    "error": _error,
    "ref16": _not_a_card,
    "hours": lambda rng: str(rng.randint(2, 6)),
    "years": lambda rng: str(rng.randint(2, 25)),
    "last4": lambda rng: f"{rng.randint(0, 9999):04d}",
    "order": lambda rng: f"{rng.choice(['', '#', 'A', 'CS-'])}{rng.randint(10_000, 9_999_999)}",
    "clock": lambda rng: (
        f"{rng.randint(1, 12)}{rng.choice([':00', ':15', ':30', ':45', ''])}"
        f"{rng.choice([' am', ' pm', 'am', 'pm'])}"
    ),
}


# --- dirt ----------------------------------------------------------------------------------


def luhn_check_digit(digits: list[int]) -> int:
    """The digit that makes `digits + [it]` pass the Luhn check."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def card_number(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa- or Mastercard-like number in a common layout."""
    prefix = [4] if rng.random() < 0.5 else [5, rng.randint(1, 5)]
    digits = prefix + [rng.randint(0, 9) for _ in range(15 - len(prefix))]
    number = "".join(map(str, [*digits, luhn_check_digit(digits)]))
    groups = [number[i : i + 4] for i in range(0, 16, 4)]
    return rng.choice([" ".join(groups), "-".join(groups), number])


def phone_number(rng: random.Random) -> str:
    d = lambda n: "".join(str(rng.randint(0, 9)) for _ in range(n))  # noqa: E731
    return rng.choice(
        [
            f"+44 7{d(3)} {d(6)}",
            f"+1 ({d(3)}) {d(3)}-{d(4)}",
            f"{d(3)}-{d(3)}-{d(4)}",
            f"({d(3)}) {d(3)} {d(4)}",
            f"+49 30 {d(7)}",
            f"07{d(3)} {d(3)} {d(3)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        ]
    )


def email_address(rng: random.Random) -> str:
    return f"{rng.choice(P.EMAIL_USERS)}@{rng.choice(P.EMAIL_DOMAINS)}"


def _empty(text: str, rng: random.Random, label: str) -> str:
    return rng.choice(["", " ", "   ", "\n", "\t \n"])


def _too_short(text: str, rng: random.Random, label: str) -> str:
    return rng.choice(P.SHORT_TEXTS)


def _too_long(text: str, rng: random.Random, label: str) -> str:
    """The ticket followed by the quoted thread it replied to."""
    target = rng.randint(560, 1000)
    parts = [text]
    while sum(map(len, parts)) < target:
        parts.append(f"> On {_when(rng)} you wrote: {clean_ticket(rng, label)}")
    return " ".join(parts)


def _abusive(text: str, rng: random.Random, label: str) -> str:
    return f"{text} {rng.choice(P.INSULTS)}"


def _with_email(text: str, rng: random.Random, label: str) -> str:
    line = rng.choice(["You can reach me at {}.", "My email is {}.", "Contact me on {} please."])
    return f"{text} {line.format(email_address(rng))}"


def _with_phone(text: str, rng: random.Random, label: str) -> str:
    line = rng.choice(["Call me on {}.", "My number is {}.", "Please ring me at {} today."])
    return f"{text} {line.format(phone_number(rng))}"


def _with_card(text: str, rng: random.Random, label: str) -> str:
    line = rng.choice(["My card number is {}.", "Card: {}", "The card is {}, please check."])
    return f"{text} {line.format(card_number(rng))}"


def _mojibake(text: str, rng: random.Random, label: str) -> str:
    """Typographic characters (’ – € é) saved as UTF-8 and read back as cp1252/latin-1."""
    fancy = text.replace("'", "\u2019") + rng.choice(
        [" It’s about €40.", " Café – €12 – again.", " Naïve of me – sorry.", " Merci – €5."]
    )
    codec = "cp1252" if rng.random() < 0.8 else "latin-1"
    return fancy.encode("utf-8").decode(codec)


def _exact_copy(text: str, rng: random.Random) -> str:
    """The same ticket; a third in other case, a third with other spacing."""
    r = rng.random()
    if r < 1 / 3:
        return text.lower() if rng.random() < 0.5 else text.upper()
    if r < 2 / 3:
        return "  " + text.replace(" ", "  ", 2) + " \n"
    return text


def _near_copy(text: str, rng: random.Random) -> str:
    """The ticket re-sent with a few words added or swapped (one edit for a short one)."""
    words = text.split()
    edits = 1 if len(words) < 15 else rng.randint(1, 2 if len(words) < 30 else 3)
    for _ in range(edits):
        at = rng.randrange(1, len(words) + 1)
        word = rng.choice(P.NEAR_DUP_SWAPS)
        if rng.random() < 0.7 or at == len(words):
            words.insert(at, word)
        else:
            words[at] = word
    return " ".join(words)


def _foreign(rng: random.Random, label: str) -> tuple[str, str]:
    """A ticket in another language; its intent when one for the label exists."""
    same = [f for f in P.FOREIGN if f[1] == label]
    lang, intent, sentence = rng.choice(same or P.FOREIGN)
    parts = [rng.choice(P.FOREIGN_OPENERS[lang]), sentence, rng.choice(P.FOREIGN_CLOSERS[lang])]
    return " ".join(p for p in parts if p), intent


_DIRTY = {
    "empty": _empty,
    "too_short": _too_short,
    "too_long": _too_long,
    "abusive": _abusive,
    "email": _with_email,
    "phone": _with_phone,
    "card": _with_card,
    "mojibake": _mojibake,
}
