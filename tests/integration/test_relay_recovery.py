"""After Redis loses its data, the relay re-publishes everything not yet applied in one
sweep, at its normal rate, not one page per republish period (issue #24 item 10)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, or_, select

from services.infra.db import create_schema, make_engine
from services.ingest import outbox
from services.ingest.relay import Relay
from shared.events import Event, stream_for
from shared.timeaxes import iso, now_iso

PARTITIONS = 4
EVENTS = 8000
PAGE = 500  # 16 pages of overdue events


async def _in_redis(redis: Redis) -> int:
    return sum([await redis.xlen(stream_for(p)) for p in range(PARTITIONS)])


async def _until(predicate: Any, timeout_s: float = 60.0) -> float:
    start = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_events_lost_by_redis_are_all_republished_in_one_sweep(
    db_url: str, redis_server: Any
) -> None:
    engine = make_engine(db_url)
    await asyncio.to_thread(create_schema, engine)
    events = [
        Event(f"e_r{i}", "Test", 1, now_iso(), None, {"i": i}, subject=f"s{i}")
        for i in range(EVENTS)
    ]
    streams = [stream_for(i % PARTITIONS) for i in range(EVENTS)]
    await asyncio.to_thread(outbox.append_events, engine, events, streams)
    redis = Redis.from_url(redis_server.url)
    relay = Relay(engine, redis, republish_after_s=1.0, batch=PAGE)
    task = asyncio.create_task(relay.run())
    try:

        async def all_in_redis() -> bool:
            return await _in_redis(redis) >= EVENTS

        first_publish_s = await _until(all_in_redis)  # the normal rate, no reconciler

        async def all_overdue() -> bool:
            cutoff = iso(datetime.now(UTC) - timedelta(seconds=relay.republish_after_s))
            recent = outbox.outbox.c.published_at >= cutoff
            unsent = outbox.outbox.c.published_at.is_(None)
            with engine.connect() as conn:
                count = select(func.count()).select_from(outbox.outbox)
                return conn.execute(count.where(or_(recent, unsent))).scalar_one() == 0

        await _until(all_overdue)
        await redis.flushall()  # Redis lost everything; nothing was applied
        sweeps_before = relay.sweeps_resending
        republish_s = await _until(all_in_redis)
        assert await _in_redis(redis) == EVENTS
        print(f"published in {first_publish_s:.2f} s; re-published in {republish_s:.2f} s")
        # one sweep went through all the pages, with no republish period between pages (the
        # sweep is counted when its last page comes back short, just after the last XADD)

        async def sweep_counted() -> bool:
            return relay.sweeps_resending > sweeps_before

        await _until(sweep_counted, timeout_s=10.0)
        assert relay.sweeps_resending - sweeps_before == 1
        # bound relative to the normal rate: waiting for the events to be overdue
        # (republish_after_s), the next sweep (a quarter of it, at least 0.5 s), then about
        # the normal publish time, with room for a busy machine
        assert republish_s < relay.republish_after_s + 0.5 + 3 * first_publish_s + 1.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
        engine.dispose()
