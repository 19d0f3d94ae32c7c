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
    at_least,
    between,
    claim,
    exact,
    name,
    over,
    under,
    up_to,
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
