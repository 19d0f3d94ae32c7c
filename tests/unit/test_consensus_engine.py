"""What compute_consensus itself decides (shared/consensus/_engine.py): what a categorical
result carries, who supports a state timeline, since when its current value holds, and
what each segment reports (issue #25's mutants)."""

from __future__ import annotations

from datetime import date

from shared.consensus import METHOD, METHOD_VERSION, compute_consensus
from shared.model import AttributeSpec, ClaimFacts, ValidTime
from tests.unit.test_consensus import (
    KILLED,
    STATUS,
    STOCK,
    approx,
    claim,
    exact,
    month,
    name,
    since,
    state,
)

GATE = AttributeSpec("gate", "categorical", unit="gate")


def _gate(cid: str, text: str, origin: str, published: str, **kw: object) -> ClaimFacts:
    return claim(cid, name(text), origin, attribute="gate", published=published, **kw)  # type: ignore[arg-type]


def test_a_categorical_result_carries_its_method_attribute_and_exclusions() -> None:
    claims = [
        _gate("a", "B12", "A", "2025-01-10"),
        _gate("b", "B12", "B", "2025-02-20"),
        _gate("c", "C3", "C", "2025-03-30", retracted=True),
    ]
    result = compute_consensus(claims, GATE)
    assert (result.method, result.method_version) == (METHOD, METHOD_VERSION)
    assert (result.kind, result.unit) == ("categorical", "gate")
    assert result.value_text == "B12"
    assert result.excluded == ("c",)
    assert result.exclusions == (("c", "retracted"),)
    # the newest claim that supports the value, not the newest claim
    assert result.newest_support_at == "2025-02-20T00:00:00Z"


def test_untimed_state_claims_are_judged_against_the_current_value() -> None:
    """'withdrawn' in January is history, not dissent; a claim with no valid time says
    nothing about when, so it is read as about now: 'deployed' supports, 'withdrawn'
    dissents."""
    claims = [
        state("jan", "withdrawn", "A", month(2025, 1)),
        state("feb", "deployed", "B", since(2025, 2)),
        state("now-d", "deployed", "C"),
        state("now-w", "withdrawn", "D"),
    ]
    result = compute_consensus(claims, STATUS)
    assert result.value_text == "deployed"
    assert result.support == ("feb", "jan", "now-d")
    assert result.dissent == ("now-w",)


def test_a_value_restated_from_a_later_date_holds_since_its_first_statement() -> None:
    claims = [
        state("d1", "deployed", "A", since(2024, 11)),
        state("d2", "deployed", "B", since(2025, 1)),
    ]
    result = compute_consensus(claims, STATUS)
    assert [s.valid_from for s in result.segments] == [date(2024, 11, 1), date(2025, 1, 1)]
    assert result.explanation == "Single origin (B): 'deployed' since 2024-11-01."


def test_a_value_held_from_the_beginning_of_time_has_no_since() -> None:
    # "deployed until January", then "deployed since January": one unbroken run with no
    # known start
    claims = [
        state("u", "deployed", "A", ValidTime(None, date(2025, 1, 1), "open")),
        state("s", "deployed", "B", since(2025, 1)),
    ]
    result = compute_consensus(claims, STATUS)
    assert [s.valid_from for s in result.segments] == [None, date(2025, 1, 1)]
    assert result.explanation == "Single origin (B): 'deployed'."


def test_an_earlier_value_with_no_known_start_reads_from_an_ellipsis() -> None:
    claims = [
        state("u", "withdrawn", "A", ValidTime(None, date(2025, 1, 1), "open")),
        state("s", "deployed", "B", since(2025, 1)),
    ]
    assert compute_consensus(claims, STATUS).explanation == (
        "Single origin (B): 'deployed' since 2025-01-01; earlier 'withdrawn' (… to 2025-01-01)."
    )


def test_each_state_segment_carries_its_own_newest_support() -> None:
    claims = [
        state("jan", "withdrawn", "A", month(2025, 1), published="2025-01-20"),
        state("feb", "deployed", "B", since(2025, 2), published="2025-02-20"),
    ]
    result = compute_consensus(claims, STATUS)
    assert [s.newest_support_at for s in result.segments] == [
        "2025-01-20T00:00:00Z",
        "2025-02-20T00:00:00Z",
    ]


def test_each_numeric_segment_carries_its_own_band() -> None:
    claims = [
        claim("dec", approx(12000), "A", valid_time=month(2024, 12)),
        claim("feb", approx(8000), "B", valid_time=month(2025, 2)),
    ]
    dec, feb = compute_consensus(claims, STOCK).segments
    assert (dec.low, dec.best, dec.high) == (10800, 12000, 13200)
    assert (feb.low, feb.best, feb.high) == (7200, 8000, 8800)


def test_a_running_totals_clusters_are_every_origin_with_its_claimed_band() -> None:
    """The top answer of a running total fuses only the latest statement, but the clusters
    list every origin that spoke, each with the band it claimed."""
    claims = [
        claim("dec", exact(1000), "A", attribute="killed", valid_time=month(2024, 12)),
        claim("feb", approx(3000), "B", attribute="killed", valid_time=month(2025, 2)),
    ]
    result = compute_consensus(claims, KILLED)
    assert sorted((c.origin, c.claim_ids, c.low, c.best, c.high) for c in result.clusters) == [
        ("A", ("dec",), 1000, 1000, 1000),
        ("B", ("feb",), 2700, 3000, 3300),
    ]
