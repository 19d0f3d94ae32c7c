"""The numeric fusion at its edges, as a reader sees it: exclusive bounds whichever claim is
heavier, a measure's agreeing readings, and the share of weight that makes a dissenting
cluster widen the range (issue #25's mutants)."""

from __future__ import annotations

import pytest

from shared.consensus import compute_consensus
from shared.model import AttributeSpec, ClaimFacts, ConsensusResult, Estimate, Value
from tests.unit.test_consensus import (
    KILLED_OR_WOUNDED,
    STOCK,
    at_least,
    between,
    claim,
    exact,
    over,
    under,
    up_to,
    val,
)
from tests.unit.test_measures import TEMPERATURE, reading


def _heavier_first(heavy: Value, light: Value) -> ConsensusResult:
    return compute_consensus(
        [claim("h", heavy, "Heavy", source_score=2.0), claim("l", light, "Light")], STOCK
    )


@pytest.mark.parametrize(
    ("heavy", "light", "reads"),
    [
        (under(2500), under(3000), "Under 2,500"),
        (under(3000), under(2500), "Under 2,500"),
        (under(2500), up_to(2500), "Under 2,500"),  # the same bound: exclusive if either is
        (up_to(2500), under(2500), "Under 2,500"),
        (over(1500), over(2000), "Over 2,000"),
        (over(2000), over(1500), "Over 2,000"),
        (at_least(2500), over(2500), "Over 2,500"),
    ],
)
def test_the_tighter_bound_holds_with_its_own_exclusivity(
    heavy: Value, light: Value, reads: str
) -> None:
    result = _heavier_first(heavy, light)
    assert result.explanation == f"{reads} from 2 independent origins."
    assert result.status == "settled"


def test_a_measures_agreeing_readings_are_its_value() -> None:
    two = compute_consensus([reading("a", 48, "x"), reading("b", 48, "y")], TEMPERATURE)
    assert (two.best, two.status) == (48, "settled")
    one = compute_consensus([reading("a", 48, "x")], TEMPERATURE)
    assert (one.low, one.best, one.high) == (48, 48, 48)


def test_a_dissenting_cluster_with_half_the_weight_widens_the_range() -> None:
    # two origins at 100 and one at 300: 300 has exactly half the weight behind 100, which
    # is credible (CREDIBLE_SHARE); a little less and it stays outside the range
    at_half = [
        claim("a", exact(100), "A"),
        claim("b", exact(100), "B"),
        claim("c", exact(300), "C"),
    ]
    result = compute_consensus(at_half, STOCK)
    assert (result.low, result.best, result.high) == (100, 100, 300)
    assert result.explanation == (
        "Best estimate 100 (range 100–300) from 3 independent origins;"
        " 1 dissenting claim (300, C) contradicts the best estimate."
    )
    under_half = [*at_half[:2], claim("c", exact(300), "C", source_score=0.99)]
    result = compute_consensus(under_half, STOCK)
    assert (result.low, result.best, result.high) == (100, 100, 100)
    assert result.status == "contested"


def test_a_point_under_an_exclusive_bound_agrees_with_it() -> None:
    result = compute_consensus([claim("a", exact(2400), "A"), claim("b", under(2500), "B")], STOCK)
    assert (result.status, result.support, result.dissent) == ("settled", ("a", "b"), ())


def test_an_even_split_names_the_next_value_above_not_the_lightest() -> None:
    claims = [
        claim("a", exact(100), "A", source_score=1.5),
        claim("b", exact(200), "B"),
        claim("c", exact(300), "C", source_score=0.5),
    ]
    assert compute_consensus(claims, STOCK).explanation.startswith(
        "Best estimate 100 (the weight splits evenly between 100 and 200: the lower is taken)"
    )


# --- a composite's floor (the sum of its components' lows) ----------------------------------

_COMPONENTS = {"killed": Estimate(1000, None, None), "wounded": Estimate(2000, None, None)}


def _composite(*values: Value) -> ConsensusResult:
    claims = [
        claim(c, v, c.upper(), attribute="killed_or_wounded")
        for c, v in zip("abc", values, strict=False)
    ]
    return compute_consensus(claims, KILLED_OR_WOUNDED, related=_COMPONENTS)


def test_a_composite_floor_is_an_inclusive_lower_bound() -> None:
    result = _composite(at_least(1000), at_least(500))
    assert result.explanation.startswith("At least 3,000 from 2 independent origins")
    assert (result.low, result.high, result.conservative) == (3000, None, 3000)


def test_a_composite_floor_equal_to_best_holds() -> None:
    result = _composite(exact(3000), exact(3000))
    assert result.constraints == (
        "killed_or_wounded at least 3,000 = killed 1,000 + wounded 2,000 (composite)",
    )
    assert result.conservative == 3000


def test_a_composite_floor_above_best_is_not_applied_even_inside_the_band() -> None:
    result = _composite(val(1000, 2000, 5000), val(1000, 2000, 5000))
    assert result.constraints[0].endswith("; not applied")
    assert (result.low, result.best, result.high) == (1000, 2000, 5000)


# --- ranges without any point: which ranges form the core ------------------------------------


def _ranges(spec: AttributeSpec, rule: str) -> ConsensusResult:
    # A (twice the weight) decides the reference: its midpoint is 50 on the line and 30.6 in
    # log space; B and D contain only the first, C and E only the second
    bands = {"a": (10, 90), "b": (40, 200), "c": (1, 35), "d": (70, 300), "e": (0, 12)}
    claims = [
        claim(
            cid,
            Value(low=lo, best=None, high=hi, hedge="range", rule=rule),
            cid.upper(),
            attribute=spec.name,
            source_score=2.0 if cid == "a" else None,
        )
        for cid, (lo, hi) in bands.items()
    ]
    return compute_consensus(claims, spec)


def test_without_points_a_counts_core_is_chosen_in_log_space_and_a_measures_on_the_line() -> None:
    count = _ranges(STOCK, "test/range")
    assert (count.low, count.best, count.high) == (1, None, 90)
    measure = _ranges(TEMPERATURE, "measure.range")
    assert (measure.low, measure.best, measure.high) == (10, None, 200)


# --- exclusive ends of the agreement band ------------------------------------------------------


def test_a_range_touching_an_exclusive_end_of_the_band_does_not_agree_with_it() -> None:
    # "more than 100 and less than 300" makes both ends of the band exclusive: a range
    # that ends at 100, or starts at 300, shares no value with it
    claims = [
        claim("a", exact(200), "A"),
        claim("b", val(100, None, 300, "range", low_exclusive=True, high_exclusive=True), "B"),
        claim("c", val(50, None, 100, "range"), "C", source_score=0.5),
        claim("d", val(300, None, 400, "range"), "D", source_score=0.5),
    ]
    result = compute_consensus(claims, STOCK)
    assert (result.support, result.dissent) == (("a", "b"), ("c", "d"))
    assert result.status == "contested"


def test_a_credible_dissenting_ceiling_widens_the_band_down_to_it() -> None:
    claims = [
        claim("a", exact(1000), "A"),
        claim("b", exact(1000), "B"),
        claim("c", up_to(500), "C"),
    ]
    result = compute_consensus(claims, STOCK)
    assert (result.low, result.best, result.high, result.dissent) == (500, 1000, 1000, ("c",))


def test_a_credible_dissenting_floor_widens_a_ceiling_to_it_inclusively() -> None:
    # no best: the heavier "under 500" holds; "over 800" (at least half as heavy) contradicts
    # it, so the answer reaches up to 800, which is not itself excluded
    claims = [claim("a", under(500), "A", source_score=2.0), claim("b", over(800), "B")]
    result = compute_consensus(claims, STOCK)
    assert (result.low, result.best, result.high, result.status) == (None, None, 800, "contested")
    assert result.explanation.startswith("Up to 800 ")


def test_a_bound_that_contradicts_best_adds_no_weight_behind_it() -> None:
    # "over 150" overlaps the agreement band 100–300 but excludes best 100: it is dissent, so
    # the weight behind best is 4 (A, B, F, D) and E, at 2, is a credible alternative
    claims = [
        claim("a", exact(100), "A"),
        claim("b", exact(100), "B"),
        claim("f", exact(100), "F"),
        claim("c", over(150), "C", source_score=2.0),
        claim("d", val(100, None, 300, "range"), "D"),
        claim("e", exact(1000), "E", source_score=2.0),
    ]
    result = compute_consensus(claims, STOCK)
    assert (result.low, result.best, result.high) == (100, 100, 1000)
    assert result.dissent == ("c", "e")


def _readings(*extra: ClaimFacts) -> ConsensusResult:
    # six origins, each repeating another's exact value: read as readings, the heaviest
    # value (100) wins; as estimates, the weighted median (300) would
    points = [(100, 1.0), (100, 1.0), (300, 0.9), (300, 0.9), (500, 0.9), (500, 0.9)]
    claims = [
        claim(f"p{i}", exact(v), f"P{i}", source_score=w, published="2025-02-01")
        for i, (v, w) in enumerate(points)
    ]
    return compute_consensus([*claims, *extra], STOCK)


def test_origins_repeating_each_others_exact_values_are_read_as_readings() -> None:
    assert _readings().best == 100


def test_only_claimed_points_count_as_readings_and_each_origin_once_at_its_latest() -> None:
    # three ranges (sorted first by id) with distinct midpoints are no readings
    ranges = [claim(f"g{i}", between(600 + i, 800, 700 + i), f"G{i}") for i in range(3)]
    assert _readings(*ranges).best == 100
    # P0's earlier 900 is not its reading: its latest (100) is
    earlier = claim("p0z", exact(900), "P0", published="2025-01-01")
    assert _readings(earlier).best == 100


def test_readings_split_evenly_are_decided_as_readings_not_as_a_median_split() -> None:
    # a tie of readings goes to the value nearer the median, and no "splits evenly" is said
    claims = [
        claim(c, exact(v), c.upper()) for c, v in zip("abcd", (100, 100, 300, 300), strict=True)
    ]
    result = compute_consensus(claims, STOCK)
    assert result.best == 100
    assert "splits evenly" not in result.explanation


def test_three_in_four_origins_repeating_one_value_are_readings() -> None:
    # exactly 3 of 4 clusters repeat a value (EXACT_SHARE): readings, so no median split
    # is said although the weight splits evenly between 100 and 300
    claims = [claim(c, exact(100), c.upper(), source_score=0.5) for c in "abc"]
    result = compute_consensus([*claims, claim("d", exact(300), "D", source_score=1.5)], STOCK)
    assert result.best == 100
    assert "splits evenly" not in result.explanation
