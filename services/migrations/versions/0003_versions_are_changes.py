"""Versions are changes, stored compactly; partition leases fence (issues #19 and #24).

Adds to `versions` the delta chain (`delta`, `base`) and what the reconciler compares
without rebuilding a result (`digest`, `summary`), and the index that finds the version
answering for a publication time (the greatest pub_from); adds `partition_fences`.
Rows written before stay as they are: a whole `result` and no base, which every reader
takes as a snapshot, and their non-overlapping steps answer the same under the new rule.

Revision ID: 0003_versions
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

STRING = sa.String().with_variant(sa.String(collation="C"), "postgresql")
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

revision = "0003_versions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_fences",
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("owner", STRING, nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delta", TEXT, nullable=True))
        batch_op.add_column(sa.Column("base", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("digest", STRING, nullable=True))
        batch_op.add_column(sa.Column("summary", TEXT, nullable=True))
        batch_op.create_index(
            "ix_versions_answer", ["subject", "attribute", "rec_to", "pub_from"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_index("ix_versions_answer")
        batch_op.drop_column("summary")
        batch_op.drop_column("digest")
        batch_op.drop_column("base")
        batch_op.drop_column("delta")
    op.drop_table("partition_fences")
