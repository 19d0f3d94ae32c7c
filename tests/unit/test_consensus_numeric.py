"""The numeric fusion at its edges, as a reader sees it: exclusive bounds whichever claim is
heavier, a measure's agreeing readings, and the share of weight that makes a dissenting
cluster widen the range (issue #25's mutants)."""

from __future__ import annotations

import pytest

from shared.consensus import compute_consensus
from shared.model import ConsensusResult, Value
from tests.unit.test_consensus import STOCK, at_least, claim, exact, over, under, up_to
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
