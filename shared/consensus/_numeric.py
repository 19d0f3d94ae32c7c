"""Numeric fusion of one scope (all claims of a key, or one valid-time segment).

1. best, by the attribute's decision rule (`decision_rule`):
   - counts (stock, delta, cumulative): weighted median of the clusters' point
     estimates (claimed points; derived midpoints only when nobody claims a point),
     unless one exact value is repeated by independent clusters and carries a clear
     share of the weight: then that weighted mode (`point_best`);
   - measures (readings such as a temperature): the weighted plurality of the
     exact values (`plurality_best`): a reading is right or wrong, and the most
     supported exact reading is what a reading-taker reports.
   Bound-only and range-only
   clusters never vote for best. A weighted median selects an element, and its
   order is the same in log space as on the line, so the log scale never
   produces a number nobody claimed (no 11999.999...).
2. core: the two-sided clusters whose interval contains best (or, with no point
   at all, the weighted median of the ranges' log-midpoints).
3. band: the hull of the core intervals, then clipped by one-sided bounds that
   are consistent with best ("over N" raises low, "up to N" caps high), heaviest
   first. A bound that excludes best is dissent and is not applied. The hull (the
   0/1 quantiles of the consistent clusters) is used rather than inner quantiles
   so that a claim agreeing with best can never shrink the band and turn another
   origin into dissent.
4. conservative: the largest lower bound among the core clusters and the
   applied bounds (ACLED-style: the most that every credible origin concedes).
5. support: a claim whose interval overlaps the band (a one-sided bound must also
   admit best); dissent: every other included claim. The status is contested
   when the voice of some cluster is dissent.
6. a contested key's reported band spans the credible dissenting clusters too
   (UCDP's reading: low and high are the lowest and highest credible estimates,
   best the most likely). A dissenting cluster is credible when its weight is at
   least CREDIBLE_SHARE of the weight behind best; a lighter outlier stays outside
   the range and is named as such. Support and dissent are judged against the
   agreement band of step 3, never against the widened one.
When the clusters' weight splits exactly in half between two values, the weighted
median is the lower of the two (`Fusion.split` names both): the conservative reading,
stated in the explanation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.consensus._admit import OPEN, Band, Item, slog, slog_inv
from shared.consensus._cluster import Group, make_groups
from shared.values import MEASURE_RULE_PREFIX

# Decision rules for a key's best (see the module docstring).
MEDIAN_OR_MODE = "median_or_mode"  # counts
PLURALITY = "plurality"  # measures


@dataclass(slots=True)
class Fusion:
    low: float | None = None
    best: float | None = None
    high: float | None = None
    conservative: float | None = None
    band: Band = OPEN
    status: str = "no_data"
    support: list[str] = field(default_factory=list)
    dissent: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    dissent_items: list[Item] = field(default_factory=list)
    applied_floors: list[float] = field(default_factory=list)
    agreement: Band = OPEN  # the band support is judged against (before widening)
    split: tuple[float, float] | None = None  # best was the lower of an even split


def contains(band: Band, x: float) -> bool:
    if band.lo is not None and (x < band.lo or (band.lo_x and x == band.lo)):
        return False
    return not (band.hi is not None and (x > band.hi or (band.hi_x and x == band.hi)))


def _before(a: Band, b: Band) -> bool:
    """a lies entirely below b."""
    if a.hi is None or b.lo is None:
        return False
    return a.hi < b.lo or (a.hi == b.lo and (a.hi_x or b.lo_x))


def overlaps(a: Band, b: Band) -> bool:
    return not (_before(a, b) or _before(b, a))


def intersect(a: Band, b: Band) -> Band:
    lo, lo_x = _tighter(a.lo, a.lo_x, b.lo, b.lo_x, upper=False)
    hi, hi_x = _tighter(a.hi, a.hi_x, b.hi, b.hi_x, upper=True)
    return Band(lo, lo_x, hi, hi_x)


def _tighter(
    x: float | None, x_x: bool, y: float | None, y_x: bool, *, upper: bool
) -> tuple[float | None, bool]:
    if x is None:
        return y, y_x
    if y is None or x == y:
        return x, x_x or (y == x and y_x)
    if (x < y) == upper:
        return x, x_x
    return y, y_x


def hull(bands: Sequence[Band]) -> Band:
    """Smallest band covering all (two-sided) bands; a bound is exclusive only if
    every band reaching it is exclusive there."""
    lo = min(b.lo for b in bands if b.lo is not None)
    hi = max(b.hi for b in bands if b.hi is not None)
    lo_x = all(b.lo_x for b in bands if b.lo == lo)
    hi_x = all(b.hi_x for b in bands if b.hi == hi)
    return Band(lo, lo_x, hi, hi_x)


def weighted_median(entries: list[tuple[float, float, str]]) -> float:
    """Lower weighted median of (value, weight, tie-break) entries: an element, not
    an interpolation. The total is an exact sum, so ties do not depend on order."""
    entries.sort(key=lambda e: (e[0], e[2]))
    total = math.fsum(w for _, w, _ in entries)
    cumulative = 0.0
    for value, weight, _ in entries:
        cumulative += weight
        if cumulative * 2 >= total * (1 - 1e-12):
            return value
    return entries[-1][0]


# The weighted mode replaces the weighted median when independent clusters repeat one
# exact value that holds at least this share of the total weight. Exact repetition by
# independent origins is evidence a median ignores (a census figure copied from one
# table, a station's reading). 45 % was chosen on the Population/Weather benchmarks
# (bench/RESULTS.md, in-sample): lower shares snap to the largest of several minorities
# and raise the Population-subset MAE. A value with that share always lies between the
# weighted quartiles, so the mode is never an outlier of the key.
MODE_SHARE = 0.45
MODE_MIN_CLUSTERS = 2

# A key whose clusters mostly repeat one another's exact values is read as exact readings
# (a gate, a departure time, a seat count: each source reads one value off the same
# board), whatever its attribute is declared as: its best is the weighted plurality of
# the exact values, as for a measure, because a reading is right or wrong and the median
# of several wrong readings is one of them. Estimates (a city's population by different
# methods and years) differ by a little: few of their values repeat except by copying.
# At EXACT_SHARE of the clusters, 3 in 4: on the synthetic copying benchmark 93 % of the
# claims on disputed keys repeat another's value, on Population 47 %
# (bench/RESULTS.md, issue 18); chosen on the synthetic seed 7, between the two.
EXACT_SHARE = 0.75
EXACT_MIN_CLUSTERS = 3

# A dissenting cluster with at least this share of the weight behind best is a credible
# alternative: a contested key's band spans it (the same ratio that makes a vote
# contested, _vote.CONTESTED_RATIO).
CREDIBLE_SHARE = 0.5


def even_split(entries: list[tuple[float, float, str]], best: float) -> float | None:
    """The next value above `best` when the weight at or below best is exactly half
    the total (the lower weighted median of an even split), else None."""
    ordered = sorted(entries, key=lambda e: (e[0], e[2]))
    total = math.fsum(w for _, w, _ in ordered)
    below = math.fsum(w for v, w, _ in ordered if v <= best)
    above = [v for v, _, _ in ordered if v > best]
    if above and math.isclose(below * 2, total, rel_tol=1e-12):
        return above[0]
    return None


def exact_readings(entries: Sequence[tuple[float, float, str]]) -> bool:
    """At least EXACT_SHARE of the (at least EXACT_MIN_CLUSTERS) clusters give an exact
    value another cluster gives too (see EXACT_SHARE)."""
    if len(entries) < EXACT_MIN_CLUSTERS:  # T  # T
        return False
    count: dict[float, int] = {}
    for value, _, _ in entries:
        count[value] = count.get(value, 0) + 1
    if len(count) == 1:
        return False  # unanimous: nothing to decide
    repeated = sum(n for n in count.values() if n > 1)
    return repeated >= EXACT_SHARE * len(entries)


def point_best(entries: list[tuple[float, float, str]]) -> float:
    """Weighted median, or the weighted mode when one exact value is repeated by at
    least MODE_MIN_CLUSTERS clusters, holds MODE_SHARE of the total weight and outweighs
    the median's own value (exact readings are decided by `plurality_best` instead; see
    `best_by_rule`). Always a claimed element; deterministic (ties: the heavier, then
    the closer to the median, then the lower)."""
    median = weighted_median(entries)
    weight: dict[float, list[float]] = {}
    for value, w, _ in entries:
        weight.setdefault(value, []).append(w)
    sums = {v: math.fsum(ws) for v, ws in weight.items() if len(ws) >= MODE_MIN_CLUSTERS}
    if not sums:
        return median
    mode = min(sums, key=lambda v: (-sums[v], abs(v - median), v))
    total = math.fsum(w for _, w, _ in entries)
    if sums[mode] >= MODE_SHARE * total * (1 - 1e-12) and sums[mode] > math.fsum(weight[median]):
        return mode
    return median


def plurality_best(entries: list[tuple[float, float, str]]) -> float:
    """The exact value with the most weight (a weighted plurality vote over the
    clusters' points, one cluster one vote at its weight). Ties: the value closer to
    the weighted median, then the lower. Always a claimed element; deterministic."""
    weight: dict[float, list[float]] = {}
    for value, w, _ in entries:
        weight.setdefault(value, []).append(w)
    if len(weight) == 1:
        return entries[0][0]
    median = weighted_median(entries)
    sums = {v: math.fsum(ws) for v, ws in weight.items()}
    return min(sums, key=lambda v: (-sums[v], abs(v - median), v))


def best_by_rule(entries: list[tuple[float, float, str]], rule: str, exact: bool = False) -> float:
    """The decision rule's point over (value, weight, cluster) entries; `exact`: the
    origins give exact readings (`exact_readings`), so a count is decided as a measure."""
    return plurality_best(entries) if rule == PLURALITY or exact else point_best(entries)


def origin_readings(items: Sequence[Item]) -> list[tuple[float, float, str]]:
    """Each origin's latest claimed point (before any joining of copies: a copy of a
    reading is a reading too), as `exact_readings` counts them. Only bare numbers are
    readings: "approximately 12,000" repeated by two origins is a round estimate, not an
    exact reading, and counting it switched a settled key to plurality (and contested)
    when one more origin agreed with its best (test_consensus_properties)."""
    latest: dict[str, Item] = {}
    for item in items:
        if item.best is None or item.derived or item.hedge != "exact":
            continue
        held = latest.get(item.origin)
        if held is None or (item.published, item.cid) > (held.published, held.cid):
            latest[item.origin] = item
    return [(latest[o].best, 1.0, o) for o in sorted(latest)]  # type: ignore[misc]


def decision_rule(items: Sequence[Item]) -> str:
    """The key's decision rule: PLURALITY when its claims were read as a measure's
    readings (the attribute is declared kind = "measure": their values carry the
    measure rule id), else MEDIAN_OR_MODE. One measure reading suffices, so claims
    stored before the attribute was declared a measure follow the declaration."""
    for item in items:
        if item.claim.value.rule.startswith(MEASURE_RULE_PREFIX):
            return PLURALITY
    return MEDIAN_OR_MODE


def _best(groups: Sequence[Group], rule: str, out: Fusion, exact: bool = False) -> float | None:
    claimed: list[tuple[float, float, str]] = []
    derived: list[tuple[float, float, str]] = []
    for g in groups:
        if g.rep.best is not None:
            (derived if g.rep.derived else claimed).append((g.rep.best, g.weight, g.root))
    entries = claimed or derived
    if not entries:
        return None
    best = best_by_rule(entries, rule, exact)
    if rule != PLURALITY and not exact:
        upper = even_split(entries, best)
        out.split = (best, upper) if upper is not None else None
    return best


def _range_reference(groups: Sequence[Group], rule: str) -> float | None:
    """Without any point estimate, the weighted median midpoint of the ranges decides
    which ranges form the core: in log space for counts, on the line for measures
    (which may be signed). It is internal and never reported."""
    linear = rule == PLURALITY
    # clamped into the range: the log round trip can land just outside it (100-100 gave
    # 100.00000000000003, outside every range, so no core and no band at all)
    entries = [
        (
            min(
                max(
                    (g.rep.low + g.rep.high) / 2
                    if linear
                    else slog_inv((slog(g.rep.low) + slog(g.rep.high)) / 2),
                    g.rep.low,
                ),
                g.rep.high,
            ),
            g.weight,
            g.root,
        )
        for g in groups
        if g.rep.low is not None and g.rep.high is not None
    ]
    return weighted_median(entries) if entries else None


def _agrees(band: Band, best: float | None, consensus: Band) -> bool:
    one_sided = (band.lo is None) != (band.hi is None)
    if one_sided and best is not None and not contains(band, best):
        return False
    return overlaps(band, consensus)


def fuse(items: Sequence[Item], floors: Sequence[float] = (), rule: str | None = None) -> Fusion:
    """`rule`: the decision rule for best; None reads it from the items (`decision_rule`)."""
    groups = make_groups(items)
    if not groups:
        return Fusion()
    rule = rule if rule is not None else decision_rule(items)
    out = Fusion(groups=groups)
    exact = rule != PLURALITY and exact_readings(origin_readings(items))
    best = _best(groups, rule, out, exact)
    ref = best if best is not None else _range_reference(groups, rule)
    core = [g for g in groups if ref is not None and _two_sided(g) and contains(g.rep.band, ref)]
    band = hull([g.rep.band for g in core]) if core else OPEN
    lows = [g.rep.low for g in core if g.rep.low is not None]
    band = _clip(band, groups, best, floors, lows, out)
    credible = [lo for lo in lows if band.hi is None or lo <= band.hi]
    out.conservative = max(credible) if credible else None
    out.agreement = band
    _judge(items, groups, best, out)
    if out.status == "contested":
        band = _span_credible(band, groups, best, out.agreement)
    out.low, out.best, out.high, out.band = band.lo, best, band.hi, band
    return out


def _span_credible(
    band: Band, groups: Sequence[Group], best: float | None, agreement: Band
) -> Band:
    """The agreement band widened to the finite ends of every credible dissenting
    cluster (see CREDIBLE_SHARE)."""
    agreeing = {g.root for g in groups if _agrees(g.rep.band, best, agreement)}
    behind = math.fsum(g.weight for g in groups if g.root in agreeing)
    lo, lo_x, hi, hi_x = band
    for g in groups:
        if g.root in agreeing or g.weight < CREDIBLE_SHARE * behind * (1 - 1e-12):
            continue
        for x, x_x in ((g.rep.band.lo, g.rep.band.lo_x), (g.rep.band.hi, g.rep.band.hi_x)):
            if x is None:
                continue
            if lo is not None and (x < lo or (x == lo and not x_x)):
                lo, lo_x = x, x_x and x == g.rep.band.lo
            if hi is not None and (x > hi or (x == hi and not x_x)):
                hi, hi_x = x, x_x and x == g.rep.band.hi
    return Band(lo, lo_x, hi, hi_x)


def _two_sided(g: Group) -> bool:
    return g.rep.low is not None and g.rep.high is not None


def _clip(
    band: Band,
    groups: Sequence[Group],
    best: float | None,
    floors: Sequence[float],
    lows: list[float],
    out: Fusion,
) -> Band:
    """Apply the consistent one-sided bounds (heaviest first, so that when there is
    no best the more reliable of two conflicting bounds holds), then the composite
    floors; collect the lower bounds that were applied into `lows`."""
    bounds = sorted((g for g in groups if g.rep.one_sided), key=lambda g: (-g.weight, g.root))
    for g in bounds:
        bound = g.rep.band
        if _agrees(bound, best, band):
            band = intersect(band, bound)
            if bound.lo is not None:
                lows.append(bound.lo)
    for floor in floors:
        bound = Band(floor, False, None, False)
        if (best is None or floor <= best) and overlaps(bound, band):
            band = intersect(band, bound)
            lows.append(floor)
            out.applied_floors.append(floor)
    return band


def _judge(items: Sequence[Item], groups: Sequence[Group], best: float | None, out: Fusion) -> None:
    """Support/dissent per claim against the agreement band; the status from the
    clusters' own voices."""
    for item in items:
        if _agrees(item.band, best, out.agreement):
            out.support.append(item.cid)
        else:
            out.dissent.append(item.cid)
            out.dissent_items.append(item)
    if len(groups) == 1:
        out.status = "single_source"
    elif any(not _agrees(g.rep.band, best, out.agreement) for g in groups):
        out.status = "contested"
    else:
        out.status = "settled"
