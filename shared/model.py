"""Plain data of the domain: what a claim says and what consensus concludes.

Everything here is frozen and free of I/O so that the consensus engine, hedge
normalisation and time selection can be tested with literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Hedge = Literal[
    "exact",  # bare number
    "approximately",  # about / around / some / an estimated N
    "nearly",  # nearly / almost N
    "up_to",  # up to / as many as / at most N
    "over",  # over / more than N (exclusive)
    "at_least",  # at least N
    "under",  # fewer than / under / less than N (exclusive)
    "range",  # between A and B
    "order_of_magnitude",  # dozens / hundreds / thousands
    "relative",  # "a third of X": resolved against X's consensus
    "categorical",  # a name, not a number
]
HEDGES: tuple[str, ...] = Hedge.__args__  # type: ignore[attr-defined]

AttributeKind = Literal["stock", "delta", "cumulative", "measure", "state", "categorical"]
Modality = Literal["asserted", "reported", "estimated", "possible", "denied"]
Rank = Literal["preferred", "normal", "deprecated"]
Status = Literal["single_source", "settled", "contested", "stale", "no_data"]
# Kinds whose values count whole things (people, troops); "measure" is a reading.
COUNT_KINDS = frozenset({"stock", "delta", "cumulative"})


@dataclass(frozen=True, slots=True)
class Value:
    """A normalised claimed value. Either bound may be open (None).

    Numbers are kept exactly as claimed (ints stay ints) so that a bound equal
    to a claimed value comes back byte-identical.
    """

    low: float | None
    best: float | None
    high: float | None
    hedge: str
    rule: str  # id of the normalisation rule that produced this value
    rule_version: int = 1
    raw: str | None = None
    unit: str | None = None
    low_exclusive: bool = False
    high_exclusive: bool = False
    best_derived: bool = False  # e.g. midpoint of a range: not claimed by anyone
    text: str | None = None  # categorical / state value (a name, "withdrawn")
    # hedge "relative" ("up to a third of the initial troops"): low/best/high are
    # RATIOS of the consensus of attribute `relative_to` of the same subject,
    # e.g. up to a third -> low=None, best=None, high=1/3.
    relative_to: str | None = None

    @property
    def is_numeric(self) -> bool:
        return self.text is None and self.hedge != "categorical"


@dataclass(frozen=True, slots=True)
class ValidTime:
    """World time a claim is about: the half-open interval [start, end)."""

    start: date | None
    end: date | None
    precision: str  # day | month | season | year | interval | open
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    name: str
    kind: AttributeKind
    unit: str | None = None
    label: str | None = None
    composite_of: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # categorical value aliases: canonical name -> alternative spellings
    value_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # True for the default spec of an attribute the registry does not know: it is
    # numeric or text by its values, but nothing says it counts whole things.
    implicit: bool = False

    @property
    def whole(self) -> bool:
        """Counts (people, troops) are whole numbers; measures and unknown attributes
        keep their decimals."""
        return self.kind in COUNT_KINDS and not self.implicit


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """One claim as the consensus engine sees it (already normalised)."""

    claim_id: str
    report_id: str
    subject: str
    attribute: str
    source_id: str
    published_at: datetime
    value: Value
    attributed_to: str
    source_kind: str = "other"
    source_reliability: str | None = None  # Admiralty A-F
    cites: tuple[str, ...] = ()
    quote: str | None = None
    modality: str = "asserted"
    credibility: int | None = None  # Admiralty 1-6
    valid_time: ValidTime | None = None
    rank: str = "normal"  # analyst rank: preferred | normal | deprecated
    retracted: bool = False
    machine_proposed: bool = False
    source_score: float | None = None  # learned reliability of the source (re-weighting)
    # what analysts said about the claim (retraction, assessment), each as one readable
    # line with its reason, who said it and when (see shared.consensus.claim_note)
    notes: tuple[str, ...] = ()
    # the source this claim's source was found to copy (learned, dependence.py): where
    # the two give the same value, they are one voice
    copies_source: str | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A fused numeric estimate, used to resolve relative claims."""

    low: float | None
    best: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Cluster:
    origin: str
    claim_ids: tuple[str, ...]
    weight: float
    low: float | None
    best: float | None
    high: float | None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    valid_from: date | None
    valid_to: date | None
    low: float | None
    best: float | None
    high: float | None
    conservative: float | None
    status: str
    support: tuple[str, ...]
    dissent: tuple[str, ...]
    text: str | None = None
    explanation: str | None = None  # the answer for a date in this segment, in words
    newest_support_at: str | None = None  # ISO publication time of its newest support


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    method: str
    method_version: int
    kind: str
    unit: str | None
    low: float | None
    best: float | None
    high: float | None
    conservative: float | None
    status: str
    support: tuple[str, ...]
    dissent: tuple[str, ...]
    excluded: tuple[str, ...]
    explanation: str
    value_text: str | None = None  # categorical / state winner
    clusters: tuple[Cluster, ...] = ()
    weights: tuple[tuple[str, float], ...] = ()  # claim_id -> effective weight
    exclusions: tuple[tuple[str, str], ...] = ()  # claim_id -> reason
    constraints: tuple[str, ...] = ()  # notes from composite / relative claims
    segments: tuple[Segment, ...] = field(default=())
    # ISO publication time of the newest supporting claim: staleness is judged from it
    # at read time (shared.staleness), against the time the reader asks about
    newest_support_at: str | None = None
    notes: tuple[tuple[str, str], ...] = ()  # claim_id -> analysts' notes (reasons)
