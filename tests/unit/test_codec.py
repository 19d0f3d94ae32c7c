"""Claims travel as JSON dicts in events and rows: the codec must give back what it got."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from shared.codec import claim_from_dict, claim_to_dict
from shared.events import Event, event_from_json
from shared.eventtypes import ClaimAsserted
from shared.model import ClaimFacts, ValidTime, Value


def _claim(**changes: object) -> ClaimFacts:
    base = dict(
        claim_id="c1",
        report_id="r1",
        subject="kursk",
        attribute="personnel_deployed",
        source_id="reuters",
        published_at=datetime(2024, 11, 5, 12, 30, tzinfo=UTC),
        value=Value(10_000, 12_000, 13_200, "approximately", "approx-10pct", raw="some 12,000"),
        attributed_to="us-officials",
        cites=("nis", "isw"),
    )
    return ClaimFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_a_claim_comes_back_equal_after_json() -> None:
    for claim in (
        _claim(),
        _claim(valid_time=ValidTime(date(2024, 5, 1), date(2024, 6, 1), "month", "in May")),
        _claim(value=Value(None, None, 3000, "up_to", "up-to", high_exclusive=False)),
    ):
        data = json.loads(json.dumps(claim_to_dict(claim)))
        assert claim_from_dict(data) == claim


def test_a_claim_dict_holds_only_json_types() -> None:
    data = claim_to_dict(_claim(valid_time=ValidTime(date(2024, 5, 1), None, "month", "since May")))
    assert data["published_at"] == "2024-11-05T12:30:00.000000Z"
    assert data["cites"] == ["nis", "isw"]
    assert data["valid_time"] == {
        "start": "2024-05-01",
        "end": None,
        "precision": "month",
        "raw": "since May",
    }
    assert data["value"] == {
        "low": 10_000,
        "best": 12_000,
        "high": 13_200,
        "hedge": "approximately",
        "rule": "approx-10pct",
        "rule_version": 1,
        "raw": "some 12,000",
    }


def test_an_event_survives_its_wire_form_with_unicode_and_exact_numbers() -> None:
    event = Event(
        "e1",
        "ClaimAsserted",
        1,
        "2024-11-05T12:30:00.000000Z",
        "r1",
        {"claim": {"quote": "«около 12 000»", "value": {"best": 12_000, "low": 0.25}}},
        seq=4,
        subject="курск",
        attribute="personnel_deployed",
        trace_id="t",
    )
    again = event_from_json(event.to_json().encode())
    assert again == event
    assert isinstance(again.payload, ClaimAsserted)
    assert isinstance(again.payload.claim["value"]["best"], int)


def test_claims_read_from_separate_json_share_their_repeated_text() -> None:
    # the reconciler keeps every cached claim: one copy of a subject or a source, not one each
    text = json.dumps(claim_to_dict(_claim()))
    first = claim_from_dict(json.loads(text))
    second = claim_from_dict(json.loads(text.replace('"c1"', '"c2"')))
    assert first.claim_id != second.claim_id
    for name in ("report_id", "subject", "attribute", "source_id", "attributed_to"):
        assert getattr(first, name) is getattr(second, name), name
    assert first.value.hedge is second.value.hedge and first.value.rule is second.value.rule
