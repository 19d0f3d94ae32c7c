"""Learned source reliability: truth-discovery weighting over every numeric key.

Iterative, in the CRH/TruthFinder family, and pure (plain data in, plain data out;
no clock, no randomness, sorted iteration, so the same observations in any order
give the same scores):

1. consensus per key: the point the product itself uses, by the key's decision
   rule (`_numeric.best_by_rule`). Counts: the weighted mode when independent
   clusters repeat one exact value with a clear share of the weight, else the
   lower weighted median. Measures (observations with rule PLURALITY): the
   weighted plurality of exact values. One point per independence cluster, the
   cluster weighing as its heaviest member, same tie-break, with weight = prior x
   score per source, rounded as `_weights.claim_weight` does;
2. per claim agreement with that consensus, measured the way the rule decides.
   Counts: 1 inside the relative `tolerance`, 0 beyond `tolerance * span` in log
   space, linear in between. The loss is capped by construction, so a claim off by
   x1000 costs exactly as much as one off by x2: an extreme outlier cannot dominate
   a source's score (the Huber-cap variant of CATD's robustness). Measures: 1 for
   the exact reading chosen, else 0 (categorical, as TruthFinder);
3. per source and rule, agreement shrunk toward that rule's pooled agreement with
   `pseudo_count` pseudo-claims (empirical Bayes): a source with one claim stays
   near the average, a source with hundreds speaks for itself;
4. score = the product over the rules the source has claims under of
   (TruthFinder's trustworthiness -ln(1 - agreement) relative to the pooled one)
   ** the rule's exponent, so an unknown source scores 1.0 (its weight is its
   prior). For counts the default `exponent` 0.3 is gentle: a proven source wins a
   one-against-one dispute, not yet one against two (tuned on the Population
   benchmark, where sharper scores let a prolific bot drown careful editors). For
   measures `plurality_exponent` 1.0 is TruthFinder's own trustworthiness ratio,
   untempered (chosen on the Weather benchmark among 0.3-3; bench/RESULTS.md);
5. repeat until no score moves by more than `epsilon` or `max_rounds`.

Only disputed keys teach anything: two or more independent clusters that do not
all claim the same value. A lone claim always agrees with itself, and a unanimous
key agrees with any weighting, so it cannot tell sources apart; counted, it only
pulls every agreement toward 1 and credits a prolific source for thousands of
unopposed repetitions (on Population, 3,567 of the 3,944 contested claims of the bot
`capitalbot` were unanimous), which compresses the scores of everyone else.

The scores feed `compute_consensus(..., source_scores=...)`, which multiplies
them into each claim's prior weight (clamped there to [SCORE_MIN, SCORE_MAX]).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.consensus._admit import slog
from shared.consensus._numeric import MEDIAN_OR_MODE, PLURALITY, best_by_rule
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
    rule: str = MEDIAN_OR_MODE  # the key's decision rule (PLURALITY: a measure's reading)


@dataclass(frozen=True, slots=True)
class Params:
    tolerance: float = 0.01  # relative error still counted as full agreement
    span: float = 2.0  # full disagreement from tolerance * span on
    pseudo_count: float = 20.0  # pseudo-claims at the pooled agreement (shrinkage)
    exponent: float = 0.3  # score = (trust / pooled trust) ** exponent, counts
    plurality_exponent: float = 1.0  # the same for measures (exact-reading agreement)
    max_rounds: int = 20
    epsilon: float = 1e-6

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tolerance": self.tolerance,
            "span": self.span,
            "pseudo_count": self.pseudo_count,
            "exponent": self.exponent,
            "plurality_exponent": self.plurality_exponent,
            "max_rounds": self.max_rounds,
            "epsilon": self.epsilon,
        }


@dataclass(frozen=True, slots=True)
class Reliability:
    scores: dict[str, float]  # source_id -> multiplier of its prior weight
    agreement: dict[str, float]  # source_id -> shrunk agreement in (0, 1)
    claims: dict[str, int]  # source_id -> claims judged (on disputed keys)
    pooled: float  # agreement of the average claim
    rounds: int
    converged: bool
    consensus: dict[str, float] = field(default_factory=dict)  # key -> best


@dataclass(slots=True)
class _Cluster:
    origin: str
    members: list[Observation]


@dataclass(slots=True)
class _Key:
    rule: str
    clusters: list[_Cluster]


def learn_reliability(
    observations: Iterable[Observation], params: Params = Params()
) -> Reliability:
    """Scores per source from their agreement with the consensus they shape."""
    keys = _by_key(observations)
    contested = {k: key for k, key in keys.items() if _disputed(key)}
    sources = sorted(
        {m.source_id for key in contested.values() for c in key.clusters for m in c.members}
    )
    rules = sorted({key.rule for key in contested.values()})
    exponents = {MEDIAN_OR_MODE: params.exponent, PLURALITY: params.plurality_exponent}
    scores = dict.fromkeys(sources, 1.0)
    agreement: dict[str, float] = {}
    counts: dict[str, int] = {}
    pooled = 0.5
    converged = False
    rounds = 0
    while rounds < params.max_rounds:
        rounds += 1
        sums: dict[str, dict[str, list[float]]] = {r: {s: [] for s in sources} for r in rules}
        for key in contested.values():
            best, voices = _fused(key, scores)
            by_source = sums[key.rule]
            # Counts: every claim is judged (a stale figure is a wrong figure). Measures:
            # only each cluster's voice, its current reading, as the fusion counts it; a
            # reading the source itself has since updated is not held against it.
            judged = (
                voices if key.rule == PLURALITY else [m for c in key.clusters for m in c.members]
            )
            for m in judged:
                by_source[m.source_id].append(_agree(m.value, best, key.rule, params))
        total = [a for r in rules for s in sources for a in sums[r][s]]
        pooled = _clip01(math.fsum(total) / len(total)) if total else 0.5
        pooled_by_rule = {r: _pooled(sums[r], sources) for r in rules}
        new: dict[str, float] = {}
        for s in sources:
            ratio, shrunk_sum, n_all = 1.0, 0.0, 0
            for r in rules:
                mine = sums[r][s]
                n = len(mine)
                if not n:
                    continue
                base = pooled_by_rule[r]
                shrunk = (math.fsum(mine) + params.pseudo_count * base) / (n + params.pseudo_count)
                shrunk = round(_clip01(shrunk), 9)
                ratio *= (_trust(shrunk) / _trust(base)) ** exponents[r]
                shrunk_sum += shrunk * n
                n_all += n
            agreement[s] = round(shrunk_sum / n_all, 9)
            counts[s] = n_all
            new[s] = round(min(max(ratio, SCORE_MIN), SCORE_MAX), 6)
        moved = max((abs(new[s] - scores[s]) for s in sources), default=0.0)
        scores = new
        if moved <= params.epsilon:
            converged = True
            break
    final = {k: _best(key, scores) for k, key in keys.items()}
    return Reliability(
        scores=scores,
        agreement=agreement,
        claims=counts,
        pooled=round(pooled, 9),
        rounds=rounds,
        converged=converged,
        consensus=final,
    )


def _disputed(key: _Key) -> bool:
    if len(key.clusters) < 2:
        return False
    first = key.clusters[0].members[0].value
    return any(m.value != first for c in key.clusters for m in c.members)


def _pooled(sums: Mapping[str, list[float]], sources: list[str]) -> float:
    total = [a for s in sources for a in sums[s]]
    return _clip01(math.fsum(total) / len(total)) if total else 0.5


def _by_key(observations: Iterable[Observation]) -> dict[str, _Key]:
    grouped: dict[str, dict[str, list[Observation]]] = {}
    plurality: set[str] = set()
    for o in observations:
        if not math.isfinite(o.value):
            continue
        origin = " ".join((o.origin or o.source_id).casefold().split())
        grouped.setdefault(o.key, {}).setdefault(origin, []).append(o)
        if o.rule == PLURALITY:
            plurality.add(o.key)  # as the fusion: one measure reading makes the key a measure
    out: dict[str, _Key] = {}
    for key in sorted(grouped):
        clusters = [
            _Cluster(origin, sorted(members, key=lambda m: (m.claim_id, m.source_id, m.value)))
            for origin, members in sorted(grouped[key].items())
        ]
        out[key] = _Key(PLURALITY if key in plurality else MEDIAN_OR_MODE, clusters)
    return out


def _weight(o: Observation, scores: Mapping[str, float]) -> float:
    """As _weights.claim_weight: prior x clamped score, rounded the same way."""
    return round(o.prior * clamp_score(scores.get(o.source_id, 1.0)), 6)


def _best(key: _Key, scores: Mapping[str, float]) -> float:
    return _fused(key, scores)[0]


def _fused(key: _Key, scores: Mapping[str, float]) -> tuple[float, list[Observation]]:
    """The product's fusion for point claims: each cluster votes once with its
    heaviest member (then latest, then smallest claim id) and that weight. Returns
    the point and the clusters' voices."""
    entries = []
    voices = []
    for c in key.clusters:
        rep = min(c.members, key=lambda m: (-_weight(m, scores), -m.published, m.claim_id))
        entries.append((rep.value, _weight(rep, scores), c.origin))
        voices.append(rep)
    return best_by_rule(entries, key.rule), voices


def _agree(value: float, best: float, rule: str, params: Params) -> float:
    if rule == PLURALITY:
        return 1.0 if value == best else 0.0
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
