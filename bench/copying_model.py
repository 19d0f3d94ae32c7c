"""A seeded synthetic data set with copying sources, and the AccuCopy peer (bench only).

The generative model is the one of Dong, Berti-Equille and Srivastava, "Integrating
conflicting data: the role of source dependence" (VLDB 2009), section 6.1 (their
synthetic experiments), with the copying patterns that Li et al., "Truth finding on the
deep web: is the problem solved?" (PVLDB 6(2), 2012) found on real web sources:

- every object (item, attribute) has one true value and `n_false` false values; an
  independent source of accuracy A gives the true value with probability A, else one
  false value. Real sources err alike more often than uniformly (a stale value, a
  scheduled time given as the actual one), so a false value is the object's "stale"
  value with probability `stale_share` and otherwise uniform among the others;
- a copier copies each object its original covers with its copy rate `c` (wholesale:
  c ~ 1; partial: c < 1) and reports on its own (with its own accuracy) otherwise; a
  lagging copier copies the original's stale value for the share `lag` of the objects;
- attributes: a categorical gate whose names sometimes look like numbers ("B12", "12"),
  and two numeric readings reported exactly (delay minutes, seats).

AccuCopy is written from the paper (section 4, "Dependence" and "Vote count"): the
Bayesian dependence of each pair of sources from the values they share (same true,
same false, different), each source's accuracy score ln(nA/(1-A)), vote counts that
discount a source by its probability of copying the sources counted before it, value
probabilities by softmax over the n+1 values, accuracies as the mean probability of a
source's values, iterated to a fixed point. Sources give it everything it asks for
except the generator's parameters: n is estimated from the data.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

Key = tuple[str, str]  # (subject, attribute)
Value = str | int

GATE, DELAY, SEATS = "gate", "delay_minutes", "seats"
ATTRIBUTES = (GATE, DELAY, SEATS)


@dataclass(frozen=True, slots=True)
class Claim:
    source: str
    subject: str
    attribute: str
    value: Value
    published: str  # ISO date-time: copiers publish after their original


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    accuracy: float
    copies: str | None = None  # the original
    copy_rate: float = 0.0
    lag: float = 0.0  # share of copied objects for which the original's stale value is taken
    coverage: float = 0.85
    delay_h: int = 0  # hours after the day's first publication


@dataclass(slots=True)
class Synthetic:
    claims: list[Claim]
    truth: dict[Key, Value]
    sources: list[SourceSpec]
    groups: dict[str, list[str]] = field(default_factory=dict)  # copier groups, for the report


def default_sources() -> tuple[list[SourceSpec], dict[str, list[str]]]:
    """Ten independent sources of varied accuracy, and three copier groups that outnumber
    the good sources on what they copy: wholesale copies of a poor source, partial copies
    of a middling one, and lagging copies of a good one (sharing its stale values)."""
    independent = [
        SourceSpec(f"indep-{i:02d}", acc)
        for i, acc in enumerate((0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5))
    ]
    wholesale = [SourceSpec("poor-feed", 0.4, coverage=0.95)] + [
        SourceSpec(f"mirror-{i}", 0.4, copies="poor-feed", copy_rate=0.98, delay_h=1 + i)
        for i in range(6)
    ]
    partial = [SourceSpec("mid-feed", 0.55, coverage=0.95)] + [
        SourceSpec(f"partial-{i}", 0.5, copies="mid-feed", copy_rate=0.7, delay_h=2 + i)
        for i in range(4)
    ]
    lagging = [SourceSpec("good-feed", 0.85, coverage=0.95)] + [
        SourceSpec(f"lagging-{i}", 0.6, copies="good-feed", copy_rate=0.9, lag=0.5, delay_h=6)
        for i in range(4)
    ]
    groups = {
        "wholesale copies of poor-feed": [s.name for s in wholesale],
        "partial copies of mid-feed": [s.name for s in partial],
        "lagging copies of good-feed": [s.name for s in lagging],
    }
    return independent + wholesale + partial + lagging, groups


def _gate(rng: random.Random) -> str:
    """Gate names; one in six is a bare number ("12"), which must stay a name."""
    number = str(rng.randint(1, 40))
    return number if rng.random() < 1 / 6 else rng.choice("ABCDE") + number


def _domain(rng: random.Random, attribute: str, n_false: int) -> tuple[Value, list[Value]]:
    """The true value and `n_false` distinct false ones."""
    if attribute == GATE:
        values: set[str] = set()
        while len(values) < n_false + 1:
            values.add(_gate(rng))
        gates = sorted(values)
        rng.shuffle(gates)
        return gates[0], list(gates[1:])
    if attribute == DELAY:
        truth = rng.choice((0, 5, 10, 15, 20, 25, 30, 45, 60, 90, 120))
        pool = sorted({max(0, truth + d) for d in range(-40, 125, 5)} - {truth})
    else:
        truth = rng.randint(80, 300)
        pool = sorted({truth + d for d in range(-30, 31)} - {truth})
    return truth, rng.sample(pool, n_false)


def generate(
    *,
    seed: int = 7,
    items: int = 400,
    n_false: int = 10,
    stale_share: float = 0.4,
    day: str = "2026-11-02",
) -> Synthetic:
    rng = random.Random(seed)
    sources, groups = default_sources()
    truth: dict[Key, Value] = {}
    false: dict[Key, list[Value]] = {}
    for i in range(items):
        for attribute in ATTRIBUTES:
            key = (f"item-{i:04d}", attribute)
            truth[key], false[key] = _domain(rng, attribute, n_false)

    def own_value(spec: SourceSpec, key: Key) -> Value:
        if rng.random() < spec.accuracy:
            return truth[key]
        wrong = false[key]
        return wrong[0] if rng.random() < stale_share else rng.choice(wrong[1:])

    given: dict[str, dict[Key, Value]] = {}
    claims: list[Claim] = []
    for spec in sources:
        mine: dict[Key, Value] = {}
        original = given.get(spec.copies or "")
        for key in truth:
            if original is not None:
                if key not in original:
                    continue
                if rng.random() < spec.copy_rate:
                    # a lagging feed repeats what the original said before (its stale value)
                    mine[key] = false[key][0] if rng.random() < spec.lag else original[key]
                    continue
            elif rng.random() >= spec.coverage:
                continue
            mine[key] = own_value(spec, key)
        given[spec.name] = mine
        when = f"{day}T{6 + spec.delay_h:02d}:00:00Z"
        claims += [Claim(spec.name, k[0], k[1], v, when) for k, v in mine.items()]
    return Synthetic(claims, truth, sources, groups)


# -- peers -------------------------------------------------------------------------------


def by_key(claims: list[Claim]) -> dict[Key, dict[str, Value]]:
    out: dict[Key, dict[str, Value]] = defaultdict(dict)
    for c in claims:
        out[(c.subject, c.attribute)][c.source] = c.value
    return out


def majority_vote(claims: list[Claim]) -> dict[Key, Value]:
    """The most frequent value; ties to the smallest value's text (deterministic)."""
    out: dict[Key, Value] = {}
    for key, values in by_key(claims).items():
        counts = Counter(values.values())
        top = max(counts.values())
        out[key] = min((v for v, n in counts.items() if n == top), key=str)
    return out


@dataclass(slots=True)
class AccuCopy:
    """Dong et al. 2009, AccuCopy. `alpha`: prior probability of copying in each
    direction; `c`: the assumed copy rate; accuracies start at `a0`."""

    alpha: float = 0.2
    c: float = 0.8
    a0: float = 0.8
    rounds: int = 20
    dependence: dict[tuple[str, str], float] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)

    def run(self, claims: list[Claim]) -> dict[Key, Value]:
        data = by_key(claims)
        n = self._n_false(data)
        sources = sorted({c.source for c in claims})
        self.accuracy = dict.fromkeys(sources, self.a0)
        provided: dict[str, dict[Key, Value]] = defaultdict(dict)
        for key, values in data.items():
            for s, v in values.items():
                provided[s][key] = v
        answers = majority_vote(claims)
        for _ in range(self.rounds):
            self.dependence = self._dependence(provided, answers, n)
            probabilities = self._probabilities(data, n)
            new_answers = {
                k: max(p, key=lambda v: (p[v], str(v))) for k, p in probabilities.items()
            }
            new_accuracy = {
                s: min(0.99, max(0.01, _mean(probabilities[k][v] for k, v in given.items())))
                for s, given in provided.items()
            }
            moved = max(abs(new_accuracy[s] - self.accuracy[s]) for s in sources)
            self.accuracy, answers = new_accuracy, new_answers
            if moved < 1e-4:
                break
        return answers

    @staticmethod
    def _n_false(data: dict[Key, dict[str, Value]]) -> int:
        """Estimated from the data: the mean number of distinct values per object, less one."""
        distinct = [len(set(v.values())) for v in data.values()]
        return max(1, round(_mean(distinct) - 1))

    def _dependence(
        self, provided: dict[str, dict[Key, Value]], answers: dict[Key, Value], n: int
    ) -> dict[tuple[str, str], float]:
        """P(the two sources are dependent | the values they share), section 3.1."""
        out: dict[tuple[str, str], float] = {}
        sources = sorted(provided)
        for i, s1 in enumerate(sources):
            for s2 in sources[i + 1 :]:
                shared = provided[s1].keys() & provided[s2].keys()
                if not shared:
                    continue
                kt = kf = kd = 0
                for key in shared:
                    v1, v2 = provided[s1][key], provided[s2][key]
                    if v1 != v2:
                        kd += 1
                    elif v1 == answers[key]:
                        kt += 1
                    else:
                        kf += 1
                a = math.sqrt(self.accuracy[s1] * self.accuracy[s2])
                pt_i, pf_i = a * a, (1 - a) ** 2 / n
                pd_i = max(1e-12, 1 - pt_i - pf_i)
                pt_c = a * self.c + pt_i * (1 - self.c)
                pf_c = (1 - a) * self.c + pf_i * (1 - self.c)
                pd_c = pd_i * (1 - self.c)
                log_ratio = (
                    kt * math.log(pt_i / pt_c)
                    + kf * math.log(pf_i / pf_c)
                    + kd * math.log(pd_i / pd_c)
                )
                # both directions together: prior alpha each way, 1 - 2 alpha independent
                log_odds_indep = math.log((1 - 2 * self.alpha) / (2 * self.alpha)) + log_ratio
                out[(s1, s2)] = 1 / (1 + math.exp(min(700.0, log_odds_indep)))
        return out

    def _dep(self, s1: str, s2: str) -> float:
        return self.dependence.get((s1, s2) if s1 < s2 else (s2, s1), 0.0)

    def _probabilities(self, data: dict[Key, dict[str, Value]], n: int) -> dict[Key, dict]:
        score = {s: math.log(n * a / (1 - a)) for s, a in self.accuracy.items()}
        out: dict[Key, dict[Value, float]] = {}
        for key, values in data.items():
            voters: dict[Value, list[str]] = defaultdict(list)
            for s, v in values.items():
                voters[v].append(s)
            counts = {v: self._vote_count(sorted(group), score) for v, group in voters.items()}
            unseen = max(0, n + 1 - len(counts))  # values nobody gave: vote count 0
            top = max(counts.values())
            weights = {v: math.exp(c - top) for v, c in counts.items()}
            total = sum(weights.values()) + unseen * math.exp(-top)
            out[key] = {v: w / total for v, w in weights.items()}
        return out

    def _vote_count(self, group: list[str], score: dict[str, float]) -> float:
        """Section 4.2: order the providers greedily (the least dependent on those already
        counted first), and discount each by the chance it copied one counted before."""
        remaining, counted, total = list(group), [], 0.0
        while remaining:
            best = min(
                remaining,
                key=lambda s: (sum(self._dep(s, t) for t in counted), -score[s], s),
            )
            remaining.remove(best)
            independence = 1.0
            for t in counted:
                independence *= 1 - self.c * self._dep(best, t)
            total += score[best] * independence
            counted.append(best)
        return total


def _mean(values) -> float:  # type: ignore[no-untyped-def]
    items = list(values)
    return math.fsum(items) / len(items) if items else 0.0


def precision(answers: dict[Key, Value], truth: dict[Key, Value]) -> dict[str, float]:
    """Share of objects answered with the true value: overall and per attribute."""
    out: dict[str, float] = {}
    for attribute in (None, *ATTRIBUTES):
        keys = [k for k in truth if attribute is None or k[1] == attribute]
        right = sum(1 for k in keys if _same(answers.get(k), truth[k]))
        out[attribute or "all"] = right / max(1, len(keys))
    return out


def _same(answer: object, truth: Value) -> bool:
    if answer is None:
        return False
    if isinstance(truth, str):
        return str(answer) == truth
    try:
        return abs(float(answer) - truth) < 0.5  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
