"""Schema migrations (services/migrations) on SQLite and PostgreSQL: they build exactly the
tables the code declares, leave a database at head alone, and tolerate concurrent starters."""

from __future__ import annotations

import json
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


def test_stored_versions_are_numbered_per_partition_in_the_order_they_were_committed(
    db_url: str,
) -> None:
    """0004 (issue 26): a database whose version ids were one global sequence, with a
    placeholder keeping a dropped row's id, is renumbered per partition, in the old id order
    (their commit order), with no gap; readers get the same versions; the next apply numbers
    on from there."""
    from sqlalchemy import select

    from services.query import views
    from services.reconcile.replay import projection_hash
    from services.reconcile.store import fences_t, versions_t
    from shared.events import partition_of
    from shared.positions import part_of, seq_of
    from tests.factories import claim, report
    from tests.ledger import Ledger, gapless

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003_versions")
    # what the reconciler wrote before 0004: ids 1, 2, 3 ... over all keys in commit order
    subjects = ["alpha", "beta", "gamma", "delta", "alpha", "beta", "alpha"]
    old_rows = []
    for old_id, subject in enumerate(subjects, start=1):
        version = subjects[:old_id].count(subject)
        old_rows.append(
            {
                "id": old_id,
                "subject": subject,
                "attribute": "killed",
                "version": version,
                "pub_from": f"2025-01-0{version}T00:00:00.000000Z",
                "pub_to": "9999-12-31T23:59:59.999999Z",
                "rec_from": f"2025-02-0{old_id}T00:00:00.000000Z",
                "rec_to": "9999-12-31T23:59:59.999999Z",
                "status": "single",
                "cause_event_id": f"ev-{old_id}",
                "cause_report_id": None,
                "result": json.dumps({"best": old_id}),
                "diff": "{}",
            }
        )
    placeholder = {**old_rows[0], "id": 8, "subject": "", "attribute": "", "version": -8}
    columns = list(old_rows[0])
    with engine.begin() as conn:  # the 0003 table (no `part`)
        conn.execute(
            text(
                f"INSERT INTO versions ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            ),
            [*old_rows, placeholder],
        )
    create_schema(engine)  # migrates to head
    with engine.connect() as conn:
        rows = conn.execute(select(versions_t).order_by(versions_t.c.id)).all()
        seqs = dict(conn.execute(select(fences_t.c.partition, fences_t.c.seq)).all())
    assert len(rows) == len(old_rows)  # the placeholder is gone: there is no gap to keep
    assert gapless([r.id for r in rows])
    for part in {part_of(r.id) for r in rows}:
        mine = [r for r in rows if part_of(r.id) == part]
        assert [r.cause_event_id for r in mine] == sorted(
            (r.cause_event_id for r in mine), key=lambda e: int(e[3:])
        )  # the old order within the partition
        assert seqs[part] == len(mine)
    assert all(r.part == part_of(r.id) == partition_of(r.subject, 4) for r in rows)
    history = views.history(engine, "alpha", "killed", 0, 10)
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["best"] for v in history] == [1, 5, 7]
    # the next apply numbers on in each partition
    hash_before = projection_hash(engine)
    ledger = Ledger(engine)
    newcomer = "first-folded"  # a subject of alpha's partition
    alpha_part = partition_of("alpha", 4)
    assert partition_of(newcomer, 4) == alpha_part
    ledger.post(report(claim(subject=newcomer, attribute="killed", value=9)))
    assert projection_hash(engine) != hash_before
    with engine.connect() as conn:
        ids = list(conn.execute(select(versions_t.c.id).order_by(versions_t.c.id)).scalars())
    assert gapless(ids)
    assert max(seq_of(i) for i in ids if part_of(i) == alpha_part) == seqs[alpha_part] + 1
