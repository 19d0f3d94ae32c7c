"""A batch that fails because the database is locked keeps its place in the subject's order
(found by the full chaos run: 4 events applied out of per-subject order after SQLite's
write lock was held past the busy timeout).

The failure is the database's, not the events': they are left pending, and the next batch
applies them before its own later entries, instead of leaving them to the idle reclaimer
while later reports of the same subject are applied.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.infra.localredis import LocalRedis
from services.ingest import outbox
from services.ingest.api import IngestContext, prepare_report
from services.ingest.relay import Relay
from services.reconcile.consumer import EntryProcessor
from services.reconcile.store import Reconciler, events_t
from shared.attributes import AttributeRegistry
from shared.events import CONSUMER_GROUP, stream_for
from shared.reports import ReportIn
from tests.factories import claim, report

REGISTRY = AttributeRegistry.load()
STREAMS = [stream_for(0), stream_for(1)]
SUBJECT = "locked-order-troops"


def _accept(engine: Any, value: int, published: str) -> list[str]:
    body = report(claim(subject=SUBJECT, value=value), published_at=published)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=2, tolerance=0.1)
    pending = prepare_report(ReportIn.model_validate(body), ctx, None)
    outbox.accept_report(engine, pending)
    return [e.event_id for e in pending.events if e.type == "ClaimAsserted"]


async def _apply_a_later_report(engine: Any, redis: Redis, processor: EntryProcessor) -> list[str]:
    """A later report of the subject, published and applied without a failure."""
    later = _accept(engine, 12_000, "2024-11-02T00:00:00Z")
    await Relay(engine, redis).publish_once()
    for stream, entries in await _read_all(redis):
        assert await processor.process(stream, entries) == []
    return later


def _claims_applied(engine: Any) -> list[str]:
    """Claim events in the order they were applied."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(events_t.c.event_id)
                .where(events_t.c.type == "ClaimAsserted")
                .order_by(events_t.c.position)
            ).scalars()
        )


async def _read_all(redis: Redis) -> list[tuple[str, list[Any]]]:
    read: Any = await redis.xreadgroup(CONSUMER_GROUP, "t-1", {s: ">" for s in STREAMS})
    return [(s.decode(), entries) for s, entries in read if entries]


async def test_a_batch_failed_on_a_locked_database_is_applied_before_later_entries(
    redis_server: LocalRedis, tmp_path: Path
) -> None:
    path = tmp_path / "claimledger.db"
    engine = make_engine(f"sqlite:///{path}", sqlite_busy_timeout_ms=1000)
    create_schema(engine)
    redis = Redis.from_url(redis_server.url)
    for s in STREAMS:
        await redis.xgroup_create(s, CONSUMER_GROUP, id="0", mkstream=True)
    processor = EntryProcessor(
        engine, redis, Reconciler(REGISTRY), serialize_writes=True, consumer="t-1"
    )

    first = _accept(engine, 10_000, "2024-11-01T00:00:00Z")
    await Relay(engine, redis).publish_once()
    held = await _read_all(redis)
    locker = sqlite3.connect(path, timeout=5)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
    try:
        for stream, entries in held:
            assert await processor.process(stream, entries) == [e[0] for e in entries]
    finally:
        locker.rollback()
        locker.close()

    later = await _apply_a_later_report(engine, redis, processor)
    applied = _claims_applied(engine)
    assert applied == first + later  # the locked batch first, then the later report
    # (a report event of the locked batch on a partition no later entry reached waits for
    # the next batch there, or the reclaimer: whether it does depends on the report ids)
    await redis.aclose()
    engine.dispose()


async def test_an_event_that_failed_once_is_retried_before_later_entries_of_its_subject(
    redis_server: LocalRedis, tmp_path: Path
) -> None:
    """An event whose apply failed (a fault of its own, e.g. a write conflict) is retried
    before the next batch's later entries of its subject, not left to the idle reclaimer
    while they are applied (the full chaos run found such pairs out of order)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'claimledger.db'}")
    create_schema(engine)
    redis = Redis.from_url(redis_server.url)
    for s in STREAMS:
        await redis.xgroup_create(s, CONSUMER_GROUP, id="0", mkstream=True)
    reconciler = Reconciler(REGISTRY)
    processor = EntryProcessor(engine, redis, reconciler, serialize_writes=True, consumer="t-1")

    first = _accept(engine, 10_000, "2024-11-01T00:00:00Z")
    apply = reconciler.apply
    conflicts = [True]  # while the first batch is processed (its retries, event by event)

    def conflicting(engine: Any, events: list[Any], fences: Any = None) -> Any:
        if conflicts[0] and any(e.event_id in first for e in events):
            raise RuntimeError("a conflict of this event's own")
        return apply(engine, events, fences)

    reconciler.apply = conflicting  # type: ignore[method-assign]
    await Relay(engine, redis).publish_once()
    failed = [
        await processor.process(stream, entries) for stream, entries in await _read_all(redis)
    ]
    assert [i for ids in failed for i in ids]  # left pending, counted as one failure
    conflicts[0] = False

    later = await _apply_a_later_report(engine, redis, processor)
    applied = _claims_applied(engine)
    assert applied == first + later
    await redis.aclose()
    engine.dispose()
