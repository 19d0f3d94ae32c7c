"""Source dependence (copy) detection from the claims themselves. Pure.

Dong, Berti-Equille and Srivastava, "Integrating conflicting data: the role of source
dependence" (VLDB 2009), section 3: two independent sources agree on a true value
often (both right) but on a false value rarely (both wrong, and wrong alike among
`n` false values), while a copier repeats its original's false values as readily as
its true ones. So over the objects two sources both describe, the counts of values
they share that are true (kt), that are false (kf) and of values that differ (kd)
give the likelihood of the two hypotheses; a shared false value is strong evidence
of copying, a shared rare one stronger still (it is one of more false values), a
shared true value weak evidence, and every difference evidence of independence.

The learner (reliability.py) calls this each round with its current beliefs and
accuracies; where a copier gives the same value as its original, the two vote as one
(the fusion joins them into one independence cluster, _cluster.py), as the paper's
vote count discounts a copier's vote on the values it shares with its original; where
the copier says something else it keeps its own voice.

Which of the two copies which: the one that publishes later on more of the objects
they share (a copy cannot precede its original). Two sources that always publish at
the same moment are judged only when the caller asks (`same_time`): the learner does
once the findings that times can direct have settled, so that the beliefs they are
judged under are no longer those of the first rounds (judged from the start, sources
that publish together were taken for copiers of errors a copier group had made look
true, and on Population careful editors were joined to a bot; bench/RESULTS.md). Two
feeds that lag the same original share its stale values; which copies which does not
matter for the vote (where they agree they are one voice): the later name is called
the copier. Only pairs with
`min_shared` objects in common and a posterior above `threshold` are reported: with
little evidence the posterior is the prior, and a prior is no finding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

Answer = float | str


@dataclass(frozen=True, slots=True)
class DependenceParams:
    alpha: float = 0.1  # prior probability of copying, in each direction
    copy_rate: float = 0.9  # c: the share of a copier's values taken from its original
    min_shared: int = 10  # objects two sources must both describe to be judged
    min_false: float = 0.0  # false values they must share (expected count)
    threshold: float = 0.99  # posterior above which a pair is reported as dependent
    # the copy rates a dependent pair may have, equally likely a priori: the likelihood of
    # copying is their average, so a pair that shares half its values (two feeds that
    # each copy a third source part of the time, a copier that lags) is judged by the
    # rate that fits it, not taken for independent because it differs more than a
    # wholesale copier would (Dong et al. 2010 estimate the rate per pair likewise)
    copy_rates: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "alpha": self.alpha,
            "copy_rate": self.copy_rate,
            "min_shared": self.min_shared,
            "min_false": self.min_false,
            "threshold": self.threshold,
            "copy_rates": list(self.copy_rates),
        }


@dataclass(frozen=True, slots=True)
class Copying:
    """`copier` copies `original` with posterior `probability`, seen on `shared` objects
    of which `shared_false` repeat the same false value."""

    copier: str
    original: str
    probability: float
    shared: int
    shared_false: int


@dataclass(slots=True)
class _Counts:
    # a shared value counts as true by its share of the key's weight and as false by
    # the rest (the paper's expected counts): where the consensus is uncertain, two
    # sources sharing the runner-up are not taken for copiers of a wrong answer
    true: float = 0.0
    false: float = 0.0
    different: int = 0
    later: int = 0  # objects where the first source of the pair published later
    earlier: int = 0

    @property
    def shared(self) -> int:
        return round(self.true + self.false) + self.different


def detect_copying(
    values: Mapping[str, Mapping[str, Answer]],
    published: Mapping[str, Mapping[str, float]],
    belief: Mapping[str, Mapping[Answer, float]],
    accuracy: Mapping[str, float],
    params: DependenceParams = DependenceParams(),
    same_time: bool = False,
) -> dict[str, Copying]:
    """`values`: key -> source -> the source's answer there; `published`: the same with
    publication times; `belief`: key -> answer -> the probability that it is the true
    one (its share of the key's weight under the current consensus); `accuracy`:
    source -> the share of its answers believed right. Returns copier -> its strongest
    finding."""
    n = false_values_per_object(values)
    counts = _pair_counts(values, published, belief)
    found: dict[str, Copying] = {}
    for (s1, s2), c in sorted(counts.items()):
        if c.shared < params.min_shared or c.false < params.min_false:
            continue
        if c.later == c.earlier and not same_time:
            continue
        p = posterior(c.true, c.false, c.different, accuracy, s1, s2, n, params)
        if p < params.threshold:
            continue
        copier, original = _direction(s1, s2, c)
        finding = Copying(copier, original, round(p, 6), c.shared, round(c.false))
        held = found.get(copier)
        if held is None or (finding.probability, finding.shared_false) > (
            held.probability,
            held.shared_false,
        ):
            found[copier] = finding
    return _break_cycles(found)


def false_values_per_object(values: Mapping[str, Mapping[str, Answer]]) -> int:
    """n, estimated from the data: the mean number of distinct answers per object that
    has more than one, less the true one (at least 1)."""
    distinct = [len(set(by.values())) for by in values.values() if len(by) > 1]
    if not distinct:
        return 1
    return max(1, round(math.fsum(distinct) / len(distinct)) - 1)


def posterior(
    kt: float,
    kf: float,
    kd: int,
    accuracy: Mapping[str, float],
    s1: str,
    s2: str,
    n: int,
    params: DependenceParams,
) -> float:
    """P(s1 and s2 are dependent | kt, kf, kd), both directions together (section 3.1),
    the likelihood of dependence averaged over `params.copy_rates`."""
    a = math.sqrt(_clip(accuracy.get(s1, 0.8)) * _clip(accuracy.get(s2, 0.8)))
    pt_i, pf_i = a * a, (1 - a) ** 2 / n
    pd_i = max(1e-12, 1 - pt_i - pf_i)
    rates = params.copy_rates or (params.copy_rate,)
    ratios = []  # log P(counts | copying at rate c) - log P(counts | independent)
    for c in rates:
        pt_c = a * c + pt_i * (1 - c)
        pf_c = (1 - a) * c + pf_i * (1 - c)
        pd_c = pd_i * (1 - c)
        ratios.append(
            kt * math.log(pt_c / pt_i) + kf * math.log(pf_c / pf_i) + kd * math.log(pd_c / pd_i)
        )
    top = max(ratios)
    log_ratio = top + math.log(math.fsum(math.exp(r - top) for r in ratios) / len(ratios))
    log_odds_independent = math.log((1 - 2 * params.alpha) / (2 * params.alpha)) - log_ratio
    return 1 / (1 + math.exp(min(700.0, log_odds_independent)))


def _pair_counts(
    values: Mapping[str, Mapping[str, Answer]],
    published: Mapping[str, Mapping[str, float]],
    belief: Mapping[str, Mapping[Answer, float]],
) -> dict[tuple[str, str], _Counts]:
    counts: dict[tuple[str, str], _Counts] = {}
    for key in sorted(values):
        by_source = values[key]
        if len(by_source) < 2:
            continue
        chance = belief.get(key, {})
        when = published.get(key, {})
        for s1, s2 in combinations(sorted(by_source), 2):
            c = counts.get((s1, s2))
            if c is None:
                c = counts[(s1, s2)] = _Counts()
            v1, v2 = by_source[s1], by_source[s2]
            if v1 != v2:
                c.different += 1
            else:
                p_true = chance.get(v1, 0.0)
                c.true += p_true
                c.false += 1.0 - p_true
            t1, t2 = when.get(s1, 0.0), when.get(s2, 0.0)
            if t1 > t2:
                c.later += 1
            elif t1 < t2:
                c.earlier += 1
    return counts


def _direction(s1: str, s2: str, c: _Counts) -> tuple[str, str]:
    """(copier, original): the one that publishes later on more of the shared objects;
    at the same moment, the later name (s1 < s2): deterministic, and it does not matter
    for the vote, where the two agree they are one voice."""
    return (s1, s2) if c.later > c.earlier else (s2, s1)


def _break_cycles(found: dict[str, Copying]) -> dict[str, Copying]:
    """A source found copying a source that is found copying it back (possible with
    findings against different partners' timing) keeps its voice once: the smaller
    name is the one not discounted, deterministically."""
    out = dict(found)
    for copier in sorted(found):
        finding = out.get(copier)
        if finding is None:
            continue
        back = out.get(finding.original)
        if back is not None and back.original == copier:
            del out[min(copier, finding.original)]
    return out


def discount(finding: Copying | None, params: DependenceParams) -> float:
    """The factor on a copier's weight: the paper's 1 - c * P(dependent)."""
    if finding is None:
        return 1.0
    return round(max(1e-3, 1 - params.copy_rate * finding.probability), 6)


def _clip(a: float) -> float:
    return min(max(a, 0.05), 0.95)
