"""Rules of the consensus engine, each test named after the rule it pins down."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.consensus import METHOD, METHOD_VERSION, compute_consensus
from shared.model import (
    AttributeSpec,
    ClaimFacts,
    ConsensusResult,
    Estimate,
    ValidTime,
    Value,
)

# --- a small factory: literal claims, independent of shared/values.py --------------------

STOCK = AttributeSpec("personnel_deployed", "stock", unit="person")
KILLED = AttributeSpec("killed", "cumulative", unit="person")
STATUS = AttributeSpec("deployment_status", "state")
COMMANDER = AttributeSpec(
    "commander",
    "categorical",
    value_aliases=(("Kim Yong Bok", ("Kim Yong-bok", "Gen. Kim Yong Bok")),),
)
KILLED_OR_WOUNDED = AttributeSpec(
    "killed_or_wounded", "cumulative", unit="person", composite_of=("killed", "wounded")
)


def val(
    low: float | None = None,
    best: float | None = None,
    high: float | None = None,
    hedge: str = "exact",
    **kw: Any,
) -> Value:
    return Value(low=low, best=best, high=high, hedge=hedge, rule=f"test/{hedge}", **kw)


def exact(n: float) -> Value:
    return val(n, n, n, "exact")


def approx(n: int, tol: int | None = None) -> Value:
    t = n // 10 if tol is None else tol
    return val(n - t, n, n + t, "approximately")


def between(a: float, b: float, midpoint: float | None = None) -> Value:
    return val(a, midpoint, b, "range", best_derived=midpoint is not None)


def up_to(n: float) -> Value:
    return val(None, None, n, "up_to")


def over(n: float) -> Value:
    return val(n, None, None, "over", low_exclusive=True)


def at_least(n: float) -> Value:
    return val(n, None, None, "at_least")


def under(n: float) -> Value:
    return val(None, None, n, "under", high_exclusive=True)


def relative(high_ratio: float, of: str) -> Value:
    return val(None, None, high_ratio, "relative", relative_to=of)


def name(text: str) -> Value:
    return val(hedge="categorical", text=text)


def month(year: int, m: int) -> ValidTime:
    end = date(year + 1, 1, 1) if m == 12 else date(year, m + 1, 1)
    return ValidTime(date(year, m, 1), end, "month")


def since(year: int, m: int) -> ValidTime:
    return ValidTime(date(year, m, 1), None, "open")


def claim(
    cid: str,
    value: Value,
    origin: str = "Origin",
    *,
    attribute: str = "personnel_deployed",
    published: str = "2025-01-15",
    source_id: str | None = None,
    **kw: Any,
) -> ClaimFacts:
    return ClaimFacts(
        claim_id=cid,
        report_id=f"r-{cid}",
        subject="dprk-troops-kursk",
        attribute=attribute,
        source_id=source_id or f"src-{cid}",
        published_at=datetime.fromisoformat(published).replace(tzinfo=UTC),
        value=value,
        attributed_to=origin,
        **kw,
    )


def state(
    cid: str, text: str, origin: str = "Origin", valid_time: ValidTime | None = None, **kw: Any
) -> ClaimFacts:
    """A claim of deployment_status (STATUS) that the state is `text` over `valid_time`."""
    return claim(
        cid, name(text), origin, attribute="deployment_status", valid_time=valid_time, **kw
    )


def run(claims: list[ClaimFacts], spec: AttributeSpec = STOCK, **kw: Any) -> ConsensusResult:
    return compute_consensus(claims, spec, **kw)


def weight_of(result: ConsensusResult, cid: str) -> float:
    return dict(result.weights)[cid]


# --- independence -------------------------------------------------------------------------


def test_ten_blogs_citing_one_origin_count_once() -> None:
    official = claim("ua", exact(12000), "Ukrainian military", source_kind="official")
    blogs = [
        claim(
            f"blog{i}", exact(12000), f"Blog {i}", source_kind="blog", cites=("Ukrainian military",)
        )
        for i in range(10)
    ]
    nis = claim("nis", exact(8000), "NIS", source_kind="think_tank", source_reliability="B")
    result = run([official, *blogs, nis])
    assert len(result.clusters) == 2
    ua = next(c for c in result.clusters if c.origin == "Ukrainian military")
    assert len(ua.claim_ids) == 11
    # The better-graded independent origin outweighs eleven repetitions of one voice.
    assert result.best == 8000
    assert "from 2 independent origins" in result.explanation


def test_cluster_weight_is_the_max_member_weight_not_the_sum() -> None:
    a = claim("a", exact(100), "Ministry", source_reliability="B")
    b = claim("b", exact(100), "ministry ", source_reliability="D")
    result = run([a, b])
    [cluster] = result.clusters
    assert cluster.weight == max(weight_of(result, "a"), weight_of(result, "b"))
    assert cluster.claim_ids == ("a", "b")


def test_same_attribution_is_case_and_space_insensitive() -> None:
    result = run(
        [claim("a", exact(5), "South  Korean NIS"), claim("b", exact(5), "south korean nis")]
    )
    assert len(result.clusters) == 1
    assert result.status == "single_source"


def test_citation_chain_joins_clusters_transitively() -> None:
    claims = [
        claim("a", exact(3000), "UA intelligence"),
        claim("b", exact(3000), "Zelenskyy", cites=("UA intelligence",)),
        claim("c", exact(3000), "Blog", cites=("Zelenskyy",)),
    ]
    result = run(claims)
    assert [c.claim_ids for c in result.clusters] == [("a", "b", "c")]
    assert result.clusters[0].origin == "UA intelligence"


def test_detected_copy_joins_the_original_cluster() -> None:
    quote = "Some 11,437 North Korean soldiers were stationed in the Kursk region."
    original = claim("a", exact(11437), "Reuters source", quote=quote, published="2025-01-10")
    copy = claim("b", exact(11437), "Blog", quote=quote + " (via Reuters)", published="2025-01-12")
    result = run([original, copy])
    assert len(result.clusters) == 1
    assert result.clusters[0].origin == "Reuters source"  # the earliest member names it


def test_round_numbers_with_the_same_quote_are_not_copies() -> None:
    quote = "About 12,000 North Korean troops are in Kursk."
    result = run(
        [claim("a", approx(12000), "A", quote=quote), claim("b", approx(12000), "B", quote=quote)]
    )
    assert len(result.clusters) == 2
    assert result.status == "settled"


def test_same_specific_number_with_different_wording_is_not_a_copy() -> None:
    a = claim(
        "a", exact(11437), "A", quote="11,437 soldiers were stationed in Kursk, officials said."
    )
    b = claim(
        "b", exact(11437), "B", quote="Seoul counted 11,437 troops after the January rotation."
    )
    assert len(run([a, b]).clusters) == 2


# --- numeric fusion -----------------------------------------------------------------------


def test_up_to_caps_high_without_pulling_best() -> None:
    base = [claim("a", approx(12000), "A"), claim("b", exact(11500), "B")]
    capped = run([*base, claim("c", up_to(12500), "C")])
    plain = run(base)
    assert capped.best == plain.best == 11500
    assert plain.high == 13200
    assert capped.high == 12500
    assert "c" in capped.support
    assert capped.status == "settled"


def test_over_raises_low_when_consistent() -> None:
    result = run([claim("a", approx(12000), "A"), claim("b", over(11000), "B")])
    assert result.best == 12000
    assert result.low == 11000
    assert result.conservative == 11000
    assert result.support == ("a", "b")


def test_one_sided_bound_that_contradicts_best_is_dissent_not_applied() -> None:
    result = run(
        [claim("a", approx(12000), "A"), claim("b", over(15000), "South Korean intelligence")]
    )
    # not applied: it does not clip the band to nothing; as an equally weighted, credible
    # alternative the contested band reaches up to where it begins
    assert (result.low, result.best, result.high) == (10800, 12000, 15000)
    assert result.dissent == ("b",)
    assert result.status == "contested"
    assert "1 dissenting claim (over 15,000, South Korean intelligence) lies outside the range" in (
        result.explanation
    )


def test_bound_inside_the_band_that_excludes_best_is_dissent() -> None:
    result = run([claim("a", approx(12000), "A"), claim("b", at_least(12500), "B")])
    assert result.low == 10800
    assert result.dissent == ("b",)
    assert result.status == "contested"
    assert "contradicts the best estimate" in result.explanation


def test_single_cluster_returns_its_own_interval() -> None:
    result = run([claim("a", between(10000, 12000, midpoint=11000), "reports")])
    assert (result.low, result.best, result.high) == (10000, 11000, 12000)
    assert result.status == "single_source"
    assert result.conservative == 10000
    two_members = run(
        [claim("a", approx(12000), "X"), claim("b", exact(9000), "x", source_reliability="E")]
    )
    assert (two_members.low, two_members.best, two_members.high) == (10800, 12000, 13200)
    assert two_members.status == "single_source"
    assert two_members.dissent == ("b",)


def test_bounds_only_give_no_best() -> None:
    result = run([claim("a", at_least(3000), "A"), claim("b", up_to(5000), "B")])
    assert result.best is None
    assert (result.low, result.high) == (3000, 5000)
    assert result.conservative == 3000
    assert result.status == "settled"
    assert result.explanation.startswith("Between 3,000 and 5,000 from 2 independent origins")


def test_conflicting_bounds_the_heavier_one_holds() -> None:
    heavy = claim("a", at_least(5000), "A", source_reliability="A", credibility=1)
    light = claim("b", up_to(3000), "B", source_reliability="E")
    result = run([heavy, light])
    assert (result.low, result.best, result.high) == (5000, None, None)
    assert result.dissent == ("b",)
    assert result.status == "contested"


def test_range_without_point_does_not_pull_best() -> None:
    result = run(
        [claim("a", between(10000, 14000, midpoint=12000), "A"), claim("b", exact(10500), "B")]
    )
    assert result.best == 10500
    assert result.low == 10000 and result.high == 14000


def test_best_equals_a_claimed_value_exactly() -> None:
    # an attribute the registry does not know keeps its decimals (counts are whole)
    spec = AttributeSpec("personnel_deployed", "stock", implicit=True)
    claims = [
        claim("a", approx(11999), "A"),
        claim("b", val(0.1 + 0.2, 0.1 + 0.2 + 11999, 12003.7, "approximately"), "B"),
        claim("c", exact(12001), "C"),
    ]
    claimed_bests = {11999, 0.1 + 0.2 + 11999, 12001}
    claimed_bounds = {11999 - 1199, 11999 + 1199, 0.1 + 0.2, 12003.7, 12001}
    result = run(claims, spec)
    assert result.best in claimed_bests
    assert result.low in claimed_bounds and result.high in claimed_bounds
    assert repr(result.best) in {repr(x) for x in claimed_bests}


def test_ints_stay_ints() -> None:
    result = run([claim("a", approx(12000), "A"), claim("b", between(10000, 12000), "B")])
    for number in (result.low, result.best, result.high, result.conservative):
        assert type(number) is int
    assert result.explanation.startswith("Best estimate 12,000 (range 10,000–13,200)")


def test_zero_is_a_valid_count() -> None:
    result = run([claim("a", exact(0), "A"), claim("b", exact(0), "B"), claim("c", exact(3), "C")])
    assert result.best == 0
    assert result.dissent == ("c",)


def test_derived_midpoint_counts_only_without_claimed_points() -> None:
    ranges = [claim("a", between(100, 300, 200), "A"), claim("b", between(150, 250, 200), "B")]
    assert run(ranges).best == 200
    assert run([*ranges, claim("c", exact(180), "C")]).best == 180


def test_contested_when_an_independent_cluster_is_disjoint() -> None:
    claims = [
        claim("a", approx(12000), "A"),
        claim("b", exact(12000), "B"),
        claim("c", exact(50000), "C"),
    ]
    result = run(claims)
    assert result.best == 12000
    assert result.status == "contested"
    assert result.dissent == ("c",)


def test_settled_when_independent_clusters_overlap() -> None:
    result = run([claim("a", approx(12000), "A"), claim("b", between(10000, 12000), "B")])
    assert result.status == "settled"
    assert result.dissent == ()


def test_conservative_is_the_largest_consistent_lower_bound() -> None:
    claims = [
        claim("a", approx(12000), "A"),
        claim("b", between(10000, 12500), "B"),
        claim("c", at_least(9000), "C"),
        claim("d", at_least(20000), "D"),  # contradicts best: not credible here
    ]
    result = run(claims)
    assert result.conservative == 10800
    assert result.low == 10000


# --- exclusions and weights ---------------------------------------------------------------


def test_retracted_claim_is_listed_excluded_not_dropped() -> None:
    result = run([claim("a", exact(100), "A"), claim("b", exact(900), "B", retracted=True)])
    assert result.excluded == ("b",)
    assert result.exclusions == (("b", "retracted"),)
    assert "b" not in result.support + result.dissent
    assert result.best == 100


def test_deprecated_and_denied_claims_are_excluded_with_reasons() -> None:
    claims = [
        claim("a", exact(100), "A"),
        claim("b", exact(900), "B", rank="deprecated"),
        claim("c", exact(700), "C", modality="denied"),
    ]
    result = run(claims)
    assert result.exclusions == (("b", "deprecated"), ("c", "denied"))
    assert result.status == "single_source"


def test_claim_of_another_attribute_is_excluded() -> None:
    result = run(
        [
            claim("a", exact(12000), "A"),
            claim("b", up_to(3000), "B", attribute="additional_deployment"),
        ]
    )
    assert result.exclusions == (("b", "other attribute: additional_deployment"),)


def test_wrong_value_kind_is_excluded() -> None:
    assert run([claim("a", name("many"), "A")]).exclusions == (("a", "not a numeric value"),)
    got = compute_consensus([claim("a", approx(30), "A", attribute="commander")], COMMANDER)
    assert got.exclusions == (("a", "not a categorical value"),)


def test_a_name_that_looks_like_a_number_is_compared_as_a_name() -> None:
    """Gates "B12", "12", "12", "C3", "12" from five sources: the key holds names, so the
    three "12"s (read as numbers at the door) vote as the name "12" and win."""
    values = [name("B12"), exact(12), exact(12), name("C3"), exact(12)]
    claims = [
        claim(c, v, c.upper(), attribute="commander") for c, v in zip("abcde", values, strict=True)
    ]
    got = compute_consensus(claims, COMMANDER)
    assert got.value_text == "12"
    assert got.exclusions == ()
    assert sorted(got.support) == ["b", "c", "e"]


def test_every_claim_is_supported_dissenting_or_excluded() -> None:
    claims = [
        claim("a", approx(12000), "A"),
        claim("b", exact(50000), "B"),
        claim("c", exact(1), "C", retracted=True),
        claim("d", up_to(13000), "D"),
    ]
    result = run(claims)
    ids = [*result.support, *result.dissent, *result.excluded]
    assert sorted(ids) == ["a", "b", "c", "d"]


def test_possible_and_machine_proposed_claims_weigh_less() -> None:
    result = run(
        [
            claim("a", exact(1), "A"),
            claim("b", exact(1), "B", modality="possible"),
            claim("c", exact(1), "C", machine_proposed=True),
        ]
    )
    assert weight_of(result, "b") < weight_of(result, "a")
    assert weight_of(result, "c") < weight_of(result, "a")


def test_weights_follow_grades_rank_and_source_scores() -> None:
    claims = [
        claim("a1", exact(1), "A", source_reliability="A", credibility=1, source_kind="dataset"),
        claim("f6", exact(1), "B", source_reliability="F", credibility=6, source_kind="social"),
        claim("pref", exact(1), "C", rank="preferred"),
        claim("norm", exact(1), "D"),
        claim("scored", exact(1), "E", source_id="s-good"),
    ]
    result = run(claims, source_scores={"s-good": 2.0})
    assert weight_of(result, "a1") == 1.0
    assert weight_of(result, "f6") < weight_of(result, "a1")
    assert weight_of(result, "pref") == pytest.approx(1.5 * weight_of(result, "norm"))
    assert weight_of(result, "scored") == pytest.approx(2.0 * weight_of(result, "norm"))
    assert [cid for cid, _ in result.weights] == sorted(cid for cid, _ in result.weights)


def test_preferred_rank_decides_between_two_origins() -> None:
    claims = [claim("a", exact(100), "A"), claim("b", exact(200), "B", rank="preferred")]
    assert run(claims).best == 200


# --- relative and composite constraints ---------------------------------------------------


def test_relative_claim_becomes_a_bound_from_related_estimate() -> None:
    related = {"personnel_deployed": Estimate(10800, 12000, 13200)}
    claims = [
        claim("a", approx(4000, 500), "A", attribute="killed"),
        claim("b", relative(1 / 3, "personnel_deployed"), "Zelenskyy", attribute="killed"),
    ]
    result = compute_consensus(claims, KILLED, related=related)
    assert result.best == 4000
    assert result.high == 4000 and type(result.high) is int
    assert result.low == 3500
    assert result.support == ("a", "b")
    assert any(
        "b: at most 4,000 = 1/3 of personnel_deployed 12,000" in c for c in result.constraints
    )
    alone = compute_consensus(claims[1:], KILLED, related=related)
    assert (alone.low, alone.best, alone.high) == (None, None, 4000)


def test_unresolved_relative_claim_is_excluded_with_reason() -> None:
    claims = [claim("b", relative(1 / 3, "personnel_deployed"), "Z", attribute="killed")]
    result = compute_consensus(claims, KILLED)
    assert result.exclusions == (("b", "relative: personnel_deployed unknown"),)
    assert result.status == "no_data"


def test_composite_low_is_at_least_the_sum_of_component_lows() -> None:
    related = {"killed": Estimate(1000, 1200, None), "wounded": Estimate(2500, None, None)}
    claims = [claim("a", over(3000), "reports", attribute="killed_or_wounded")]
    result = compute_consensus(claims, KILLED_OR_WOUNDED, related=related)
    assert result.low == 3500 and type(result.low) is int
    assert result.conservative == 3500
    assert result.constraints == (
        "killed_or_wounded at least 3,500 = killed 1,000 + wounded 2,500 (composite)",
    )


def test_composite_floor_that_contradicts_best_is_noted_not_applied() -> None:
    related = {"killed": Estimate(4000, None, None)}
    claims = [claim("a", exact(3000), "A", attribute="killed_or_wounded")]
    result = compute_consensus(claims, KILLED_OR_WOUNDED, related=related)
    assert result.low == 3000
    assert result.constraints[0].endswith("; not applied")


# --- status and time ----------------------------------------------------------------------


def test_no_claims_is_no_data() -> None:
    result = run([])
    assert result.status == "no_data"
    assert (result.low, result.best, result.high) == (None, None, None)
    assert result.explanation == "No claims."


def test_only_excluded_claims_is_no_data_with_exclusions() -> None:
    result = run([claim("a", exact(1), "A", retracted=True)])
    assert result.status == "no_data"
    assert result.excluded == ("a",)
    assert result.explanation == "No usable claims: 1 claim excluded (retracted)."


def test_the_result_carries_its_newest_support_and_never_decides_staleness() -> None:
    claims = [
        claim("a", exact(5), "A", published="2023-01-01"),
        claim("b", exact(5), "B", published="2023-06-01"),
        claim("c", exact(900), "C", published="2024-06-01"),  # dissent: not support
    ]
    result = run(claims)
    assert result.status == "contested"
    assert result.newest_support_at == "2023-06-01T00:00:00Z"


def test_stock_claims_about_different_months_form_separate_segments() -> None:
    claims = [
        claim("dec", approx(12000), "A", valid_time=month(2024, 12)),
        claim("feb", approx(8000), "B", valid_time=month(2025, 2)),
    ]
    result = run(claims)
    dec, feb = result.segments
    assert (dec.valid_from, dec.valid_to, dec.best) == (date(2024, 12, 1), date(2025, 1, 1), 12000)
    assert (feb.valid_from, feb.valid_to, feb.best) == (date(2025, 2, 1), date(2025, 3, 1), 8000)
    assert dec.support == ("dec",) and feb.support == ("feb",)
    assert dec.status == feb.status == "single_source"


def test_claims_without_valid_time_create_no_segments() -> None:
    claims = [
        claim("a", approx(12000), "A"),
        claim("b", exact(12500), "B", valid_time=month(2024, 12)),
    ]
    result = run(claims)
    assert len(result.segments) == 1
    assert result.segments[0].support == ("b",)
    assert set(result.support) == {"a", "b"}  # the top level fuses all included claims


def test_overlapping_valid_times_are_fused_where_they_overlap() -> None:
    year = ValidTime(date(2024, 1, 1), date(2025, 1, 1), "year")
    claims = [
        claim("y", approx(10000), "A", valid_time=year),
        claim("d", exact(11000), "B", valid_time=month(2024, 12)),
    ]
    segments = run(claims).segments
    assert [(s.valid_from, s.valid_to, s.support) for s in segments] == [
        (date(2024, 1, 1), date(2024, 12, 1), ("y",)),
        (date(2024, 12, 1), date(2025, 1, 1), ("d", "y")),
    ]


def test_state_timeline_withdrawn_then_deployed() -> None:
    claims = [
        state("w", "withdrawn", "A", month(2025, 1)),
        state("d", "deployed", "B", since(2025, 2)),
    ]
    result = compute_consensus(claims, STATUS)
    assert [(s.valid_from, s.valid_to, s.text) for s in result.segments] == [
        (date(2025, 1, 1), date(2025, 2, 1), "withdrawn"),
        (date(2025, 2, 1), None, "deployed"),
    ]
    assert result.value_text == "deployed"
    assert result.support == ("d", "w")  # history is not dissent
    assert result.explanation == (
        "Single origin (B): 'deployed' since 2025-02-01;"
        " earlier 'withdrawn' (2025-01-01 to 2025-02-01)."
    )


def test_open_ended_state_is_superseded_by_a_later_start() -> None:
    claims = [
        state("d", "deployed", "A", since(2024, 11)),
        state("w", "withdrawn", "B", since(2025, 1)),
    ]
    result = compute_consensus(claims, STATUS)
    assert [(s.valid_from, s.text) for s in result.segments] == [
        (date(2024, 11, 1), "deployed"),
        (date(2025, 1, 1), "withdrawn"),
    ]
    assert result.value_text == "withdrawn"


def test_state_since_date_is_the_start_of_its_unbroken_run() -> None:
    claims = [
        state("w", "withdrawn", "A", month(2024, 10)),
        state("d1", "deployed", "B", since(2024, 11)),
        state("d2", "Deployed", "C", since(2025, 1)),
    ]
    result = compute_consensus(claims, STATUS)
    assert [s.text for s in result.segments] == ["withdrawn", "deployed", "Deployed"]
    assert result.explanation == (
        "Single origin (C): 'Deployed' since 2024-11-01;"
        " earlier 'withdrawn' (2024-10-01 to 2024-11-01)."
    )


def test_cumulative_claim_holds_onward_as_a_floor() -> None:
    claims = [
        claim("dec", exact(1000), "A", attribute="killed", valid_time=month(2024, 12)),
        claim("feb", approx(3000), "B", attribute="killed", valid_time=month(2025, 2)),
    ]
    result = compute_consensus(claims, KILLED)
    dec, feb = result.segments
    assert (dec.valid_from, dec.valid_to, dec.best) == (date(2024, 12, 1), date(2025, 2, 1), 1000)
    assert (feb.valid_from, feb.valid_to, feb.best) == (date(2025, 2, 1), None, 3000)
    assert feb.support == ("dec", "feb")  # "at least 1,000" still holds in February
    assert feb.conservative == 2700


def test_cumulative_floor_above_a_later_count_is_dissent() -> None:
    claims = [
        claim("dec", exact(5000), "A", attribute="killed", valid_time=month(2024, 12)),
        claim("feb", exact(3000), "B", attribute="killed", valid_time=month(2025, 2)),
    ]
    feb = compute_consensus(claims, KILLED).segments[-1]
    assert feb.best == 3000
    assert feb.dissent == ("dec",)
    assert feb.status == "contested"


def test_cumulative_top_level_reads_growth_as_a_running_total_not_a_conflict() -> None:
    claims = [
        claim("dec", exact(1000), "A", attribute="killed", valid_time=month(2024, 12)),
        claim("feb", approx(3000), "B", attribute="killed", valid_time=month(2025, 2)),
        claim("undated", exact(3100), "C", attribute="killed"),
    ]
    result = compute_consensus(claims, KILLED)
    assert result.best == 3000
    assert result.status == "settled"
    assert result.support == ("dec", "feb", "undated")


def test_old_upper_bound_on_a_running_total_is_history_not_dissent() -> None:
    claims = [
        claim("nov", up_to(500), "A", attribute="killed", valid_time=month(2024, 11)),
        claim("feb", exact(3000), "B", attribute="killed", valid_time=month(2025, 2)),
    ]
    result = compute_consensus(claims, KILLED)
    assert (result.best, result.high) == (3000, 3000)
    assert result.support == ("feb", "nov")
    assert result.segments[-1].support == ("feb",)


def test_each_segment_carries_its_own_newest_support() -> None:
    claims = [
        claim(
            "dec",
            exact(1000),
            "A",
            attribute="killed",
            valid_time=month(2023, 12),
            published="2024-01-05",
        ),
        claim(
            "feb",
            exact(3000),
            "B",
            attribute="killed",
            valid_time=month(2024, 2),
            published="2024-03-01",
        ),
    ]
    result = compute_consensus(claims, KILLED)
    assert [s.newest_support_at for s in result.segments] == [
        "2024-01-05T00:00:00Z",
        "2024-03-01T00:00:00Z",
    ]


# --- categorical --------------------------------------------------------------------------


def test_categorical_vote_merges_aliases() -> None:
    claims = [
        claim("a", name("Kim Yong-bok"), "A", attribute="commander"),
        claim("b", name("KIM YONG BOK"), "B", attribute="commander"),
        claim("c", name("gen. kim  yong bok"), "C", attribute="commander"),
        claim("d", name("Ri Chang Ho"), "D", attribute="commander"),
    ]
    result = compute_consensus(claims, COMMANDER)
    assert result.value_text == "Kim Yong Bok"
    assert (result.low, result.best, result.high) == (None, None, None)
    assert result.support == ("a", "b", "c")
    assert result.dissent == ("d",)
    assert result.status == "settled"
    assert result.explanation == (
        "'Kim Yong Bok' by weighted vote of 4 origins; 1 dissenting origin ('Ri Chang Ho', D)."
    )


def test_categorical_runner_up_with_half_the_weight_is_contested() -> None:
    claims = [
        claim("a", name("Kim Yong Bok"), "A", attribute="commander"),
        claim("b", name("Kim Yong Bok"), "B", attribute="commander"),
        claim("c", name("Ri Chang Ho"), "C", attribute="commander"),
    ]
    result = compute_consensus(claims, COMMANDER)
    assert result.value_text == "Kim Yong Bok"
    assert result.status == "contested"


def test_categorical_single_origin_explanation() -> None:
    result = compute_consensus(
        [claim("a", name("Kim Yong Bok"), "NIS", attribute="commander")], COMMANDER
    )
    assert result.explanation == "Single origin (NIS): 'Kim Yong Bok'."
    assert result.clusters[0].text == "Kim Yong Bok"


# --- contract and output shape ------------------------------------------------------------


def test_method_and_version() -> None:
    result = run([claim("a", exact(1), "A")])
    assert (
        (result.method, result.method_version)
        == (METHOD, METHOD_VERSION)
        == ("weighted-median-log", 1)
    )
    assert (result.kind, result.unit) == ("stock", "person")


def test_output_does_not_depend_on_input_order() -> None:
    claims = [
        claim("a", approx(12000), "A", valid_time=month(2024, 12)),
        claim("b", exact(50000), "B"),
        claim("c", up_to(13000), "C", quote="up to 13,000"),
        claim("d", exact(1), "D", retracted=True),
        claim("e", between(10000, 12000), "E", cites=("A",)),
    ]
    assert run(claims) == run(claims[::-1]) == run(claims[2:] + claims[:2])


def test_explanation_for_a_single_origin_bound() -> None:
    result = run([claim("a", up_to(3000), "Ukrainian military")])
    assert result.explanation == "Single origin (Ukrainian military): up to 3,000."


def test_explanation_names_origins_and_formats_numbers() -> None:
    claims = [claim("a", between(10000, 12000), "reports"), claim("b", exact(11500), "NIS")]
    result = run(claims)
    assert (
        result.explanation
        == "Best estimate 11,500 (range 10,000–12,000) from 2 independent origins."
    )


def test_kursk_demo_personnel_claims() -> None:
    claims = [
        claim("reports-range", between(10000, 12000), "reports", published="2025-03-10"),
        claim(
            "ua-dec",
            approx(12000),
            "Ukrainian forces",
            published="2025-01-05",
            source_kind="official",
            valid_time=month(2024, 12),
        ),
        claim(
            "zelenskyy-additional",
            up_to(3000),
            "Zelenskyy",
            attribute="additional_deployment",
            modality="possible",
            published="2025-02-15",
        ),
    ]
    result = run(claims)
    assert result.best == 12000
    assert (result.low, result.high) == (10000, 13200)
    assert result.conservative == 10800
    assert result.status == "settled"
    assert result.support == ("reports-range", "ua-dec")
    assert result.excluded == ("zelenskyy-additional",)
    assert (
        result.explanation
        == "Best estimate 12,000 (range 10,000–13,200) from 2 independent origins;"
        " 1 claim excluded (other attribute: additional_deployment)."
    )
    [december] = result.segments
    assert (december.valid_from, december.valid_to, december.best) == (
        date(2024, 12, 1),
        date(2025, 1, 1),
        12000,
    )


# --- admission memo (the reconciler re-fuses the same claims once per version) -----------


def test_a_memo_of_admissions_never_changes_a_result() -> None:
    claims = [
        claim("a", approx(12000), "Kyiv Independent"),
        claim("b", between(10000, 12000), "Reuters"),
        claim("c", up_to(3000), "Blog", retracted=True),
        claim("d", relative(1 / 3, "killed"), "NIS"),
    ]
    related = {"killed": Estimate(None, 9000, None)}
    memo: dict[str, Any] = {}
    first = run(claims, related=related, memo=memo)
    again = run(claims, related=related, memo=memo)
    assert first == again == run(claims, related=related)
    assert "d" not in memo  # relative claims read `related`: never memoised


def test_an_equal_claim_rebuilt_is_served_from_the_memo() -> None:
    """The reconciler rebuilds a claim with its learned score for every evaluation: an equal
    object is not admitted again (its item is the one admitted first), an unequal one is."""
    from shared.consensus._admit import admit

    memo: dict[str, Any] = {}
    original = claim("a", exact(12000), "Kyiv Independent", source_score=1.2)
    first = admit([original], STOCK, {}, {}, memo).items[0]
    rebuilt = dataclasses.replace(original)
    assert rebuilt is not original
    assert admit([rebuilt], STOCK, {}, {}, memo).items[0] is first
    rescored = dataclasses.replace(original, source_score=0.8)
    item = admit([rescored], STOCK, {}, {}, memo).items[0]
    assert item is not first and item.weight < first.weight


def test_a_modified_claim_is_admitted_afresh_not_served_from_the_memo() -> None:
    memo: dict[str, Any] = {}
    original = claim("a", exact(12000), "Kyiv Independent")
    run([original, claim("b", exact(11000), "Reuters")], memo=memo)
    retracted = ClaimFacts(
        **{**{f: getattr(original, f) for f in original.__slots__}, "retracted": True}
    )
    result = run([retracted, claim("b", exact(11000), "Reuters")], memo=memo)
    assert dict(result.exclusions) == {"a": "retracted"}
    assert result == run([retracted, claim("b", exact(11000), "Reuters")])
