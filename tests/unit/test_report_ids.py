"""A report without a report_id is named by the hash of its canonical JSON, and a retry is
told from a conflict by it (shared.reports.canonical_json): the spelling, now by a C encoder
built once (issue #21), must be byte for byte `json.dumps(body, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`, which every stored report id and hash was made of."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.reports import ReportIn, canonical_json, canonical_report_json, content_hash
from tests.unit.test_claim_ids import claim_in, text


def old_canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


any_text = st.text(st.characters(), max_size=20)  # any code point: surrogates, U+2028
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),  # NaN and infinities too: json.dumps allows them
    any_text,
)
body = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=30,
)
report_in = st.fixed_dictionaries(
    {
        "source": st.fixed_dictionaries({"id": text}, optional={"name": text}),
        "published_at": text,
        "claims": st.lists(claim_in, max_size=4),
    },
    optional={"report_id": text, "title": text, "text": text, "extract": st.booleans()},
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(any_text, body, max_size=6))
def test_canonical_json_is_the_old_spelling_for_any_body(data: dict[str, Any]) -> None:
    assert canonical_json(data) == old_canonical(data)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_in)
def test_a_reports_canonical_json_is_the_old_spelling_for_any_report(raw: dict[str, Any]) -> None:
    """Mostly by msgspec now (canonical_report_json): floats, surrogates and all."""
    try:
        report = ReportIn.model_validate(raw)
    except ValidationError:
        return
    data = report.model_dump(mode="json", exclude_none=True)
    assert canonical_report_json(report, data) == old_canonical(data)


def test_a_lone_surrogate_never_reaches_the_encoders() -> None:
    """json.loads makes one of "\\ud800", which msgspec would refuse to write (canonical_
    report_json then falls back to json); the model refuses it first."""
    raw = json.loads(
        '{"source": {"id": "s\\ud800"}, "published_at": "2025-03-01",'
        ' "claims": [{"subject": "k", "attribute": "killed", "value": 3}]}'
    )
    with pytest.raises(ValidationError):
        ReportIn.model_validate(raw)


def test_a_reports_hash_is_the_one_it_always_had() -> None:
    """A literal, computed with the old code: a report posted before and retried now is a
    retry (200), not a conflict."""
    report = ReportIn.model_validate(
        {
            "source": {"id": "example-news", "kind": "news"},
            "published_at": "2025-03-01",
            "claims": [
                {
                    "subject": "dprk-troops-kursk",
                    "attribute": "personnel_deployed",
                    "raw": "about 11,000",
                    "attributed_to": 'Südkorea \u2028 "intel"',
                    "value": {"best": 1.5e16},
                }
            ],
        }
    )
    body = report.model_dump(mode="json", exclude_none=True)
    assert canonical_json(body) == old_canonical(body)
    assert canonical_report_json(report, body) == old_canonical(body)
    assert content_hash(body) == HASH


# hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
#                ensure_ascii=False).encode()).hexdigest(), before canonical_json changed
HASH = "6489d77124c95d5b1b99a50a6c826b2a7551445c8de23747f8f2e61d4a58bc52"
