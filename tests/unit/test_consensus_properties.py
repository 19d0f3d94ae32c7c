"""Properties of the consensus engine that must hold for any set of claims."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.consensus import compute_consensus
from shared.model import AttributeSpec, ClaimFacts, ConsensusResult, ValidTime, Value

STOCK = AttributeSpec("personnel_deployed", "stock", unit="person")
# Same attribute name read as a running total, so one claim strategy serves both kinds.
RUNNING = AttributeSpec("personnel_deployed", "cumulative", unit="person")
NUMERIC_SPECS = st.sampled_from([STOCK, RUNNING])
COMMANDER = AttributeSpec(
    "commander", "categorical", value_aliases=(("Kim Yong Bok", ("Kim Yong-bok",)),)
)
NUMBERS = [0, 5, 47, 100, 1000, 3000, 10000, 11437, 12000, 15000]
ORIGINS = ["A", "a", "B", "C", "D", "E", "Ukrainian military", "NIS"]
NAMES = ["Kim Yong Bok", "kim yong-bok", "Ri Chang Ho", "Pak Jong Chon"]
# Agreement is measured by the status first, then by how many independent origins support.
STATUS_RANK = {"no_data": 0, "stale": 0, "contested": 1, "single_source": 2, "settled": 3}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
HEDGES = ("exact", "approximately", "range", "up_to", "over", "at_least")


@st.composite
def numeric_values(
    draw: st.DrawFn, numbers: list[int] = NUMBERS, kinds: tuple[str, ...] = HEDGES
) -> Value:
    n = draw(st.sampled_from(numbers))
    kind = draw(st.sampled_from(kinds))
    if kind == "exact":
        return Value(n, n, n, kind, "t")
    if kind == "approximately":
        return Value(n - n // 10, n, n + n // 10, kind, "t")
    if kind == "range":
        m = draw(st.sampled_from(numbers))
        lo, hi = min(n, m), max(n, m)
        mid = draw(st.sampled_from([None, (lo + hi) // 2]))
        return Value(lo, mid, hi, kind, "t", best_derived=mid is not None)
    if kind == "up_to":
        return Value(None, None, n, kind, "t")
    return Value(n, None, None, kind, "t", low_exclusive=kind == "over")


def text_values() -> st.SearchStrategy[Value]:
    return st.sampled_from(NAMES).map(lambda t: Value(None, None, None, "categorical", "t", text=t))


@st.composite
def claim_lists(
    draw: st.DrawFn, values: st.SearchStrategy[Value], attribute: str, clean: bool = False
) -> list[ClaimFacts]:
    """1-8 claims; `clean` ones come from distinct origins and are never excluded."""
    count = draw(st.integers(min_value=2 if clean else 1, max_value=8))
    claims = []
    for i in range(count):
        valid = draw(
            st.sampled_from(
                [
                    None,
                    ValidTime(date(2024, 11, 1), None, "open"),
                    ValidTime(date(2024, 12, 1), None, "open"),
                    ValidTime(date(2024, 12, 1), date(2025, 1, 1), "month"),
                ]
            )
        )
        claims.append(
            ClaimFacts(
                claim_id=f"c{i:02d}",
                report_id=f"r{i}",
                subject="s",
                attribute=attribute,
                source_id=draw(st.sampled_from(["s1", "s2", "s3"])),
                published_at=EPOCH + timedelta(days=draw(st.integers(0, 60))),
                value=draw(values),
                attributed_to=f"Origin {i}" if clean else draw(st.sampled_from(ORIGINS)),
                source_kind=draw(st.sampled_from(["news", "blog", "official", "other"])),
                source_reliability=draw(st.sampled_from([None, "A", "C", "F"])),
                cites=() if clean else draw(st.sampled_from([(), ("NIS",)])),
                quote=draw(st.sampled_from([None, "11,437 troops were seen", "troops seen"])),
                modality=draw(st.sampled_from(["asserted", "possible", "asserted"])),
                credibility=draw(st.sampled_from([None, 2, 5])),
                valid_time=valid,
                rank=draw(
                    st.sampled_from(["normal", "preferred"] + ([] if clean else ["deprecated"]))
                ),
                retracted=not clean and draw(st.booleans()) and draw(st.booleans()),
                machine_proposed=draw(st.booleans()),
            )
        )
    return claims


numeric_claims = claim_lists(numeric_values(), "personnel_deployed")
# Close numbers, so that many generated sets are settled.
close_claims = claim_lists(
    numeric_values([11000, 11437, 12000, 12500], ("approximately", "range", "up_to", "at_least")),
    "personnel_deployed",
    clean=True,
)
categorical_claims = claim_lists(text_values(), "commander")


def confidence(result: ConsensusResult) -> tuple[int, int]:
    supported = sum(1 for c in result.clusters if set(c.claim_ids) & set(result.support))
    return STATUS_RANK[result.status], supported


def agreeing_claim(result: ConsensusResult, template: ClaimFacts, value: Value) -> ClaimFacts:
    """A claim from a brand-new, independent origin that says what the consensus says.

    It carries no valid time: a timed claim would speak about a (possibly new)
    stretch of world time, which is a different statement from agreeing."""
    return dataclasses.replace(
        template,
        claim_id="zz-new",
        report_id="r-new",
        attributed_to="A fresh independent origin",
        cites=(),
        quote=None,
        value=value,
        valid_time=None,
        retracted=False,
        rank="normal",
        modality="asserted",
    )


@settings(deadline=None)
@given(numeric_claims, NUMERIC_SPECS, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(claims: list[ClaimFacts], spec, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    assert compute_consensus(claims, spec) == compute_consensus(shuffled, spec)


@given(categorical_claims, st.randoms(use_true_random=False))
def test_categorical_result_does_not_depend_on_input_order(claims: list[ClaimFacts], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    assert compute_consensus(claims, COMMANDER) == compute_consensus(shuffled, COMMANDER)


@settings(deadline=None)
@given(numeric_claims, NUMERIC_SPECS)
def test_partition_and_exact_numbers(claims: list[ClaimFacts], spec: AttributeSpec) -> None:
    result = compute_consensus(claims, spec)
    included = [*result.support, *result.dissent]
    assert sorted([*included, *result.excluded]) == sorted(c.claim_id for c in claims)
    assert len(set(included)) == len(included)
    assert tuple(sorted(result.support)) == result.support
    claimed = {
        x for c in claims for x in (c.value.low, c.value.best, c.value.high) if x is not None
    }
    for number in (result.low, result.best, result.high, result.conservative):
        assert number is None or (number in claimed and type(number) is int)
    for segment in result.segments:
        assert not set(segment.support) & set(segment.dissent)
    if result.best is not None and result.low is not None and result.high is not None:
        assert result.low <= result.best <= result.high


@settings(deadline=None)
@given(numeric_claims, NUMERIC_SPECS, st.data())
def test_duplicating_a_claim_from_the_same_origin_changes_nothing(
    claims: list[ClaimFacts], spec: AttributeSpec, data: st.DataObject
) -> None:
    original = data.draw(st.sampled_from(claims))
    dup = dataclasses.replace(original, claim_id=original.claim_id + "-dup", report_id="r-dup")
    before = compute_consensus(claims, spec)
    after = compute_consensus([*claims, dup], spec)
    fields = ["low", "best", "high", "conservative", "status", "value_text", "explanation"]
    if original.claim_id in before.excluded:
        fields.remove("explanation")  # "No usable claims (2 claims excluded)" counts listings
    for name in fields:
        assert getattr(after, name) == getattr(before, name), name
    strip = lambda ids: tuple(i for i in ids if i != dup.claim_id)  # noqa: E731
    assert strip(after.support) == before.support
    assert strip(after.dissent) == before.dissent
    assert strip(after.excluded) == before.excluded
    listed = (original.claim_id in before.support, original.claim_id in before.dissent)
    assert (dup.claim_id in after.support, dup.claim_id in after.dissent) == listed
    assert [(s.valid_from, s.best, s.status) for s in after.segments] == [
        (s.valid_from, s.best, s.status) for s in before.segments
    ]


@st.composite
def agreeing_value(draw: st.DrawFn, result: ConsensusResult) -> Value:
    best = result.best
    assert best is not None and result.low is not None and result.high is not None
    low = draw(st.sampled_from([result.low, best]))
    high = draw(st.sampled_from([best, result.high]))
    return Value(low, best, high, "approximately", "t")


@settings(deadline=None)
@given(numeric_claims, NUMERIC_SPECS, st.data())
def test_agreeing_claim_from_a_new_origin_never_lowers_confidence(
    claims: list[ClaimFacts], spec: AttributeSpec, data: st.DataObject
) -> None:
    before = compute_consensus(claims, spec)
    assume(before.best is not None)
    value = data.draw(agreeing_value(before))
    after = compute_consensus([*claims, agreeing_claim(before, claims[0], value)], spec)
    assert after.best == before.best
    assert confidence(after) >= confidence(before)
    if before.status == "settled":
        assert after.status == "settled"


@settings(deadline=None)
@given(close_claims, st.data())
def test_claim_inside_the_band_never_turns_settled_into_contested(
    claims: list[ClaimFacts], data: st.DataObject
) -> None:
    before = compute_consensus(claims, STOCK)
    assume(before.status == "settled" and before.best is not None)
    value = data.draw(agreeing_value(before))
    after = compute_consensus([*claims, agreeing_claim(before, claims[-1], value)], STOCK)
    assert after.status == "settled"
    assert set(before.support) <= set(after.support)


@given(categorical_claims)
def test_agreeing_categorical_claim_never_lowers_confidence(claims: list[ClaimFacts]) -> None:
    before = compute_consensus(claims, COMMANDER)
    assume(before.value_text is not None)
    value = Value(None, None, None, "categorical", "t", text=before.value_text)
    after = compute_consensus([*claims, agreeing_claim(before, claims[0], value)], COMMANDER)
    assert after.value_text == before.value_text
    assert confidence(after) >= confidence(before)
