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
4. score = the geometric mean, over the rules the source has claims under and
   weighted by its claims there, of a factor relative to the pooled source, so an
   unknown source scores 1.0 (its weight is its prior). Counts: TruthFinder's
   trustworthiness -ln(1 - agreement) relative to the pooled one, ** `exponent`
   0.3, gentle: a proven source wins a one-against-one dispute, not yet one against
   two (tuned on the Population benchmark, where sharper scores let a prolific bot
   drown careful editors). Names, measures and exact readings: AccuCopy's vote count
   ln(n A / (1 - A)) relative to the pooled one, n the false values per object
   estimated from the data (`_vote`): under the model of independent readers this
   is the weight whose plurality picks the most probable value (issue 18). Exact
   readings: a count's attribute whose sources mostly repeat one another's exact
   values (`_judged_rules`) is judged right or wrong, as a measure;
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
from dataclasses import dataclass, field, replace

from shared.consensus._admit import slog
from shared.consensus._numeric import (
    EXACT_SHARE,
    MEDIAN_OR_MODE,
    PLURALITY,
    best_by_rule,
    exact_readings,
)
from shared.consensus._weights import SCORE_MAX, SCORE_MIN, clamp_score
from shared.consensus.dependence import (
    Copying,
    DependenceParams,
    detect_copying,
    discount,
    false_values_per_object,
)

# Accuracy every source is given before anything is learned (AccuCopy's start)
INITIAL_ACCURACY = 0.8
# A categorical key's rule: a weighted plurality of names, as the fusion's vote (_vote)
CATEGORICAL = "categorical"

# The smallest vote count (log-odds) taken at face value (`_vote`)
VOTE_FLOOR = 0.05

METHOD = "truth-discovery-agreement"
METHOD_VERSION = 1


@dataclass(frozen=True, slots=True)
class Observation:
    """One point claim as the learner sees it: a number, or a categorical value's
    normalised text."""

    key: str  # the (subject, attribute) it is about, in any stable spelling
    source_id: str
    value: float | str
    origin: str = ""  # independence cluster within the key; defaults to source_id
    published: float = 0.0  # epoch seconds: a cluster speaks with its latest claim
    claim_id: str = ""  # last tie-break, as in the product (smallest id)
    prior: float = 1.0  # the claim's weight before learning (_weights.prior_weight)
    rule: str = MEDIAN_OR_MODE  # the key's decision rule (PLURALITY: a measure's reading)
    attribute: str = ""  # the attribute it is about: exact readings are told per attribute
    # an analyst's assessment: "preferred" is a gold answer for its key (it anchors what
    # the learner counts as right there), "deprecated" a known error of its source
    rank: str = "normal"


@dataclass(frozen=True, slots=True)
class Params:
    tolerance: float = 0.01  # relative error still counted as full agreement
    span: float = 2.0  # full disagreement from tolerance * span on
    pseudo_count: float = 20.0  # pseudo-claims at the pooled agreement (shrinkage)
    exponent: float = 0.3  # score = (trust / pooled trust) ** exponent, counts
    plurality_exponent: float = 1.0  # the same for vote counts (names, readings)
    max_rounds: int = 20
    epsilon: float = 1e-6
    gold_weight: int = 5  # judgements one analyst verdict (preferred, deprecated) counts as
    # None: no copy detection
    dependence: DependenceParams | None = field(default_factory=DependenceParams)

    def as_dict(self) -> dict[str, float | int | dict[str, float | int | list[float]] | None]:
        return {
            "tolerance": self.tolerance,
            "span": self.span,
            "pseudo_count": self.pseudo_count,
            "exponent": self.exponent,
            "plurality_exponent": self.plurality_exponent,
            "max_rounds": self.max_rounds,
            "epsilon": self.epsilon,
            "gold_weight": self.gold_weight,
            "dependence": None if self.dependence is None else self.dependence.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Reliability:
    scores: dict[str, float]  # source_id -> multiplier of its prior weight
    agreement: dict[str, float]  # source_id -> shrunk agreement in (0, 1)
    claims: dict[str, int]  # source_id -> claims judged (on disputed keys)
    pooled: float  # agreement of the average claim
    rounds: int
    converged: bool
    consensus: dict[str, float | str] = field(default_factory=dict)  # key -> best
    copies: dict[str, Copying] = field(default_factory=dict)  # copier -> finding


@dataclass(slots=True)
class _Cluster:
    origin: str
    members: list[Observation]


@dataclass(slots=True)
class _Key:
    rule: str
    clusters: list[_Cluster]
    refuted: list[Observation] = field(default_factory=list)  # deprecated by an analyst

    # the rule a claim here is judged by (`_judged_rules`)
    judged: str = MEDIAN_OR_MODE

    @property
    def anchor(self) -> Observation | None:
        """The heaviest claim an analyst marked preferred: the key's gold answer."""
        gold = [m for c in self.clusters for m in c.members if m.rank == "preferred"]
        return min(gold, key=lambda m: (-m.prior, m.claim_id)) if gold else None


def learn_reliability(
    observations: Iterable[Observation], params: Params = Params()
) -> Reliability:
    """Scores per source from their agreement with the consensus they shape."""
    keys = _by_key(observations)
    contested = {k: key for k, key in keys.items() if _disputed(key)}
    _judged_rules(contested)
    sources = sorted(
        {m.source_id for key in contested.values() for c in key.clusters for m in c.members}
        | {m.source_id for key in contested.values() for m in key.refuted}
    )
    rules = sorted({key.judged for key in contested.values()})
    exponents = {
        MEDIAN_OR_MODE: params.exponent,
        PLURALITY: params.plurality_exponent,
        CATEGORICAL: params.plurality_exponent,
    }
    scores = dict.fromkeys(sources, 1.0)
    n_false = false_values_per_object(
        {name: _answers(key) for name, key in contested.items() if len(key.clusters) > 1}
    )
    agreement: dict[str, float] = {}
    counts: dict[str, int] = {}
    copies: dict[str, Copying] = {}
    judged_copies: dict[str, str] = {}  # copier -> original, as the round before found
    pooled = 0.5
    converged = False
    same_time = False
    rounds = 0
    while rounds < params.max_rounds:
        rounds += 1
        if params.dependence is not None:
            # copying is judged first, from the consensus as it stands (in the first
            # round: every source equally accurate, as AccuCopy starts), so that a
            # copier's repetitions stop counting before they shape what counts as true
            accuracy = agreement or dict.fromkeys(sources, INITIAL_ACCURACY)
            copies = _copying(keys, accuracy, copies, params.dependence, same_time)
        sums: dict[str, dict[str, list[float]]] = {r: {s: [] for s in sources} for r in rules}
        for key in contested.values():
            best, voices = _fused(key, scores, copies)
            anchor = key.anchor
            if anchor is not None:
                best = anchor.value  # analysts' gold answers teach what is right
            elif key.rule == CATEGORICAL and _tied(voices, scores):
                voices = []  # decided by the alphabet, not the sources: teaches nothing
            by_source = sums[key.judged]
            # an analyst's verdict is gold: it counts as `gold_weight` judgements, so a
            # few assessments outweigh the consensus the sources make among themselves
            taught = params.gold_weight if anchor is not None else 1
            for m in key.refuted:  # a claim an analyst deprecated was wrong
                by_source[m.source_id].extend([0.0] * params.gold_weight)
            # Counts: every claim is judged (a stale figure is a wrong figure). Measures
            # and names: only each cluster's voice, its current reading, as the fusion
            # counts it; a reading the source itself has since updated is not held
            # against it.
            judged = (
                voices
                if key.judged in (PLURALITY, CATEGORICAL)
                else [m for c in key.clusters for m in c.members]
            )
            for m in judged:
                agree = _agree(m.value, best, key.judged, params)
                by_source[m.source_id].extend([agree] * taught)
        total = [a for r in rules for s in sources for a in sums[r][s]]
        pooled = _clip01(math.fsum(total) / len(total)) if total else 0.5
        pooled_by_rule = {r: _pooled(sums[r], sources) for r in rules}
        new: dict[str, float] = {}
        for s in sources:
            log_ratio, shrunk_sum, n_all = 0.0, 0.0, 0
            for r in rules:
                mine = sums[r][s]
                n = len(mine)
                if not n:
                    continue
                base = pooled_by_rule[r]
                shrunk = (math.fsum(mine) + params.pseudo_count * base) / (n + params.pseudo_count)
                shrunk = round(_clip01(shrunk), 9)
                if r == MEDIAN_OR_MODE:
                    factor = (_trust(shrunk) / _trust(base)) ** exponents[r]
                else:
                    factor = (_vote(shrunk, n_false) / _vote(base, n_false)) ** exponents[r]
                # one score per source: the rules' factors averaged (geometric, by claims),
                # so a source judged under two rules is not scored twice as sharply
                log_ratio += n * math.log(max(factor, 1e-9))
                shrunk_sum += shrunk * n
                n_all += n
            if not n_all:
                # disputed only where nothing is taught (a tie of names): no judgement, so
                # the pooled source, as its shrinkage with no claims would make it
                agreement[s], counts[s], new[s] = round(pooled, 9), 0, 1.0
                continue
            agreement[s] = round(shrunk_sum / n_all, 9)
            counts[s] = n_all
            ratio = math.exp(log_ratio / n_all)
            new[s] = round(min(max(ratio, SCORE_MIN), SCORE_MAX), 6)
        moved = max((abs(new[s] - scores[s]) for s in sources), default=0.0)
        scores = new
        pairs = {c: f.original for c, f in copies.items()}
        if pairs != judged_copies:
            moved, judged_copies = math.inf, pairs
        if moved <= params.epsilon:
            if params.dependence is not None and not same_time:
                same_time = True
                continue
            converged = True
            break
    final = {k: _best(key, scores, copies) for k, key in keys.items()}
    return Reliability(
        scores=scores,
        agreement=agreement,
        claims=counts,
        pooled=round(pooled, 9),
        rounds=rounds,
        converged=converged,
        consensus=final,
        copies=copies,
    )


def _copying(
    keys: Mapping[str, _Key],
    accuracy: Mapping[str, float],
    previous: Mapping[str, Copying],
    params: DependenceParams,
    same_time: bool = False,
) -> dict[str, Copying]:
    """Copy findings under the current accuracies: each source's latest answer per key,
    and how likely each answer is true (dependence.py)."""
    values: dict[str, dict[str, float | str]] = {}
    published: dict[str, dict[str, float]] = {}
    shared = [k for k in keys.values() if len(k.clusters) > 1]
    n = false_values_per_object({str(i): _answers(k) for i, k in enumerate(shared)})
    kept = {s: discount(f, params) for s, f in previous.items()}  # copiers' share of a vote
    belief: dict[str, dict[float | str, float]] = {}
    for name, key in keys.items():
        latest: dict[str, Observation] = {}
        for c in key.clusters:
            for m in c.members:
                held = latest.get(m.source_id)
                if held is None or (m.published, m.claim_id) > (held.published, held.claim_id):
                    latest[m.source_id] = m
        if len(latest) < 2:
            continue
        values[name] = {s: m.value for s, m in latest.items()}
        published[name] = {s: m.published for s, m in latest.items()}
        belief[name] = _belief(key, accuracy, kept, n)
    return detect_copying(values, published, belief, accuracy, params, same_time)


def _answers(key: _Key) -> dict[str, float | str]:
    return {c.origin: c.members[-1].value for c in key.clusters}


def _belief(
    key: _Key, accuracy: Mapping[str, float], kept: Mapping[str, float], n: int
) -> dict[float | str, float]:
    """P(answer is true) as AccuCopy's vote count: each source's voice counts
    ln(n A / (1 - A)) for its accuracy A, times the share of its voice it keeps after
    copy discounts (`kept`); softmax over the answers given and the n + 1 - |given|
    answers nobody gave (vote count 0). Sharper than weight shares: two accurate
    sources that agree make their answer near certain, which keeps them from being
    taken for copiers of a false value."""
    count: dict[float | str, float] = {}
    for c in key.clusters:
        voice = max(c.members, key=lambda m: (m.published, m.claim_id))
        a = min(max(accuracy.get(voice.source_id, 0.5), 0.05), 0.95)
        vote = math.log(n * a / (1 - a)) * kept.get(voice.source_id, 1.0)
        count[voice.value] = count.get(voice.value, 0.0) + vote
    top = max(count.values())
    unseen = max(0, n + 1 - len(count))
    weights = {v: math.exp(c - top) for v, c in count.items()}
    total = math.fsum(weights.values()) + unseen * math.exp(-top)
    return {v: w / total for v, w in weights.items()}


def _judged_rules(contested: Mapping[str, _Key]) -> None:
    """A count's key is judged as a measure's, right or wrong, when its attribute's
    sources give exact readings: on the attribute's disputed keys, at least
    EXACT_SHARE of the clusters give a value another cluster of the key gives too (a
    gate, a departure time, a seat count; not a population estimate, whose sources
    differ by a little). Else a relative tolerance judges it, which for a departure
    time in epoch seconds would be meaninglessly wide. Per attribute, where a key alone
    has too few claims to say."""
    repeated: dict[str, int] = {}
    total: dict[str, int] = {}
    for key in contested.values():
        if key.rule != MEDIAN_OR_MODE or len(key.clusters) < 2:
            continue
        attribute = key.clusters[0].members[0].attribute
        values = [c.members[-1].value for c in key.clusters]
        count: dict[float | str, int] = {}
        for v in values:
            count[v] = count.get(v, 0) + 1
        repeated[attribute] = repeated.get(attribute, 0) + sum(n for n in count.values() if n > 1)
        total[attribute] = total.get(attribute, 0) + len(values)
    exact = {a for a, n in total.items() if repeated[a] >= EXACT_SHARE * n}
    for key in contested.values():
        if key.rule == MEDIAN_OR_MODE and key.clusters[0].members[0].attribute in exact:
            key.judged = PLURALITY
        else:
            key.judged = key.rule


def _disputed(key: _Key) -> bool:
    if key.refuted or (key.anchor is not None and len(key.clusters) > 1):
        return True
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
    categorical: set[str] = set()
    refuted: dict[str, list[Observation]] = {}
    for o in observations:
        if isinstance(o.value, str):
            categorical.add(o.key)
        elif not math.isfinite(o.value):
            continue
        if o.rank == "deprecated":
            refuted.setdefault(o.key, []).append(o)
            continue
        origin = " ".join((o.origin or o.source_id).casefold().split())
        grouped.setdefault(o.key, {}).setdefault(origin, []).append(o)
        if o.rule == PLURALITY:
            plurality.add(o.key)  # as the fusion: one measure reading makes the key a measure
    out: dict[str, _Key] = {}
    for key in sorted(grouped):
        rule = PLURALITY if key in plurality else MEDIAN_OR_MODE
        members_of = grouped[key]
        if key in categorical:
            # a key's kind is decided by all its claims: one name makes every value a name
            rule = CATEGORICAL
            members_of = {
                origin: [replace(m, value=_as_text(m.value)) for m in members]
                for origin, members in members_of.items()
            }
        clusters = [
            _Cluster(origin, sorted(members, key=lambda m: (m.claim_id, m.source_id, str(m.value))))
            for origin, members in sorted(members_of.items())
        ]
        out[key] = _Key(rule, clusters, sorted(refuted.get(key, []), key=lambda m: m.claim_id))
    return out


def _as_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(value)


def _weight(o: Observation, scores: Mapping[str, float]) -> float:
    """As _weights.claim_weight: prior x clamped score, rounded the same way."""
    return round(o.prior * clamp_score(scores.get(o.source_id, 1.0)), 6)


def _best(
    key: _Key, scores: Mapping[str, float], copies: Mapping[str, Copying] | None = None
) -> float | str:
    return _fused(key, scores, copies)[0]


def _fused(
    key: _Key, scores: Mapping[str, float], copies: Mapping[str, Copying] | None = None
) -> tuple[float | str, list[Observation]]:
    """The product's fusion for point claims: each cluster votes once with its
    heaviest member (then latest, then smallest claim id) and that weight; a cluster
    whose source copies another's with the same value joins it (_cluster's learned
    copies). Returns the point and the clusters' own voices (before joining: each
    is judged for what it said)."""
    voices = [
        min(c.members, key=lambda m: (-_weight(m, scores), -m.published, m.claim_id))
        for c in key.clusters
    ]
    joined = _join_copies(key, copies) if copies else list(range(len(key.clusters)))
    heaviest: dict[int, Observation] = {}
    for i, c in enumerate(key.clusters):
        root = joined[i]
        for m in c.members:
            held = heaviest.get(root)
            rank = (-_weight(m, scores), -m.published, m.claim_id)
            if held is None or rank < (-_weight(held, scores), -held.published, held.claim_id):
                heaviest[root] = m
    entries = (
        [(m.value, _weight(m, scores), key.clusters[root].origin) for root, m in heaviest.items()]
        if copies
        else [
            (v.value, _weight(v, scores), c.origin)
            for v, c in zip(voices, key.clusters, strict=True)
        ]
    )
    if key.rule == CATEGORICAL:
        return _plurality_text(entries), voices  # type: ignore[arg-type]
    exact = key.rule == MEDIAN_OR_MODE and exact_readings(
        [(float(_latest(c).value), 1.0, c.origin) for c in key.clusters]
    )
    return best_by_rule(entries, key.rule, exact), voices  # type: ignore[arg-type]


def _latest(c: _Cluster) -> Observation:
    """The origin's latest claim (as _numeric.origin_readings)."""
    return max(c.members, key=lambda m: (m.published, m.claim_id))


def _join_copies(key: _Key, copies: Mapping[str, Copying]) -> list[int]:
    """Cluster index -> the index of the cluster it votes with (the smallest joined)."""
    parent = list(range(len(key.clusters)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    owners: dict[tuple[str, float | str], list[int]] = {}
    for i, c in enumerate(key.clusters):
        for m in c.members:
            owners.setdefault((m.source_id, m.value), []).append(i)
    for i, c in enumerate(key.clusters):
        for m in c.members:
            finding = copies.get(m.source_id)
            if finding is None:
                continue
            for j in owners.get((finding.original, m.value), ()):
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(parent))]


def _tied(voices: list[Observation], scores: Mapping[str, float]) -> bool:
    """The two heaviest names weigh the same (before copy joins: a conservative test)."""
    ballots: dict[float | str, float] = {}
    for v in voices:
        ballots[v.value] = ballots.get(v.value, 0.0) + _weight(v, scores)
    top = sorted(ballots.values(), reverse=True)
    return len(top) > 1 and abs(top[0] - top[1]) <= 1e-9 * max(top[0], 1e-12)


def _plurality_text(entries: list[tuple[str, float, str]]) -> str:
    """As _vote.vote: the most weight, then the most clusters, then alphabetical."""
    ballots: dict[str, list[float]] = {}
    for text, weight, _origin in entries:
        ballots.setdefault(text, []).append(weight)
    return min(ballots, key=lambda t: (-math.fsum(sorted(ballots[t])), -len(ballots[t]), t))


def _agree(value: float | str, best: float | str, rule: str, params: Params) -> float:
    if rule in (PLURALITY, CATEGORICAL) or isinstance(value, str) or isinstance(best, str):
        return 1.0 if value == best else 0.0
    tol = math.log1p(params.tolerance)
    d = abs(slog(value) - slog(best))
    if d <= tol:
        return 1.0
    return max(0.0, 1.0 - (d - tol) / (tol * (params.span - 1.0)))


def _clip01(x: float) -> float:
    return min(max(x, 1e-6), 1.0 - 1e-6)


def _vote(agreement: float, n: int) -> float:
    """AccuCopy's vote count of a source right on the share `agreement` of its readings
    among n false values per object: L = ln(n A / (1 - A)), the log-odds that a reading
    it gives is the true one. Below VOTE_FLOOR (a source near or below chance) it falls
    off as VOTE_FLOOR * exp(L - VOTE_FLOOR): still positive, and still ordered, so a
    source worse than the pooled one scores below it even where the pool is no better
    than chance."""
    odds = math.log(n * agreement / (1.0 - agreement))
    return odds if odds >= VOTE_FLOOR else VOTE_FLOOR * math.exp(odds - VOTE_FLOOR)


def _trust(agreement: float) -> float:
    """TruthFinder's trustworthiness score: -ln(1 - t)."""
    return -math.log(1.0 - agreement)
