"""Partition leases against a real Redis: what a reconciler holds stays held while it waits."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.infra.localredis import LocalRedis
from services.reconcile.partitions import PartitionLeases, lease_key


async def test_held_leases_are_renewed_while_taking_another_waits_for_its_fence(
    redis_server: LocalRedis,
) -> None:
    """Taking a partition waits for its fencing epoch in SQL, which can take the database's
    whole busy timeout under a held lock; the leases already held must not lapse meanwhile
    (a reconciler that loses them stops applying and its partitions churn)."""
    redis = Redis.from_url(redis_server.url)
    fence_waits = asyncio.Event()
    release_fence = asyncio.Event()

    async def fence(partition: int) -> int:
        if partition == 1:  # the second partition's fence is stuck behind a lock
            fence_waits.set()
            await release_fence.wait()
        return 1

    leases = PartitionLeases(redis, "r-1", 2, lease_ms=300, fence=fence)
    task = asyncio.create_task(leases.run())
    try:
        async with asyncio.timeout(10):
            await fence_waits.wait()
            assert set(leases.owned) == {0}
            # five lease periods while the fence of partition 1 waits (an absence over
            # time: no condition to wait for)
            for _ in range(15):
                await asyncio.sleep(0.1)
                assert await redis.exists(lease_key(0)), "the held lease lapsed"
            assert set(leases.owned) == {0}
            release_fence.set()
            while set(leases.owned) != {0, 1}:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()


async def test_a_held_lease_whose_epoch_was_superseded_takes_a_new_one(
    redis_server: LocalRedis,
) -> None:
    """A takeover whose fence was delayed (behind a database lock) can bump the epoch after
    the lease's next holder took its own, then lose its lease: the holder's every commit
    fails (StaleLease). Told so, it takes a new epoch while it holds the lease, instead of
    dropping every batch for as long as it lives."""
    redis = Redis.from_url(redis_server.url)
    epochs = iter(range(1, 100))

    async def fence(partition: int) -> int:
        return next(epochs)

    leases = PartitionLeases(redis, "r-1", 1, lease_ms=3000, fence=fence)
    try:
        await leases.rebalance()
        assert leases.epoch_of(0) == 1
        next(epochs)  # the delayed takeover's bump: epoch 2 is nobody's now
        leases.refence([0])
        await leases.rebalance()
        assert leases.epoch_of(0) == 3
        await leases.rebalance()  # once: a renewal does not take epochs
        assert leases.epoch_of(0) == 3
    finally:
        await leases.leave()
        await redis.aclose()
