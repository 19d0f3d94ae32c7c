"""The payload of each event type: a frozen msgspec Struct, read by attribute (issue #19).

The fields are in the order their producers write them, and a key a producer may leave out
is `UNSET` (never written) rather than a default (written as a value): a payload built here
encodes to the JSON its producer wrote before these types existed. A decoded event keeps
its payload's original bytes too (`shared.events.Event.to_json`), so what was stored is
written again byte for byte whatever the struct drops (keys unknown here).

Producers: ReportReceived, ClaimAsserted: services/ingest/api.py prepare_report (also what
the bulk import sends); ClaimRetracted, ClaimAssessed, SourceRated: its correction
endpoints (correction_event); SourceReliabilityLearned: services/ingest/learning.py.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

Rank = Literal["preferred", "normal", "deprecated"]
Grade = Literal["A", "B", "C", "D", "E", "F"]


class ReportReceived(msgspec.Struct, frozen=True, kw_only=True):
    """The report's fields but its claims and text (shared.reports.ReportIn, None left out).

    `report_id` is first when the client gave it, else after `subject`: the order here is
    the usual one; a decoded event writes its own order again (its kept bytes)."""

    source: dict[str, Any]  # shared.reports.SourceIn: id, name?, kind, reliability?
    author: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    published_at: str
    extract: bool | UnsetType = UNSET
    subject: str | UnsetType = UNSET
    report_id: str
    claim_ids: list[str]


class ClaimAsserted(msgspec.Struct, frozen=True):
    """One normalised claim: `claim` is shared.codec.claim_to_dict of its ClaimFacts (read
    with claim_from_dict; its value's keys vary and its fields grew over time, so it stays
    the codec's dict), `subject_label` the report's label of its subject."""

    claim: dict[str, Any]
    subject_label: str | None = None


class ClaimRetracted(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    by: str | UnsetType = UNSET  # absent unless given (the event id predates `by`)
    claim_id: str
    effective_at: str


class ClaimAssessed(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    by: str | UnsetType = UNSET
    # the endpoint writes both, None too; left out (events made by hand) they are UNSET
    rank: Rank | UnsetType | None = UNSET
    credibility: int | UnsetType | None = UNSET  # Admiralty 1-6
    claim_id: str
    effective_at: str


class SourceRated(msgspec.Struct, frozen=True, kw_only=True):
    reliability: Grade
    rationale: str
    source_id: str
    effective_at: str


class CopyFinding(msgspec.Struct, frozen=True):
    """shared.consensus.dependence.Copying of a copier, without the copier (its key)."""

    original: str
    probability: float
    shared: int
    shared_false: int


class SourceReliabilityLearned(msgspec.Struct, frozen=True, kw_only=True):
    scores: dict[str, float]  # source id -> learned score
    copies: dict[str, CopyFinding] | UnsetType = UNSET  # copier -> finding
    method: str | UnsetType = UNSET
    method_version: int | UnsetType = UNSET
    run_id: str | UnsetType = UNSET
    params: dict[str, Any] | UnsetType = UNSET
    rounds: int | UnsetType = UNSET
    converged: bool | UnsetType = UNSET
    effective_at: str


Payload = (
    ReportReceived
    | ClaimAsserted
    | ClaimRetracted
    | ClaimAssessed
    | SourceRated
    | SourceReliabilityLearned
)
Correction = ClaimRetracted | ClaimAssessed | SourceRated

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    "ReportReceived": ReportReceived,
    "ClaimAsserted": ClaimAsserted,
    "ClaimRetracted": ClaimRetracted,
    "ClaimAssessed": ClaimAssessed,
    "SourceRated": SourceRated,
    "SourceReliabilityLearned": SourceReliabilityLearned,
}
