"""Consensus that reads right (issue #20): each test is one rule a reader relies on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.attributes import AttributeRegistry, default_registry
from shared.codec import result_from_dict, result_to_dict
from shared.consensus import claim_note, compute_consensus
from shared.model import AttributeSpec, ClaimFacts, Estimate, ValidTime
from shared.staleness import judge
from tests.unit.test_consensus import (
    KILLED,
    STATUS,
    STOCK,
    approx,
    claim,
    exact,
    month,
    relative,
    run,
    since,
    state,
)

# --- 1. registered names and aliases, case and spacing ignored -----------------------------


def test_an_alias_or_other_case_of_the_attribute_is_the_attribute() -> None:
    spec = default_registry().get("killed")
    assert spec is not None
    claims = [
        claim("a", exact(100), "A", attribute="Killed"),
        claim("b", exact(100), "B", attribute="death toll"),
        claim("c", exact(100), "C", attribute="killed"),
    ]
    result = compute_consensus(claims, spec)
    assert result.excluded == ()
    assert (result.best, result.status) == (100, "settled")


def test_registry_resolves_names_and_aliases_and_leaves_unknown_names_opaque() -> None:
    registry = default_registry()
    assert registry.canonical("Death  Toll") == "killed"
    assert registry.canonical("KILLED") == "killed"
    assert registry.canonical("Killed-or-wounded") == "killed_or_wounded"
    assert registry.canonical("Fuel Price") == "Fuel Price"


# --- 2. a two-way split spans both sides, best by a stated rule ----------------------------


def test_an_even_two_way_split_spans_both_values_and_takes_the_lower_as_stated() -> None:
    result = run([claim("a", exact(1000), "A"), claim("b", exact(3000), "B")])
    assert result.status == "contested"
    assert (result.low, result.best, result.high) == (1000, 1000, 3000)
    assert result.support == ("a",) and result.dissent == ("b",)
    assert "splits evenly between 1,000 and 3,000: the lower is taken" in result.explanation
    assert "range 1,000–3,000" in result.explanation
    assert "contradicts the best estimate" in result.explanation


def test_a_heavier_side_wins_best_and_the_band_still_spans_the_credible_other() -> None:
    result = run(
        [
            claim("a", exact(1000), "A"),
            claim("b", exact(3000), "B", source_kind="news"),
        ]
    )
    assert (result.low, result.best, result.high) == (1000, 3000, 3000)
    assert "splits evenly" not in result.explanation


def test_a_light_outlier_stays_outside_the_band() -> None:
    agreeing = [claim(c, approx(12000), c.upper()) for c in "abcd"]
    outlier = claim("z", exact(90000), "Blog", source_kind="blog", credibility=5)
    result = run([*agreeing, outlier])
    assert result.status == "contested"
    assert (result.low, result.high) == (10800, 13200)
    assert "lies outside the range" in result.explanation


# --- 3. counts are whole numbers, bands rounded outward; measures keep decimals ----------


def test_a_hedged_count_is_a_whole_band_rounded_outward() -> None:
    result = run([claim("a", approx(55, tol=5.5), "A")])  # type: ignore[arg-type]
    assert (result.low, result.best, result.high) == (49, 55, 61)
    assert all(type(x) is int for x in (result.low, result.best, result.high))


def test_a_fraction_of_a_count_is_rounded_outward() -> None:
    troops = AttributeSpec("killed", "cumulative", unit="people")
    result = compute_consensus(
        [claim("a", relative(1 / 3, "personnel_deployed"), "A", attribute="killed")],
        troops,
        related={"personnel_deployed": Estimate(None, 11000, None)},
    )
    assert result.high == 3667
    assert result.constraints == (
        "a: at most 3,667 = 1/3 of personnel_deployed 11,000 (relative claim)",
    )


def test_measures_and_unknown_attributes_keep_their_decimals() -> None:
    registry = AttributeRegistry.from_toml('[attributes.temp]\nkind = "measure"\n')
    for spec in (registry.get("temp"), default_registry().spec_for("ratio", numeric=True)):
        assert spec is not None
        result = compute_consensus(
            [claim("a", approx(55, tol=5.5), "A", attribute=spec.name)], spec
        )  # type: ignore[arg-type]
        assert (result.low, result.high) == (49.5, 60.5)


# --- 4. staleness is judged at read time, against the time asked about ---------------------

JUNE = [
    claim("a", exact(1000), "A", published="2025-06-01"),
    claim("b", exact(1000), "B", published="2025-06-02"),
    claim("c", exact(5000), "C", published="2025-06-03"),
]


def test_retracting_an_unrelated_claim_does_not_make_the_answer_stale() -> None:
    before = run(JUNE)
    after = run([*JUNE[:2], claim("c", exact(5000), "C", published="2025-06-03", retracted=True)])
    asked = datetime(2025, 9, 1, tzinfo=UTC)
    assert judge(result_to_dict(before), asked)["status"] == "contested"
    assert judge(result_to_dict(after), asked)["status"] == "settled"


def test_an_answer_is_stale_when_its_newest_support_is_older_than_a_year_at_the_time_asked() -> (
    None
):
    stored = result_to_dict(run(JUNE))
    fresh = judge(stored, datetime(2026, 6, 1, tzinfo=UTC))
    stale = judge(stored, datetime(2026, 6, 3, tzinfo=UTC))
    assert (fresh["status"], fresh["age_days"]) == ("contested", 364)
    assert (stale["status"], stale["fresh_status"], stale["age_days"]) == (
        "stale",
        "contested",
        366,
    )
    assert (
        "newest supporting claim was published 2025-06-02, 366 days before" in stale["explanation"]
    )
    assert judge(stored, datetime(2026, 6, 3, tzinfo=UTC), timedelta(days=400))["status"] != "stale"


def test_only_the_open_ended_segment_goes_stale() -> None:
    claims = [
        claim("dec", exact(1000), "A", attribute="killed", valid_time=month(2023, 12)),
        claim("feb", exact(3000), "B", attribute="killed", valid_time=month(2024, 2)),
    ]
    read = judge(
        result_to_dict(compute_consensus(claims, KILLED)), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert [s["status"] for s in read["segments"]] == ["single_source", "stale"]


# --- 5. an analyst's reason is shown with who gave it and when -----------------------------


def test_a_retraction_reads_with_its_reason_who_and_when() -> None:
    note = claim_note(
        "retraction",
        {"reason": "wrong unit", "by": "desk-7", "effective_at": "2025-07-01T10:00:00Z"},
    )
    assert note == "retracted: wrong unit (desk-7, 2025-07-01)"
    result = run(
        [
            claim("a", exact(1000), "A"),
            claim("b", exact(3000), "B", retracted=True, notes=(note,)),
        ]
    )
    assert dict(result.exclusions) == {"b": note}
    assert dict(result.notes) == {"b": note}
    assert "1 claim excluded (retracted: wrong unit (desk-7, 2025-07-01))" in result.explanation
    assert result_from_dict(result_to_dict(result)) == result


def test_an_assessment_that_keeps_the_claim_is_still_noted() -> None:
    note = claim_note(
        "assessment",
        {"reason": "confirmed by imagery", "credibility": 1, "effective_at": "2025-07-01"},
    )
    assert note == "assessed credibility 1: confirmed by imagery (2025-07-01)"
    deprecated = claim_note("assessment", {"reason": "satire site", "rank": "deprecated"})
    result = run(
        [
            claim("a", exact(1000), "A", credibility=1, notes=(note,)),
            claim("b", exact(5), "B", rank="deprecated", notes=(deprecated,)),
        ]
    )
    assert dict(result.notes) == {"a": note, "b": deprecated}
    assert dict(result.exclusions) == {"b": "deprecated: satire site"}


# --- 6. an answer at a date describes that date ---------------------------------------------


def test_each_segment_explains_its_own_period_only() -> None:
    claims = [
        state("d", "deployed", "A", month(2024, 12)),
        state("w1", "withdrawn", "B", month(2025, 1)),
        state("w2", "withdrawn", "C", month(2025, 1)),
        state("d2", "deployed", "B", since(2025, 2)),
    ]
    result = compute_consensus(claims, STATUS)
    january = next(s for s in result.segments if s.text == "withdrawn")
    assert january.explanation == (
        "From 2025-01-01 to 2025-02-01: 'withdrawn' by weighted vote of 2 origins."
    )
    assert (january.support, january.dissent, january.status) == (("w1", "w2"), (), "settled")


def test_numeric_segments_explain_their_period() -> None:
    result = run([claim("a", exact(1000), "A", valid_time=month(2024, 12))], STOCK)
    assert (
        result.segments[0].explanation == "From 2024-12-01 to 2025-01-01: Single origin (A): 1,000."
    )


def _status(cid: str, text: str, origin: str, start: date, end: date | None) -> ClaimFacts:
    return state(cid, text, origin, ValidTime(start, end, "interval"))


def test_claims_about_different_periods_are_not_agreement() -> None:
    # "arrived in mid-2024" (a claim about May 2024 to January 2025) and "deployed in
    # December 2024": the December segment has one witness, not two
    claims = [
        _status("mid", "deployed", "Blog", date(2024, 5, 1), date(2025, 2, 1)),
        _status("dec", "deployed", "Wire", date(2024, 12, 1), date(2025, 1, 1)),
    ]
    result = compute_consensus(claims, STATUS)
    december = next(s for s in result.segments if s.valid_from == date(2024, 12, 1))
    assert (december.status, december.support) == ("single_source", ("dec", "mid"))
    assert december.explanation == (
        "From 2024-12-01 to 2025-01-01: Single origin about this period (Wire): 'deployed';"
        " consistent over a wider span: Blog (2024-05-01 to 2025-02-01)."
    )


def test_independent_claims_about_the_same_period_are_settled() -> None:
    claims = [
        _status("a", "deployed", "Blog", date(2024, 12, 1), date(2025, 1, 1)),
        _status("b", "deployed", "Wire", date(2024, 12, 1), date(2025, 1, 1)),
    ]
    [december] = compute_consensus(claims, STATUS).segments
    assert december.status == "settled"


def test_a_value_for_a_closed_period_is_not_said_to_hold_since() -> None:
    claims = [_status("a", "deployed", "Wire", date(2024, 12, 1), date(2025, 1, 1))]
    result = compute_consensus(claims, STATUS)
    assert result.explanation == "Single origin (Wire): 'deployed' from 2024-12-01 to 2025-01-01."


def test_newest_support_of_a_claim_before_year_1000_is_a_padded_iso_time() -> None:
    """Stored as text that sorts and parses back (glibc's strftime writes "999-...")."""
    from datetime import UTC, datetime

    from shared.consensus._engine import newest_support
    from shared.staleness import age_days

    class _Item:
        cid = "a"
        published = datetime(999, 6, 1, tzinfo=UTC).timestamp()

    got = newest_support([_Item()], {"a"})  # type: ignore[list-item]
    assert got == "0999-06-01T00:00:00Z"
    assert age_days(got, datetime(999, 6, 11, tzinfo=UTC)) == 10
