"""Outbox relay: publishes committed events to Redis Streams until they are applied.

Redis is the transport, not the source of truth. An event stays in the outbox
until the reconciler marks it applied (in its own transaction), and the relay
re-publishes events not confirmed in time — so a Redis that restarts empty, or
a message lost anywhere on the way, is sent again. The reconciler applies by
event_id, so a re-publish never applies twice. To avoid re-publishing a healthy
backlog, a partition is only re-sent once its consumer group is idle
(nothing pending, nothing undelivered) or gone. With several ingest replicas, one relay
publishes and the others stand by (services/ingest/leader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError
from sqlalchemy.engine import Engine

from services.ingest import outbox
from services.ingest.leader import PublisherLock
from shared.events import CONSUMER_GROUP
from shared.timeaxes import iso, now_iso

log = logging.getLogger("claimledger.relay")

RELAY_SWEEPS = Counter(
    "claimledger_relay_republish_sweeps_total",
    "Sweeps over the overdue outbox events that re-published some (e.g. after Redis lost data)",
)
RELAY_REPUBLISHED = Counter(
    "claimledger_relay_republished_total", "Events re-published as not confirmed applied in time"
)

# a standing-by relay's process tells the publishing one that it appended events (kick)
APPENDED_CHANNEL = "claimledger:outbox:appended"
DATA_FIELD = "__data__"  # FastStream's field name, so its own parsers read our entries
# KEYS[i] <- XADD * __data__ ARGV[i], in order
XADD_ALL = (
    f"for i = 1, #KEYS do redis.call('XADD', KEYS[i], '*', '{DATA_FIELD}', ARGV[i]) end "
    "return #KEYS"
)


class Relay:
    def __init__(
        self,
        engine: Engine,
        redis: Redis,
        *,
        republish_after_s: float = 30.0,
        batch: int = 1000,
        idle_poll_s: float = 0.2,
        mark_every_s: float = 0.25,
        leader: PublisherLock | None = None,
        leader_check_s: float = 1.0,
    ) -> None:
        self.engine, self.redis = engine, redis
        self._xadd_all = redis.register_script(XADD_ALL)
        self.republish_after_s, self.batch, self.idle_poll_s = republish_after_s, batch, idle_poll_s
        self.redis_ok = False
        self.published = 0
        self._kick = asyncio.Event()
        # telling the publishing relay of this process's commits (see kick)
        self._telling: asyncio.Task[None] | None = None
        self._tell_again = False
        self._high_seq = 0
        self._next_full_scan = 0.0
        self._next_overdue_check = 0.0
        # seqs sent but not yet marked published in SQL (see flush_marks)
        self.mark_every_s = mark_every_s
        self._unmarked: list[int] = []
        self._marked_at = 0.0
        # one publishing relay among ingest replicas (services/ingest/leader.py)
        self.leader, self.leader_check_s = leader, leader_check_s
        self.leading = leader is None
        self._next_leader_check = 0.0
        # the overdue sweep in progress (see _overdue_sweep)
        self._sweep_floor: int | None = None
        self._sweep_idle: set[str] = set()
        self._sweep_busy: set[str] = set()
        self._sweep_sent = 0
        self.sweeps_resending = 0  # sweeps that re-sent something (also a metric)

    def _fresh_floor(self) -> int:
        """New events are searched above the highest seq sent: outbox writers commit in seq
        order (outbox.serialize_seqs), so no unsent row can appear below it. Now and then
        from 0 anyway, a safety net for a row a writer left behind some other way."""
        if time.monotonic() >= self._next_full_scan and not self._unmarked:
            self._next_full_scan = time.monotonic() + 10.0
            return 0
        return self._high_seq

    def kick(self) -> None:
        """Called after a commit: publish now instead of at the next poll.

        The publishing relay may be another process's (another ingest worker or replica,
        services/ingest/leader.py): a standing-by relay tells it through Redis, where the
        publisher listens (`listen_for_appends`). Without it a report posted to a standing-by
        worker waited for the publisher's next poll (0.2 s). At most one message is in
        flight; commits meanwhile are told by one more, so a busy worker sends about one
        a round trip, not one a report."""
        if self.leading:
            self._kick.set()
            return
        if self._telling is not None and not self._telling.done():
            self._tell_again = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the poll finds it
            return
        self._telling = loop.create_task(self._tell_publisher())

    async def _tell_publisher(self) -> None:
        while True:
            self._tell_again = False
            try:
                await self.redis.publish(APPENDED_CHANNEL, b"1")
            except (RedisError, OSError):
                return  # the publisher polls anyway
            if not self._tell_again:
                return

    async def listen_for_appends(self) -> None:
        """Wakes this relay, while it publishes, when another process appended events."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(APPENDED_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and self.leading:
                        self._kick.set()
            except (RedisError, OSError) as exc:  # Redis gone: the relay polls meanwhile
                log.debug("relay wake-ups unavailable: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                sent = await self.publish_once()
                self.redis_ok, backoff = True, 0.1
            except (RedisError, OSError) as exc:
                self.redis_ok = False
                log.warning("redis unavailable, events stay in the outbox: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self.batch and self._sweep_floor is None:
                if self._unmarked and time.monotonic() - self._marked_at >= self.mark_every_s:
                    await self.flush_marks()
                self._kick.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for returns normally when
                # its awaitable finishes as the task is cancelled (a kick at the moment of
                # a stop), and the relay then ran on after its cancel (a test hung on it)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_poll_s):
                        await self._kick.wait()

    async def _lead(self) -> bool:
        """Whether this relay is the one that publishes (re-checked every leader_check_s)."""
        if self.leader is None or time.monotonic() < self._next_leader_check:
            return self.leading
        self._next_leader_check = time.monotonic() + self.leader_check_s
        leading = await asyncio.to_thread(self.leader.hold)
        if leading and not self.leading:
            log.info("this relay publishes the outbox now")
            # start from the first never-sent row: the previous leader's last sends may
            # be unrecorded (sent again, applied once)
            self._high_seq, self._next_full_scan = 0, 0.0
        elif self.leading and not leading:
            log.warning("lost the relay lock: another ingest replica publishes")
        self.leading = leading
        return leading

    async def publish_once(self) -> int:
        if not await self._lead():
            await self.redis.ping()  # standing by: still tell /readyz whether Redis answers
            return 0
        cutoff = iso(datetime.now(UTC) - timedelta(seconds=self.republish_after_s))
        sweep_from = self._overdue_sweep()
        due = await asyncio.to_thread(
            outbox.due_for_publishing,
            self.engine,
            republish_before=cutoff,
            limit=self.batch,
            after_seq=self._fresh_floor(),
            overdue=sweep_from is not None,
            overdue_after_seq=sweep_from or 0,
        )
        if sweep_from is not None:
            overdue_seqs = [d.seq for d in due if d.published]
            # a full page: more is overdue, go on from there at once (not next period)
            self._sweep_floor = max(overdue_seqs) if len(overdue_seqs) >= self.batch else None
        if not due:
            await self.redis.ping()  # idle: still find out whether Redis answers (/readyz)
            self._end_sweep()
            return 0
        due = await self._resendable(due)
        self._end_sweep()
        if not due:
            return 0
        await self._send(due)
        self.redis_ok = True  # whatever recording it in SQL does next, Redis answered
        self._unmarked += [d.seq for d in due]
        if time.monotonic() - self._marked_at >= self.mark_every_s:
            await self.flush_marks()
        self.published += len(due)
        self._high_seq = max(self._high_seq, *(d.seq for d in due))
        return len(due)

    async def _send(self, due: list[outbox.Outgoing]) -> None:
        """XADDs the events in order, all at once for the readers.

        One script call: Redis runs a script atomically and wakes blocked readers only after
        it, as after MULTI/EXEC, so every partition's reconciler subscriber gets its share of
        one report at once and they are applied in one transaction (p50 POST -> visible
        20 -> 12 ms, bench/RESULTS.md; a plain pipeline woke each reader after its first
        XADD). MULTI/EXEC itself cost ~14 us of client CPU an event (a command packed and
        a QUEUED reply parsed each), the script ~3, packed here (pack_xadd_all) less than 1
        (issue #21). Redis Cluster refuses both across slots (one per partition): a plain
        pipeline there.
        """
        if isinstance(self.redis, RedisCluster):
            pipe = self.redis.pipeline(transaction=False)
            for item in due:
                pipe.xadd(item.stream, {DATA_FIELD: item.body})
            await pipe.execute()
            return
        # a Redis restarted empty forgot the script: it is loaded again (NOSCRIPT)
        command = pack_xadd_all(self._xadd_all.sha, due)
        try:
            await self._call_packed(command)
        except NoScriptError:
            await self.redis.script_load(XADD_ALL)
            await self._call_packed(command)

    async def _call_packed(self, command: bytes) -> None:
        """Sends a command packed already and reads its answer, on a connection of the
        client's pool (a Redis error is raised; a broken connection is closed, not reused)."""
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(command, check_health=False)
            await conn.read_response()
        except ResponseError:
            raise  # an answer was read: the connection is in step
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)

    def _overdue_sweep(self) -> int | None:
        """Where this poll's overdue scan starts (None: no overdue scan this time).

        A sweep starts a few times per republish period, not on every poll (it reads every
        unconfirmed row; the fresh scan only new ones), and pages through everything
        overdue back to back: after Redis lost its data, all of it is due at once and was
        re-sent one page per period (1,000 events per 7.5 s)."""
        if self._sweep_floor is not None:
            return self._sweep_floor
        now = time.monotonic()
        if now < self._next_overdue_check:
            return None
        self._next_overdue_check = now + max(0.5, self.republish_after_s / 4)
        self._sweep_idle, self._sweep_busy, self._sweep_sent = set(), set(), 0
        return 0

    async def _resendable(self, due: list[outbox.Outgoing]) -> list[outbox.Outgoing]:
        """New events, and overdue ones of partitions whose group is idle or gone. A sweep
        judges each partition once: re-sending its first page makes its stream busy."""
        overdue = {d.stream for d in due if d.published}
        unknown = overdue - self._sweep_idle - self._sweep_busy
        if unknown:
            idle = await self._idle_streams(unknown)
            self._sweep_idle |= idle
            self._sweep_busy |= unknown - idle
        due = [d for d in due if not d.published or d.stream in self._sweep_idle]
        self._sweep_sent += sum(1 for d in due if d.published)
        return due

    def _end_sweep(self) -> None:
        if self._sweep_floor is not None or self._sweep_sent == 0:
            return
        RELAY_SWEEPS.inc()
        RELAY_REPUBLISHED.inc(self._sweep_sent)
        self.sweeps_resending += 1
        log.warning(
            "re-published %d events not confirmed applied in %.0f s (one sweep)",
            self._sweep_sent,
            self.republish_after_s,
        )
        self._sweep_sent = 0

    async def flush_marks(self) -> None:
        """Records `published_at` for what was sent, at most every `mark_every_s`.

        Only the republish schedule reads it. Written after every XADD, this write met the
        reconciler's transaction for the very events just sent on SQLite's single write
        lock, whose busy handler then slept milliseconds on every report (bench/RESULTS.md).
        Marks lost in a crash only make those events count as never sent: sent again,
        applied once (event ids)."""
        seqs, self._unmarked = self._unmarked, []
        self._marked_at = time.monotonic()
        try:
            await asyncio.to_thread(outbox.mark_published, self.engine, seqs, now_iso())
        except Exception:
            self._unmarked = seqs + self._unmarked
            raise

    async def _idle_streams(self, streams: set[str]) -> set[str]:
        """Streams whose group has delivered and acked everything (or that are gone)."""
        idle = set()
        for stream in streams:
            try:
                groups = await self.redis.xinfo_groups(stream)
                info = await self.redis.xinfo_stream(stream)
            except ResponseError:  # no such stream: Redis lost it
                idle.add(stream)
                continue
            group = next((g for g in groups if _s(g["name"]) == CONSUMER_GROUP), None)
            if group is None:
                # no reconciler has read this stream yet: what was sent is still there,
                # unless the stream itself is empty (Redis came back without its data)
                if int(info["length"]) == 0:
                    idle.add(stream)
            elif int(group["pending"]) == 0 and _s(group["last-delivered-id"]) == _s(
                info["last-generated-id"]
            ):
                idle.add(stream)
        return idle


def pack_xadd_all(sha: str, due: list[outbox.Outgoing]) -> bytes:
    """`EVALSHA <XADD_ALL> n stream... body...` in RESP, as redis-py would send it.

    redis-py's packer (hiredis) took ~1-3 us an event, a fifth of the relay's CPU under
    :batch (bench/RESULTS.md, issue #21); this, a quarter of that: the streams are a few
    names packed once, the bodies joined with their headers in one buffer."""
    parts = [b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (3 + 2 * len(due), sha.encode())]
    count = str(len(due)).encode()
    parts.append(b"$%d\r\n%s\r\n" % (len(count), count))
    for d in due:
        parts.append(_packed_stream(d.stream))
    for d in due:
        body = d.body.encode()
        parts.append(b"$%d\r\n" % len(body))
        parts.append(body)
        parts.append(b"\r\n")
    return b"".join(parts)


@functools.lru_cache(maxsize=4096)
def _packed_stream(stream: str) -> bytes:  # a few partition streams, packed once each
    name = stream.encode()
    return b"$%d\r\n%s\r\n" % (len(name), name)


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
