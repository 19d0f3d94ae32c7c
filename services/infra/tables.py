"""SQL tables shared by the services (one database per deployment).

Declared with SQLModel; hot paths write through SQLAlchemy Core on
`Model.__table__` (the ORM is ~15x slower for bulk inserts, docs/architecture.md §7).
Times are fixed-width ISO-8601 UTC strings (see shared.timeaxes).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.type_api import TypeDecorator, Variant
from sqlmodel import Field, SQLModel

# a version id (shared.positions) outgrows 32 bits; SQLite's INTEGER is 64-bit and, as the
# primary key, the rowid
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    key_id: str = Field(primary_key=True)
    key_hash: str
    scopes: str  # comma-separated: read,write,admin
    name: str = ""
    created_at: str
    revoked_at: str | None = None


class ReportRow(SQLModel, table=True):
    """What ingest accepted: for idempotent retries (200) and conflicts (409)."""

    __tablename__ = "reports"
    report_id: str = Field(primary_key=True, sa_type=Text)
    content_hash: str
    recorded_at: str
    event_count: int
    response: str  # the JSON body answered on first acceptance
    body: str  # the report as accepted (JSON)


class OutboxRow(SQLModel, table=True):
    """Events committed with their report, waiting to be published and applied.

    state: 0 pending, 1 applied (set by the reconciler in its transaction),
    2 dead-lettered. `seq` orders writes and is the basis of version tokens.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_seq", "state", "seq"),)
    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    stream: str
    body: str
    created_at: str
    published_at: str | None = None
    attempts: int = 0
    state: int = 0


class EventRow(SQLModel, table=True):
    """The event log: each event applied exactly once (unique event_id)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_report", "report_id"),)
    position: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    type: str
    report_id: str | None = Field(default=None, sa_type=Text)
    subject: str | None = Field(default=None, sa_type=Text)
    attribute: str | None = Field(default=None, sa_type=Text)
    recorded_at: str
    body: str


class ClaimRow(SQLModel, table=True):
    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_key", "subject", "attribute"),
        Index("ix_claims_source", "source_id"),
    )
    claim_id: str = Field(primary_key=True)
    report_id: str = Field(sa_type=Text)
    subject: str = Field(sa_type=Text)
    attribute: str = Field(sa_type=Text)
    source_id: str = Field(sa_type=Text)
    published_at: str
    recorded_at: str
    facts: str  # the normalised claim (JSON)


class ModifierRow(SQLModel, table=True):
    """Retractions, assessments and source ratings: inputs with an effective time."""

    __tablename__ = "modifiers"
    __table_args__ = (Index("ix_modifiers_target", "target"),)
    event_id: str = Field(primary_key=True)
    kind: str  # retraction | assessment | rating
    target: str = Field(sa_type=Text)  # claim_id, or source_id for ratings
    effective_at: str
    recorded_at: str
    data: str  # JSON


class KeyRow(SQLModel, table=True):
    """One row per (subject, attribute): the directory behind /v1/subjects and snapshots."""

    __tablename__ = "keys"
    subject: str = Field(primary_key=True, sa_type=Text)
    attribute: str = Field(primary_key=True, sa_type=Text)
    subject_label: str | None = None
    # attributes of the same subject this key reads (relative claims, composites), JSON
    depends_on: str = "[]"
    head_version: int = 0
    updated_at: str


class VersionRow(SQLModel, table=True):
    """A consensus version, stored bitemporally: a change of what a reader sees.

    It answers from `pub_from` (publication time) until a version with a later `pub_from`
    takes over, or `pub_to`: the answer at publication time t is the version with the
    greatest `pub_from` among those with pub_from <= t < pub_to (shared.timeaxes).
    [rec_from, rec_to): recorded-time interval during which claimledger showed it.
    `id` is the version's place in the update feed, `seq * 1024 + part`: `part` is its
    subject's partition, and `seq` numbers the partition's versions 1, 2, 3 in commit order
    (shared.positions; the SSE catch-up reads each partition by id).

    The result is stored compactly: `result` holds the whole result only in a snapshot
    (`base` = its own version); other versions hold `delta`, what changed since the key's
    previous version, and `base`, the snapshot their chain starts from (a read applies
    the deltas of versions base+1..version to it). `digest` and `summary` let the
    reconciler compare and diff results without rebuilding them. Rows written before
    revision 0003 have a full `result` and no base.
    """

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("subject", "attribute", "version"),
        Index("ix_versions_lookup", "subject", "attribute", "rec_to", "pub_to"),
        Index("ix_versions_answer", "subject", "attribute", "rec_to", "pub_from"),
        Index("ix_versions_part", "part", "id"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    part: int = 0
    subject: str = Field(sa_type=Text)
    attribute: str = Field(sa_type=Text)
    version: int
    pub_from: str
    pub_to: str
    rec_from: str
    rec_to: str
    status: str
    cause_event_id: str
    cause_report_id: str | None = None
    result: str | None = Field(default=None, sa_column=Column(Text))  # whole result (JSON)
    diff: str = Field(sa_column=Column(Text))  # JSON diff vs what a reader saw before
    delta: str | None = Field(default=None, sa_column=Column(Text))  # vs version - 1 (JSON)
    base: int | None = None  # the snapshot version the delta chain starts from
    digest: str | None = None  # content hash of the whole result
    summary: str | None = Field(default=None, sa_column=Column(Text))  # see store.Computed


class PartitionFence(SQLModel, table=True):
    """Fencing tokens of the reconcilers' partition leases (services/reconcile/partitions.py).

    `epoch` is bumped by each reconciler that takes a partition's lease over; a batch
    from that partition commits only if the epoch is still the one its applier holds,
    checked inside the apply transaction, so a paused owner whose lease expired cannot
    commit after another took over.
    """

    __tablename__ = "partition_fences"
    partition: int = Field(primary_key=True)
    epoch: int = 0
    owner: str = ""
    seq: int = Field(default=0, sa_type=BigInteger)  # the partition's last version number


def compare_text_bytewise(metadata: MetaData) -> MetaData:
    """Every text column of `metadata` compares bytewise (COLLATE "C") on PostgreSQL.

    Times are fixed-width ISO strings compared with < and >, and keys, cursors and claim ids
    are ordered; SQLite compares bytes, but a PostgreSQL database usually has a linguistic
    default collation (en_US, ICU) that orders 'B' < 'a' or '_' < '0' differently, which
    would change snapshot cursors and claim order between backends. Applied to the whole
    metadata (idempotent; services.infra.db and the migrations call it after all tables are
    declared), so tables appended later are covered without marking each column.
    """
    for table in metadata.tables.values():
        for column in table.columns:
            kind = column.type
            if isinstance(kind, Variant) or "postgresql" in kind._variant_mapping:
                continue  # done already, or chosen by hand
            base = kind.impl_instance if isinstance(kind, TypeDecorator) else kind  # AutoString
            if isinstance(base, String) and base.collation is None:
                bytewise = type(base)(length=base.length, collation="C")  # type: ignore[call-arg]
                column.type = kind.with_variant(bytewise, "postgresql")
    return metadata
