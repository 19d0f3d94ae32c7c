"""Positions per partition: no lock shared by all partitions on the apply path (issue #26).

A version's id becomes `seq * 1024 + part` (shared.positions): `part` is its subject's
partition (CLAIMLEDGER_PARTITIONS, read here as the services read it), and `seq` numbers
the partition's versions in commit order, the last number kept in the partition's row of
`partition_fences` (`seq`), which the apply transaction locks. Stored versions are
renumbered in their id order (the commit order they were given), so each partition's
numbers start at 1 with no gap; the placeholders that kept dropped rows' ids are removed
(there is no gap to keep). Ids outgrow 32 bits: `versions.id` becomes a BIGINT on
PostgreSQL. Positions handed out before (plain numbers) get a 422 that says so.

Revision ID: 0004_positions
Revises: 0003_versions
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.events import partition_of
from shared.positions import SLOTS
from shared.settings import CommonSettings

revision = "0004_positions"
down_revision = "0003_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("partition_fences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), nullable=False, server_default="0"))
    if bind.dialect.name == "postgresql":
        op.alter_column("versions", "id", type_=sa.BigInteger())
    _renumber(bind, CommonSettings().partitions)
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.create_index("ix_versions_part", ["part", "id"], unique=False)


def _renumber(bind: sa.engine.Connection, partitions: int) -> None:
    rows = bind.execute(sa.text("SELECT id, subject FROM versions WHERE version > 0 ORDER BY id"))
    seqs: dict[int, int] = {}
    moves = []
    for old_id, subject in rows:
        part = partition_of(subject, partitions)
        seqs[part] = seqs.get(part, 0) + 1
        moves.append({"new": seqs[part] * SLOTS + part, "part": part, "old": -old_id})
    bind.execute(sa.text("DELETE FROM versions WHERE version <= 0"))
    bind.execute(sa.text("UPDATE versions SET id = -id"))  # no new id meets an old one
    if moves:
        bind.execute(sa.text("UPDATE versions SET id = :new, part = :part WHERE id = :old"), moves)
    known = {int(p) for (p,) in bind.execute(sa.text("SELECT partition FROM partition_fences"))}
    for part in range(partitions):
        if part not in known:
            bind.execute(
                sa.text(
                    "INSERT INTO partition_fences (partition, epoch, owner, seq) "
                    "VALUES (:p, 0, '', 0)"
                ),
                {"p": part},
            )
    if seqs:
        bind.execute(
            sa.text("UPDATE partition_fences SET seq = :s WHERE partition = :p"),
            [{"p": p, "s": s} for p, s in seqs.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_index("ix_versions_part")
        batch_op.drop_column("part")
    with op.batch_alter_table("partition_fences", schema=None) as batch_op:
        batch_op.drop_column("seq")
