"""Ingest's SQL: a report, its outbox events and the idempotency record in ONE transaction.

Answering 202 only after this commit is what makes "acknowledged" mean durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.infra.tables import OutboxRow, ReportRow
from shared.events import Event, event_from_json

_encode = msgspec.json.Encoder().encode

reports = ReportRow.__table__  # type: ignore[attr-defined]
outbox = OutboxRow.__table__  # type: ignore[attr-defined]


class ReportConflict(Exception):
    """The report_id exists with different content."""


@dataclass(frozen=True, slots=True)
class Accepted:
    created: bool  # False: an identical retry, answered with the first response
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outgoing:
    seq: int
    event_id: str
    stream: str
    body: str
    published: bool  # sent before: now only re-sent when overdue


@dataclass(frozen=True, slots=True)
class Pending:
    """A validated report ready to be stored with its events."""

    report_id: str
    body_hash: str
    body: dict[str, Any]
    event_ids: list[str]
    streams: list[str]
    response: dict[str, Any]
    # the body as stored: its canonical JSON (encoded once)
    body_json: str
    # each event's JSON, as stored (encoded before the transaction: see writing)
    events_json: list[str]

    @property
    def events(self) -> list[Event]:
        """The events, decoded from what is stored (ingest itself needs only the JSON)."""
        return [event_from_json(body) for body in self.events_json]


def accept_reports(engine: Engine, items: list[Pending]) -> list[Accepted | ReportConflict]:
    """Stores many reports in one transaction (the batch path); per-item outcome."""
    try:
        with writing(engine), engine.begin() as conn:
            return _accept(conn, items)
    except IntegrityError:  # a concurrent identical post won a race: redo one by one
        return [_accept_alone(engine, item) for item in items]


def accept_report(engine: Engine, item: Pending) -> Accepted:
    outcome = _accept_alone(engine, item)
    if isinstance(outcome, ReportConflict):
        raise outcome
    return outcome


def _accept_alone(engine: Engine, item: Pending) -> Accepted | ReportConflict:
    try:
        with writing(engine), engine.begin() as conn:
            return _accept(conn, [item])[0]
    except IntegrityError:
        with engine.connect() as conn:
            return _prior(conn, item.report_id, item.body_hash) or ReportConflict(item.report_id)


def _accept(conn: Any, items: list[Pending]) -> list[Accepted | ReportConflict]:
    """Reads first (the stored reports of the whole list in one query per 500 ids), then
    the writes in two statements: the seq lock (serialize_seqs) is held only from the
    outbox insert to the commit. A report_id repeated within the list is answered like a
    retry of its first copy, or a conflict when its content differs."""
    ids = list(dict.fromkeys(item.report_id for item in items))
    stored: dict[str, Any] = {}
    for i in range(0, len(ids), 500):
        for row in conn.execute(
            select(reports.c.report_id, reports.c.content_hash, reports.c.response).where(
                reports.c.report_id.in_(ids[i : i + 500])
            )
        ):
            stored[row.report_id] = row
    first: dict[str, Pending] = {}
    for item in items:
        if item.report_id not in stored:
            first.setdefault(item.report_id, item)
    answered = _insert(conn, list(first.values())) if first else {}
    out: list[Accepted | ReportConflict] = []
    for item in items:
        row = stored.get(item.report_id)
        if row is not None:
            out.append(
                ReportConflict(item.report_id)
                if row.content_hash != item.body_hash
                else Accepted(False, json.loads(row.response))
            )
        elif first[item.report_id] is item:
            out.append(Accepted(True, answered[item.report_id]))
        elif first[item.report_id].body_hash != item.body_hash:
            out.append(ReportConflict(item.report_id))
        else:
            out.append(Accepted(False, answered[item.report_id]))
    return out


def _insert(conn: Any, items: list[Pending]) -> dict[str, dict[str, Any]]:
    """The outbox rows and report records of new reports; their answers by report_id."""
    rows = [
        (event_id, stream, body, item.response["recorded_at"])
        for item in items
        for event_id, stream, body in zip(
            item.event_ids, item.streams, item.events_json, strict=True
        )
    ]
    serialize_seqs(conn)
    seqs = _insert_outbox(conn, rows)
    answered: dict[str, dict[str, Any]] = {}
    at = 0
    for item in items:
        at += len(item.event_ids)
        answered[item.report_id] = {**item.response, "token": str(seqs[at - 1])}
    records = [
        {
            "report_id": item.report_id,
            "content_hash": item.body_hash,
            "recorded_at": item.response["recorded_at"],
            "event_count": len(item.event_ids),
            # msgspec: json.dumps of the answers was 4% of :batch, inside the transaction
            "response": _encode(answered[item.report_id]).decode(),
            "body": item.body_json,
        }
        for item in items
    ]
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_REPORTS, [tuple(r.values()) for r in records])
    else:
        conn.execute(insert(reports), records)
    return answered


_OUTBOX_COLUMNS = ("event_id", "stream", "body", "created_at")
_SQLITE_OUTBOX = (
    "INSERT INTO outbox (event_id, stream, body, created_at, attempts, state)"
    " VALUES (?, ?, ?, ?, 0, 0)"
)
_SQLITE_REPORTS = (
    "INSERT INTO reports (report_id, content_hash, recorded_at, event_count, response, body)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def _insert_outbox(conn: Any, rows: list[tuple[str, str, str, str]]) -> list[int]:
    """Inserts the rows in one statement; their seqs, in order.

    SQLite: one driver-level executemany (SQLAlchemy's RETURNING per row cost ~10 us a
    row, more than the insert). The transaction holds SQLite's only write lock, so the
    rows take consecutive rowids ending at last_insert_rowid(); the first row's seq is
    read back to make sure, else every seq is (never seen, but a seq must never be wrong).
    PostgreSQL: multi-row INSERT ... RETURNING (SQLAlchemy's insertmanyvalues, 1,000 a
    statement), the seqs drawn under serialize_seqs' lock.
    """
    if conn.dialect.name == "postgresql":
        return _insert_outbox_postgres(conn, rows)
    if conn.dialect.name != "sqlite":
        params = [dict(zip(_OUTBOX_COLUMNS, r, strict=True)) for r in rows]
        return list(
            conn.execute(
                insert(outbox).returning(outbox.c.seq, sort_by_parameter_order=True), params
            )
            .scalars()
            .all()
        )
    conn.exec_driver_sql(_SQLITE_OUTBOX, rows)
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    first = last - len(rows) + 1
    found = conn.exec_driver_sql("SELECT seq FROM outbox WHERE event_id = ?", (rows[0][0],))
    if found.scalar_one() == first:
        return list(range(first, last + 1))
    by_id = dict(
        conn.execute(
            select(outbox.c.event_id, outbox.c.seq).where(
                outbox.c.event_id.in_([r[0] for r in rows])
            )
        ).all()
    )
    return [by_id[r[0]] for r in rows]


_PG_OUTBOX = (
    "INSERT INTO outbox (event_id, stream, body, created_at, attempts, state)"
    " VALUES (%s, %s, %s, %s, 0, 0) RETURNING seq"
)


def _insert_outbox_postgres(conn: Any, rows: list[tuple[str, str, str, str]]) -> list[int]:
    """psycopg's executemany in pipeline mode, one RETURNING result per row, in order (in the
    transaction SQLAlchemy began): SQLAlchemy's insertmanyvalues built and bound the same
    rows in Python at several us a row."""
    seqs: list[int] = []
    with conn.connection.cursor() as cur:
        cur.executemany(_PG_OUTBOX, rows, returning=True)
        while True:
            seqs.append(int(cur.fetchone()[0]))
            if not cur.nextset():
                break
    if len(seqs) != len(rows):  # never seen: every row answers with its seq
        raise RuntimeError(f"outbox insert returned {len(seqs)} seqs for {len(rows)} rows")
    return seqs


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[None]:
    """Ingest's outbox writers (its workers, batch processes, relays) take turns on SQLite
    through an flock on a file next to the database, held around the write transaction.

    SQLite has one write lock, and a writer that finds it taken waits in SQLite's busy
    handler, which sleeps in steps of up to 100 ms and so misses the moment the lock is
    free; with :batch requests in two processes (issue #21) writers meet all the time. A
    process blocked on an flock wakes as soon as it is released. Other writers of the
    database (the reconciler) still meet SQLite's busy handler, as before. PostgreSQL, an
    in-memory database: nothing to take (serialize_seqs orders PostgreSQL's writers)."""
    path = _writer_lock_path(engine)
    if path is None:
        yield
        return
    with path.open("ab") as handle:  # closing drops the flock (and so does a crash)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _writer_lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI database: no plain path to put a lock beside
        return None
    return Path(database).with_name(Path(database).name + ".ingest-write-lock")


def leave_checkpoints_to_checkpointer(engine: Engine) -> None:
    """SQLite: this engine's commits do not checkpoint the WAL; `checkpoint` does, outside
    every write transaction (ingest runs it in the background: main.py).

    By default the commit that takes the write-ahead log past 1,000 pages copies it into
    the database and syncs the file, inside that transaction, while the write lock is held:
    a :batch transaction took 62 us a claim of wall time with it, 22 without (11 of CPU),
    and every outbox writer waited on it (bench/RESULTS.md, issue #21). SQLite's own
    advice for writers in a hurry: turn the automatic checkpoint off and checkpoint in
    another thread. Durability is the log's, as before (synchronous=NORMAL in WAL)."""
    if engine.dialect.name != "sqlite":
        return
    event.listen(engine, "connect", _no_autocheckpoint)
    engine.dispose()  # connections pooled before this get it too (new ones)


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(engine: Engine) -> None:
    """Copies what the WAL holds into the database (PASSIVE: never waits for, nor blocks,
    a writer; what a reader still uses is copied next time). SQLite only."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


OUTBOX_LOCK = 7261452  # pg_advisory_xact_lock keys: reconciler 7261450, schema 7261451


def serialize_seqs(conn: Any) -> None:
    """Outbox writers take turns from their first insert to their commit, so seq order is
    commit order: whoever sees seq N also sees every seq below it.

    PostgreSQL draws `seq` from a sequence at insert time, before commit; two concurrent
    writers can commit out of seq order, and a reader would see N+1 while N is still
    invisible, then N appear below what it had passed (the watermark and tokens would go
    backwards, the relay's high-water mark would step over N). SQLite has one writer at a
    time already. Every outbox insert must call this first, in its transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({OUTBOX_LOCK})")


def _prior(conn: Any, report_id: str, body_hash: str) -> Accepted | None:
    row = conn.execute(
        select(reports.c.content_hash, reports.c.response).where(reports.c.report_id == report_id)
    ).first()
    if row is None:
        return None
    if row.content_hash != body_hash:
        raise ReportConflict(report_id)
    return Accepted(False, json.loads(row.response))


def append_events(engine: Engine, events: list[Event], streams: list[str]) -> int:
    """Outbox-only writes (retractions, assessments, ratings). Returns the token (last seq).

    Event ids are deterministic, so a retried identical request inserts nothing new.
    """
    with writing(engine), engine.begin() as conn:
        serialize_seqs(conn)
        for event, stream in zip(events, streams, strict=True):
            exists = conn.execute(
                select(outbox.c.seq).where(outbox.c.event_id == event.event_id)
            ).first()
            if exists is None:
                conn.execute(
                    insert(outbox).values(
                        event_id=event.event_id,
                        stream=stream,
                        body=event.to_json(),
                        created_at=event.recorded_at,
                    )
                )
        return int(
            conn.execute(
                select(func.max(outbox.c.seq)).where(
                    outbox.c.event_id.in_([e.event_id for e in events])
                )
            ).scalar_one()
        )


def due_for_publishing(
    engine: Engine,
    *,
    republish_before: str,
    limit: int,
    after_seq: int = 0,
    overdue: bool = True,
    overdue_after_seq: int = 0,
) -> list[Outgoing]:
    """Never-published events (above `after_seq`) first, then, if asked, published ones not
    confirmed applied in time (above `overdue_after_seq`: a sweep's next page). Two queries,
    so overdue events held back by a busy partition never starve new ones.

    Read with the driver's cursor: a page is 1,000 rows of ~700 bytes, and SQLAlchemy's
    result rows cost more than the read itself (issue #21).
    """
    with engine.connect() as conn:
        rows = _driver_rows(conn, _FRESH, (after_seq, limit))
        if overdue:
            rows += _driver_rows(conn, _OVERDUE, (republish_before, overdue_after_seq, limit))
    return [
        Outgoing(seq, event_id, stream, body, at is not None)
        for seq, event_id, stream, body, at in rows
    ]


_PAGE = "SELECT seq, event_id, stream, body, published_at FROM outbox WHERE state = 0 AND "
_FRESH = _PAGE + "seq > ? AND published_at IS NULL ORDER BY seq LIMIT ?"
_OVERDUE = _PAGE + "published_at < ? AND seq > ? ORDER BY seq LIMIT ?"


def _driver_rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """`sql` (qmark placeholders) on the connection's own DB-API cursor, in its transaction."""
    if conn.dialect.paramstyle != "qmark":  # psycopg: %s
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def mark_published(engine: Engine, seqs: list[int], at: str) -> None:
    """Records that the events `seqs` were sent at `at` (one more attempt each). The relay
    sends pages of consecutive seqs: each run is one range condition, not 500 bound ids."""
    with writing(engine), engine.begin() as conn:
        for first, last in _runs(seqs):
            conn.execute(
                update(outbox)
                .where(outbox.c.seq >= first, outbox.c.seq <= last)
                .values(published_at=at, attempts=outbox.c.attempts + 1)
            )


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """The seqs as (first, last) runs of consecutive numbers, each seq in exactly one run
    (duplicates dropped)."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def depth(engine: Engine) -> tuple[int, str | None]:
    """Events not yet confirmed applied, and the oldest one's creation time."""
    with engine.connect() as conn:
        row = conn.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.state == 0)
        ).first()
    return (int(row[0]), row[1]) if row else (0, None)


def oldest_unpublished(engine: Engine) -> str | None:
    """Creation time of the oldest event never sent (None: every event went out).

    Writers commit in seq order (serialize_seqs), so it is the lowest such seq; the
    (state, seq) index finds it without reading the whole outbox.
    """
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.created_at)
            .where(outbox.c.state == 0, outbox.c.published_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(1)
        ).first()
    return row[0] if row else None
