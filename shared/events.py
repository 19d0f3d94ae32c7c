"""Event envelope and event types: immutable, versioned, self-contained.

An event carries everything the reconciler needs (the normalised claim, its
source and publication time), so replaying the stored log rebuilds every
projection without looking anything else up. Old schema versions are upcast on
read (`upcast`), never edited in place.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

SCHEMA_VERSION = 1

REPORT_RECEIVED = "ReportReceived"
CLAIM_ASSERTED = "ClaimAsserted"
CLAIM_RETRACTED = "ClaimRetracted"
CLAIM_ASSESSED = "ClaimAssessed"
SOURCE_RATED = "SourceRated"
# payload: {scores: {source_id: score}, method, method_version, run_id, params, effective_at}
SOURCE_RELIABILITY_LEARNED = "SourceReliabilityLearned"
EVENT_TYPES = (
    REPORT_RECEIVED,
    CLAIM_ASSERTED,
    CLAIM_RETRACTED,
    CLAIM_ASSESSED,
    SOURCE_RATED,
    SOURCE_RELIABILITY_LEARNED,
)

# msgspec: compact UTF-8 JSON like json.dumps(separators=(",", ":"), ensure_ascii=False),
# several times faster; events are encoded by ingest and decoded by the reconciler per claim
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

STREAM_PREFIX = "claimledger:"
DEAD_LETTER_STREAM = "claimledger:dead"
UPDATES_STREAM = "claimledger:updates"
CONSUMER_GROUP = "reconcile"


class EventProblem(ValueError):
    """A stream entry that is not a valid event (poison)."""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: str
    schema_version: int
    recorded_at: str  # ISO-8601 UTC, fixed width (see shared.timeaxes.iso)
    report_id: str | None
    payload: dict[str, Any]
    seq: int | None = None  # ingest outbox sequence; the basis of read-your-writes tokens
    subject: str | None = None  # partition key
    attribute: str | None = None
    trace_id: str | None = None

    def to_json(self) -> str:
        return _encode(
            {
                "event_id": self.event_id,
                "type": self.type,
                "schema_version": self.schema_version,
                "recorded_at": self.recorded_at,
                "report_id": self.report_id,
                "seq": self.seq,
                "subject": self.subject,
                "attribute": self.attribute,
                "trace_id": self.trace_id,
                "payload": self.payload,
            }
        ).decode()


def event_from_json(data: str | bytes) -> Event:
    try:
        raw = _decode(data)
    except (ValueError, UnicodeDecodeError) as exc:  # msgspec.DecodeError is a ValueError
        raise EventProblem(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventProblem("event is not a JSON object")
    raw = upcast(raw)
    try:
        event = Event(
            event_id=str(raw["event_id"]),
            type=str(raw["type"]),
            schema_version=int(raw["schema_version"]),
            recorded_at=str(raw["recorded_at"]),
            report_id=raw.get("report_id"),
            payload=dict(raw["payload"]),
            seq=raw.get("seq"),
            subject=raw.get("subject"),
            attribute=raw.get("attribute"),
            trace_id=raw.get("trace_id"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventProblem(f"missing or malformed envelope field: {exc}") from exc
    if event.type not in EVENT_TYPES:
        raise EventProblem(f"unknown event type {event.type!r}")
    return event


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an event of an older schema version up to SCHEMA_VERSION.

    Version 1 is the first; the chain of upcasters grows here, one per version.
    """
    if raw.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise EventProblem(f"schema_version {raw.get('schema_version')} is newer than this code")
    return raw


def stable_id(prefix: str, *parts: object) -> str:
    """Deterministic id: the same inputs always give the same id (idempotent retries)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{prefix}{digest[:26]}"


def partition_of(subject: str, partitions: int) -> int:
    """Stable across processes and Python runs (unlike hash())."""
    return zlib.crc32(subject.encode()) % max(1, partitions)


def stream_for(partition: int) -> str:
    # the braces are a Redis Cluster hash tag: one partition's keys live on one node
    return f"{STREAM_PREFIX}events:{{{partition}}}"
