"""Two ingest replicas' relays over one outbox publish each event once (issue #24 item 8),
and when the publishing one goes away the other takes over with nothing lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from services.infra.db import create_schema, make_engine
from services.ingest import outbox
from services.ingest.leader import PublisherLock, publisher_lock
from services.ingest.relay import DATA_FIELD, Relay
from shared.events import Event, stream_for
from shared.timeaxes import now_iso
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)

PARTITIONS = 4


def _events(prefix: str, n: int) -> tuple[list[Event], list[str]]:
    events = [
        Event(f"e_{prefix}_{i}", "Test", 1, now_iso(), None, {"i": i}, subject=f"s{i}")
        for i in range(n)
    ]
    return events, [stream_for(i % PARTITIONS) for i in range(n)]


async def _published(redis: Redis) -> list[str]:
    """Event ids of every entry in the partition streams (repeats included)."""
    ids = []
    for p in range(PARTITIONS):
        for _, fields in await redis.xrange(stream_for(p)):
            ids.append(json.loads(fields[DATA_FIELD.encode()])["event_id"])
    return ids


def _unsent(engine: Any) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(outbox.outbox)
                .where(outbox.outbox.c.published_at.is_(None))
            ).scalar_one()
        )


async def _until(predicate: Any, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.05)


@dataclass
class _Replicas:
    engines: list[Engine]  # one per replica, like two processes
    redis: Redis
    locks: list[PublisherLock]
    relays: list[Relay]
    tasks: list[asyncio.Task[Any]]


@asynccontextmanager
async def _two_replicas(db_url: str, redis_url: str, **relay: float) -> AsyncIterator[_Replicas]:
    """Two ingest replicas over one outbox, each relay running with its own publisher lock
    (`relay`: more Relay settings); at the end every task (those the test adds too) is
    cancelled, the locks released, the connections closed."""
    engines = [make_engine(db_url) for _ in range(2)]
    await asyncio.to_thread(create_schema, engines[0])
    redis = Redis.from_url(redis_url)
    locks = [publisher_lock(e) for e in engines]
    relays = [
        Relay(e, redis, republish_after_s=600, leader=lock, leader_check_s=0.1, **relay)
        for e, lock in zip(engines, locks, strict=True)
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        yield _Replicas(engines, redis, locks, relays, tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lock in locks:
            await asyncio.to_thread(lock.release)
        await redis.aclose()
        for engine in engines:
            engine.dispose()


async def test_two_relays_publish_every_event_once_and_the_survivor_takes_over(
    db_url: str, redis_server: Any
) -> None:
    written = 0
    async with _two_replicas(db_url, redis_server.url) as replicas:
        engines, relays, tasks = replicas.engines, replicas.relays, replicas.tasks
        redis, locks = replicas.redis, replicas.locks
        # steady state: both relays running while reports keep arriving, some in big batches
        for wave, size in enumerate((300, 1500, 40, 2500, 7)):
            events, streams = _events(f"w{wave}", size)
            await asyncio.to_thread(outbox.append_events, engines[wave % 2], events, streams)
            written += size
            for relay in relays:
                relay.kick()
            await asyncio.sleep(0.05)

        async def all_sent() -> bool:
            return len(set(await _published(redis))) == written

        await _until(all_sent)
        await asyncio.sleep(0.5)  # a second publisher would have had its chance by now
        published = await _published(redis)
        assert len(published) == len(set(published)) == written
        assert sum(r.leading for r in relays) == 1

        # the publishing replica stops; the other one publishes what comes next
        await _until(lambda: asyncio.to_thread(lambda: _unsent(engines[0]) == 0))
        leader = next(i for i, r in enumerate(relays) if r.leading)
        tasks[leader].cancel()
        await asyncio.gather(tasks[leader], return_exceptions=True)
        await asyncio.to_thread(locks[leader].release)
        events, streams = _events("after", 500)
        await asyncio.to_thread(outbox.append_events, engines[leader], events, streams)
        written += 500
        await _until(all_sent)
        published = await _published(redis)
        assert len(published) == len(set(published)) == written
        assert relays[1 - leader].leading


async def test_a_standing_by_replicas_commit_wakes_the_publisher_at_once(
    db_url: str, redis_server: Any
) -> None:
    """Another worker's or replica's commit reaches Redis without waiting for the publisher's
    poll (here 30 s): the standing-by relay tells it through Redis (Relay.kick)."""
    async with _two_replicas(db_url, redis_server.url, idle_poll_s=30) as replicas:
        engines, redis, relays = replicas.engines, replicas.redis, replicas.relays
        replicas.tasks.extend(asyncio.create_task(r.listen_for_appends()) for r in relays)

        async def settled() -> bool:  # one publisher, both listening
            subscribed = dict(await redis.pubsub_numsub("claimledger:outbox:appended"))
            listening = subscribed.get(b"claimledger:outbox:appended", 0) == 2
            return listening and sum(r.leading for r in relays) == 1

        await _until(settled)
        standby = next(i for i, r in enumerate(relays) if not r.leading)
        events, streams = _events("standby", 20)
        await asyncio.to_thread(outbox.append_events, engines[standby], events, streams)
        relays[standby].kick()

        async def sent() -> bool:
            return len(await _published(redis)) == 20

        await _until(sent, timeout_s=3.0)
