"""The weight policy, as a reader of a result's weights table relies on it (issue #25, item 7).

Each property holds every other factor of the claim fixed, varies one, and reads the weight
the engine reports (`compute_consensus(...).weights`) as well as `claim_weight` itself: a
better Admiralty grade, a more credible piece of information, a preferred rank, a firmer
phrasing or a person's confirmation never makes a claim weigh less, and the documented
steps are strict. The copy-detection threshold (token Jaccard >= 0.8) is pinned at its edge.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.consensus import compute_consensus
from shared.consensus._weights import claim_weight
from shared.model import AttributeSpec, ClaimFacts, Value

STOCK = AttributeSpec("personnel_deployed", "stock", unit="person")
GRADES = "ABCDE"  # best first; F and no grade are "cannot be judged"
CREDIBILITIES = (1, 2, 3, 4, 5)  # best first; 6 is "cannot be judged"


def _claim(cid: str = "c1", **kw: Any) -> ClaimFacts:
    base: dict[str, Any] = dict(
        claim_id=cid,
        report_id=f"r-{cid}",
        subject="dprk-troops-kursk",
        attribute="personnel_deployed",
        source_id=f"src-{cid}",
        published_at=datetime(2025, 1, 15, tzinfo=UTC),
        value=Value(12000, 12000, 12000, "exact", "test/exact"),
        attributed_to=f"origin-{cid}",
    )
    return ClaimFacts(**{**base, **kw})


claims = st.builds(
    _claim,
    source_kind=st.sampled_from(["dataset", "think_tank", "news", "official", "other", "blog"]),
    source_reliability=st.none() | st.sampled_from("ABCDEF"),
    credibility=st.none() | st.integers(1, 6),
    rank=st.sampled_from(["preferred", "normal"]),
    modality=st.sampled_from(["asserted", "reported", "estimated", "possible"]),
    machine_proposed=st.booleans(),
    source_score=st.none() | st.floats(0.05, 20),
)


def _engine_weights(*variants: ClaimFacts) -> list[float]:
    """The weight the engine reports for each variant, each judged alone."""
    return [dict(compute_consensus([c], STOCK).weights)[c.claim_id] for c in variants]


def _strictly_decreasing(weights: list[float]) -> bool:
    return all(a > b for a, b in pairwise(weights))


@settings(max_examples=200, deadline=None)
@given(claims)
def test_a_better_reliability_grade_always_weighs_more(claim: ClaimFacts) -> None:
    variants = [replace(claim, source_reliability=g) for g in GRADES]
    assert _strictly_decreasing([claim_weight(c, {}) for c in variants])
    assert _strictly_decreasing(_engine_weights(*variants))


@settings(max_examples=200, deadline=None)
@given(claims)
def test_more_credible_information_always_weighs_more(claim: ClaimFacts) -> None:
    variants = [replace(claim, credibility=n) for n in CREDIBILITIES]
    assert _strictly_decreasing([claim_weight(c, {}) for c in variants])
    assert _strictly_decreasing(_engine_weights(*variants))


@settings(max_examples=200, deadline=None)
@given(claims)
def test_ungradable_equals_ungraded(claim: ClaimFacts) -> None:
    """F ("cannot be judged") and 6 are neutral: they weigh as no grade at all."""
    assert claim_weight(replace(claim, source_reliability="F"), {}) == claim_weight(
        replace(claim, source_reliability=None), {}
    )
    assert claim_weight(replace(claim, credibility=6), {}) == claim_weight(
        replace(claim, credibility=None), {}
    )


@settings(max_examples=200, deadline=None)
@given(claims)
def test_preferred_rank_firm_phrasing_and_confirmation_never_weigh_less(claim: ClaimFacts) -> None:
    w = lambda **kw: claim_weight(replace(claim, **kw), {})  # noqa: E731
    assert w(rank="preferred") > w(rank="normal")
    assert w(modality="asserted") > w(modality="reported") == w(modality="estimated")
    assert w(modality="estimated") > w(modality="possible")
    assert w(machine_proposed=False) > w(machine_proposed=True)
    confirmed, proposed = _engine_weights(
        replace(claim, machine_proposed=False), replace(claim, machine_proposed=True)
    )
    assert confirmed > proposed


@settings(max_examples=200, deadline=None)
@given(claims, st.floats(0.0, 30.0), st.floats(0.0, 30.0))
def test_a_higher_learned_score_never_weighs_less(claim: ClaimFacts, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert claim_weight(replace(claim, source_score=lo), {}) <= claim_weight(
        replace(claim, source_score=hi), {}
    )
    # the caller's table, used when the claim carries no score of its own, agrees
    bare = replace(claim, source_score=None)
    assert claim_weight(bare, {bare.source_id: lo}) <= claim_weight(bare, {bare.source_id: hi})


def test_a_machine_proposed_claim_weighs_seven_tenths_of_a_confirmed_one() -> None:
    confirmed, proposed = _engine_weights(_claim(), _claim(machine_proposed=True))
    assert proposed == round(confirmed * 0.7, 6)


# --- copy detection at its threshold (token Jaccard >= 0.8) -------------------------------


def _clusters_of(quote_a: str, quote_b: str) -> int:
    value = Value(11437, 11437, 11437, "exact", "test/exact")  # a specific number
    a = _claim("a", value=value, quote=quote_a, attributed_to="Reuters")
    b = _claim("b", value=value, quote=quote_b, attributed_to="Blog")
    return len(compute_consensus([a, b], STOCK).clusters)


def test_quotes_sharing_four_of_five_words_are_a_copy() -> None:
    # Jaccard 4/5 = 0.8 exactly: at the threshold, a copy
    assert _clusters_of("w1 w2 w3 w4", "w1 w2 w3 w4 w5") == 1


def test_quotes_sharing_fifteen_of_nineteen_words_are_not_a_copy() -> None:
    # Jaccard 15/19 ~ 0.79: just under the threshold, two independent voices
    shared = " ".join(f"w{i}" for i in range(15))
    assert _clusters_of(f"{shared} a1 a2", f"{shared} b1 b2") == 2


def _copies(number: float, quote: str = "w1 w2 w3 w4 w5") -> bool:
    """Two claims of `number` with the same quote by different origins: one cluster?"""
    value = Value(number, number, number, "exact", "test/exact")
    a = _claim("a", value=value, quote=quote, attributed_to="Reuters")
    b = _claim("b", value=value, quote=quote, attributed_to="Blog")
    return len(compute_consensus([a, b], STOCK).clusters) == 1


@pytest.mark.parametrize("number", [11, 47, 125, 11500, 12345, 1234.5])
def test_a_specific_number_with_the_same_quote_is_a_copy(number: float) -> None:
    assert _copies(number)


@pytest.mark.parametrize("number", [3, 9, 10, 120, 3000, 12000])
def test_a_round_number_with_the_same_quote_is_a_coincidence(number: float) -> None:
    assert not _copies(number)


def test_quotes_without_words_say_nothing_about_copying() -> None:
    assert not _copies(12345, quote="***")


def test_a_derived_midpoint_does_not_make_a_round_range_specific() -> None:
    """ "between 11,000 and 12,000": the 11,500 is ours, not the source's."""
    value = Value(11000, 11500, 12000, "range", "test/range", best_derived=True)
    quote = "between 11,000 and 12,000 soldiers"
    a = _claim("a", value=value, quote=quote, attributed_to="Reuters")
    b = _claim("b", value=value, quote=quote, attributed_to="Blog")
    assert len(compute_consensus([a, b], STOCK).clusters) == 2


# --- values outside the tables, and the learned score ------------------------------------


def test_values_outside_the_tables_weigh_as_the_documented_defaults() -> None:
    base = _claim(source_kind="other", credibility=None, rank="normal", modality="reported")
    w = lambda c: claim_weight(c, {})  # noqa: E731
    assert w(replace(base, source_kind="carrier-pigeon")) == w(base)  # unknown kind = other
    assert w(replace(base, credibility=7)) == w(base)  # out of the scale = ungraded
    assert w(replace(base, rank="odd")) == w(base)  # unknown rank = normal
    assert w(replace(base, modality="rumoured")) == w(base)  # unknown phrasing = reported


def test_a_claims_own_learned_score_multiplies_its_prior_and_is_rounded() -> None:
    bare = _claim(source_reliability="C", modality="possible")
    scored = replace(bare, source_score=0.123456789)
    expected = round(claim_weight(bare, {}) * 0.123456789, 6)
    assert claim_weight(scored, {"src-c1": 5.0}) == expected  # its own score wins the table's
    assert expected != round(claim_weight(bare, {}) * 0.123456789, 7)  # the rounding shows


def test_a_non_finite_score_counts_as_no_score() -> None:
    bare = _claim()
    assert claim_weight(replace(bare, source_score=float("nan")), {}) == claim_weight(bare, {})


# --- independence clusters: buckets and names ---------------------------------------------


def test_copies_are_found_after_a_lone_specific_claim() -> None:
    quote = "w1 w2 w3 w4 w5"
    lone = _claim("a", value=Value(777, 777, 777, "exact", "t"), quote=quote, attributed_to="A")
    copy = Value(11437, 11437, 11437, "exact", "t")
    b = _claim("b", value=copy, quote=quote, attributed_to="B")
    c = _claim("c", value=copy, quote=quote, attributed_to="C")
    assert len(compute_consensus([lone, b, c], STOCK).clusters) == 2


def test_the_same_quote_with_different_specific_numbers_is_not_a_copy() -> None:
    quote = "w1 w2 w3 w4 w5"
    a = _claim("a", value=Value(11437, 11437, 11437, "exact", "t"), quote=quote, attributed_to="A")
    b = _claim("b", value=Value(11438, 11438, 11438, "exact", "t"), quote=quote, attributed_to="B")
    assert len(compute_consensus([a, b], STOCK).clusters) == 2


def test_a_cluster_is_named_after_the_origin_most_of_its_members_cite() -> None:
    claims = [
        _claim("a", attributed_to="Blog 1", cites=("Zeta agency", "Alpha agency")),
        _claim("b", attributed_to="Blog 2", cites=("Zeta agency",)),
    ]
    [cluster] = compute_consensus(claims, STOCK).clusters
    assert cluster.origin == "Zeta agency"
