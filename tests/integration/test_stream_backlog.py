"""Stream backlog per consumer group (the /metrics lag and pending) on a real redis-server."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from services.infra.localredis import LocalRedis
from services.infra.observability import group_backlogs, reconcile_sampler

STREAM = "claimledger:events:{0}"


class _Redis62:
    """The real client with XINFO GROUPS answering as Redis 6.2 does (no `lag` field)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def xinfo_groups(self, stream: str) -> list[dict[Any, Any]]:
        return [
            {k: v for k, v in g.items() if k != "lag"}
            for g in await self.redis.xinfo_groups(stream)
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redis, name)


@pytest.mark.parametrize("redis_62", [False, True], ids=["xinfo-lag", "xrange-count"])
async def test_lag_is_what_a_group_has_not_read_and_pending_what_it_has_not_acked(
    redis_server: LocalRedis, redis_62: bool
) -> None:
    client = Redis.from_url(redis_server.url)
    redis: Any = _Redis62(client) if redis_62 else client
    try:
        ids = [await client.xadd(STREAM, {"n": str(i)}) for i in range(10)]
        await client.xgroup_create(STREAM, "a", id="0")
        await client.xgroup_create(STREAM, "b", id="0")
        assert sorted(await group_backlogs(redis, STREAM)) == [("a", 0, 10), ("b", 0, 10)]

        await client.xreadgroup("a", "c1", {STREAM: ">"}, count=4)
        await client.xack(STREAM, "a", ids[0], ids[1])
        assert sorted(await group_backlogs(redis, STREAM)) == [("a", 2, 6), ("b", 0, 10)]

        await client.xadd(STREAM, {"n": "10"})
        assert sorted(await group_backlogs(redis, STREAM)) == [("a", 2, 7), ("b", 0, 11)]
    finally:
        await client.aclose()


async def test_the_sampler_reports_every_group_and_a_missing_stream_as_empty(
    redis_server: LocalRedis,
) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        await client.xadd(STREAM, {"n": "0"})
        await client.xgroup_create(STREAM, "reconcile", id="0")
        await client.xgroup_create("claimledger:updates", "sse", id="$", mkstream=True)
        snapshot = await reconcile_sampler(client, [STREAM, "claimledger:events:{1}"])()
        assert sorted(snapshot["claimledger_stream_lag"]) == [
            (("claimledger:events:{0}", "reconcile"), 1.0),
            (("claimledger:events:{1}", "reconcile"), 0.0),
            (("claimledger:updates", "sse"), 0.0),
        ]
        assert snapshot["claimledger_dead_letters"] == [((), 0.0)]
    finally:
        await client.aclose()
