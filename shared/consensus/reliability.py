"""Learned source reliability: truth-discovery weighting over every numeric key.

Iterative, in the CRH/TruthFinder family, and pure (plain data in, plain data out;
no clock, no randomness, sorted iteration, so the same observations in any order
give the same scores):

1. consensus per key: the point the product itself uses (`_numeric.point_best`:
   the weighted mode when independent clusters repeat one exact
   value with a clear share of the weight, else the lower weighted median; one
   point per independence cluster, the cluster weighing as its heaviest member,
   same tie-break), with weight = prior x score per source, rounded as `_weights.claim_weight` does;
2. per claim agreement with that consensus: 1 inside the relative `tolerance`,
   0 beyond `tolerance * span` in log space, linear in between. The loss is
   capped by construction, so a claim off by x1000 costs exactly as much as one
   off by x2: an extreme outlier cannot dominate a source's score (the Huber-cap
   variant of CATD's robustness);
3. per source, agreement shrunk toward the pooled agreement with `pseudo_count`
   pseudo-claims (empirical Bayes): a source with one claim stays near the
   average, a source with hundreds speaks for itself;
4. score = (TruthFinder's trustworthiness -ln(1 - agreement) relative to the
   pooled one) ** `exponent`, so an unknown source scores 1.0 (its weight is its
   prior). The default exponent 0.3 is gentle: a proven source wins a one-against-
   one dispute, not yet one against two (tuned on the Population benchmark, where
   sharper scores let a prolific bot drown careful editors; bench/RESULTS.md);
5. repeat until no score moves by more than `epsilon` or `max_rounds`.

Only keys with two or more independent clusters teach anything: a lone claim
always agrees with itself.

The scores feed `compute_consensus(..., source_scores=...)`, which multiplies
them into each claim's prior weight (clamped there to [SCORE_MIN, SCORE_MAX]).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.consensus._admit import slog
from shared.consensus._numeric import point_best
from shared.consensus._weights import SCORE_MAX, SCORE_MIN, clamp_score

METHOD = "truth-discovery-agreement"
METHOD_VERSION = 1


@dataclass(frozen=True, slots=True)
class Observation:
    """One numeric point claim as the learner sees it."""

    key: str  # the (subject, attribute) it is about, in any stable spelling
    source_id: str
    value: float
    origin: str = ""  # independence cluster within the key; defaults to source_id
    published: float = 0.0  # epoch seconds: a cluster speaks with its latest claim
    claim_id: str = ""  # last tie-break, as in the product (smallest id)
    prior: float = 1.0  # the claim's weight before learning (_weights.prior_weight)


@dataclass(frozen=True, slots=True)
class Params:
    tolerance: float = 0.01  # relative error still counted as full agreement
    span: float = 2.0  # full disagreement from tolerance * span on
    pseudo_count: float = 20.0  # pseudo-claims at the pooled agreement (shrinkage)
    exponent: float = 0.3  # score = (trust / pooled trust) ** exponent
    max_rounds: int = 20
    epsilon: float = 1e-6

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tolerance": self.tolerance,
            "span": self.span,
            "pseudo_count": self.pseudo_count,
            "exponent": self.exponent,
            "max_rounds": self.max_rounds,
            "epsilon": self.epsilon,
        }


@dataclass(frozen=True, slots=True)
class Reliability:
    scores: dict[str, float]  # source_id -> multiplier of its prior weight
    agreement: dict[str, float]  # source_id -> shrunk agreement in (0, 1)
    claims: dict[str, int]  # source_id -> claims on contested keys
    pooled: float  # agreement of the average claim
    rounds: int
    converged: bool
    consensus: dict[str, float] = field(default_factory=dict)  # key -> best


@dataclass(slots=True)
class _Cluster:
    origin: str
    members: list[Observation]


def learn_reliability(
    observations: Iterable[Observation], params: Params = Params()
) -> Reliability:
    """Scores per source from their agreement with the consensus they shape."""
    keys = _by_key(observations)
    contested = {k: cs for k, cs in keys.items() if len(cs) > 1}
    sources = sorted({m.source_id for cs in contested.values() for c in cs for m in c.members})
    scores = dict.fromkeys(sources, 1.0)
    agreement: dict[str, float] = {}
    counts: dict[str, int] = {}
    pooled = 0.5
    converged = False
    rounds = 0
    while rounds < params.max_rounds:
        rounds += 1
        sums: dict[str, list[float]] = {s: [] for s in sources}
        for cs in contested.values():
            best = _best(cs, scores)
            for c in cs:
                for m in c.members:
                    sums[m.source_id].append(_agree(m.value, best, params))
        total = [a for s in sources for a in sums[s]]
        pooled = _clip01(math.fsum(total) / len(total)) if total else 0.5
        base = _trust(pooled)
        new: dict[str, float] = {}
        for s in sources:
            n = len(sums[s])
            shrunk = (math.fsum(sums[s]) + params.pseudo_count * pooled) / (n + params.pseudo_count)
            agreement[s] = round(_clip01(shrunk), 9)
            counts[s] = n
            ratio = (_trust(agreement[s]) / base) ** params.exponent
            new[s] = round(min(max(ratio, SCORE_MIN), SCORE_MAX), 6)
        moved = max((abs(new[s] - scores[s]) for s in sources), default=0.0)
        scores = new
        if moved <= params.epsilon:
            converged = True
            break
    final = {k: _best(cs, scores) for k, cs in keys.items()}
    return Reliability(
        scores=scores,
        agreement=agreement,
        claims=counts,
        pooled=round(pooled, 9),
        rounds=rounds,
        converged=converged,
        consensus=final,
    )


def _by_key(observations: Iterable[Observation]) -> dict[str, list[_Cluster]]:
    grouped: dict[str, dict[str, list[Observation]]] = {}
    for o in observations:
        if not math.isfinite(o.value):
            continue
        origin = " ".join((o.origin or o.source_id).casefold().split())
        grouped.setdefault(o.key, {}).setdefault(origin, []).append(o)
    out: dict[str, list[_Cluster]] = {}
    for key in sorted(grouped):
        out[key] = [
            _Cluster(origin, sorted(members, key=lambda m: (m.claim_id, m.source_id, m.value)))
            for origin, members in sorted(grouped[key].items())
        ]
    return out


def _weight(o: Observation, scores: Mapping[str, float]) -> float:
    """As _weights.claim_weight: prior x clamped score, rounded the same way."""
    return round(o.prior * clamp_score(scores.get(o.source_id, 1.0)), 6)


def _best(clusters: list[_Cluster], scores: Mapping[str, float]) -> float:
    """The product's fusion for point claims: each cluster votes once with its
    heaviest member (then latest, then smallest claim id) and that weight."""
    entries = []
    for c in clusters:
        rep = min(c.members, key=lambda m: (-_weight(m, scores), -m.published, m.claim_id))
        entries.append((rep.value, _weight(rep, scores), c.origin))
    return point_best(entries)


def _agree(value: float, best: float, params: Params) -> float:
    tol = math.log1p(params.tolerance)
    d = abs(slog(value) - slog(best))
    if d <= tol:
        return 1.0
    return max(0.0, 1.0 - (d - tol) / (tol * (params.span - 1.0)))


def _clip01(x: float) -> float:
    return min(max(x, 1e-6), 1.0 - 1e-6)


def _trust(agreement: float) -> float:
    """TruthFinder's trustworthiness score: -ln(1 - t)."""
    return -math.log(1.0 - agreement)
