"""Claim values -> `Value`: numbers, {low, best, high} objects and hedged phrases.

docs/architecture.md §2 names the table (bare N, "about N", "up to N", "between A and B",
"dozens", "a third of X", ...). The phrase grammar is hand-written on purpose: no library
parses English hedges offline, and number-word packages (word2number and the like) cover
only bare numbers and guess on failure, where claimledger must refuse ("never a guess").
It is a few tables and regexes; arithmetic is exact (Fraction) so that 12000 * 0.9 is the
int 10800, and numbers come back exactly as claimed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from shared.attributes import (
    KINDS,
    NUMERIC_KINDS,
    SIGNED_KINDS,
    AttributeRegistry,
    default_registry,
)
from shared.model import HEDGES, Value

RULE_VERSION = 1
MEASURE_RULE_PREFIX = "measure."  # rule ids of values read for a measure attribute
HEDGE_NAMES: tuple[str, ...] = HEDGES
TEXT_KINDS = frozenset({"state", "categorical"})


class ValueProblem(ValueError):
    """A claim value that cannot be normalised; `field` says where, `detail` says why."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class _NotNumeric(Exception):
    """The text is outside the number grammar (for an unknown attribute: it is a name)."""


def format_number(x: float | Fraction | None) -> str:
    """12000 -> "12,000", 12000.0 -> "12,000", 0.25 -> "0.25" (for explanations)."""
    if x is None:
        return "open"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x == int(x):
        return f"{int(x):,}"
    return f"{float(x):,.6f}".rstrip("0").rstrip(".")


# -- numbers ----------------------------------------------------------------------------

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORD_VALUE = {w: i for i, w in enumerate(_ONES)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_SCALE_VALUE = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9}
_ATTACHED_SCALE = {"k": 10**3, "m": 10**6, "mn": 10**6, "b": 10**9, "bn": 10**9}
_SPACED_SCALE = _SCALE_VALUE | {"mn": 10**6, "bn": 10**9}

_DIGITS = r"\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
# "3k", "1.5m", "2.3bn" attached; "1.5 million", "12 thousand" spaced. "5 m" stays metres.
_DIGIT_NUMBER = re.compile(
    rf"(?P<d>{_DIGITS})(?:(?P<a>k|mn|m|bn|b)(?![a-z])"
    r"|\s*(?P<s>hundred|thousand|million|billion|mn|bn)(?![a-z]))?(?![0-9])"
)
_W = "|".join(sorted(_WORD_VALUE, key=len, reverse=True))
_T = "|".join(_TENS)
_S = "hundred|thousand|million|billion"
_ONES_1_9 = "|".join(_ONES[1:10])
_ATOM = rf"(?:(?:a|an)\s+(?:dozen|{_S})|(?:{_T})-(?:{_ONES_1_9})|{_W}|dozen|{_S}|half\s+an?)"
# "and" only after a scale ("one hundred and fifty") or as "and a half", so that
# "between one and two thousand" is not read as one number.
_WORD_NUMBER = re.compile(
    rf"{_ATOM}(?:(?:(?<=hundred)|(?<=thousand)|(?<=million)|(?<=billion))\s+and\s+{_ATOM}"
    rf"|\s+and\s+a\s+half|\s+{_ATOM})*(?![a-z])"
)


@dataclass(frozen=True, slots=True)
class _Number:
    value: Fraction
    end: int
    scale: int  # the trailing scale word's factor (1 if none): "10 to 12 thousand"


def _words_value(text: str) -> Fraction:
    text = re.sub(r"\band a half\b", "and_half", text)
    text = re.sub(r"\bhalf an?\b", "half_a", text)
    total, current, seen = Fraction(0), Fraction(0), False
    for word in re.split(r"[\s-]+", text):
        if word in _WORD_VALUE:
            current, seen = current + _WORD_VALUE[word], True
        elif word in ("a", "an"):
            current += 1  # only ever before dozen/hundred/thousand... in the grammar
        elif word in ("and_half", "half_a"):
            current, seen = current + Fraction(1, 2), True
        elif word == "dozen":
            current, seen = (current or Fraction(1)) * 12, True
        elif word == "hundred":
            current, seen = (current or Fraction(1)) * 100, True
        elif word in _SCALE_VALUE:
            total += (current or Fraction(1)) * _SCALE_VALUE[word]
            current, seen = Fraction(0), True
        # "and" carries no value
    if not seen:
        raise _NotNumeric(text)
    return total + current


def _number_at(s: str, pos: int) -> _Number | None:
    m = _DIGIT_NUMBER.match(s, pos)
    if m:
        value = Fraction(Decimal(re.sub(r"[, ]", "", m["d"])))
        scale = _ATTACHED_SCALE[m["a"]] if m["a"] else _SPACED_SCALE[m["s"]] if m["s"] else 1
        return _Number(value * scale, m.end(), scale)
    m = _WORD_NUMBER.match(s, pos)
    if m:
        last = re.split(r"[\s-]+", m.group())[-1]
        return _Number(_words_value(m.group()), m.end(), _SCALE_VALUE.get(last, 1))
    return None


_SIGN = re.compile(r"(?P<sign>[-−+])\s*(?=[\d.])")
_NEGATIVE_COUNT = (
    "counts cannot be negative (zero is valid); an attribute whose readings carry a sign "
    'is declared kind = "measure" in the attribute registry'
)


def _signed_number_at(s: str, pos: int, signed: bool) -> _Number | None:
    """A number at `pos`; for a measure it may carry a sign ("-3", "− 2.5", "+4")."""
    m = _SIGN.match(s, pos) if signed else None
    if m is None:
        return _number_at(s, pos)
    n = _number_at(s, m.end())
    if n is None or m["sign"] == "+":
        return n
    return _Number(-n.value, n.end, n.scale)


def _out(x: Fraction | None) -> float | None:
    """Exact value back to Python: an int when integral (12000, not 12000.0), else a float."""
    if x is None:
        return None
    return int(x) if x.denominator == 1 else float(x)


def _exact(x: Any, field: str, signed: bool = False) -> Fraction:
    """A claimed number as an exact Fraction, rejecting bool, NaN and infinity, and
    negatives unless `signed` (a measure's reading)."""
    if isinstance(x, bool):
        raise ValueProblem(field, "true/false is not a number")
    if isinstance(x, str):
        n = _signed_number_at(x.strip().lower(), 0, True)
        if n is None or n.end != len(x.strip()):
            raise ValueProblem(field, f"{x!r} is not a number")
        value = n.value
    else:
        value = _finite(x, field)
    if value < 0 and not signed:
        raise ValueProblem(field, _NEGATIVE_COUNT)
    return value


# The largest magnitude a claimed number (or a bound derived from it) may have. The
# consensus computes in floats: a 400-digit integer was accepted here and then failed in
# the reconciler ("int too large to convert to float"). 10^18 covers any count or amount
# a report states (world GDP in cents is ~10^16).
MAX_MAGNITUDE = 10**18


def _check_magnitude(p: _Parsed) -> None:
    for x in (p.low, p.best, p.high):
        if x is not None and abs(x) > MAX_MAGNITUDE:
            # not formatted: a number of thousands of digits is not worth printing
            raise ValueProblem("value", "numbers must lie within ±10^18 (the largest stored)")


def _finite(x: Any, field: str) -> Fraction:
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueProblem(field, "NaN and infinity are not values")
    if not isinstance(x, (int, float, Decimal, Fraction)):
        raise ValueProblem(field, f"expected a number, got {type(x).__name__}")
    if isinstance(x, Decimal) and not x.is_finite():
        raise ValueProblem(field, "NaN and infinity are not values")
    return Fraction(x)


# -- hedges -----------------------------------------------------------------------------

_HEDGE_WORDS: dict[str, tuple[str, ...]] = {
    "approximately": (
        "approximately",
        "approx.",
        "approx",
        "about",
        "around",
        "some",
        "roughly",
        "an estimated",
        "estimated",
        "circa",
        "~",
    ),
    "nearly": ("nearly", "almost"),
    "up_to": ("up to", "as many as", "at most", "no more than", "not more than", "a maximum of"),
    "over": ("over", "more than", "exceeding", "in excess of", ">"),
    "at_least": (
        "at least",
        "no fewer than",
        "no less than",
        "not less than",
        "a minimum of",
        ">=",
    ),
    "under": ("fewer than", "under", "less than", "below", "<"),
}
_PREFIX_HEDGE = {w: h for h, words in _HEDGE_WORDS.items() for w in words}
_PREFIX = re.compile(
    "(?:"
    + "|".join(
        re.escape(w) + (r"\s+" if w[-1].isalpha() else r"\s*")
        for w in sorted(_PREFIX_HEDGE, key=len, reverse=True)
    )
    + ")"
)
_SUFFIX_HEDGE = {
    "+": "at_least",
    "or more": "at_least",
    "or so": "approximately",
    "or fewer": "up_to",
    "or less": "up_to",
}
_SUFFIX = re.compile(r"\s*(\+|or more|or so|or fewer|or less)(?![a-z])")

_MAGNITUDES = {
    "tens of thousands": 10**4,
    "hundreds of thousands": 10**5,
    "tens of millions": 10**7,
    "hundreds of millions": 10**8,
    "tens": 10,
    "dozens": 12,
    "scores": 20,
    "hundreds": 100,
    "thousands": 10**3,
    "millions": 10**6,
}
_MAGNITUDE = re.compile(
    "(" + "|".join(sorted(_MAGNITUDES, key=len, reverse=True)) + r")(?![a-z])(?:\s+of\b)?"
)

_FRACTION_NAMES = {"half": 2, "third": 3, "quarter": 4, "fifth": 5, "tenth": 10}
_NUMERATORS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "nine": 9}
_FRACTION = re.compile(
    r"(?:(?P<n>an?|one|two|three|four|nine)\s+)?(?P<d>half|thirds?|quarters?|fifths?|tenths?)"
    r"(?:\s+(?P<of>of))?\s+(?P<tail>\S.*)"
)
_PERCENT_OF = re.compile(rf"(?P<p>{_DIGITS})\s*(?:%|percent)\s+of\s+(?P<tail>\S.*)")
_RANGE_SEP = re.compile(r"\s*(?:-|–|—)\s*|\s+(?P<w>to|and)\s+")

# Words that end the noun after a number ("12,000 troops were killed in Kursk"): the rest of
# the sentence is ignored. Connectors that could introduce a second number make the phrase
# unreadable instead ("12,000 troops and 500 tanks").
_CLAUSE = frozenset(
    {"were", "was", "are", "is", "have", "has", "had", "who", "which", "that", "according"}
)
_FILLER = _CLAUSE | {
    "been", "being", "reportedly", "killed", "wounded", "injured", "dead", "captured",
    "deployed", "sent", "stationed", "fighting", "in", "at", "on", "near", "inside", "into",
    "from", "per", "by", "since", "during", "as", "of",
}  # fmt: skip
_CONNECTORS = frozenset({"and", "or", "but", "with", "plus", "to", "than"})
_UNIT_WORD = re.compile(r"[a-z][a-z'.\-]*|%")
_UNIT_SYNONYMS = {"percent": "%"}


@dataclass(frozen=True, slots=True)
class _Parsed:
    low: Fraction | None
    best: Fraction | None
    high: Fraction | None
    hedge: str
    rule: str
    unit: str | None = None
    low_exclusive: bool = False
    high_exclusive: bool = False
    best_derived: bool = False
    relative_to: str | None = None


def _bounds(hedge: str, n: Fraction, tol: Fraction, field: str) -> _Parsed:
    """One number under a hedge -> bounds, per the table above (rule filled by caller)."""
    band = abs(n) * tol  # a measure's band is as wide below zero as above
    table: dict[str, tuple[Fraction | None, Fraction | None, Fraction | None]] = {
        "exact": (n, n, n),
        "approximately": (n - band, n, n + band),
        "nearly": (n - band, n, n),
        "up_to": (None, None, n),
        "over": (n, None, None),
        "at_least": (n, None, None),
        "under": (None, None, n),
        "order_of_magnitude": (n, None, None),
    }
    if hedge not in table:
        raise ValueProblem("hedge", f"hedge {hedge!r} does not apply to a single number")
    low, best, high = table[hedge]
    return _Parsed(
        low,
        best,
        high,
        hedge,
        rule="number.bare" if hedge == "exact" else f"hedge.{hedge}",
        low_exclusive=hedge == "over",
        high_exclusive=hedge == "under",
    )


def _unit(tail: str) -> str | None:
    """The unit noun after a number: last word before filler ("north korean troops were ...")."""
    tail = tail.strip()
    if tail.startswith("of "):  # "thousands of troops"
        tail = tail[3:]
    words: list[str] = []
    for word in tail.replace("%", " % ").split():
        if word in _FILLER:
            break
        if word in _CONNECTORS or not _UNIT_WORD.fullmatch(word):
            raise _NotNumeric(tail)
        if word not in ("the", "a", "an"):
            words.append(word)
    if len(words) > 4:
        raise _NotNumeric(tail)
    if not words:
        return None
    unit = words[-1].strip(".")
    return _UNIT_SYNONYMS.get(unit, unit)


def _relative_target(tail: str, given: str | None, registry: AttributeRegistry | None) -> str:
    reg = registry if registry is not None else default_registry()
    if given:
        return reg.canonical(given)
    words = tail.split()
    cut = next((i for i, w in enumerate(words) if w in _CLAUSE), len(words))
    target = reg.match_phrase(" ".join(words[:cut]))
    if target is None:
        raise ValueProblem(
            "relative_to", f"cannot tell which attribute {tail!r} means; send relative_to"
        )
    return target


def _parse_phrase(
    text: str,
    hedge_param: str | None,
    tol: Fraction,
    relative_to: str | None,
    registry: AttributeRegistry | None,
    field: str,
    signed: bool = False,
) -> _Parsed:
    s = re.sub(r"\s+", " ", text.lower().replace("per cent", "percent"))
    # "(Ukrainian estimate)"; [^()] stops each try at the next "(": linear, not quadratic
    s = re.sub(r"\s*\([^()]*\)\s*$", "", s).strip(" .;,!?\"'")
    if not signed and re.match(r"[-−]\s*\d", s):
        raise ValueProblem(field, _NEGATIVE_COUNT)

    word_hedge = None
    m = _PREFIX.match(s)
    if m:
        word_hedge = _PREFIX_HEDGE[m.group().strip()]
    pos = m.end() if m else 0

    def hedge_for(default: str) -> str:
        if word_hedge and hedge_param and hedge_param != word_hedge:
            raise ValueProblem("hedge", f"the phrase says {word_hedge}, hedge says {hedge_param}")
        return word_hedge or hedge_param or default

    # order of magnitude: "dozens", "tens of thousands of troops"
    m = _MAGNITUDE.match(s, pos)
    if m:
        if word_hedge or hedge_param not in (None, "order_of_magnitude"):
            raise ValueProblem("hedge", f"{m[1]!r} cannot carry another hedge")
        return _Parsed(
            Fraction(_MAGNITUDES[m[1]]),
            None,
            None,
            "order_of_magnitude",
            "magnitude." + m[1].replace(" ", "_"),
            unit=_unit(s[m.end() :]),
        )

    # relative: "a third of the initial troops", "10% of X", "up to half the troops"
    ratio, kind, tail = None, "", ""
    m = _FRACTION.fullmatch(s, pos)
    # "half the troops" is relative, "half a million" is a number
    if m and (m["of"] or (m["d"] == "half" and not re.match(r"an? ", m["tail"]))):
        ratio = Fraction(_NUMERATORS[m["n"] or "one"], _FRACTION_NAMES[m["d"].rstrip("s")])
        kind, tail = "fraction", m["tail"]
    m = _PERCENT_OF.fullmatch(s, pos)
    if m:
        ratio = Fraction(Decimal(m["p"].replace(",", "").replace(" ", ""))) / 100
        kind, tail = "percent", m["tail"]
    if ratio is not None:
        h = hedge_for("exact")
        h = "exact" if h == "relative" else h
        p = _bounds(h, ratio, tol, field)
        return _Parsed(
            p.low,
            p.best,
            p.high,
            "relative",
            f"relative.{kind}" if h == "exact" else f"relative.{kind}.{h}",
            low_exclusive=p.low_exclusive,
            high_exclusive=p.high_exclusive,
            relative_to=_relative_target(tail, relative_to, registry),
        )

    # range: "between A and B", "from A to B", "A to B", "A-B" (an estimated A to B too)
    opener = re.match(r"(between|from)\s+", s[pos:])
    start = pos + (opener.end() if opener else 0)
    a = _signed_number_at(s, start, signed)
    if a is None:
        raise _NotNumeric(text)
    sep = _RANGE_SEP.match(s, a.end)
    b = _signed_number_at(s, sep.end(), signed) if sep else None
    if sep and b is not None and (sep["w"] != "and" or (opener and opener[1] == "between")):
        if word_hedge not in (None, "approximately") or hedge_param not in (None, "range"):
            raise ValueProblem("hedge", "a range cannot carry another hedge")
        low = a.value * b.scale if a.scale == 1 and a.value * b.scale <= b.value else a.value
        if low > b.value:
            raise ValueProblem(
                field, f"range low {format_number(low)} is above high {format_number(b.value)}"
            )
        how = opener[1] if opener else ("to" if sep["w"] else "dash")
        return _Parsed(
            low,
            (low + b.value) / 2,
            b.value,
            "range",
            f"range.{how}",
            unit=_unit(s[b.end :]),
            best_derived=True,
        )
    if opener:
        raise _NotNumeric(text)

    # one number, maybe with a trailing hedge: "12,000 or more", "3,000+"
    end, suffix = a.end, None
    m = _SUFFIX.match(s, end)
    if m:
        suffix, end = _SUFFIX_HEDGE[m[1]], m.end()
        if word_hedge and word_hedge != suffix:
            raise ValueProblem("hedge", f"conflicting hedges in {text!r}")
        word_hedge = suffix
    h = hedge_for("exact")
    unit = _unit(s[end:])
    if h == "relative":
        p = _bounds("exact", a.value, tol, field)
        return _Parsed(
            p.low,
            p.best,
            p.high,
            "relative",
            "relative.number",
            relative_to=_relative_target("", relative_to, registry),
        )
    p = _bounds(h, a.value, tol, field)
    return _Parsed(
        p.low,
        p.best,
        p.high,
        p.hedge,
        p.rule,
        unit=unit,
        low_exclusive=p.low_exclusive,
        high_exclusive=p.high_exclusive,
    )


# -- entry point ------------------------------------------------------------------------


def parse_value(
    value: Any,
    *,
    hedge: str | None = None,
    raw: str | None = None,
    unit: str | None = None,
    kind: str | None = None,
    relative_to: str | None = None,
    tolerance: float = 0.10,
    registry: AttributeRegistry | None = None,
) -> Value:
    """Normalise a claim's value (number, {low, best, high}, text or raw phrase) to a Value.

    `kind` is the attribute's kind (None: unknown attribute, numeric when the value reads as a
    number). Raises ValueProblem for anything it cannot read; it never guesses.

    Pure, so answers are remembered: a feed repeats its numbers and phrases ("about 1,000"
    with the same hedge and unit), and reading one again cost ~60 us of exact Fraction
    arithmetic per claim, a third of ingest's CPU (bench/RESULTS.md, issue #21). A Value
    is immutable, so one instance is shared; a refusal (ValueProblem) is not remembered.
    """
    key = _cache_key(value, hedge, raw, unit, kind, relative_to, tolerance, registry)
    if key is None:
        return _parse_value(value, hedge, raw, unit, kind, relative_to, tolerance, registry)
    found = _PARSED.get(key)
    if found is None:
        found = _parse_value(value, hedge, raw, unit, kind, relative_to, tolerance, registry)
        if len(_PARSED) >= PARSED_CACHE_SIZE:
            _PARSED.clear()  # bounded; a working set of phrases refills it at once
        _PARSED[key] = found
    return found


PARSED_CACHE_SIZE = 65_536
_PARSED: dict[tuple[Any, ...], Value] = {}
_SCALARS = (int, float, str, type(None))


def _frozen(value: Any) -> Any:
    """`value` as a hashable key that tells 1, 1.0 and True apart (they are == in Python
    but not the same claim); None when it holds anything but JSON scalars."""
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is dict:
        items = []
        for k, v in value.items():
            if type(k) is not str or type(v) not in _SCALARS:
                return None
            items.append((k, type(v), v))
        return (dict, tuple(sorted(items, key=lambda item: item[0])))
    return None


def _cache_key(
    value: Any,
    hedge: str | None,
    raw: str | None,
    unit: str | None,
    kind: str | None,
    relative_to: str | None,
    tolerance: float,
    registry: AttributeRegistry | None,
) -> tuple[Any, ...] | None:
    frozen = _frozen(value)
    if frozen is None:
        return None
    for x in (hedge, raw, unit, kind, relative_to, tolerance):  # a loop: no generator per call
        if type(x) not in _SCALARS:
            return None
    # the registry by identity: it is immutable once built (relative targets read it)
    return (frozen, hedge, raw, unit, kind, relative_to, type(tolerance), tolerance, registry)


def _parse_value(
    value: Any,
    hedge: str | None,
    raw: str | None,
    unit: str | None,
    kind: str | None,
    relative_to: str | None,
    tolerance: float,
    registry: AttributeRegistry | None,
) -> Value:
    if hedge is not None and hedge not in HEDGE_NAMES:
        raise ValueProblem("hedge", f"unknown hedge {hedge!r}; one of {', '.join(HEDGE_NAMES)}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown attribute kind {kind!r}")
    if raw is not None and (not isinstance(raw, str) or not raw.strip()):
        raise ValueProblem("raw", "raw must be a non-empty phrase")
    if not 0 <= tolerance < 1:
        raise ValueError("tolerance must be in [0, 1)")
    tol = Fraction(str(tolerance))
    ctx = _Context(hedge, raw, unit, kind, relative_to, tol, registry)

    if value is None:
        if raw is None:
            raise ValueProblem("value", "a claim needs value or raw")
        return ctx.text(raw, "raw")
    if isinstance(value, str):
        return ctx.text(value, "value")
    if isinstance(value, Mapping):
        return ctx.bounds(value)
    if isinstance(value, bool):
        raise ValueProblem("value", "true/false is not a value")
    if not isinstance(value, (int, float, Decimal, Fraction)):
        got = type(value).__name__
        raise ValueProblem("value", f"expected a number, object or text, got {got}")
    return ctx.number(_exact(value, "value", ctx.signed))


@dataclass(frozen=True, slots=True)
class _Context:
    hedge: str | None
    raw: str | None
    unit: str | None
    kind: str | None
    relative_to: str | None
    tol: Fraction
    registry: AttributeRegistry | None

    @property
    def signed(self) -> bool:
        return self.kind in SIGNED_KINDS

    def _value(self, p: _Parsed, raw: str | None, unit: str | None = None) -> Value:
        _check_magnitude(p)
        # A measure's value names its kind in the rule id ("measure.number.bare"): the
        # fusion reads it to pick the measure's decision rule (shared.consensus._numeric).
        rule = f"{MEASURE_RULE_PREFIX}{p.rule}" if self.signed else p.rule
        return Value(
            low=_out(p.low),
            best=_out(p.best),
            high=_out(p.high),
            hedge=p.hedge,
            rule=rule,
            rule_version=RULE_VERSION,
            raw=raw,
            unit=self.unit or unit or p.unit,
            low_exclusive=p.low_exclusive,
            high_exclusive=p.high_exclusive,
            best_derived=p.best_derived,
            relative_to=p.relative_to,
        )

    def _require_numeric(self) -> None:
        if self.kind in TEXT_KINDS:
            raise ValueProblem("value", f"a {self.kind} attribute takes a name, not a number")
        if self.hedge == "categorical":
            raise ValueProblem("hedge", "hedge 'categorical' needs a name, not a number")

    def text(self, text: str, field: str) -> Value:
        if not isinstance(text, str) or not text.strip():
            raise ValueProblem(field, "empty text is not a value")
        raw = self.raw if self.raw is not None else text
        if self.kind in TEXT_KINDS or self.hedge == "categorical":
            if self.kind in NUMERIC_KINDS:
                raise ValueProblem("hedge", f"a {self.kind} attribute needs a number, not a name")
            return _name(text, raw)
        try:
            p = _parse_phrase(
                text, self.hedge, self.tol, self.relative_to, self.registry, field, self.signed
            )
        except _NotNumeric:
            if self.kind is None and self.hedge is None:  # unknown attribute: a name
                return _name(text, raw)
            raise ValueProblem(
                field, f"cannot read a number in {text!r} (e.g. 'about 12,000'); never guessed"
            ) from None
        return self._value(p, raw)

    def number(self, n: Fraction, raw: str | None = None, unit: str | None = None) -> Value:
        self._require_numeric()
        h = self.hedge or "exact"
        if h == "range":
            raise ValueProblem("hedge", "a range needs low and high: send {low, high}")
        if h == "relative":
            target = _relative_target("", self.relative_to, self.registry)
            p = _Parsed(n, n, n, "relative", "relative.number", relative_to=target)
        else:
            p = _bounds(h, n, self.tol, "value")
        return self._value(p, self.raw if self.raw is not None else raw, unit)

    def bounds(self, obj: Mapping[str, Any]) -> Value:
        self._require_numeric()
        unknown = set(obj) - {"low", "best", "high", "hedge", "raw", "unit", "relative_to"}
        if unknown:
            raise ValueProblem("value", f"unknown keys {sorted(unknown)}; use low, best, high")
        h = obj.get("hedge")
        if h is not None and h not in HEDGE_NAMES:
            raise ValueProblem("hedge", f"unknown hedge {h!r}")
        if h and self.hedge and h != self.hedge:
            raise ValueProblem("hedge", f"value says hedge {h}, hedge says {self.hedge}")
        h = h or self.hedge
        raw, unit = obj.get("raw"), obj.get("unit")
        for key, item in (("raw", raw), ("unit", unit), ("relative_to", obj.get("relative_to"))):
            if item is not None and not isinstance(item, str):
                raise ValueProblem("value" if key != "raw" else "raw", f"{key} must be text")
        ctx = self
        if h != self.hedge or obj.get("relative_to"):
            rel = obj.get("relative_to") or self.relative_to
            ctx = _Context(h, self.raw, self.unit, self.kind, rel, self.tol, self.registry)
        low, best, high = (
            None if obj.get(k) is None else _exact(obj[k], f"value.{k}", self.signed)
            for k in ("low", "best", "high")
        )
        if low is None and best is None and high is None:
            raise ValueProblem("value", "give at least one of low, best, high")
        if low is None and high is None and best is not None:
            return ctx.number(best, raw, unit)  # a point estimate: as if sent as a number
        if low is not None and high is not None and low > high:
            raise ValueProblem(
                "value.low", f"low {format_number(low)} is above high {format_number(high)}"
            )
        below = best is not None and low is not None and best < low
        if below or (best is not None and high is not None and best > high):
            raise ValueProblem("value.best", "best lies outside [low, high]")
        if h is None:
            h = "up_to" if low is None else "at_least" if high is None else "range"
            if low == best == high:
                h = "exact"
        if h == "categorical":
            raise ValueProblem("hedge", "hedge 'categorical' needs a name")
        if h == "exact" and not low == best == high:
            raise ValueProblem("hedge", "hedge 'exact' needs low = best = high")
        derived = h == "range" and best is None and low is not None and high is not None
        if derived:
            assert low is not None and high is not None
            best = (low + high) / 2
        target = None
        if h == "relative":
            target = _relative_target("", ctx.relative_to, self.registry)
        p = _Parsed(
            low,
            best,
            high,
            h,
            "object.bounds",
            low_exclusive=h == "over",
            high_exclusive=h == "under",
            best_derived=derived,
            relative_to=target,
        )
        return self._value(p, self.raw if self.raw is not None else raw, unit)


# -- value phrases in running text (used by shared.extract) -----------------------------
#
# parse_value reads one phrase; extraction first has to find the phrases in a sentence.
# `find_value_phrases` reuses the grammar above (numbers, hedges, ranges, magnitudes,
# fractions) and skips what is not a count: years, dates ("March 22"), ordinals ("22nd"),
# times, durations, ages, distances, identifiers ("Unit 74", "F-16").


@dataclass(frozen=True, slots=True)
class ValuePhrase:
    """A value phrase found in text: [start, end) offsets and what parse_value should read."""

    start: int
    end: int
    phrase: str  # for parse_value (hedge words normalised); fractions end with "of"
    kind: str  # number | range | magnitude | fraction | percent
    number_start: int  # offset of the first number, after any hedge words


# Hedge spellings seen in reporting that the phrase grammar spells differently.
_EXTRA_PREFIX = {
    "exceed": "more than", "exceeds": "more than", "exceeded": "more than",
    "topped": "more than", "tops": "more than", "surpassed": "more than",
    "well over": "more than", "just over": "more than", "well above": "more than",
    "upwards of": "at least", "close to": "nearly", "approaching": "nearly",
    "closer to": "approximately", "nearer to": "approximately",
    "just under": "fewer than", "just below": "fewer than", "an approximate": "approximately",
    "perhaps": "approximately", "potentially": "up to", "possibly as many as": "up to",
}  # fmt: skip
_ALL_PREFIX = {w: w for w in _PREFIX_HEDGE} | _EXTRA_PREFIX
_BACK_HEDGE = re.compile(
    r"(?<![a-z])("
    + "|".join(re.escape(w) for w in sorted(_ALL_PREFIX, key=len, reverse=True))
    + r")\s*$"
)
_BACK_OPENER = re.compile(r"(?<![a-z])(between|from)\s+$")
_BACK_CHANGE = re.compile(
    r"(?<![a-z])(?:rose|risen|rising|rises|increased|grew|grown|climbed|jumped|fell|fallen|"
    r"dropped|declined|decreased|went up|gone up|up|down)\s+from\s+$"
)
_MONTH_WORD = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_BACK_MONTH = re.compile(rf"(?<![a-z]){_MONTH_WORD}\.?\s+$")
_AHEAD_MONTH = re.compile(rf"(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_WORD}(?![a-z])")
_BACK_IDENTIFIER = re.compile(
    r"(?<![a-z])(?:no\.|nos\.|number|unit|brigade|regiment|division|corps|battalion|article|"
    r"resolution|page|route|highway|hill|flight|version|chapter|section|paragraph|item|"
    r"channel|line|room|tier)\s*$|#\s*$"
)
_AHEAD_SKIP = re.compile(
    r"[\s-]*(?:years?|yrs?|months?|weeks?|days?|hours?|hrs?|minutes?|mins?|seconds?|"
    r"decades?|centuries|century|nights?|km|kms|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|mm|cm|"
    r"kg|kilograms?|tonnes?|tons?|degrees?|°|a\.m\.|p\.m\.|am|pm|gmt|utc|bc|ad)(?![a-z])"
)
_AHEAD_PERCENT = re.compile(r"\s*(?:%|percent|per cent)(?:\s+(of)(?![a-z]))?")
_PEOPLE_AHEAD = re.compile(
    r"(?:\s+[a-z'-]+){0,3}?\s+(?:soldiers?|troops?|servicem[ae]n|personnel|people|persons?|"
    r"m[ae]n|civilians?|fighters?|officers?|prisoners?|marines|paratroopers|conscripts)(?![a-z])"
)
_FRACTION_AT = re.compile(
    r"(?:(?P<n>an?|one|two|three|four|nine)[\s-]+)?(?P<d>half|thirds?|quarters?|fifths?|tenths?)"
    r"(?![a-z])(?P<of>\s+of(?![a-z]))?"
)
_FEW_SCALE = re.compile(r"(?<![a-z])(?:several|a few|few|many|some)\s+$")
_START = re.compile(
    r"(?<![\w.,\-/:])\d|(?<![\w'\-])(?:"
    + "|".join(sorted(_MAGNITUDES, key=len, reverse=True))
    + rf"|(?:an?|one|two|three|four|nine)[\s-]+(?:half|thirds?|quarters?|fifths?|tenths?)"
    rf"|half|(?:an?\s+)?(?:dozen|hundred|thousand|million|billion)|{_W})(?![a-z])"
)


def _lower_same_length(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _is_year(s: str, n: _Number, start: int) -> bool:
    digits = s[start : n.end]
    return digits.isdigit() and len(digits) == 4 and 1800 <= int(digits) <= 2100


def _skip_number(s: str, start: int, n: _Number, hedged: bool) -> bool:
    """True when the number at `start` is a date, year, ordinal, time, duration or identifier."""
    end = n.end
    if end < len(s) and (s[end].isalpha() or (s[end] == ":" and s[end + 1 : end + 2].isdigit())):
        return True  # "22nd", "155mm", "10:30"
    if _AHEAD_SKIP.match(s, end) or _BACK_IDENTIFIER.search(s, max(0, start - 12), start):
        return True
    back = s[max(0, start - 12) : start]
    if n.value <= 31 and (_BACK_MONTH.search(back) or _AHEAD_MONTH.match(s, end)):
        return True  # "March 22", "22 March", "the 5th of May"
    if _is_year(s, n, start) and not hedged and not _PEOPLE_AHEAD.match(s, end):
        return True
    word = s[start:end]
    # "one" is a pronoun more often than a count ("one of the", "no one")
    return word == "one" and (s.startswith(" of", end) or not _PEOPLE_AHEAD.match(s, end))


def find_value_phrases(text: str) -> list[ValuePhrase]:
    """Value phrases in running text, in order, non-overlapping.

    "an estimated 10,000 to 12,000" -> one range phrase; "up to a third of" -> a fraction
    (the caller appends the noun and says what it is relative to); "March 22, 2025",
    "2024", "22nd", "24 hours", "F-16" are skipped. Each phrase parses with parse_value
    (fractions after appending a noun).
    """
    s = _lower_same_length(text)
    out: list[ValuePhrase] = []
    pos = 0
    while True:
        m = _START.search(s, pos)
        if m is None:
            return out
        p = m.start()
        found = _phrase_at(s, p)
        if found is None:
            pos = max(m.end(), p + 1)
            continue
        out.append(found)
        pos = found.end


def _hedge_before(s: str, p: int) -> tuple[int, str]:
    """(start, canonical hedge words) of a hedge ending right before `p`, else (p, "")."""
    hm = _BACK_HEDGE.search(s, max(0, p - 30), p)
    if hm is None:
        return p, ""
    return hm.start(), _ALL_PREFIX[hm[1]]


def _phrase_at(s: str, p: int) -> ValuePhrase | None:
    # order of magnitude: "dozens of", "tens of thousands"
    mm = _MAGNITUDE.match(s, p)
    if mm and (mm[0].endswith("of") or _PEOPLE_AHEAD.match(s, mm.end(1))):
        return ValuePhrase(p, mm.end(1), mm[1], "magnitude", p)
    # fractions: "a third of", "two-thirds of", "half of", "half the"
    fm = _FRACTION_AT.match(s, p)
    if fm and (fm["n"] or fm["d"] == "half"):
        if fm["of"] or (fm["d"] == "half" and re.match(r"\s+(?:the|them|their)\b", s[fm.end() :])):
            start, hedge = _hedge_before(s, p)
            numerator = fm["n"] or "one"
            phrase = f"{hedge} {numerator} {fm['d']} of".strip()
            return ValuePhrase(start, fm.end(), phrase, "fraction", p)
        if fm["d"] != "half" or not re.match(r"\s+an?\s", s[fm.end() :]):
            return None
    a = _number_at(s, p)
    if a is None:
        return None
    start, hedge = _hedge_before(s, p)
    opener = _BACK_OPENER.search(s, max(0, p - 10), p)
    if opener:
        start, hedge = _hedge_before(s, opener.start())
        if start == opener.start():
            start = opener.start()
    # "several thousand", "a few hundred": an order of magnitude
    if re.fullmatch(r"(?:hundred|thousand|million)", s[p : a.end]) and _FEW_SCALE.search(
        s, max(0, p - 12), p
    ):
        few = _FEW_SCALE.search(s, max(0, p - 12), p)
        assert few is not None
        return ValuePhrase(few.start(), a.end, s[p : a.end] + "s", "magnitude", p)
    if _skip_number(s, p, a, bool(hedge)):
        return None
    sep = _RANGE_SEP.match(s, a.end)
    b = _number_at(s, sep.end()) if sep else None
    if sep and b is not None and (sep["w"] != "and" or (opener and opener[1] == "between")):
        if _is_year(s, a, p) and _is_year(s, b, sep.end()):
            return None
        if opener and _BACK_CHANGE.search(s, max(0, opener.start() - 16), p):
            # "rose from 1,000 to 3,000": the value now is the second number
            if _skip_number(s, sep.end(), b, False):
                return None
            return ValuePhrase(sep.end(), b.end, s[sep.end() : b.end], "number", sep.end())
        if not _skip_number(s, sep.end(), b, True):
            how = f"{opener[1]} " if opener else ""
            phrase = f"{hedge} {how}{s[p : b.end]}".strip()
            end = b.end
            return ValuePhrase(start if hedge or opener else p, end, phrase, "range", p)
    if opener and not hedge:
        start = p
    end = a.end
    pm = _AHEAD_PERCENT.match(s, end)
    if pm:
        if not pm[1]:
            return None  # a bare percentage is not a count
        phrase = f"{hedge} {s[p:end]}% of".strip()
        return ValuePhrase(start, pm.end(), phrase, "percent", p)
    sm = _SUFFIX.match(s, end)
    if sm:
        end = sm.end()
    return ValuePhrase(start, end, f"{hedge} {s[p:end]}".strip(), "number", p)


def _name(text: str, raw: str) -> Value:
    """A categorical value: the name as written (trimmed), with its raw phrase."""
    return Value(
        None,
        None,
        None,
        "categorical",
        "categorical.text",
        RULE_VERSION,
        raw=raw,
        text=text.strip(),
    )
