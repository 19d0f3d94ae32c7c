"""SQLite's write-ahead log must not grow without end while reads overlap writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.infra.db import make_engine, restart_wal

ROWS, BATCHES = 200, 40  # ~40k pages of 4 KB written in all


def _write(engine: Engine, rows: int, first: int = 0) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO t (id, body) VALUES (:id, :body)"),
            [{"id": first + i, "body": "x" * 500} for i in range(rows)],
        )


def _reader(path: Path) -> sqlite3.Connection:
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot until COMMIT
    return reader


def _end(reader: sqlite3.Connection) -> None:
    reader.execute("COMMIT")
    reader.close()


def _writes_under_overlapping_reads(path: Path) -> tuple[Engine, sqlite3.Connection]:
    """Every commit meets a reader holding an older snapshot, as the query service's
    and the relay's short reads do under load."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    older = _reader(path)
    for batch in range(BATCHES):
        _write(engine, ROWS, first=batch * ROWS)
        newer = _reader(path)
        _end(older)
        older = newer
    return engine, older


def _wal_mb(path: Path) -> float:
    return Path(f"{path}-wal").stat().st_size / 1e6


def test_overlapping_reads_keep_sqlites_own_checkpoints_from_starting_the_log_over(
    tmp_path: Path,
) -> None:
    _, reader = _writes_under_overlapping_reads(tmp_path / "a.db")
    _end(reader)
    written_mb = ROWS * BATCHES * 500 / 1e6
    assert _wal_mb(tmp_path / "a.db") > written_mb  # every frame still in the log


def test_a_restart_waits_for_the_reader_then_the_log_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    engine, reader = _writes_under_overlapping_reads(path)
    threading.Timer(0.05, _end, args=(reader,)).start()  # a read that ends soon
    assert restart_wal(engine, wait_ms=5_000) is True
    _write(engine, 1, first=100_000)
    with engine.connect() as conn:
        frames = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == ROWS * BATCHES + 1
    assert frames < 10  # the next write started the log from its beginning


def test_restarting_the_log_is_a_no_op_on_other_databases() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
    assert restart_wal(engine) is None  # decided by dialect: never connects
