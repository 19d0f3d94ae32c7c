"""The codec gives back every field it was given (issue #25, item 4).

A claim travels as JSON from ingest to the reconciler, and a stored result is read back for
replay and comparison. A field the codec dropped would come back as its default: a
machine-proposed claim would regain full weight, a deprecated one would vote again, an
exclusive bound would become inclusive, and nothing downstream could tell. So these
properties build every field with a non-default value and compare the whole object.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codec import (
    claim_from_dict,
    claim_to_dict,
    encode_fields,
    result_fields,
    result_from_dict,
    result_to_dict,
)
from shared.model import ClaimFacts, Cluster, ConsensusResult, Segment, ValidTime, Value

text = st.text(max_size=12)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
number = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False))
maybe_number = st.none() | number
days = st.dates(date(1, 1, 2), date(9999, 12, 30))
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)

values = st.builds(
    Value,
    low=maybe_number,
    best=maybe_number,
    high=maybe_number,
    hedge=st.sampled_from(["exact", "approximately", "over", "under", "range", "categorical"]),
    rule=ident,
    rule_version=st.integers(1, 9),
    raw=st.none() | text,
    unit=st.none() | ident,
    low_exclusive=st.booleans(),
    high_exclusive=st.booleans(),
    best_derived=st.booleans(),
    text=st.none() | text,
    relative_to=st.none() | ident,
)
valid_times = st.builds(
    ValidTime,
    start=st.none() | days,
    end=st.none() | days,
    precision=st.sampled_from(["day", "month", "season", "year", "interval", "open"]),
    raw=st.none() | text,
)
claims = st.builds(
    ClaimFacts,
    claim_id=ident,
    report_id=ident,
    subject=ident,
    attribute=ident,
    source_id=ident,
    published_at=moments,
    value=values,
    attributed_to=ident,
    source_kind=st.sampled_from(["news", "dataset", "official", "other"]),
    source_reliability=st.none() | st.sampled_from("ABCDEF"),
    cites=st.lists(ident, max_size=3).map(tuple),
    quote=st.none() | text,
    modality=st.sampled_from(["asserted", "reported", "estimated", "possible", "denied"]),
    credibility=st.none() | st.integers(1, 6),
    valid_time=st.none() | valid_times,
    rank=st.sampled_from(["preferred", "normal", "deprecated"]),
    retracted=st.booleans(),
    machine_proposed=st.booleans(),
    source_score=st.none() | st.floats(0.01, 50, allow_nan=False),
)
ids = st.lists(ident, max_size=3).map(tuple)
clusters = st.builds(
    Cluster,
    origin=ident,
    claim_ids=ids,
    weight=st.floats(0, 10, allow_nan=False),
    low=maybe_number,
    best=maybe_number,
    high=maybe_number,
    text=st.none() | text,
)
segments = st.builds(
    Segment,
    valid_from=st.none() | days,
    valid_to=st.none() | days,
    low=maybe_number,
    best=maybe_number,
    high=maybe_number,
    conservative=maybe_number,
    status=st.sampled_from(["settled", "contested", "single_source", "stale"]),
    support=ids,
    dissent=ids,
    text=st.none() | text,
)
results = st.builds(
    ConsensusResult,
    method=ident,
    method_version=st.integers(1, 9),
    kind=st.sampled_from(["stock", "delta", "measure", "state", "categorical"]),
    unit=st.none() | ident,
    low=maybe_number,
    best=maybe_number,
    high=maybe_number,
    conservative=maybe_number,
    status=st.sampled_from(["settled", "contested", "single_source", "stale", "no_data"]),
    support=ids,
    dissent=ids,
    excluded=ids,
    explanation=text,
    value_text=st.none() | text,
    clusters=st.lists(clusters, max_size=3).map(tuple),
    # claim ids are unique within a result: the wire form is a JSON object keyed by them
    weights=st.dictionaries(ident, st.floats(0, 10, allow_nan=False), max_size=3).map(
        lambda d: tuple(d.items())
    ),
    exclusions=st.dictionaries(ident, text, max_size=3).map(lambda d: tuple(d.items())),
    constraints=st.lists(text, max_size=2).map(tuple),
    segments=st.lists(segments, max_size=3).map(tuple),
)


def _wire(data: object) -> object:
    """What a reader gets back: the dict as JSON text, parsed again."""
    return json.loads(json.dumps(data, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(claims)
def test_every_claim_field_survives_its_json_form(claim: ClaimFacts) -> None:
    assert claim_from_dict(_wire(claim_to_dict(claim))) == claim  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(results)
def test_every_result_field_survives_its_json_form(result: ConsensusResult) -> None:
    assert result_from_dict(_wire(result_to_dict(result))) == result  # type: ignore[arg-type]


# Examples that pin, by name, the fields a dropped key would silently reset to its default.
_BASE = ClaimFacts(
    claim_id="c1",
    report_id="r1",
    subject="kursk",
    attribute="personnel_deployed",
    source_id="reuters",
    published_at=datetime(2024, 11, 5, 12, 30, tzinfo=UTC),
    value=Value(10_000, 12_000, None, "over", "over", low_exclusive=True, raw="over 10,000"),
    attributed_to="us-officials",
    machine_proposed=True,
    rank="deprecated",
    source_score=0.25,
    retracted=True,
    credibility=2,
    source_reliability="B",
    modality="possible",
    quote="quoted",
)


def test_a_machine_proposed_deprecated_rescored_claim_keeps_those_marks() -> None:
    back = claim_from_dict(_wire(claim_to_dict(_BASE)))  # type: ignore[arg-type]
    assert back.machine_proposed is True
    assert back.rank == "deprecated"
    assert back.source_score == 0.25
    assert back.retracted is True
    assert (back.credibility, back.source_reliability, back.modality) == (2, "B", "possible")
    assert back.value.low_exclusive is True


def test_an_exclusive_upper_bound_stays_exclusive() -> None:
    under = Value(None, None, 500, "under", "under", high_exclusive=True, best_derived=True)
    claim = ClaimFacts(**{**_as_kwargs(_BASE), "value": under})
    back = claim_from_dict(_wire(claim_to_dict(claim)))  # type: ignore[arg-type]
    assert back.value.high_exclusive is True and back.value.best_derived is True


# A stored result with its lists filled (clusters, weights, exclusions, constraints, segments).
_RESULT = ConsensusResult(
    method="weighted-median-log",
    method_version=1,
    kind="stock",
    unit="people",
    low=10_000,
    best=11_000,
    high=12_000,
    conservative=10_000,
    status="contested",
    support=("c1",),
    dissent=("c2",),
    excluded=("c3",),
    explanation="two sources disagree",
    clusters=(Cluster("reuters", ("c1",), 0.85, 10_000, 11_000, 12_000),),
    weights=(("c1", 0.85), ("c2", 0.4)),
    exclusions=(("c3", "retracted"),),
    constraints=("note",),
    segments=(Segment(date(2024, 5, 1), date(2024, 6, 1), 1, 2, 3, 1, "settled", ("c1",), ()),),
)


def test_a_stored_result_keeps_weights_clusters_and_segments() -> None:
    result = _RESULT
    back = result_from_dict(_wire(result_to_dict(result)))  # type: ignore[arg-type]
    assert back == result
    assert dict(back.weights) == {"c1": 0.85, "c2": 0.4}
    assert back.segments[0].valid_from == date(2024, 5, 1)


def _as_kwargs(claim: ClaimFacts) -> dict[str, object]:
    return {name: getattr(claim, name) for name in ClaimFacts.__slots__}


def test_a_result_dict_holds_plain_lists_and_every_cluster_field() -> None:
    """result_to_dict reads a cluster's fields in one call: all of them, tuples as lists
    (the dict is compared and diffed as stored, where JSON has only lists)."""
    cluster = Cluster("reuters", ("c1", "c2"), 0.85, 10, 11, 12, "eleven")
    result = ConsensusResult(
        "m", 1, "stock", None, 10, 11, 12, 10, "settled", ("c1",), (), (), "x", clusters=(cluster,)
    )
    assert result_to_dict(result)["clusters"] == [
        {
            "origin": "reuters",
            "claim_ids": ["c1", "c2"],
            "weight": 0.85,
            "low": 10,
            "best": 11,
            "high": 12,
            "text": "eleven",
        }
    ]
    assert type(result_to_dict(result)["clusters"][0]["claim_ids"]) is list


def test_a_result_encoded_from_the_dataclass_is_its_dict_encoded() -> None:
    """The reconciler encodes a fresh result straight from the dataclass: the bytes must
    be those of result_to_dict's dict, field by field (digests and stored rows)."""
    result = replace(
        _RESULT,
        best=11_000.5,
        high=-0.0,
        conservative=None,
        explanation="two sources — disagree",
        value_text=None,
        clusters=(Cluster("reuters", ("c1", "c4"), 0.85, 10_000, 11_000, 12_000, "x"),),
        weights=(("c2", 0.4), ("c1", 0.85)),
        segments=(
            Segment(date(2024, 5, 1), None, 1, 2.5, 3, 1, "settled", ("c1",), ("c2",)),
            Segment(None, date(2024, 5, 1), None, None, None, None, "none", (), ()),
        ),
        newest_support_at="2024-05-01T00:00:00Z",
        notes=(("c1", "checked"),),
    )
    assert result_fields(result) == encode_fields(result_to_dict(result))
    assert list(result_fields(result)) == sorted(result_to_dict(result))
