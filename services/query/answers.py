"""The query service's answers, declared for OpenAPI (issue #23).

The routes return their JSON directly (`api._answer`), so these models document the
answers without filtering or coercing them: a number claimed as 3 stays 3, a field the
stored result adds later still comes back. Open-ended parts (a version's `diff`, a report's
own fields, a claim's facts) allow more than they declare (`extra="allow"`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Number = float | None  # a value's low / best / high: null when the key holds text


class _Open(BaseModel):
    """An answer part whose payload may carry more fields than are declared here."""

    model_config = ConfigDict(extra="allow")


class Method(BaseModel):
    name: str | None = Field(description="the consensus method that computed the version")
    version: int | None


class Cause(_Open):
    """What made the version: the event and report (and, in history, the event's trace)."""

    event_id: str | None
    report_id: str | None
    trace_id: str | None = Field(default=None, description="history items only")


class Cluster(_Open):
    origin: str
    claim_ids: list[str]
    weight: float
    low: Number = None
    best: Number = None
    high: Number = None
    text: str | None = None


class Segment(_Open):
    """The answer over one stretch of world time (valid_from..valid_to, null = open)."""

    valid_from: str | None
    valid_to: str | None
    low: Number = None
    best: Number = None
    high: Number = None
    conservative: Number = None
    status: str
    support: list[str]
    dissent: list[str]
    text: str | None = None
    explanation: str | None = None
    newest_support_at: str | None = None
    age_days: int | None = Field(default=None, description="days since newest_support_at")
    fresh_status: str | None = Field(default=None, description="the status before 'stale'")


class Version(_Open):
    """One consensus version of a key, as stored (a history item)."""

    subject: str
    attribute: str
    attribute_label: str | None = Field(description="the attribute's label in the registry")
    subject_label: str | None
    version: int
    low: Number
    best: Number
    high: Number
    conservative: Number
    value: str | None = Field(description="the winning text of a categorical or state key")
    unit: str | None
    kind: str | None
    status: str | None
    support: list[str]
    dissent: list[str]
    excluded: list[str]
    exclusions: dict[str, str] = Field(description="claim_id -> why it was left out")
    notes: dict[str, str] = Field(description="claim_id -> analysts' notes")
    explanation: str | None
    newest_support_at: str | None
    segments: list[Segment]
    clusters: list[Cluster]
    weights: dict[str, float] = Field(description="claim_id -> effective weight")
    constraints: list[str]
    method: Method
    published_from: str | None
    published_to: str | None
    recorded_from: str | None
    recorded_to: str | None
    cause: Cause
    diff: dict[str, Any] = Field(description="what changed from the version a reader saw before")
    position: int = Field(description="the version's id: the SSE event id")


class Judged(Version):
    """A version as read at a time: its age, and `stale` when its newest support is old."""

    age_days: int | None = Field(description="days from newest_support_at to the time asked")
    fresh_status: str | None = Field(
        default=None, description="present when stale: the status it had"
    )


class Consensus(Judged):
    """The consensus of one key at the times asked about."""

    token: str = Field(description="the write token this answer includes")
    as_of: str | None
    recorded_as_of: str | None
    valid_at: str | None
    segment: Segment | None = Field(
        default=None, description="with valid_at: the segment that covers that date"
    )


class History(BaseModel):
    """A key's versions in order, paginated by `next_cursor` (pass it as `after`)."""

    subject: str
    attribute: str
    attribute_label: str | None
    items: list[Version]
    token: str
    next_cursor: str | None


class Snapshot(BaseModel):
    """Every key's consensus at one time, paginated by `next_cursor` (pass it as `cursor`)."""

    items: list[Judged]
    next_cursor: str | None
    token: str
    as_of: str | None
    recorded_as_of: str | None


class SubjectItem(_Open):
    subject: str
    label: str | None
    attributes: int = Field(description="how many attributes the subject has")
    updated_at: str | None
    published_at: str | None = Field(description="when the newest report about it was published")


class Subjects(BaseModel):
    items: list[SubjectItem]
    next_cursor: str | None


class Subject(BaseModel):
    """A subject's attributes with their current consensus."""

    subject: str
    subject_label: str | None
    attributes: list[Judged]
    token: str


class ClaimItem(_Open):
    """A claim as normalised (its facts), and when it was recorded."""

    claim_id: str
    subject: str
    attribute: str
    source_id: str | None = None
    published_at: str | None = None
    value: dict[str, Any]
    recorded_at: str


class Claims(BaseModel):
    items: list[ClaimItem]
    next_cursor: str | None


class Report(_Open):
    """A report as accepted (its own fields too), and whether its events are all applied."""

    report_id: str
    claim_ids: list[str]
    claims: list[dict[str, Any]]
    recorded_at: str
    token: str | None
    events: int
    events_applied: int
    applied: bool
