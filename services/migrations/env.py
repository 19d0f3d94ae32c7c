"""Alembic environment: the connection is the caller's (services.infra.db.create_schema, holding the
schema lock in its transaction); the alembic CLI gets one from CLAIMLEDGER_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

from services.infra import tables

target_metadata = tables.compare_text_bytewise(SQLModel.metadata)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from services.infra.db import make_engine

    engine = make_engine(os.environ.get("CLAIMLEDGER_DATABASE_URL", "sqlite:///var/claimledger.db"))
    with engine.begin() as conn:
        _run(conn)
