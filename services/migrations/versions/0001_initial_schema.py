"""The initial schema: services/infra/tables.py as of the first migrations (issue #12).

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# text compares bytewise on PostgreSQL, as on SQLite (services.infra.tables.compare_text_bytewise)
STRING = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", STRING, nullable=False),
        sa.Column("key_hash", STRING, nullable=False),
        sa.Column("scopes", STRING, nullable=False),
        sa.Column("name", STRING, nullable=False),
        sa.Column("created_at", STRING, nullable=False),
        sa.Column("revoked_at", STRING, nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "claims",
        sa.Column("claim_id", STRING, nullable=False),
        sa.Column("report_id", TEXT, nullable=False),
        sa.Column("subject", TEXT, nullable=False),
        sa.Column("attribute", TEXT, nullable=False),
        sa.Column("source_id", TEXT, nullable=False),
        sa.Column("published_at", STRING, nullable=False),
        sa.Column("recorded_at", STRING, nullable=False),
        sa.Column("facts", STRING, nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index("ix_claims_key", ["subject", "attribute"], unique=False)
        batch_op.create_index("ix_claims_source", ["source_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_id", STRING, nullable=False),
        sa.Column("type", STRING, nullable=False),
        sa.Column("report_id", TEXT, nullable=True),
        sa.Column("subject", TEXT, nullable=True),
        sa.Column("attribute", TEXT, nullable=True),
        sa.Column("recorded_at", STRING, nullable=False),
        sa.Column("body", STRING, nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_report", ["report_id"], unique=False)

    op.create_table(
        "keys",
        sa.Column("subject", TEXT, nullable=False),
        sa.Column("attribute", TEXT, nullable=False),
        sa.Column("subject_label", STRING, nullable=True),
        sa.Column("depends_on", STRING, nullable=False),
        sa.Column("head_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", STRING, nullable=False),
        sa.PrimaryKeyConstraint("subject", "attribute"),
    )
    op.create_table(
        "modifiers",
        sa.Column("event_id", STRING, nullable=False),
        sa.Column("kind", STRING, nullable=False),
        sa.Column("target", TEXT, nullable=False),
        sa.Column("effective_at", STRING, nullable=False),
        sa.Column("recorded_at", STRING, nullable=False),
        sa.Column("data", STRING, nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("modifiers", schema=None) as batch_op:
        batch_op.create_index("ix_modifiers_target", ["target"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", STRING, nullable=False),
        sa.Column("stream", STRING, nullable=False),
        sa.Column("body", STRING, nullable=False),
        sa.Column("created_at", STRING, nullable=False),
        sa.Column("published_at", STRING, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_state_seq", ["state", "seq"], unique=False)

    op.create_table(
        "reports",
        sa.Column("report_id", TEXT, nullable=False),
        sa.Column("content_hash", STRING, nullable=False),
        sa.Column("recorded_at", STRING, nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("response", STRING, nullable=False),
        sa.Column("body", STRING, nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", TEXT, nullable=False),
        sa.Column("attribute", TEXT, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("pub_from", STRING, nullable=False),
        sa.Column("pub_to", STRING, nullable=False),
        sa.Column("rec_from", STRING, nullable=False),
        sa.Column("rec_to", STRING, nullable=False),
        sa.Column("status", STRING, nullable=False),
        sa.Column("cause_event_id", STRING, nullable=False),
        sa.Column("cause_report_id", STRING, nullable=True),
        sa.Column("result", TEXT, nullable=True),
        sa.Column("diff", TEXT, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", "attribute", "version"),
    )
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_versions_lookup", ["subject", "attribute", "rec_to", "pub_to"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_index("ix_versions_lookup")

    op.drop_table("versions")
    op.drop_table("reports")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_seq")

    op.drop_table("outbox")
    with op.batch_alter_table("modifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_modifiers_target")

    op.drop_table("modifiers")
    op.drop_table("keys")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_report")

    op.drop_table("events")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("ix_claims_source")
        batch_op.drop_index("ix_claims_key")

    op.drop_table("claims")
    op.drop_table("api_keys")
