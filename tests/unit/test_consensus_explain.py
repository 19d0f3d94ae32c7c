"""The explanation a reader sees, sentence by sentence: every form of the band, what a vote
says about exclusions, dissent and witnesses of a period (issue #25's mutants)."""

from __future__ import annotations

from datetime import date

import pytest

from shared.consensus import compute_consensus
from shared.model import AttributeSpec, ClaimFacts, ValidTime, Value
from tests.unit.test_consensus import (
    COMMANDER,
    STATUS,
    STOCK,
    approx,
    at_least,
    between,
    claim,
    exact,
    name,
    over,
    since,
    under,
    up_to,
    val,
)


def _explained(claims: list[ClaimFacts], spec: AttributeSpec = STOCK) -> str:
    return compute_consensus(claims, spec).explanation


def _two(a: Value, b: Value) -> list[ClaimFacts]:
    return [claim("a", a, "A"), claim("b", b, "B")]


@pytest.mark.parametrize(
    ("a", "b", "reads"),
    [
        (exact(11500), exact(11500), "Best estimate 11,500 from 2 independent origins."),
        (
            exact(100),
            exact(200),
            "Best estimate 100 (the weight splits evenly between 100 and 200: the lower is"
            " taken) (range 100–200) from 2 independent origins; 1 dissenting claim (200, B)"
            " contradicts the best estimate.",
        ),
        (
            between(10000, 12000),
            between(11000, 13000),
            "Between 10,000 and 12,000 from 2 independent origins.",
        ),
        (between(100, 100), between(100, 100), "Exactly 100 from 2 independent origins."),
        (at_least(2000), at_least(1500), "At least 2,000 from 2 independent origins."),
        (over(2000), over(1500), "Over 2,000 from 2 independent origins."),
        (up_to(3000), up_to(2500), "Up to 2,500 from 2 independent origins."),
        (under(3000), under(2500), "Under 2,500 from 2 independent origins."),
    ],
)
def test_each_form_of_the_band_reads_as_a_sentence(a: Value, b: Value, reads: str) -> None:
    assert _explained(_two(a, b)) == reads


def test_a_range_of_one_value_is_that_value() -> None:
    # "between 100 and 100": its midpoint, taken in log space, came back as
    # 100.00000000000003, outside the range itself, and the answer was "Up to ?" with no
    # numbers at all
    result = compute_consensus(_two(between(100, 100), between(100, 100)), STOCK)
    assert (result.low, result.high, result.status) == (100, 100, "settled")
    single = compute_consensus([claim("a", between(7, 7), "A")], STOCK)
    assert (single.low, single.high) == (7, 7)


def _commander(cid: str, text: str, origin: str, **kw: object) -> ClaimFacts:
    return claim(cid, name(text), origin, attribute="commander", **kw)  # type: ignore[arg-type]


def test_a_vote_says_what_it_left_out() -> None:
    retracted = _commander("c", "Ri Chang Ho", "C", retracted=True)
    assert _explained([retracted], COMMANDER) == "No usable claims: 1 claim excluded (retracted)."
    claims = [_commander("a", "Kim Yong Bok", "A"), _commander("b", "Kim Yong Bok", "B"), retracted]
    assert _explained(claims, COMMANDER) == (
        "'Kim Yong Bok' by weighted vote of 2 origins; 1 claim excluded (retracted)."
    )


def test_dissenting_values_are_listed_heaviest_first() -> None:
    claims = [
        *(_commander(c, "Kim", c.upper()) for c in "abc"),
        _commander("d", "Ri", "Z", source_score=1.0),
        _commander("e", "Pak", "Y", source_score=0.5),
    ]
    assert _explained(claims, COMMANDER) == (
        "'Kim' by weighted vote of 5 origins; 2 dissenting origins ('Ri', Z; 'Pak', Y)."
    )


def _status(cid: str, text: str, origin: str, end: date, **kw: object) -> ClaimFacts:
    vt = ValidTime(date(2024, 12, 1), end, "interval")
    return claim(cid, name(text), origin, attribute="deployment_status", valid_time=vt, **kw)  # type: ignore[arg-type]


JAN, MAR = date(2025, 1, 1), date(2025, 3, 1)


def test_two_witnesses_of_a_period_settle_it_whatever_wider_claims_say() -> None:
    claims = [
        _status("w", "deployed", "Blog", MAR),
        _status("a", "deployed", "Wire", JAN),
        _status("b", "deployed", "Post", JAN),
    ]
    december = compute_consensus(claims, STATUS).segments[0]
    assert december.status == "settled"
    assert december.explanation == (
        "From 2024-12-01 to 2025-01-01: 'deployed' by weighted vote of 3 origins."
    )


def test_a_period_only_wider_claims_agree_with_has_no_witness() -> None:
    claims = [
        _status("w1", "deployed", "Blog", MAR),
        _status("w2", "deployed", "Post", MAR),
        _status("n", "withdrawn", "Wire", JAN, source_score=0.1),
    ]
    december = compute_consensus(claims, STATUS).segments[0]
    assert december.status == "single_source"
    assert december.explanation == (
        "From 2024-12-01 to 2025-01-01: No origin: 'deployed'; consistent over a wider span:"
        " Blog (2024-12-01 to 2025-03-01); Post (2024-12-01 to 2025-03-01);"
        " 1 dissenting origin ('withdrawn', Wire)."
    )


@pytest.mark.parametrize(
    ("value", "reads"),
    [
        (exact(100), "100"),
        (approx(12000), "approximately 12,000"),
        (val(None, 9000, None, "nearly"), "nearly 9,000"),
        (between(10000, 12000), "10,000–12,000"),
        (between(10000, 12000, midpoint=11000), "10,000–12,000"),  # nobody said 11,000
        (between(100, 100), "100"),
        (at_least(500), "at least 500"),
        (over(500), "over 500"),
        (val(500, None, None, "over"), "over 500"),  # the phrasing, without the flag
        (up_to(3000), "up to 3,000"),
        (under(3000), "under 3,000"),
        (val(None, None, 3000, "under"), "under 3,000"),
    ],
)
def test_a_claimed_value_reads_as_it_was_said(value: Value, reads: str) -> None:
    assert _explained([claim("a", value, "A")]) == f"Single origin (A): {reads}."


def _points(*values: tuple[str, int, float]) -> list[ClaimFacts]:
    return [claim(o.lower(), exact(n), o, source_score=s) for o, n, s in values]


def test_dissent_is_listed_heaviest_first_and_cut_after_three() -> None:
    agree = [(o, 100, 1.0) for o in "ABCDE"]
    claims = _points(*agree, ("F", 900, 1.0), ("G", 1000, 2.0), ("H", 5000, 1.0), ("I", 7000, 1.0))
    assert _explained(claims) == (
        "Best estimate 100 (the weight splits evenly between 100 and 900: the lower is taken)"
        " from 9 independent origins; 4 dissenting claims (1,000, G; 900, F; 5,000, H; 1 more)"
        " lie outside the range."
    )
    three = _points(*agree, ("F", 900, 1.0), ("G", 1000, 2.0), ("H", 5000, 0.5))
    assert _explained(three).endswith(
        "; 3 dissenting claims (1,000, G; 900, F; 5,000, H) lie outside the range."
    )


def test_claims_overlapping_the_range_contradict_the_best_estimate() -> None:
    claims = [
        claim("a", exact(100), "A"),
        claim("b", at_least(500), "B"),
        claim("c", at_least(600), "C"),
    ]
    assert _explained(claims) == (
        "Best estimate 100 (range 100–600) from 3 independent origins; 2 dissenting claims"
        " (at least 500, B; at least 600, C) contradict the best estimate."
    )


def test_an_open_ended_period_reads_from_its_start_on() -> None:
    claims = [
        claim(c, name("deployed"), o, attribute="deployment_status", valid_time=since(2025, 2))
        for c, o in (("a", "Blog"), ("b", "Wire"))
    ]
    [segment] = compute_consensus(claims, STATUS).segments
    assert segment.explanation == "From 2025-02-01 on: 'deployed' by weighted vote of 2 origins."


def _copied(copiers: int) -> list[ClaimFacts]:
    """Two origins say B7; a feed says C7 and `copiers` sources found copying it repeat it."""
    return [
        _commander("a", "B7", "A"),
        _commander("b", "B7", "B"),
        _commander("f", "C7", "Feed", source_id="feed"),
        *(
            _commander(f"m{i}", "C7", f"Mirror {i}", source_id=f"mirror{i}", copies_source="feed")
            for i in range(copiers)
        ),
    ]


@pytest.mark.parametrize(
    ("copiers", "reads"),
    [
        (1, "1 source found copying another counts once with it (mirror0)"),
        (3, "3 sources found copying others count once with them (mirror0, mirror1, mirror2)"),
        (4, "4 sources found copying others count once with them (mirror0, mirror1, mirror2, …)"),
    ],
)
def test_the_copiers_a_vote_counted_once_are_named(copiers: int, reads: str) -> None:
    assert f"; {reads}" in _explained(_copied(copiers), COMMANDER)
