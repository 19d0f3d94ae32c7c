"""Prior weight of one claim: who published it, how it was graded, how it is phrased.

Every factor is a plain table so that a reader can audit it; the product is the
claim's effective weight. The Admiralty code keeps source reliability (A-F) and
information credibility (1-6) separate; we multiply them here, and say so in the
weights table of every result, because consensus needs one number per voice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from shared.model import ClaimFacts

# Admiralty source reliability. F ("cannot be judged") and a missing grade are
# neutral rather than punished: most sources are never graded.
RELIABILITY: Mapping[str, float] = {
    "A": 1.0,
    "B": 0.85,
    "C": 0.65,
    "D": 0.45,
    "E": 0.25,
    "F": 0.5,
}
RELIABILITY_UNKNOWN = 0.5

# Kind of publisher. Curated datasets and analysts' syntheses rank above news;
# official statements come from interested parties (belligerents), so they sit
# below news even though they are often the primary source.
SOURCE_KIND: Mapping[str, float] = {
    "dataset": 1.0,
    "think_tank": 0.9,
    "news": 0.85,
    "official": 0.8,
    "other": 0.6,
    "blog": 0.5,
    "social": 0.4,
}
SOURCE_KIND_UNKNOWN = 0.6

# Admiralty information credibility. 6 ("cannot be judged") equals no grade.
CREDIBILITY: Mapping[int, float] = {1: 1.0, 2: 0.85, 3: 0.65, 4: 0.4, 5: 0.2, 6: 0.6}
CREDIBILITY_UNKNOWN = 0.6

# Analyst rank (Wikidata style). "deprecated" never reaches weighting: it is excluded.
RANK: Mapping[str, float] = {"preferred": 1.5, "normal": 1.0}

# How the claim is phrased. "denied" never reaches weighting: it is excluded.
MODALITY: Mapping[str, float] = {
    "asserted": 1.0,
    "reported": 0.9,
    "estimated": 0.9,
    "possible": 0.5,
}
MODALITY_UNKNOWN = 0.9

# Claims proposed by an extractor and not confirmed by a person.
MACHINE_PROPOSED = 0.7

# Learned agreement scores are clamped so one source can neither silence itself
# completely (an included claim always keeps a voice) nor drown everyone else.
SCORE_MIN = 0.05
SCORE_MAX = 20.0


def claim_weight(claim: ClaimFacts, source_scores: Mapping[str, float]) -> float:
    """Effective weight of one claim (rounded so that results serialise stably).

    The learned score is the claim's own (`source_score`, set by a stored
    re-weighting) when it has one, else the caller's `source_scores`."""
    score = claim.source_score
    if score is None:
        score = source_scores.get(claim.source_id, 1.0)
    return round(prior_weight(claim) * clamp_score(score), 6)


def clamp_score(score: float) -> float:
    if not math.isfinite(score):
        return 1.0
    return min(max(score, SCORE_MIN), SCORE_MAX)


def prior_weight(claim: ClaimFacts) -> float:
    """Weight before any learned score: grades, kind, rank, phrasing (unrounded)."""
    reliability = (claim.source_reliability or "").strip().upper()
    weight = RELIABILITY.get(reliability, RELIABILITY_UNKNOWN)
    weight *= SOURCE_KIND.get(claim.source_kind, SOURCE_KIND_UNKNOWN)
    if claim.credibility is None:
        weight *= CREDIBILITY_UNKNOWN
    else:
        weight *= CREDIBILITY.get(claim.credibility, CREDIBILITY_UNKNOWN)
    weight *= RANK.get(claim.rank, 1.0)
    weight *= MODALITY.get(claim.modality, MODALITY_UNKNOWN)
    if claim.machine_proposed:
        weight *= MACHINE_PROPOSED
    return weight
