"""Which reconciler consumes which partition: one owner per partition at a time.

A Redis consumer group hands consecutive entries of one stream to different
consumers, which then apply them concurrently — so with several reconcilers on
one stream, two claims of the same subject could be applied out of stream order.
Per-subject order therefore needs one consumer per partition stream at a time,
as in Kafka's partition assignment; Redis has no such assignment, so each
partition has a lease (redis-py's `Lock`: a token-checked key with a TTL,
renewed while held) and the live reconcilers (a heartbeat sorted set) split the
partitions evenly. A reconciler that dies stops renewing; its leases and its
heartbeat expire and the others take its partitions over, first re-applying
what it left pending (see ConsumerGroup.takeover), then reading new entries.

A Redis lease alone cannot stop an owner paused (SIGSTOP, a long GC, a VM stall) past its
expiry: it wakes up and commits the batch it held after the new owner applied later
entries. So each lease is also a fencing token: taking a lease bumps the partition's
epoch in SQL (`fence`, store.take_fence), and the apply transaction commits only if the
epochs it was given are still current (store._check_fences); a stale owner's commit fails
and its batch stays pending for the new owner.

Keys: `claimledger:lease:{p}` shares the `{p}` hash tag with the partition
stream, so in Redis Cluster it lives on the same node; `claimledger:reconcilers`
is one small key of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from shared.events import STREAM_PREFIX

log = logging.getLogger("claimledger.reconcile")

MEMBERS_KEY = f"{STREAM_PREFIX}reconcilers"


def lease_key(partition: int) -> str:
    return f"{STREAM_PREFIX}lease:{{{partition}}}"


def fair_share(member: str, members: Sequence[str], partitions: int) -> int:
    """How many partitions `member` should own: an even split, the remainder going to the
    first members by name, so every member computes the same plan from the same list."""
    ordered = sorted(set(members) | {member})
    base, extra = divmod(partitions, len(ordered))
    return base + (1 if ordered.index(member) < extra else 0)


def preferred_order(member: str, partitions: int) -> list[int]:
    """The order in which `member` tries free partitions: starting at a member-specific
    offset, so members starting together do not all race for partition 0."""
    start = sum(member.encode()) % max(1, partitions)
    return [(start + i) % partitions for i in range(partitions)]


class PartitionLeases:
    """The partitions this process owns; `rebalance()` is called periodically."""

    def __init__(
        self,
        redis: Redis,
        member: str,
        partitions: int,
        *,
        lease_ms: int,
        fence: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        self.redis, self.member, self.partitions = redis, member, partitions
        self.lease_ms, self.fence = lease_ms, fence
        self.owned: dict[int, Lock] = {}
        self.epochs: dict[int, int] = {}  # partition -> fencing epoch taken with its lease
        self.stale: set[int] = set()  # held, but a later epoch was taken in SQL: take anew
        self.surplus: list[int] = []  # owned beyond the fair share: to stop reading, then release
        self.ok = False  # the last renewal reached Redis

    async def run(self) -> None:
        """Renews on its own task, so a long batch or takeover never lets a lease lapse.
        Renewal has a loop of its own too: taking a partition waits for its fencing epoch
        in SQL, which can wait out the database's busy timeout (30 s on SQLite under a held
        lock), and the leases already held must not expire meanwhile."""
        renewing = asyncio.create_task(self._renew_forever(), name="lease-renewal")
        try:
            while True:
                try:
                    await self.rebalance()
                    self.ok = True
                except (RedisError, OSError) as exc:
                    self.ok = False
                    log.warning("could not renew partition leases: %s", exc)
                await asyncio.sleep(self.lease_ms / 3000)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew_forever(self) -> None:
        # only extends: a lapsed lease is given up by `rebalance`, on the loop the consumer
        # follows, so what is consumed changes at one place
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self.renew(give_up_lapsed=False)
            except (RedisError, OSError) as exc:
                log.warning("could not renew partition leases: %s", exc)

    async def renew(self, *, give_up_lapsed: bool = True) -> None:
        """Extends every held lease; gives up those that expired (paused too long, maybe
        taken over)."""
        for partition, lock in list(self.owned.items()):
            try:
                await lock.reacquire()
            except LockError:  # expired (we were paused too long) and maybe taken over
                if give_up_lapsed and self.owned.get(partition) is lock:
                    self.epochs.pop(partition, None)
                    del self.owned[partition]
                    log.warning("lost the lease of partition %d", partition)

    def _lock(self, partition: int) -> Lock:
        return self.redis.lock(
            lease_key(partition),
            timeout=self.lease_ms / 1000,
            blocking=False,
            thread_local=False,  # renewed and released from other tasks than the acquirer
        )

    async def live_members(self) -> list[str]:
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(MEMBERS_KEY, {self.member: now})
        pipe.zremrangebyscore(MEMBERS_KEY, "-inf", now - self.lease_ms)
        pipe.zrange(MEMBERS_KEY, 0, -1)
        reply = await pipe.execute()
        return [m.decode() if isinstance(m, bytes) else str(m) for m in reply[2]]

    async def rebalance(self) -> tuple[set[int], list[int]]:
        """Renews held leases and takes free partitions up to the fair share. Returns the
        partitions owned now and the surplus among them, which the caller stops consuming
        and then hands back with `release` (never the other way round)."""
        await self.renew()
        await self._refence()
        members = await self.live_members()
        share = fair_share(self.member, members, self.partitions)
        for partition in preferred_order(self.member, self.partitions):
            if len(self.owned) >= share:
                break
            if partition not in self.owned:
                lock = self._lock(partition)
                if await lock.acquire():
                    await self._take(partition, lock)
        self.surplus = sorted(self.owned)[share:] if len(self.owned) > share else []
        return set(self.owned), self.surplus

    async def _take(self, partition: int, lock: Lock) -> None:
        """Owns the partition once its fencing epoch is bumped; if that fails, hands the
        lease back (tried again at the next rebalance)."""
        if self.fence is not None:
            try:
                self.epochs[partition] = await self.fence(partition)
            except Exception as exc:
                log.warning("could not take the fence of partition %d: %s", partition, exc)
                with contextlib.suppress(LockError):
                    await lock.release()
                return
        self.owned[partition] = lock

    def refence(self, partitions: Sequence[int]) -> None:
        """A commit found a later epoch than ours for these partitions: a takeover whose
        fence was delayed (waiting out a database lock) bumped it after we had taken ours,
        then lost its lease. The lease is still ours, so every batch would fail for ever;
        the next rebalance takes a new epoch while the lease is held."""
        self.stale.update(partitions)

    async def _refence(self) -> None:
        stale, self.stale = self.stale, set()
        for partition in sorted(stale):
            lock = self.owned.get(partition)
            if lock is None or self.fence is None:
                continue
            try:
                self.epochs[partition] = await self.fence(partition)
                log.warning("took a new epoch for partition %d", partition)
            except Exception as exc:
                log.warning("could not take the fence of partition %d: %s", partition, exc)
                self.stale.add(partition)

    def epoch_of(self, partition: int) -> int | None:
        """The fencing epoch held for `partition`, None if its lease is not ours."""
        return self.epochs.get(partition) if partition in self.owned else None

    async def release(self, partitions: Sequence[int]) -> None:
        self.surplus = [p for p in self.surplus if p not in partitions]
        for partition in partitions:
            lock = self.owned.pop(partition, None)
            self.epochs.pop(partition, None)
            if lock is not None:
                with contextlib.suppress(LockError):  # already expired: nothing to hand back
                    await lock.release()

    async def leave(self) -> None:
        """Graceful exit: hand every partition back at once instead of waiting for expiry."""
        await self.release(list(self.owned))
        await self.redis.zrem(MEMBERS_KEY, self.member)
