"""Claim ids are content hashes that existing databases hold: the cheaper spelling of a claim's
content (shared.reports.claim_content, issue #21) must be byte for byte the one every stored id
was made from, `json.dumps(claim.model_dump(mode="json"), sort_keys=True)`."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.events import stable_id
from shared.reports import ClaimIn, ReportIn, claim_content


def old_content(claim: ClaimIn) -> str:
    """The spelling claim ids were made from before claim_content (kept here as the oracle)."""
    return json.dumps(claim.model_dump(mode="json"), sort_keys=True)


# any code point but the control characters the model refuses: non-ASCII, surrogates, quotes,
# backslashes, U+2028 (and a few controls, refused, to keep that path honest)
text = st.text(st.characters(blacklist_categories=("Cc",)), max_size=40) | st.text(max_size=5)
key = text.filter(lambda s: bool(s.strip()))
number = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)
value_in = st.fixed_dictionaries(
    {},
    optional={"low": number, "best": number, "high": number, "hedge": st.none() | text},
)
valid_time_in = st.fixed_dictionaries(
    {}, optional={"start": st.none() | text, "end": st.none() | text}
)
claim_in = st.fixed_dictionaries(
    {"subject": key, "attribute": key},
    optional={
        "subject_label": st.none() | text,
        "value": st.one_of(st.none(), number, text, value_in, value_in),
        "hedge": st.none() | text,
        "raw": st.none() | text,
        "unit": st.none() | text,
        "relative_to": st.none() | text,
        "valid_time": st.one_of(st.none(), text, valid_time_in),
        "attributed_to": st.none() | text,
        "cites": st.lists(text, max_size=4),
        "quote": st.none() | text,
        "modality": st.sampled_from(["asserted", "reported", "estimated", "possible", "denied"]),
        "credibility": st.none() | st.integers(min_value=1, max_value=6),
        "unknown_field": text,  # ignored by the model, in both spellings
    },
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_in)
def test_the_content_is_the_old_spelling_for_any_claim(raw: dict[str, Any]) -> None:
    try:
        claim = ClaimIn.model_validate(raw)
    except ValidationError:
        return  # refused before any id is made
    assert claim_content(claim) == old_content(claim)


def test_the_content_is_the_old_spelling_for_json_parsed_claims() -> None:
    """As the API validates them: from parsed JSON (floats from text, nested models)."""
    bodies = [
        '{"subject": "k", "attribute": "killed", "value": 1e16}',
        '{"subject": "k", "attribute": "killed", "value": -0.0, "cites": []}',
        '{"subject": "k", "attribute": "killed", "value": 123456789012345678901234567890}',
        '{"subject": "k", "attribute": "killed", "value": {"best": 2.5e-7, "hedge": null}}',
        '{"subject": "k", "attribute": "a", "valid_time": {"end": "2024"}, "quote": "\\u2028"}',
        '{"subject": "\\ud83c\\udfd9", "attribute": "a\\"b\\\\c", "value": "\\u00e9"}',
    ]
    for body in bodies:
        claim = ClaimIn.model_validate(json.loads(body))
        assert claim_content(claim) == old_content(claim), body


def test_claim_ids_stay_what_they_were() -> None:
    """Ids computed with the old spelling before the change (literals: any drift fails)."""
    report = ReportIn.model_validate(
        {
            "report_id": "r-literal",
            "source": {"id": "wire", "kind": "news"},
            "published_at": "2024-03-01T12:00:00Z",
            "claims": [
                {
                    "subject": "Kharkiv",
                    "attribute": "killed",
                    "value": {"low": 12, "best": 14.5, "high": 20, "hedge": "at least"},
                    "valid_time": {"start": "2024-02-28"},
                    "cites": ["é ünïcode", "x"],
                    "quote": "“Ten” — said\nthe mayor",
                    "modality": "reported",
                    "credibility": 2,
                },
                {
                    "subject": "Zürich",
                    "attribute": "status",
                    "value": "open",
                    "subject_label": "Zürich 🏙",
                    "unit": None,
                },
            ],
        }
    )
    ids = [stable_id("c_", "r-literal", i, claim_content(c)) for i, c in enumerate(report.claims)]
    assert ids == ["c_3fdfc43a99cbbf9aa64a3e5748", "c_87e2faac22e0feb6d12bf675b7"]
