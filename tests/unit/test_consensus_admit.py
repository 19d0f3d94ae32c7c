"""Admission, as a reader relies on it: which claims count, what a relative claim becomes and
how its note reads, why a claim is left out, who speaks for an origin, and that the memo of
admissions never serves a stale answer (issue #25's mutants of shared/consensus/_admit.py)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.consensus import claim_note, compute_consensus
from shared.model import AttributeSpec, ClaimFacts, ConsensusResult, Estimate, Value
from tests.unit.test_consensus import (
    COMMANDER,
    KILLED,
    STOCK,
    approx,
    between,
    claim,
    exact,
    name,
    up_to,
    val,
)

TROOPS = {"personnel_deployed": Estimate(10800, 12000, 13200)}
NO_BEST = {"personnel_deployed": Estimate(10000, None, 15000)}
# a measure keeps its decimals: no outward rounding hides the arithmetic of a bound
SPENDING = AttributeSpec("spending", "measure", unit="USD")


def ratio(low: float | None, best: float | None, high: float | None, **kw: Any) -> Value:
    return val(low, best, high, "relative", relative_to="personnel_deployed", **kw)


def killed(value: Value, related: dict[str, Estimate] = TROOPS) -> ConsensusResult:
    return compute_consensus([claim("k", value, "Z", attribute="killed")], KILLED, related=related)


def spent(value: Value, of: float) -> ConsensusResult:
    related = {"personnel_deployed": Estimate(None, of, None)}
    return compute_consensus(
        [claim("s", value, "Z", attribute="spending")], SPENDING, related=related
    )


# --- relative claims: a ratio of another attribute's consensus becomes a bound -------------


def test_at_least_a_share_of_the_reference_is_a_floor() -> None:
    result = killed(ratio(0.25, None, None))
    assert (result.low, result.best, result.high) == (3000, None, None)
    assert result.constraints == (
        "k: at least 3,000 = 1/4 of personnel_deployed 12,000 (relative claim)",
    )
    assert result.explanation == "Single origin (Z): at least 3,000."


def test_a_bare_ratio_bounds_both_sides_and_is_never_a_best() -> None:
    result = killed(ratio(None, 1 / 3, None))
    assert (result.low, result.best, result.high) == (4000, None, 4000)
    assert result.constraints == ("k: 4,000 = 1/3 of personnel_deployed 12,000 (relative claim)",)


def test_a_hedged_ratio_names_both_of_its_ratios() -> None:
    # "about a third" (0.3 to 0.3667): the bound is not 11/30 of 12,000, it is 3/10 to 11/30
    result = killed(ratio(0.3, 1 / 3, 11 / 30))
    assert (result.low, result.best, result.high) == (3600, None, 4400)
    assert result.constraints == (
        "k: 3,600–4,400 = 3/10–11/30 of personnel_deployed 12,000 (relative claim)",
    )


def test_without_a_best_the_reference_side_keeps_the_bound_safe() -> None:
    # a floor scales the reference's low, a ceiling its high, and the note names that number
    floor = killed(ratio(0.25, None, None), NO_BEST)
    assert floor.low == 2500
    assert floor.constraints == (
        "k: at least 2,500 = 1/4 of personnel_deployed 10,000 (relative claim)",
    )
    ceiling = killed(ratio(None, None, 1 / 3), NO_BEST)
    assert ceiling.high == 5000
    assert ceiling.constraints == (
        "k: at most 5,000 = 1/3 of personnel_deployed 15,000 (relative claim)",
    )


def test_a_reference_with_no_number_on_the_needed_side_leaves_the_claim_out() -> None:
    only_high = {"personnel_deployed": Estimate(None, None, 15000)}
    result = killed(ratio(0.25, None, None), only_high)
    assert result.exclusions == (("k", "relative: personnel_deployed unknown"),)
    nameless = killed(val(None, None, 0.5, "relative"))
    assert nameless.exclusions == (("k", "relative: reference unknown"),)


def test_a_share_of_a_count_is_rounded_outward_to_whole_things() -> None:
    related = {"personnel_deployed": Estimate(None, 1000, None)}
    floor = killed(ratio(1 / 3, None, None), related)
    assert (floor.low, floor.high) == (333, None)
    band = killed(ratio(1 / 3, None, 1 / 2), related)
    assert (band.low, band.high) == (333, 500)


def test_a_share_of_a_measure_keeps_six_decimals_and_whole_results_stay_ints() -> None:
    tenth = spent(ratio(None, None, 0.1), 3)
    assert tenth.high == 0.3
    third = spent(ratio(None, None, 1 / 3), 1)
    assert third.high == 0.333333
    # 7 % of 100,000,000 is 7,000,000.000000001 in floats: noise, not a fraction
    seven = spent(ratio(None, None, 0.07), 100_000_000)
    assert seven.high == 7_000_000 and type(seven.high) is int


def test_a_ratio_reads_as_a_fraction_only_when_it_is_one() -> None:
    half = spent(ratio(None, None, 0.5), 1000)
    assert half.constraints == (
        "s: at most 500 = 1/2 of personnel_deployed 1,000 (relative claim)",
    )
    odd = spent(ratio(None, None, 0.123456), 1000)
    assert odd.constraints == (
        "s: at most 123.46 = 12.35% of personnel_deployed 1,000 (relative claim)",
    )
    twice = spent(ratio(None, None, 2), 1000)
    assert twice.constraints == (
        "s: at most 2,000 = 2 of personnel_deployed 1,000 (relative claim)",
    )


def test_a_share_below_one_percent_reads_as_a_percentage() -> None:
    # half a percent is not "0.01 of" anything
    result = spent(ratio(None, None, 0.005), 10_000)
    assert result.constraints == (
        "s: at most 50 = 0.5% of personnel_deployed 10,000 (relative claim)",
    )


# --- why a claim is left out ---------------------------------------------------------------


def test_unusable_numbers_are_excluded_with_what_is_wrong() -> None:
    claims = [
        claim("a", exact(100), "A"),
        claim("b", val(hedge="exact"), "B"),
        claim("c", val(500, None, 300), "C"),
        claim("d", val(100, 50, 200), "D"),
        claim("e", val(None, float("nan"), None), "E"),
    ]
    assert compute_consensus(claims, STOCK).exclusions == (
        ("b", "no value"),
        ("c", "invalid value: low above high"),
        ("d", "invalid value: best outside its interval"),
        ("e", "invalid value"),
    )


def test_a_point_covers_its_own_best_on_the_side_it_leaves_open() -> None:
    result = compute_consensus(
        [claim("a", val(None, 100, 150), "A"), claim("b", val(100, 100, None), "B")], STOCK
    )
    assert (result.low, result.best, result.high) == (100, 100, 150)
    alone = compute_consensus([claim("a", val(None, 100, None), "A")], STOCK)
    assert (alone.low, alone.best, alone.high) == (100, 100, 100)


def test_a_counts_derived_midpoint_is_its_nearest_whole_number_halves_up() -> None:
    result = compute_consensus([claim("a", between(10, 15, 12.5), "A")], STOCK)
    assert (result.low, result.best, result.high) == (10, 13, 15)


# --- names that were read as numbers -------------------------------------------------------


def _gate(value: Value) -> ConsensusResult:
    return compute_consensus([claim("a", value, "A", attribute="commander")], COMMANDER)


def test_a_plain_number_without_its_phrase_is_the_name_it_was_written_as() -> None:
    assert _gate(exact(12.0)).value_text == "12"
    assert _gate(exact(2.5)).value_text == "2.5"
    assert _gate(val(7, 7, 7, raw="  No. 7 ")).value_text == "No. 7"


@pytest.mark.parametrize(
    "value",
    [
        val(12, 12, 15),  # "at least 12, perhaps 15": hedged on one side
        val(10, 12, 12),
        val(12, 12, 12, best_derived=True),
        val(0.5, 0.5, 0.5, "relative", relative_to="personnel_deployed"),
    ],
)
def test_a_hedged_derived_or_relative_figure_is_not_a_name(value: Value) -> None:
    assert _gate(value).exclusions == (("a", "not a categorical value"),)


# --- who speaks for an origin ----------------------------------------------------------------


def test_an_origins_most_precise_statement_speaks_for_it_whatever_came_later() -> None:
    claims = [
        claim("a", exact(12000), "A", published="2025-01-10"),
        claim("b", approx(13000), "A", published="2025-01-20"),
        claim("c", up_to(20000), "A", published="2025-01-30"),
        claim("d", up_to(25000), "A", published="2025-01-31"),
    ]
    (cluster,) = compute_consensus(claims, STOCK).clusters
    assert (cluster.low, cluster.best, cluster.high) == (12000, 12000, 12000)
    ranges = compute_consensus([claims[1], claim("e", between(12000, 30000), "A")], STOCK)
    assert (ranges.clusters[0].low, ranges.clusters[0].high) == (11700, 14300)


def test_an_origins_latest_name_speaks_for_it_when_equally_reliable() -> None:
    claims = [
        claim("a", name("Kim Yong Bok"), "A", attribute="commander", published="2025-01-10"),
        claim("b", name("Ri Chang Ho"), "A", attribute="commander", published="2025-02-10"),
    ]
    result = compute_consensus(claims, COMMANDER)
    assert result.value_text == "Ri Chang Ho"


def test_an_unattributed_claim_speaks_for_its_source() -> None:
    claims = [
        claim("a", exact(100), " ", source_id="wire"),
        claim("b", exact(100), "", source_id="Wire "),
        claim("c", exact(300), "", source_id="desk"),
    ]
    result = compute_consensus(claims, STOCK)
    assert sorted((c.origin, c.claim_ids) for c in result.clusters) == [
        ("desk", ("c",)),
        ("wire", ("a", "b")),
    ]


# --- publication times are instants in UTC ---------------------------------------------------


@pytest.mark.parametrize(
    ("published", "newest"),
    [
        (date(2025, 3, 4), "2025-03-04T00:00:00Z"),
        (datetime(2025, 3, 4, 8, 30), "2025-03-04T08:30:00Z"),
        (datetime(2025, 3, 4, 8, 30, tzinfo=timezone(timedelta(hours=2))), "2025-03-04T06:30:00Z"),
    ],
)
def test_a_publication_time_is_read_as_utc_whatever_the_machine_zone(
    far_from_utc: None, published: Any, newest: str
) -> None:
    facts = dataclasses.replace(claim("a", exact(100), "A"), published_at=published)
    assert compute_consensus([facts], STOCK).newest_support_at == newest


# --- analysts' notes -------------------------------------------------------------------------


def test_an_assessment_note_names_every_grade_given() -> None:
    graded = {"rank": "preferred", "credibility": 2, "reason": "imagery", "by": "desk-7"}
    assert (
        claim_note("assessment", graded)
        == "assessed rank preferred, credibility 2: imagery (desk-7)"
    )
    assert claim_note("assessment", {}) == "assessed: no reason given"


# --- the memo of admissions ------------------------------------------------------------------


def _memo_run(claims: list[ClaimFacts], memo: dict[str, Any], **kw: Any) -> ConsensusResult:
    return compute_consensus(claims, kw.pop("spec", STOCK), memo=memo, **kw)


def test_the_memo_admits_each_claim_object_once_under_an_equal_spec() -> None:
    claims = [claim("a", approx(12000), "A"), claim("b", exact(900), "B", retracted=True)]
    memo: dict[str, Any] = {}
    _memo_run(claims, memo)
    first = {cid: entry[3] for cid, entry in memo.items()}
    _memo_run(claims, memo, spec=dataclasses.replace(STOCK))  # equal, not the same object
    assert all(memo[cid][3] is first[cid] for cid in first)


def test_the_memo_never_serves_an_admission_made_under_another_score_or_spec() -> None:
    claims = [claim("a", between(10.5, 12.5), "A"), claim("b", exact(11), "B")]
    memo: dict[str, Any] = {}
    _memo_run(claims, memo, source_scores={"src-a": 2.0})
    rescored = _memo_run(claims, memo, source_scores={"src-a": 0.5})
    assert rescored == compute_consensus(claims, STOCK, source_scores={"src-a": 0.5})
    assert dict(rescored.weights)["a"] < dict(rescored.weights)["b"]
    measured = dataclasses.replace(STOCK, implicit=True)  # no longer counts whole things
    result = _memo_run(claims, memo, spec=measured, source_scores={"src-a": 0.5})
    (a,) = [c for c in result.clusters if c.claim_ids == ("a",)]
    assert (a.low, a.high) == (10.5, 12.5)


def test_a_decimal_that_rounds_to_a_whole_number_reads_as_that_number() -> None:
    # two decimals are shown: 2.999 reads "3", never "3." or "3.00"
    result = spent(ratio(None, None, 0.2999), 10)
    assert result.high == 2.999
    assert result.constraints == (
        "s: at most 3 = 29.99% of personnel_deployed 10 (relative claim)",
    )
