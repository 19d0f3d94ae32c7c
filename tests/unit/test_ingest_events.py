"""What ingest stores for a report (services.ingest.api.prepare_report) is, byte for byte,
what it stored before it stopped building Event objects and ClaimFacts for it (issue #21):
the same event ids, streams and JSON as `Event(...).to_json()` of the events made from
`normalise_report` and `claim_to_dict`. The reconciler decodes these bodies and replays
hash what it applies from them."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from services.infra.db import create_schema, make_engine
from services.infra.http import Problem
from services.infra.keys import KeyChecker
from services.ingest.api import IngestContext, _stream_of, prepare_report
from shared.attributes import AttributeRegistry
from shared.codec import claim_to_dict
from shared.events import (
    CLAIM_ASSERTED,
    REPORT_RECEIVED,
    SCHEMA_VERSION,
    Event,
    event_from_json,
    partition_of,
    stable_id,
    stream_for,
)
from shared.reports import ReportIn, canonical_json, hash_of_canonical, normalise_report
from shared.timeaxes import iso
from tests.unit.test_claim_records import report

REGISTRY = AttributeRegistry.load()
ENGINE = make_engine("sqlite://")
create_schema(ENGINE)
CTX = IngestContext(ENGINE, None, REGISTRY, KeyChecker(ENGINE), 4, 0.1)
RECORDED = "2026-12-07T10:00:00.000000Z"


def old_events(parsed: ReportIn, trace: str | None) -> tuple[list[str], list[str]]:
    """The events' JSON and streams as prepare_report made them before (the oracle)."""
    body = parsed.model_dump(mode="json", exclude_none=True)
    report_id = parsed.report_id or stable_id("r_", hash_of_canonical(canonical_json(body)))
    published_at, claims = normalise_report(parsed, report_id, REGISTRY, tolerance=0.1)
    labels = {c.subject: c.subject_label for c in parsed.claims if c.subject_label}
    meta = {k: v for k, v in body.items() if k not in ("claims", "text")}
    events = [
        Event(
            stable_id("e_", report_id, REPORT_RECEIVED),
            REPORT_RECEIVED,
            SCHEMA_VERSION,
            RECORDED,
            report_id,
            {
                **meta,
                "report_id": report_id,
                "published_at": iso(published_at),
                "claim_ids": [c.claim_id for c in claims],
            },
            trace_id=trace,
        )
    ]
    streams = [stream_for(partition_of(report_id, 4))]
    for claim in claims:
        events.append(
            Event(
                stable_id("e_", claim.claim_id, CLAIM_ASSERTED),
                CLAIM_ASSERTED,
                SCHEMA_VERSION,
                RECORDED,
                report_id,
                {"claim": claim_to_dict(claim), "subject_label": labels.get(claim.subject)},
                subject=claim.subject,
                attribute=claim.attribute,
                trace_id=trace,
            )
        )
        streams.append(_stream_of(claim.subject, 4))
    return [e.to_json() for e in events], streams


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report)
def test_stored_events_are_the_old_ones_for_any_report(body: dict[str, Any]) -> None:
    try:
        parsed = ReportIn.model_validate(body)
        pending = prepare_report(parsed, CTX, "trace-1", RECORDED)
    except (ValidationError, Problem):
        return  # refused: nothing stored (the refusals are compared in test_claim_records)
    old_json, old_streams = old_events(parsed, "trace-1")
    assert pending.events_json == old_json
    assert pending.streams == old_streams
    assert pending.event_ids == [event_from_json(j).event_id for j in old_json]
    # the Events callers still get are the ones the JSON says
    assert [e.to_json() for e in pending.events] == old_json


# a usual report: two claims, a label, a phrase to read, a citation, a valid time
USUAL_REPORT: dict[str, Any] = {
    "source": {"id": "example-news", "kind": "news", "reliability": "B"},
    "published_at": "2025-03-01",
    "title": "t",
    "claims": [
        {
            "subject": "dprk-troops-kursk",
            "subject_label": "DPRK troops in Kursk",
            "attribute": "personnel_deployed",
            "raw": "about 11,000",
            "attributed_to": "South Korean intelligence",
            "cites": ["a"],
        },
        {"subject": "k2", "attribute": "killed", "value": 5, "valid_time": "late 2024"},
    ],
}


def test_a_usual_report_stores_the_old_events() -> None:
    parsed = ReportIn.model_validate(USUAL_REPORT)
    pending = prepare_report(parsed, CTX, None, RECORDED)
    assert (pending.events_json, pending.streams) == old_events(parsed, None)
