"""Engine creation from CLAIMLEDGER_DATABASE_URL; schema migrated (Alembic) on start."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import create_engine

from services.infra import tables  # noqa: F401  (registers the tables)


def make_engine(url: str, *, sqlite_busy_timeout_ms: int | None = None) -> Engine:
    """`sqlite_busy_timeout_ms`: how long an SQLite statement waits for the write lock
    before failing with "database is locked" (default SQLITE_BUSY_TIMEOUT_MS)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_ms = (
            SQLITE_BUSY_TIMEOUT_MS if sqlite_busy_timeout_ms is None else sqlite_busy_timeout_ms
        )
        engine = create_engine(
            parsed, connect_args={"timeout": busy_ms / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=busy_ms))
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    return engine


SQLITE_BUSY_TIMEOUT_MS = 30_000


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose SELECTs all see one committed state. A read that takes several
    statements (version rows, then the delta chains they are built from) must not see a
    reconciler's commit in between: a batch may delete a row and insert its version again
    as a snapshot, and a chain read after that no longer builds the row read before
    (the query service answered KeyError under the chaos run). SQLite's driver starts no
    transaction for a SELECT, so one is begun here (WAL: the snapshot is taken at the
    first read); PostgreSQL's default READ COMMITTED takes a snapshot per statement."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        elif conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn


def _sqlite_pragmas(dbapi_conn, _record, *, busy_ms: int) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the query service read while the reconciler writes; NORMAL sync in WAL
    # is durable against process crashes (kill -9), the failure mode we test.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    # a log started over is cut back to this size (else the file stays at its largest)
    cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


SCHEMA_LOCK = 7261451  # pg_advisory_xact_lock key: one migrator at a time (store.py uses 7261450)
FIRST_REVISION = "0001"


def create_schema(engine: Engine, attempts: int = 20) -> None:
    """Migrates the database to the newest revision (services/migrations); idempotent.

    Safe when several services start at once on an empty database: the migration runs in
    one transaction that first takes the schema lock (PostgreSQL: an advisory lock;
    SQLite: BEGIN IMMEDIATE, its single write lock), so the others wait, then find the
    database at head and leave it alone. A lock wait that times out is retried.
    The usual case, a database already at head, is answered by one read, without the lock
    (a restart does not queue behind a long write transaction).
    """
    head = _head(alembic_config())
    for attempt in range(attempts):
        try:
            if schema_revision(engine) == head:
                return
            with engine.begin() as conn:
                _lock_schema(conn)
                _upgrade(conn)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.2)


def _lock_schema(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")


def alembic_config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "services:migrations")
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def _upgrade(conn: Connection) -> None:
    config = alembic_config(conn)
    names = set(inspect(conn).get_table_names())
    if "alembic_version" not in names and "outbox" in names:
        # made by create_all before there were migrations: that schema is the first revision
        command.stamp(config, FIRST_REVISION)
    if MigrationContext.configure(conn).get_current_revision() != _head(config):
        command.upgrade(config, "head")  # another process may have done it while we waited


def schema_revision(engine: Engine) -> str | None:
    """The database's migration revision (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head(config: Config) -> str | None:
    return ScriptDirectory.from_config(config).get_current_head()


def restart_wal(engine: Engine, wait_ms: int = 200) -> bool | None:
    """SQLite: copies the whole write-ahead log into the database and starts it over.

    SQLite's own checkpoint after each commit never waits: while reads keep overlapping
    (the query service, the relay), it stops at the oldest reader and the log is never
    started over, so the file grows without end (2.8 GB after 550k events in one benchmark
    run). RESTART waits up to `wait_ms` for the readers of older frames to finish.
    Returns whether it completed; None when the database is not SQLite.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        usual = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)").one()[0]
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={usual}")
    return busy == 0


def database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
