"""The weighted vote of categorical and state values, as a reader sees it: which value wins,
when a segment has two witnesses, and what the explanation says (issue #25's mutants)."""

from __future__ import annotations

from datetime import date

from shared.consensus import compute_consensus
from shared.model import ClaimFacts, ValidTime
from tests.unit.test_consensus import COMMANDER, STATUS, claim, name, since


def _commander(cid: str, text: str, origin: str, score: float) -> ClaimFacts:
    return claim(cid, name(text), origin, attribute="commander", source_score=score)


def _status(cid: str, origin: str, start: date | None, end: date | None) -> ClaimFacts:
    vt = ValidTime(start, end, "interval")
    return claim(cid, name("deployed"), origin, attribute="deployment_status", valid_time=vt)


def test_the_heavier_value_wins_over_more_origins() -> None:
    # one origin weighing three times the others outweighs two of them: weight decides,
    # the number of origins only breaks ties
    claims = [
        _commander("a", "Kim Yong Bok", "A", 3.0),
        _commander("b", "Ri Chang Ho", "B", 1.0),
        _commander("c", "Ri Chang Ho", "C", 1.0),
    ]
    result = compute_consensus(claims, COMMANDER)
    assert (result.value_text, result.status) == ("Kim Yong Bok", "contested")
    assert result.explanation == (
        "'Kim Yong Bok' by weighted vote of 3 origins;"
        " contested ('Ri Chang Ho', B; 'Ri Chang Ho', C)."
    )


def test_equal_weight_goes_to_the_value_with_more_origins() -> None:
    # 2 x 0.18 against 0.36: a tie, broken by the two origins (not by the alphabet)
    claims = [
        _commander("a", "Kim Yong Bok", "A", 2.0),
        _commander("b", "Ri Chang Ho", "B", 1.0),
        _commander("c", "Ri Chang Ho", "C", 1.0),
    ]
    result = compute_consensus(claims, COMMANDER)
    assert dict(result.weights) == {"a": 0.36, "b": 0.18, "c": 0.18}
    assert (result.value_text, result.status) == ("Ri Chang Ho", "contested")
    assert result.support == ("b", "c")


def test_a_claim_mostly_about_other_months_is_no_second_witness() -> None:
    # December to February: December is a third of it (31 of 90 days), under the half
    # that makes a claim "about" a period
    claims = [
        _status("wide", "Blog", date(2024, 12, 1), date(2025, 3, 1)),
        _status("dec", "Wire", date(2024, 12, 1), date(2025, 1, 1)),
    ]
    december, rest = compute_consensus(claims, STATUS).segments
    assert (december.status, december.support) == ("single_source", ("dec", "wide"))
    assert december.explanation == (
        "From 2024-12-01 to 2025-01-01: Single origin about this period (Wire): 'deployed';"
        " consistent over a wider span: Blog (2024-12-01 to 2025-03-01)."
    )
    assert (rest.valid_from, rest.status) == (date(2025, 1, 1), "single_source")


def test_a_claim_half_about_a_month_is_a_witness_of_it() -> None:
    # December and January: December is half of it, which is enough
    claims = [
        _status("two", "Blog", date(2024, 12, 1), date(2025, 2, 1)),
        _status("dec", "Wire", date(2024, 12, 1), date(2025, 1, 1)),
    ]
    december = compute_consensus(claims, STATUS).segments[0]
    assert (december.status, december.support) == ("settled", ("dec", "two"))


def test_open_ended_claims_are_about_every_period_they_cover() -> None:
    # "deployed until January" (no start) and "deployed since December" (no end) each
    # witness December with the December claim
    until = [_status("u", "Blog", None, date(2025, 1, 1)), _status("dec", "Wire", *_DEC)]
    december = compute_consensus(until, STATUS).segments[1]
    assert (december.valid_from, december.status) == (date(2024, 12, 1), "settled")
    assert december.explanation == (
        "From 2024-12-01 to 2025-01-01: 'deployed' by weighted vote of 2 origins."
    )
    on = [
        claim(c, name("deployed"), o, attribute="deployment_status", valid_time=since(2024, 12))
        for c, o in (("a", "Blog"), ("b", "Wire"))
    ]
    result = compute_consensus(on, STATUS)
    assert result.status == "settled"
    assert result.explanation == "'deployed' since 2024-12-01 by weighted vote of 2 origins."


_DEC = (date(2024, 12, 1), date(2025, 1, 1))
