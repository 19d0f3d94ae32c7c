"""Every event type's payload is a frozen msgspec Struct (shared.eventtypes, issue #19), and
the JSON written for an event is byte for byte what each producer wrote before: the ingest
fast path (prepare_report, also what the bulk import sends), the correction endpoints, the
learner, the bench. Malformed payloads are poison (EventProblem); older schema versions are
upcast by the (type, version) registry before the typed decoding."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from bench.reconsize import learned_event
from claimledger.tabular import build_report
from services.infra.db import create_schema, make_engine
from services.infra.http import Problem
from services.infra.keys import KeyChecker
from services.ingest.api import (
    _TARGET_FIELD,
    CorrectionTarget,
    IngestContext,
    _same_request,
    correction_event,
    prepare_report,
)
from services.ingest.learning import reliability_event
from shared.attributes import AttributeRegistry
from shared.consensus.dependence import Copying
from shared.consensus.reliability import Params, Reliability
from shared.events import (
    CLAIM_ASSESSED,
    CLAIM_RETRACTED,
    SOURCE_RATED,
    UPCASTERS,
    Event,
    EventProblem,
    event_from_json,
    upcast,
)
from shared.eventtypes import (
    PAYLOAD_TYPES,
    ClaimAsserted,
    ClaimAssessed,
    ClaimRetracted,
    CopyFinding,
    ReportReceived,
    SourceRated,
    SourceReliabilityLearned,
)
from shared.reports import ReportIn
from tests.unit.test_claim_records import report
from tests.unit.test_ingest_events import USUAL_REPORT
from tests.unit.test_tabular import TD

REGISTRY = AttributeRegistry.load()
ENGINE = make_engine("sqlite://")
create_schema(ENGINE)
CTX = IngestContext(ENGINE, None, REGISTRY, KeyChecker(ENGINE), 4, 0.1)
RECORDED = "2026-12-07T10:00:00.000000Z"
_encode = msgspec.json.encode


def _payload_bytes(body: str) -> bytes:
    """The payload's JSON as written (the envelope's last key)."""
    return body.split(',"payload":', 1)[1][:-1].encode()


def _holds(body: str) -> Event:
    """`body` decodes into its type's Struct and is written again byte for byte."""
    event = event_from_json(body)
    assert type(event.payload) is PAYLOAD_TYPES[event.type]
    assert event.to_json() == body
    assert event_from_json(body.encode()) == event
    return event


def _struct_writes(event: Event, body: str) -> None:
    """The Struct alone (no kept bytes) encodes to the producer's payload JSON."""
    assert _encode(event.payload) == _payload_bytes(body)


def test_the_ingest_fast_path_decodes_typed_and_writes_the_same_bytes() -> None:
    pending = prepare_report(ReportIn.model_validate(USUAL_REPORT), CTX, "trace-1", RECORDED)
    received, *asserted = [_holds(body) for body in pending.events_json]
    assert isinstance(received.payload, ReportReceived)
    assert received.payload.claim_ids == [e.payload.claim["claim_id"] for e in asserted]  # type: ignore[union-attr]
    assert received.payload.title == "t" and received.payload.author is msgspec.UNSET
    for event, body in zip([received, *asserted], pending.events_json, strict=True):
        _struct_writes(event, body)  # no report_id given: the usual order
    first = asserted[0].payload
    assert isinstance(first, ClaimAsserted)
    assert first.subject_label == "DPRK troops in Kursk"
    assert first.claim["source_id"] == "example-news"
    assert [e.to_json() for e in pending.events] == pending.events_json


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report)
def test_any_report_s_events_decode_typed_and_write_the_same_bytes(body: dict[str, Any]) -> None:
    try:
        pending = prepare_report(ReportIn.model_validate(body), CTX, "t", RECORDED)
    except (ValidationError, Problem):
        return
    for body_json in pending.events_json:
        event = _holds(body_json)
        if isinstance(event.payload, ClaimAsserted):
            _struct_writes(event, body_json)
        else:  # a given report_id is the payload's first key: the kept bytes keep it there
            assert json.loads(_encode(event.payload)) == json.loads(_payload_bytes(body_json))


def test_bulk_import_reports_keep_their_bytes() -> None:
    row = {"source": "msn", "object": "sanjosefrijan2908", "attribute": "Temperature",
           "value": "48", "timestamp": "fri jan 29 08:45:00 2010"}  # fmt: skip
    body = build_report(row, TD)
    assert "report_id" in body  # the importer names its reports: report_id comes first
    pending = prepare_report(ReportIn.model_validate(body), CTX, None, RECORDED)
    received, asserted = [_holds(b) for b in pending.events_json]
    assert pending.events_json[0].split('"payload":{', 1)[1].startswith('"report_id"')
    assert isinstance(received.payload, ReportReceived)
    assert received.payload.report_id == body["report_id"]
    _struct_writes(asserted, pending.events_json[1])


def _old_correction_json(kind: str, event: Event, data: dict[str, Any], target: str) -> str:
    """What correction_event wrote when its payload was a dict (the oracle)."""
    payload = {**data, _TARGET_FIELD[kind]: target, "effective_at": RECORDED}
    return Event(
        event.event_id,
        kind,
        1,
        RECORDED,
        event.report_id,
        payload,
        subject=event.subject,
        attribute=event.attribute,
        trace_id=event.trace_id,
    ).to_json()


@pytest.mark.parametrize(
    ("kind", "data", "typed"),
    [
        (CLAIM_RETRACTED, {"reason": "wrong"}, ClaimRetracted),
        (CLAIM_RETRACTED, {"reason": "wrong", "by": "ana"}, ClaimRetracted),
        (CLAIM_ASSESSED, {"reason": "r", "rank": "deprecated", "credibility": None}, ClaimAssessed),
        (CLAIM_ASSESSED, {"reason": "r", "by": "b", "rank": None, "credibility": 2}, ClaimAssessed),
        (CLAIM_ASSESSED, {"reason": "by hand", "credibility": 6}, ClaimAssessed),  # no rank
        (SOURCE_RATED, {"reliability": "C", "rationale": "often late"}, SourceRated),
    ],
)
def test_corrections_are_typed_and_written_as_before(
    kind: str, data: dict[str, Any], typed: type
) -> None:
    target = CorrectionTarget("c_1", "subj", "killed", "r_1")
    event, _ = correction_event(kind, target, data, None, partitions=4, recorded=RECORDED)
    assert isinstance(event.payload, typed) and event.encoded is None  # built as a Struct
    body = event.to_json()
    assert body == _old_correction_json(kind, event, data, "c_1")
    _holds(body)
    # the modifier the reconciler stores: the payload's dict, as it was
    old = {**data, _TARGET_FIELD[kind]: "c_1", "effective_at": RECORDED}
    assert msgspec.to_builtins(event.payload) == old
    assert list(msgspec.to_builtins(event.payload)) == list(old)


def test_a_retry_is_the_same_request_and_another_body_is_not() -> None:
    target = CorrectionTarget("c_1", "subj", "killed", "r_1")
    data = {"reason": "wrong"}
    first, _ = correction_event(CLAIM_RETRACTED, target, data, None, partitions=4, recorded="a")
    again, _ = correction_event(CLAIM_RETRACTED, target, data, None, partitions=4, recorded="b")
    other, _ = correction_event(
        CLAIM_RETRACTED, target, {"reason": "other"}, None, partitions=4, recorded="b"
    )
    stored = event_from_json(first.to_json())
    assert _same_request(stored, again, effective_given=False)
    assert not _same_request(stored, again, effective_given=True)  # another effective time
    assert not _same_request(stored, other, effective_given=False)


def test_learned_reliability_is_typed_and_written_as_before() -> None:
    learned = Reliability(
        scores={"a": 0.8, "b": 1.2, "c": 1.0},
        agreement={},
        claims={},
        pooled=0.5,
        rounds=7,
        converged=True,
        copies={"b": Copying("b", "a", 0.93, 12, 3), "z": Copying("z", "a", 0.5, 1, 0)},
    )
    changed = {"a": 0.8, "b": 1.2}
    event = reliability_event(changed, learned, Params(), RECORDED)
    payload = event.payload
    assert isinstance(payload, SourceReliabilityLearned)
    assert payload.copies == {"b": CopyFinding("a", 0.93, 12, 3)}
    old_payload = {
        "scores": changed,
        "copies": {"b": {"original": "a", "probability": 0.93, "shared": 12, "shared_false": 3}},
        "method": payload.method,
        "method_version": payload.method_version,
        "run_id": payload.run_id,
        "params": Params().as_dict(),
        "rounds": 7,
        "converged": True,
        "effective_at": RECORDED,
    }
    old = Event(event.event_id, event.type, 1, RECORDED, None, old_payload, subject=event.subject)
    assert event.to_json() == old.to_json()
    assert _holds(event.to_json()) == event


def test_the_bench_s_learned_events_and_test_dicts_keep_their_bytes() -> None:
    import random

    event = learned_event(3, RECORDED, random.Random(1))  # no params, rounds, converged
    payload = event.payload
    assert isinstance(payload, SourceReliabilityLearned)
    assert payload.rounds is msgspec.UNSET and payload.copies == {}
    body = event.to_json()
    _holds(body)
    _struct_writes(event, body)
    # an older learned event without copies or run_id: read with neither
    bare = Event("e", "SourceReliabilityLearned", 1, RECORDED, None,
                 {"scores": {"a": 1}, "effective_at": RECORDED})  # fmt: skip
    again = _holds(bare.to_json())
    assert again.payload.copies is msgspec.UNSET and '"copies"' not in bare.to_json()  # type: ignore[union-attr]
    assert '"scores":{"a":1}' in again.to_json()  # an int score stays an int


def _asserted(payload: Any, **envelope: Any) -> str:
    return json.dumps(
        {
            "event_id": "e_1",
            "type": "ClaimAsserted",
            "schema_version": 1,
            "recorded_at": RECORDED,
            "report_id": "r_1",
            "payload": payload,
            **envelope,
        }
    )


def test_a_claim_asserted_with_a_wrongly_typed_field_is_poison_with_a_clear_message() -> None:
    with pytest.raises(EventProblem) as caught:
        event_from_json(_asserted({"claim": {"claim_id": "c"}, "subject_label": 5}))
    assert str(caught.value) == (
        "malformed ClaimAsserted payload: Expected `str | null`, got `int` - at `$.subject_label`"
    )
    with pytest.raises(EventProblem, match=r"malformed ClaimAsserted payload: .*`\$.claim`"):
        event_from_json(_asserted({"claim": ["not", "an", "object"]}))
    with pytest.raises(EventProblem, match="missing required field `claim`"):
        event_from_json(_asserted({"subject_label": "x"}))
    with pytest.raises(
        EventProblem, match=r"malformed ClaimRetracted payload: .*required field `effective_at`"
    ):
        event_from_json(
            _asserted({"reason": "r", "claim_id": "c"}).replace("ClaimAsserted", "ClaimRetracted")
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff not json", "not JSON"),
        (b"[1, 2]", "event is not a JSON object"),
        (json.dumps({"type": "Nope"}).encode(), "missing or malformed envelope field"),
        (_asserted({"claim": {}}).replace("ClaimAsserted", "Nope").encode(), "unknown event type"),
        (_asserted({"claim": {}}, schema_version=2).encode(), "newer than this code"),
        (_asserted({"claim": {}}, schema_version="1").encode(), "malformed envelope field"),
        (_asserted({"claim": {}}, event_id=5).encode(), "malformed envelope field"),
        (_asserted({"claim": {}}, schema_version=0).encode(), "no upcaster"),
    ],
)
def test_malformed_events_are_poison(data: bytes, message: str) -> None:
    with pytest.raises(EventProblem, match=message):
        event_from_json(data)


def _retracted_v0(raw: dict[str, Any]) -> dict[str, Any]:
    """A fake version 0 of ClaimRetracted: `why` for the reason, the claim at `claim`."""
    payload = dict(raw["payload"])
    payload["reason"] = payload.pop("why")
    payload["claim_id"] = payload.pop("claim")
    return {**raw, "schema_version": 1, "payload": payload}


def test_an_older_version_is_upcast_before_the_typed_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v0 = {
        "event_id": "e_old",
        "type": "ClaimRetracted",
        "schema_version": 0,
        "recorded_at": RECORDED,
        "report_id": "r_1",
        "payload": {"why": "misread", "claim": "c_1", "effective_at": RECORDED},
    }
    with pytest.raises(EventProblem, match="no upcaster for 'ClaimRetracted' schema_version 0"):
        event_from_json(json.dumps(v0))
    monkeypatch.setitem(UPCASTERS, ("ClaimRetracted", 0), _retracted_v0)
    event = event_from_json(json.dumps(v0))
    assert event.schema_version == 1 and event.event_id == "e_old"
    assert event.payload == ClaimRetracted(reason="misread", claim_id="c_1", effective_at=RECORDED)
    # written in the current shape, which reads back as itself
    assert event_from_json(event.to_json()) == event
    assert '"payload":{"reason":"misread","claim_id":"c_1"' in event.to_json()
    # version 1 is the current one: upcast leaves it as it is
    current = {**v0, "schema_version": 1}
    assert upcast(current) is current


def test_an_upcaster_that_does_not_step_the_version_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(UPCASTERS, ("ClaimRetracted", 0), lambda raw: raw)
    with pytest.raises(EventProblem, match="did not step it up"):
        upcast({"type": "ClaimRetracted", "schema_version": 0, "payload": {}})


def test_a_newer_version_is_poison_whatever_its_shape_and_a_failing_upcaster_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(EventProblem, match="schema_version 3 is newer than this code"):
        event_from_json(json.dumps({"type": "ClaimAsserted", "schema_version": 3}))
    monkeypatch.setitem(UPCASTERS, ("ClaimRetracted", 0), _retracted_v0)
    v0 = {"event_id": "e", "type": "ClaimRetracted", "schema_version": 0, "payload": {}}
    with pytest.raises(EventProblem, match="upcasting schema_version 0: KeyError"):
        event_from_json(json.dumps(v0))


def test_a_replaced_payload_is_written_from_its_struct() -> None:
    from dataclasses import replace

    event = event_from_json(_asserted({"claim": {"claim_id": "c"}, "subject_label": None}))
    later = replace(event, recorded_at="2027-01-01T00:00:00.000000Z")
    assert later.to_json() == event.to_json().replace(RECORDED, "2027-01-01T00:00:00.000000Z")
    other = replace(event, payload=ClaimAsserted({"claim_id": "d"}, "label"))
    assert '"payload":{"claim":{"claim_id":"d"},"subject_label":"label"}' in other.to_json()
