"""Event envelope and event types: immutable, versioned, self-contained.

An event carries everything the reconciler needs (the normalised claim, its
source and publication time), so replaying the stored log rebuilds every
projection without looking anything else up. Each type's payload is a frozen
msgspec Struct (shared.eventtypes), read by attribute. Old schema versions are upcast
on read (`upcast`, by UPCASTERS), never edited in place.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import msgspec

from shared.eventtypes import PAYLOAD_TYPES, Payload

SCHEMA_VERSION = 1

REPORT_RECEIVED = "ReportReceived"
CLAIM_ASSERTED = "ClaimAsserted"
CLAIM_RETRACTED = "ClaimRetracted"
CLAIM_ASSESSED = "ClaimAssessed"
SOURCE_RATED = "SourceRated"
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
    # the type's Struct (shared.eventtypes); a dict given for a known type is read into it
    # (its JSON kept); only an event of no known type (tests of the relay) holds a dict
    payload: Payload | dict[str, Any]
    seq: int | None = None  # ingest outbox sequence; the basis of read-your-writes tokens
    subject: str | None = None  # partition key
    attribute: str | None = None
    trace_id: str | None = None
    # (payload, its JSON as it was encoded) of a decoded event or a dict payload: written
    # again as it was, byte for byte, while the event holds that payload (a `replace` of
    # the payload encodes the new one)
    encoded: tuple[object, msgspec.Raw] | None = field(
        default=None, kw_only=True, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if type(self.payload) is dict:
            kind = PAYLOAD_TYPES.get(self.type)
            if kind is not None:
                try:
                    typed = msgspec.convert(self.payload, kind)
                except msgspec.ValidationError:
                    return  # a malformed event, kept as given (its decoding is poison)
                object.__setattr__(self, "encoded", (typed, msgspec.Raw(_encode(self.payload))))
                object.__setattr__(self, "payload", typed)

    def to_json(self) -> str:
        payload: object = self.payload
        if self.encoded is not None and self.encoded[0] is payload:
            payload = self.encoded[1]
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
                "payload": payload,
            }
        ).decode()


class _Head(msgspec.Struct):
    """The envelope but its payload (what an upcast event is read with)."""

    event_id: str
    type: str
    schema_version: int
    recorded_at: str
    report_id: str | None = None
    seq: int | None = None
    subject: str | None = None
    attribute: str | None = None
    trace_id: str | None = None


class _Envelope(_Head, kw_only=True):
    payload: msgspec.Raw  # decoded by its type's Struct once the type is known


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_new_event = object.__new__
# the slots' setters, in the order of Event's fields (event_from_json sets each of them)
(
    _set_event_id,
    _set_type,
    _set_schema_version,
    _set_recorded_at,
    _set_report_id,
    _set_payload,
    _set_seq,
    _set_subject,
    _set_attribute,
    _set_trace_id,
    _set_encoded,
) = (Event.__dict__[f.name].__set__ for f in fields(Event))
_DECODERS = {kind: msgspec.json.Decoder(t).decode for kind, t in PAYLOAD_TYPES.items()}


def event_from_json(data: str | bytes) -> Event:
    """The event, its payload its type's Struct; anything malformed is EventProblem."""
    try:
        env = _decode_envelope(data)
    except msgspec.ValidationError as exc:  # an older envelope, or a malformed one
        return _upcast_event(data, f"missing or malformed envelope field: {exc}")
    except (ValueError, UnicodeDecodeError) as exc:  # msgspec.DecodeError is a ValueError
        raise EventProblem(f"not JSON: {exc}") from exc
    if env.schema_version != SCHEMA_VERSION:
        return _upcast_event(data, None)
    decode = _DECODERS.get(env.type)
    if decode is None:
        raise EventProblem(f"unknown event type {env.type!r}")
    try:
        payload = decode(env.payload)
    except msgspec.ValidationError as exc:
        raise EventProblem(f"malformed {env.type} payload: {exc}") from exc
    # Event(...) without the frozen dataclass's __init__ (an object.__setattr__ call per
    # field, then __post_init__: about as long as decoding the payload): its slots set
    event = _new_event(Event)
    _set_event_id(event, env.event_id)
    _set_type(event, env.type)
    _set_schema_version(event, env.schema_version)
    _set_recorded_at(event, env.recorded_at)
    _set_report_id(event, env.report_id)
    _set_payload(event, payload)
    _set_seq(event, env.seq)
    _set_subject(event, env.subject)
    _set_attribute(event, env.attribute)
    _set_trace_id(event, env.trace_id)
    _set_encoded(event, (payload, env.payload))
    return event


def _upcast_event(data: str | bytes, problem: str | None) -> Event:
    """An event of an older schema version (else `problem`): upcast as a dict, then typed.
    It is written in the current shape (its payload's Struct), not as it was stored."""
    raw = _decode(data)
    if not isinstance(raw, dict):
        raise EventProblem("event is not a JSON object")
    version = raw.get("schema_version")
    if problem is not None and not (isinstance(version, int) and version != SCHEMA_VERSION):
        raise EventProblem(problem)
    raw = upcast(raw)  # or EventProblem: newer than this code, no upcaster
    try:
        head = msgspec.convert(raw, _Head)
    except msgspec.ValidationError as exc:
        raise EventProblem(f"missing or malformed envelope field: {exc}") from exc
    kind = PAYLOAD_TYPES.get(head.type)
    if kind is None:
        raise EventProblem(f"unknown event type {head.type!r}")
    try:
        payload = msgspec.convert(raw.get("payload"), kind)
    except msgspec.ValidationError as exc:
        raise EventProblem(f"malformed {head.type} payload: {exc}") from exc
    return Event(
        head.event_id,
        head.type,
        head.schema_version,
        head.recorded_at,
        head.report_id,
        payload,
        head.seq,
        head.subject,
        head.attribute,
        head.trace_id,
    )


# (event type, schema version) -> the raw event one version up (its schema_version too)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an event of an older schema version up to SCHEMA_VERSION, one version at a
    time by UPCASTERS; an event of the current version is returned as it is.

    Version 1 is the first: there is no upcaster yet (tests register a fake version 0).
    """
    version = raw.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int):
        raise EventProblem(f"schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise EventProblem(f"schema_version {version} is newer than this code")
    while version < SCHEMA_VERSION:
        step = UPCASTERS.get((str(raw.get("type")), version))
        if step is None:
            raise EventProblem(f"no upcaster for {raw.get('type')!r} schema_version {version}")
        try:
            raw = step(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EventProblem(f"upcasting schema_version {version}: {exc!r}") from exc
        if raw.get("schema_version") != version + 1:
            raise EventProblem(f"the upcaster of schema_version {version} did not step it up")
        version += 1
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
