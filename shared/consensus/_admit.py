"""Admission: every claim either becomes a weighted, normalised item or is excluded
with a reason. Nothing is dropped silently."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import NamedTuple

from shared.attributes import attribute_key
from shared.consensus._weights import claim_weight
from shared.model import AttributeSpec, ClaimFacts, Estimate, Value

CATEGORICAL_KINDS = ("categorical", "state")


class Band(NamedTuple):
    """An interval with optional open ends (None) and exclusive flags."""

    lo: float | None
    lo_x: bool
    hi: float | None
    hi_x: bool


OPEN = Band(None, False, None, False)


@dataclass(slots=True)
class Item:
    """One included claim as the fusion sees it.

    `low`/`high` are the claim's effective interval (None = open). A point claim
    with an unspecified side gets its best there, so every point has an interval.
    """

    claim: ClaimFacts
    weight: float
    published: float  # UTC epoch seconds, for ordering and staleness
    origin: str  # normalised attributed_to
    low: float | None = None
    best: float | None = None
    high: float | None = None
    low_x: bool = False  # low is exclusive ("over N")
    high_x: bool = False  # high is exclusive ("under N")
    derived: bool = False  # best is not claimed by anyone (a range midpoint)
    hedge: str = "exact"
    key: str | None = None  # categorical: normalised canonical value
    text: str | None = None  # categorical: display form
    group: str = ""  # independence cluster (set by clustering)
    tokens: frozenset[str] = field(default_factory=frozenset)
    band: Band = OPEN  # (low, high) as a Band, cached by finish()
    # Who speaks for a cluster (smallest first), cached by finish(): most reliable,
    # then (numeric) most precise, then the latest statement of that origin.
    rank: tuple[float, float, float, str] = (0.0, 0.0, 0.0, "")

    def finish(self) -> Item:
        self.band = Band(self.low, self.low_x, self.high, self.high_x)
        if self.key is not None:
            width = 0.0
        elif self.low is None or self.high is None:
            width = math.inf
        else:
            width = slog(self.high) - slog(self.low)
        self.rank = (-self.weight, width, -self.published, self.claim.claim_id)
        return self

    @property
    def cid(self) -> str:
        return self.claim.claim_id

    @property
    def one_sided(self) -> bool:
        return (self.low is None) != (self.high is None)


@dataclass(slots=True)
class Admission:
    items: list[Item]
    exclusions: list[tuple[str, str]]
    constraints: list[str]


def norm_text(text: str) -> str:
    """Case- and space-insensitive form used for origins and categorical values."""
    return " ".join(text.casefold().split())


def epoch(moment: datetime | date) -> float:
    """UTC epoch seconds; naive datetimes are taken as UTC, dates as midnight UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def snap(x: float) -> float:
    """Return an int when x is integral up to float noise (12000 * (1/3) -> 4000)."""
    r = round(x)
    if abs(x - r) <= 1e-9 * max(1.0, abs(x)):
        return int(r)
    return round(x, 6)


def slog(x: float) -> float:
    """Signed log1p: the log scale for counts, defined at zero (and below)."""
    return math.copysign(math.log1p(abs(x)), x)


def slog_inv(y: float) -> float:
    return math.copysign(math.expm1(abs(y)), y)


def fmt(x: float | None) -> str:
    """12000 -> '12,000'; 12000.0 -> '12,000'; 0.25 -> '0.25'."""
    if x is None:
        return "?"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def alias_map(spec: AttributeSpec) -> dict[str, str]:
    """Normalised spelling -> canonical display name."""
    out: dict[str, str] = {}
    for canonical, alternatives in spec.value_aliases:
        for spelling in (canonical, *alternatives):
            out.setdefault(norm_text(spelling), canonical)
    return out


# What admitting one claim gave: the claim object it was computed for, the spec and
# the learned score it saw, and the item (or the exclusion reason).
Admitted = tuple[ClaimFacts, AttributeSpec, float | None, "Item | str"]


def admit(
    claims: Sequence[ClaimFacts],
    spec: AttributeSpec,
    related: Mapping[str, Estimate],
    source_scores: Mapping[str, float],
    memo: dict[str, Admitted] | None = None,
) -> Admission:
    """`memo` (claim id -> Admitted) lets a caller that re-fuses the same claims many
    times (the reconciler, once per version) admit each claim object once: admission
    is a pure function of the claim, the spec and the claim's learned score, except
    for relative claims, which also read `related` and are never memoised. An entry
    is used for an equal claim object (the same fields), so a claim modified again
    the same way (the reconciler rebuilds it for each evaluation) is not admitted
    again, and a claim modified differently is. Items are shared between calls; the only
    per-call state on them, `group`, is reassigned by every clustering."""
    out = Admission([], [], [])
    attributes = {attribute_key(a) for a in (spec.name, *spec.aliases)}
    aliases = alias_map(spec)
    categorical = spec.kind in CATEGORICAL_KINDS
    for claim in claims:
        score = source_scores.get(claim.source_id) if source_scores else None
        if memo is not None:
            hit = memo.get(claim.claim_id)
            # equal, not only the same object: the reconciler builds a modified claim (a
            # learned score, a rating) afresh for every evaluation, and admission is a pure
            # function of the claim's fields
            same = hit is not None and hit[2] == score and (hit[0] is claim or hit[0] == claim)
            if hit is not None and same and (hit[1] is spec or hit[1] == spec):
                done = hit[3]
                if isinstance(done, str):
                    out.exclusions.append((claim.claim_id, done))
                else:
                    out.items.append(done)
                continue
        reason = _gate(claim, attributes)
        if reason is None:
            if categorical:
                reason = _categorical(claim, aliases, source_scores, out)
            else:
                reason = _numeric(claim, related, source_scores, out, whole=spec.whole)
        if reason is not None:
            out.exclusions.append((claim.claim_id, reason))
        if memo is not None and claim.value.hedge != "relative":
            memo[claim.claim_id] = (claim, spec, score, reason if reason else out.items[-1])
    return out


def _gate(claim: ClaimFacts, attributes: set[str]) -> str | None:
    """Reasons that hold whatever the attribute kind, in order of precedence. An
    analyst's exclusion reads with its reason, who gave it and when (claim_note)."""
    if claim.retracted:
        return _noted(claim, "retracted")
    if claim.rank == "deprecated":
        return _noted(claim, "deprecated")
    if claim.modality == "denied":
        return "denied"
    if attribute_key(claim.attribute) not in attributes:
        return f"other attribute: {claim.attribute}"
    return None


def _noted(claim: ClaimFacts, label: str) -> str:
    """The latest analyst's note that gave this exclusion, else the bare label."""
    for note in reversed(claim.notes):
        if note.startswith(label + ":"):
            return note
    return label


def claim_note(kind: str, data: Mapping[str, object]) -> str:
    """One analyst's note on a claim as a reader sees it: what was done, the reason,
    who said it and when ("retracted: wrong unit (desk-7, 2025-07-01)"). `kind`:
    "retraction" or "assessment"; `data`: the event's payload."""
    if kind == "retraction":
        label = "retracted"
    elif data.get("rank") == "deprecated":
        label = "deprecated"
    else:
        graded = [f"{k} {data[k]}" for k in ("rank", "credibility") if data.get(k)]
        label = "assessed " + ", ".join(graded) if graded else "assessed"
    when = str(data.get("effective_at") or "")[:10]
    said = ", ".join(str(x) for x in (data.get("by"), when) if x)
    reason = str(data.get("reason") or "no reason given")
    return f"{label}: {reason}" + (f" ({said})" if said else "")


def _base(claim: ClaimFacts, source_scores: Mapping[str, float]) -> Item:
    # interned: the reconciler keeps every admitted item, and origins repeat across claims
    origin = sys.intern(norm_text(claim.attributed_to) or "source:" + norm_text(claim.source_id))
    return Item(
        claim=claim,
        weight=claim_weight(claim, source_scores),
        published=epoch(claim.published_at),
        origin=origin,
        hedge=claim.value.hedge,
    )


def _categorical(
    claim: ClaimFacts,
    aliases: Mapping[str, str],
    source_scores: Mapping[str, float],
    out: Admission,
) -> str | None:
    text = claim.value.text
    if text is None:
        # a name that looks like a number ("12" among gates "B12", "C3") was read as a
        # number at the door; in a key of names it is the name it was written as
        text = _as_name(claim.value)
    if text is None or not text.strip():
        return "not a categorical value"
    item = _base(claim, source_scores)
    key = norm_text(text)
    canonical = aliases.get(key)
    item.key = norm_text(canonical) if canonical is not None else key
    item.text = canonical if canonical is not None else text.strip()
    out.items.append(item.finish())
    return None


def _as_name(value: Value) -> str | None:
    """The text of a plain numeric point (its raw phrase, else the number as written)."""
    if value.best is None or value.best_derived or value.relative_to:
        return None
    if value.low != value.best or value.high != value.best:
        return None  # a hedged figure ("about 12") is not a name
    if value.raw and value.raw.strip():
        return value.raw.strip()
    best = value.best
    return str(int(best)) if float(best).is_integer() else repr(best)


def _numeric(
    claim: ClaimFacts,
    related: Mapping[str, Estimate],
    source_scores: Mapping[str, float],
    out: Admission,
    *,
    whole: bool = False,
) -> str | None:
    """`whole`: the attribute counts whole things, so the claim's interval is rounded
    outward to whole numbers (about 55 -> 49-61, never 49.5-60.5) and a derived best to
    the nearest whole number."""
    value = claim.value
    if not value.is_numeric:
        return "not a numeric value"
    low, best, high = value.low, value.best, value.high
    derived = value.best_derived and best is not None
    item = _base(claim, source_scores)
    if value.hedge == "relative":
        resolved = _resolve_relative(claim, related, whole)
        if resolved is None:
            return f"relative: {value.relative_to or 'reference'} unknown"
        low, high, note = resolved
        best, derived = None, False  # a resolved ratio is a bound, never a vote for best
        item.hedge = _bound_hedge(low, high)
        out.constraints.append(note)
    reason = _check_numbers(low, best, high)
    if reason is not None:
        return reason
    if whole:
        low, best, high = outward(low, False), nearest(best), outward(high, True)
    if best is not None:
        # A point claim always covers its own best; an unspecified side collapses to it.
        low = best if low is None else low
        high = best if high is None else high
    item.low, item.best, item.high, item.derived = low, best, high, derived
    item.low_x = value.low_exclusive and low is not None and low != best
    item.high_x = value.high_exclusive and high is not None and high != best
    out.items.append(item.finish())
    return None


def _check_numbers(low: float | None, best: float | None, high: float | None) -> str | None:
    numbers = [x for x in (low, best, high) if x is not None]
    if not numbers:
        return "no value"
    if any(isinstance(x, bool) or not math.isfinite(x) for x in numbers):
        return "invalid value"
    if low is not None and high is not None and low > high:
        return "invalid value: low above high"
    if best is not None and (
        (low is not None and best < low) or (high is not None and best > high)
    ):
        return "invalid value: best outside its interval"
    return None


def _bound_hedge(low: float | None, high: float | None) -> str:
    if low is None:
        return "up_to"
    if high is None:
        return "at_least"
    return "range"


def outward(x: float | None, up: bool) -> float | None:
    """A band's bound as a whole number, rounded away from the band's inside."""
    if x is None or isinstance(x, int):
        return x
    return math.ceil(x) if up else math.floor(x)


def nearest(x: float | None) -> float | None:
    """A count's point as the nearest whole number (halves round up)."""
    if x is None or isinstance(x, int):
        return x
    return math.floor(x + 0.5)


def _resolve_relative(
    claim: ClaimFacts, related: Mapping[str, Estimate], whole: bool = False
) -> tuple[float | None, float | None, str] | None:
    """Ratios of another attribute's consensus -> absolute bounds.

    The ratio is applied to the reference's best estimate ("up to a third of
    ~12,000" -> at most 4,000); without a best, a low ratio uses the reference's
    low and a high ratio its high, which keeps the bound on the safe side.
    """
    value = claim.value
    ref = related.get(value.relative_to) if value.relative_to else None
    if ref is None:
        return None
    low_ratio = value.low if value.low is not None else value.best
    high_ratio = value.high if value.high is not None else value.best
    low = _scale(low_ratio, ref.best if ref.best is not None else ref.low)
    high = _scale(high_ratio, ref.best if ref.best is not None else ref.high)
    if low is None and high is None:
        return None
    if whole:
        low, high = outward(low, False), outward(high, True)
    base = ref.best if ref.best is not None else (ref.low if low is not None else ref.high)
    # the note is an equation a reader can check: each end with the ratio that gave it
    if low is not None and high is not None:
        bound = fmt(low) if low == high else f"{fmt(low)}–{fmt(high)}"
        share = (
            _ratio_text(low_ratio)
            if low_ratio == high_ratio
            else f"{_ratio_text(low_ratio)}–{_ratio_text(high_ratio)}"
        )
    elif high is not None:
        bound, share = f"at most {fmt(high)}", _ratio_text(high_ratio)
    else:
        bound, share = f"at least {fmt(low)}", _ratio_text(low_ratio)
    note = (
        f"{claim.claim_id}: {bound} = {share} of {value.relative_to} {fmt(base)} (relative claim)"
    )
    return low, high, note


def _scale(ratio: float | None, reference: float | None) -> float | None:
    if ratio is None or reference is None:
        return None
    return snap(ratio * reference)


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "?"
    frac = Fraction(ratio).limit_denominator(100)
    if abs(float(frac) - ratio) <= 1e-9:
        return fmt(ratio) if frac.denominator == 1 else f"{frac.numerator}/{frac.denominator}"
    # not a simple fraction (half a percent, 12.3456 %): two decimals of the ratio itself
    # would misstate it ("0.01 of 10,000" for 50)
    return f"{fmt(ratio * 100)}%"
