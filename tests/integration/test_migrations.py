"""Schema migrations (services/migrations) on SQLite and PostgreSQL: they build exactly the
tables the code declares, leave a database at head alone, and tolerate concurrent starters."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, insert, inspect, text
from sqlmodel import SQLModel

from services.infra.db import FIRST_REVISION, alembic_config, create_schema, make_engine
from services.infra.tables import ApiKey, compare_text_bytewise
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
METADATA = compare_text_bytewise(SQLModel.metadata)


def _differences(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, METADATA))


def _revision(engine: Any) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_migrated_schema_equals_the_declared_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    create_schema(engine)
    assert _differences(engine) == []
    assert _revision(engine) == _head()


def test_a_database_at_head_is_left_alone(db_url: str) -> None:
    engine = make_engine(db_url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(ApiKey.__table__).values(  # type: ignore[attr-defined]
                key_id="k1", key_hash="h", scopes="read", created_at="2025-01-01T00:00:00.000000Z"
            )
        )
    ddl: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, stmt, *_: (
            ddl.append(stmt)
            if stmt.lstrip()
            .upper()
            .startswith(("CREATE", "ALTER", "DROP", "UPDATE", "INSERT", "DELETE"))
            else None
        ),
    )
    create_schema(engine)
    assert ddl == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key_id FROM api_keys")).scalars().all() == ["k1"]


def test_services_migrating_an_empty_database_at_once_all_succeed(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))

    def start(engine: Any) -> None:
        barrier.wait()
        create_schema(engine)

    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(start, engines))
    assert _differences(engines[0]) == []
    with engines[0].connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [v[0] for v in versions] == [_head()]
    for engine in engines:
        engine.dispose()


def test_a_database_created_before_migrations_existed_is_adopted(db_url: str) -> None:
    engine = make_engine(db_url)
    # what create_schema did before the migrations: the first revision's tables without
    # alembic's bookkeeping (not create_all of today's tables, which later revisions add)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), FIRST_REVISION)
        conn.execute(text("DROP TABLE alembic_version"))
    create_schema(engine)
    assert _revision(engine) == _head()
    assert _differences(engine) == []


def test_every_text_column_compares_bytewise_on_postgresql(db_url: str) -> None:
    """Checked in the catalog: alembic's compare_metadata does not compare collations."""
    engine = make_engine(db_url)
    create_schema(engine)
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite compares text bytewise always")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name <> 'alembic_version' "
                "AND data_type IN ('text', 'character varying')"
            )
        ).all()
    assert rows and all(r.collation_name == "C" for r in rows), [
        r for r in rows if r.collation_name != "C"
    ]
    assert set(inspect(engine).get_table_names()) >= {"outbox", "events", "versions", "keys"}
