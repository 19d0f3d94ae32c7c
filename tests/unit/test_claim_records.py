"""Ingest builds each ClaimAsserted event's claim straight from the report
(shared.reports.normalise_report_records, issue #21) instead of making a ClaimFacts and
turning it into a dict. The reconciler reads that dict back (shared.codec.claim_from_dict)
and replays hash it: it must be exactly `claim_to_dict` of the ClaimFacts that
normalise_report makes, key for key, in the same order, for any report; and a report that
does not normalise must be refused with the same errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.attributes import AttributeRegistry
from shared.codec import claim_to_dict
from shared.events import stable_id
from shared.reports import (
    ReportIn,
    ReportProblem,
    claim_content,
    normalise_report,
    normalise_report_records,
)

REGISTRY = AttributeRegistry.load()
NOW = datetime(2026, 1, 1, tzinfo=UTC)

text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
number = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
)
phrase = st.sampled_from(["about 1,000", "over 3,000", "up to 3,000", "12,000", "10 to 20"])
# a few of the choices below do not normalise: the refusals are compared too
value = st.one_of(
    number,
    phrase,
    st.fixed_dictionaries({}, optional={"low": number, "best": number, "high": number}),
)
claim = st.fixed_dictionaries(
    {
        "value": value,
        "subject": st.sampled_from(["dprk-troops-kursk", "k1", "k2"]) | text,
        "attribute": st.sampled_from(["personnel_deployed", "Death toll", "killed", "opaque"]),
    },
    optional={
        "subject_label": text,
        "hedge": st.sampled_from(["approximately", "exact", "at_least", "up_to", "bogus"]),
        "raw": phrase,
        "unit": st.sampled_from(["people", "troops"]),
        "valid_time": st.sampled_from(["2024-10", "late 2024", "2025-01-15"] * 3 + ["nonsense"])
        | st.fixed_dictionaries({"start": st.sampled_from(["2024-10-01", "2024"])}),
        "attributed_to": text,
        "cites": st.lists(text, max_size=3),
        "quote": text,
        "modality": st.sampled_from(["asserted", "reported", "estimated", "possible", "denied"]),
        "credibility": st.integers(min_value=1, max_value=6),
    },
)
report = st.fixed_dictionaries(
    {
        "source": st.fixed_dictionaries(
            {"id": st.sampled_from(["src1", "example-news"]) | text},
            optional={
                "kind": st.sampled_from(["news", "official", "other"]),
                "reliability": st.sampled_from(["A", "C", "F"]),
            },
        ),
        "published_at": st.sampled_from(["2025-03-01", "2024-12-31T23:00:00Z"] * 5 + ["2999"]),
        "claims": st.lists(claim, min_size=1, max_size=4),
    },
    optional={"report_id": st.sampled_from(["r1", "r2"])},
)


def both(body: dict[str, Any]) -> tuple[Any, Any]:
    """(records or the error list, claim_to_dict of the facts or the error list)."""
    parsed = ReportIn.model_validate(body)
    args = (parsed, "r_test", REGISTRY)
    records: Any
    facts: Any
    try:
        records = normalise_report_records(*args, now=NOW)[1]
    except ReportProblem as exc:
        records = exc.errors
    try:
        facts = [claim_to_dict(c) for c in normalise_report(*args, now=NOW)[1]]
    except ReportProblem as exc:
        facts = exc.errors
    return records, facts


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report)
def test_records_are_claim_to_dict_of_the_facts_for_any_report(body: dict[str, Any]) -> None:
    try:
        records, facts = both(body)
    except ValidationError:
        return  # refused before normalisation, on either path
    assert records == facts
    # the same bytes on the wire: same keys in the same order, same value types
    assert msgspec.json.encode(records) == msgspec.json.encode(facts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report)
def test_claim_ids_are_stable_ids_of_their_content(body: dict[str, Any]) -> None:
    """The ids, spelled out in _claim_parts, are stable_id's (test_claim_ids pins those)."""
    try:
        parsed = ReportIn.model_validate(body)
        records = normalise_report_records(parsed, "r_test", REGISTRY, now=NOW)[1]
    except (ValidationError, ReportProblem):
        return
    assert [r["claim_id"] for r in records] == [
        stable_id("c_", "r_test", i, claim_content(c)) for i, c in enumerate(parsed.claims)
    ]


@pytest.mark.parametrize(
    "claims",
    [
        [{"subject": "k", "attribute": "killed", "value": 1000}],
        [{"subject": "k", "attribute": "Death toll", "raw": "about 1,000", "cites": ["a", "b"]}],
        [{"subject": "k", "attribute": "killed", "value": {"low": 1, "high": 5}, "quote": "q"}],
        [{"subject": "k", "attribute": "killed", "value": 5, "valid_time": "late 2024"}],
        [{"subject": "k", "attribute": "deployment_status", "value": "withdrawn"}] * 2,
        [{"subject": "k", "attribute": "killed", "value": "many"}],  # refused
    ],
)
def test_records_of_usual_reports(claims: list[dict[str, Any]]) -> None:
    body = {
        "source": {"id": "s", "kind": "news", "reliability": "B"},
        "published_at": "2025-03-01",
        "claims": claims,
    }
    records, facts = both(body)
    assert records == facts
    assert msgspec.json.encode(records) == msgspec.json.encode(facts)


def test_a_record_is_its_own_dict() -> None:
    """Repeated phrases share one parsed Value; each claim's record still owns its dicts."""
    body = {
        "source": {"id": "s"},
        "published_at": "2025-03-01",
        "claims": [{"subject": "k", "attribute": "killed", "raw": "about 1,000"}] * 2,
    }
    first, second = normalise_report_records(ReportIn.model_validate(body), "r", REGISTRY)[1]
    first["value"]["best"] = -1
    assert second["value"]["best"] != -1
