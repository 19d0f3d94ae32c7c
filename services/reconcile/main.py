"""Reconcile's composition root: FastStream consumer group + health/metrics app (:8003).

The broker subscribes to every partition stream as one consumer group, in
batches. Groups are created at 0 before subscribing (FastStream would create
them at `$` and skip a backlog), and a watchdog re-creates a vanished group
(Redis restarted empty) and restarts the broker, which FastStream itself stops
on NOGROUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from faststream.specification import AsyncAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.infra import tasks as supervised
from services.infra.app import adapters, service_app
from services.infra.db import database_ok
from services.infra.observability import RECONCILE_METRICS, reconcile_sampler, start_sampler
from services.infra.redisconn import broker_type
from services.reconcile.consumer import EntryProcessor, Reclaimer
from services.reconcile.partitions import PartitionLeases
from services.reconcile.store import Reconciler, take_fence
from shared.attributes import AttributeRegistry
from shared.events import CONSUMER_GROUP, stream_for
from shared.settings import CommonSettings

log = logging.getLogger("claimledger.reconcile")


class ReconcileSettings(CommonSettings):
    batch_size: int = 500
    poll_ms: int = 100
    # claims whose key state stays in memory between batches (~2 KB each): bounds RSS
    cache_claims: int = 100_000
    # generous: the reclaimer also sees entries a busy broker has fetched but not yet
    # applied, and each claim counts as a delivery
    claim_idle_ms: int = 60_000
    max_deliveries: int = 10
    consumer_name: str | None = None
    # one reconciler per partition at a time (per-subject order); a dead one's partitions
    # move to the others once its lease expires
    lease_ms: int = 10_000
    forget_consumer_after_ms: int = 3_600_000


async def ensure_groups(redis: Redis, streams: list[str]) -> None:
    for stream in streams:
        try:
            await redis.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class ConsumerGroup:
    """Owns the FastStream broker for the partitions this process holds (see
    partitions.py), and rebuilds it when that set changes or Redis loses the group."""

    def __init__(
        self,
        settings: ReconcileSettings,
        processor: EntryProcessor,
        redis: Redis,
        streams: list[str],
        consumer: str,
        *,
        leases: PartitionLeases | None = None,
        reclaimer: Reclaimer | None = None,
    ) -> None:
        self.settings, self.processor, self.redis = settings, processor, redis
        self.streams, self.consumer = streams, consumer  # every partition's stream
        self.leases, self.reclaimer = leases, reclaimer
        self.consuming: list[str] = []  # the streams the running broker reads
        self.broker: RedisBroker | None = None
        self.redis_ok = False
        self._outage = False  # logged once it ends, so an operator sees the recovery
        self._last_cleanup = 0.0

    def _build(self, streams: list[str] | None = None) -> RedisBroker:
        broker = broker_type(self.settings)(
            self.settings.redis_url, logger=log, log_level=logging.DEBUG
        )
        for stream in self.streams if streams is None else streams:
            sub = StreamSub(
                stream,
                group=CONSUMER_GROUP,
                consumer=self.consumer,
                batch=True,
                max_records=self.settings.batch_size,
                polling_interval=self.settings.poll_ms,
            )
            broker.subscriber(stream=sub, ack_policy=AckPolicy.MANUAL, parser=_raw_entries)(
                self._handler(stream)
            )
        return broker

    def _handler(self, stream: str) -> Any:
        processor = self.processor

        async def handle(body: Any, msg: RedisBatchStreamMessage) -> None:
            del body  # we decode entries ourselves, so a poison entry cannot fail the batch
            raw = msg.raw_message
            await processor.process(stream, list(zip(raw["message_ids"], raw["data"], strict=True)))

        handle.__name__ = "apply_" + re.sub(r"\W+", "_", stream).strip("_")
        return handle

    async def run(self) -> None:
        try:
            while True:
                try:
                    wanted, surplus = await self._wanted()
                    if wanted != self.consuming or not await self._healthy():
                        await self._stop_broker()
                        if self.leases is not None and surplus:
                            await self.leases.release(surplus)  # no longer read: hand back
                        await ensure_groups(self.redis, self.streams)
                        await self._takeover(wanted)
                        if wanted:
                            self.broker = self._build(wanted)
                            await self.broker.start()
                        self.consuming = wanted
                        log.info("consuming %s", wanted)
                    elif self.leases is not None and surplus:
                        # taken while a paused member's heartbeat had lapsed, surplus once it
                        # came back before we read it: not consumed, so hand back now (kept,
                        # it was renewed and never read: its entries waited for ever)
                        await self.leases.release(surplus)
                    if self._outage:
                        self._outage = False
                        log.warning("redis available again; consuming %s", self.consuming)
                    self.redis_ok = True
                    await self._maintain()
                    await asyncio.sleep(self._tick_s())
                except (RedisError, OSError) as exc:
                    self.redis_ok, self._outage = False, True
                    log.warning("redis unavailable: %s", exc)
                    await self._stop_broker()
                    await asyncio.sleep(1.0)
        finally:
            streams = self.consuming
            await self._stop_broker()
            # a stop can cut a batch between commit and XACK: settle our pending entries
            # (already applied: they are just acknowledged) so a graceful stop leaves none
            with contextlib.suppress(Exception):
                await self._takeover(streams)
            if self.leases is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.leases.leave())

    def _tick_s(self) -> float:
        if self.leases is None:
            return 1.0
        return min(1.0, self.leases.lease_ms / 3000)  # notice a lost lease promptly

    async def _wanted(self) -> tuple[list[str], list[int]]:
        if self.leases is None:
            return list(self.streams), []
        if not self.leases.ok:
            return self.consuming, []  # cannot tell; keep what we have until leases renew
        surplus = list(self.leases.surplus)
        keep = sorted(set(self.leases.owned) - set(surplus))
        return [self.streams[p] for p in keep], surplus

    async def _takeover(self, streams: list[str]) -> None:
        """Before reading new entries of a partition (taken over, or ours again after a
        broker restart), apply what was left pending, in stream order, so per-subject
        order survives the handover."""
        if self.reclaimer is None:
            return
        for stream in streams:
            n = await self.reclaimer.reclaim(stream, min_idle_ms=0)
            if n:
                log.info("took over %s: re-applied %d pending entries", stream, n)

    async def _maintain(self) -> None:
        """Retries our own failed entries; now and then forgets long-dead consumers."""
        if self.reclaimer is not None:
            for stream in self.consuming:
                await self.reclaimer.reclaim(stream)
        now = time.monotonic()
        every_s = min(60.0, self.settings.forget_consumer_after_ms / 1000)
        if self.leases is not None and now - self._last_cleanup > every_s:
            self._last_cleanup = now
            live = await self.leases.live_members()
            for stream in self.consuming:
                await forget_dead_consumers(
                    self.redis, stream, live, idle_ms=self.settings.forget_consumer_after_ms
                )

    async def _stop_broker(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.stop()
        self.consuming = []

    async def _healthy(self) -> bool:
        try:
            for stream in self.streams:
                groups = await self.redis.xinfo_groups(stream)
                if not any(_s(g["name"]) == CONSUMER_GROUP for g in groups):
                    return False
        except ResponseError:  # stream gone
            return False
        broker = self.broker
        if broker is None:
            return not self.consuming
        return all(getattr(sub, "running", True) for sub in broker.subscribers)


async def forget_dead_consumers(
    redis: Redis, stream: str, live: list[str], *, idle_ms: int
) -> list[str]:
    """XGROUP DELCONSUMER for consumers that are not live reconcilers, have been idle for
    `idle_ms` and hold no pending entries — deleting one drops only its pending list, which
    is empty, so nothing can be lost; otherwise every restart would leave a name behind."""
    forgotten = []
    for c in await redis.xinfo_consumers(stream, CONSUMER_GROUP):
        name = _s(c["name"])
        if name in live or int(c["pending"]) or int(c["idle"]) < idle_ms:
            continue
        await redis.xgroup_delconsumer(stream, CONSUMER_GROUP, name)
        forgotten.append(name)
    if forgotten:
        log.info("forgot dead consumers of %s: %s", stream, forgotten)
    return forgotten


_PLACEHOLDER = {b"__data__": b"0"}


async def _raw_entries(message: Any, original: Any) -> Any:
    """Hands the handler the untouched entries: FastStream's own decoding would fail the
    whole batch on one undecodable (poison) entry, and we decode each entry ourselves."""
    parsed = await original({**message, "data": [_PLACEHOLDER] * len(message["data"])})
    parsed.raw_message = message
    return parsed


def asyncapi_document(
    settings: ReconcileSettings, streams: list[str], consumer: str
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document FastStream generates for the reconciler's subscribers,
    from a spec-only broker (never started) built like the real one."""
    url = urlsplit(settings.redis_url)
    host = url.hostname or "localhost"
    netloc = f"{host}:{url.port}" if url.port else host
    safe_url = urlunsplit((url.scheme, netloc, url.path, "", ""))  # no credentials
    spec_only = settings.model_copy(update={"redis_url": safe_url})
    broker = ConsumerGroup(spec_only, cast(Any, None), cast(Any, None), streams, consumer)._build()
    spec = AsyncAPI(broker, title="claimledger reconcile", version="0.1.0").to_specification()
    doc: dict[str, Any] = spec.to_jsonable()
    return doc


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def create_app(settings: ReconcileSettings | None = None) -> FastAPI:
    settings = settings or ReconcileSettings()
    consumer = settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with adapters(settings, socket_timeout=10) as (engine, redis):
            reconciler = Reconciler(
                AttributeRegistry.load(settings.attributes_file),
                cache_claims=settings.cache_claims,
                partitions=settings.partitions,
            )
            streams = [stream_for(p) for p in range(settings.partitions)]
            leases = PartitionLeases(
                redis,
                consumer,
                settings.partitions,
                lease_ms=settings.lease_ms,
                fence=lambda p: asyncio.to_thread(take_fence, engine, p, consumer),
            )
            partition_of_stream = {stream: p for p, stream in enumerate(streams)}

            def fence_of(stream: str) -> tuple[int, int] | None:
                p = partition_of_stream[stream]
                epoch = leases.epoch_of(p)
                return None if epoch is None else (p, epoch)

            processor = EntryProcessor(
                engine,
                redis,
                reconciler,
                serialize_writes=engine.dialect.name == "sqlite",
                fence_of=fence_of,
                consumer=consumer,
                max_deliveries=settings.max_deliveries,
                on_stale=leases.refence,
            )
            processor.start()
            reclaimer = Reclaimer(
                processor,
                redis,
                streams,
                consumer,
                min_idle_ms=settings.claim_idle_ms,
                max_deliveries=settings.max_deliveries,
            )
            group = ConsumerGroup(
                settings, processor, redis, streams, consumer, leases=leases, reclaimer=reclaimer
            )
            app.state.readiness = {
                "redis": lambda: group.redis_ok,
                "database": lambda: database_ok(engine),
            }
            tasks = [
                supervised.start("partition-leases", leases.run),
                supervised.start("consumer-group", group.run),
            ]
            sampler = start_sampler(reconcile_sampler(redis, streams), RECONCILE_METRICS)
            try:
                yield
            finally:
                await sampler.stop()
                await supervised.cancel(tasks, errors_too=True)
                await processor.stop()

    app = service_app("reconcile", lifespan)
    asyncapi: dict[str, Any] = {}

    @app.get("/asyncapi", tags=["ops"])
    async def asyncapi_json() -> dict[str, Any]:
        """The AsyncAPI document of the streams this service consumes (FastStream-generated)."""
        if not asyncapi:
            streams = [stream_for(p) for p in range(settings.partitions)]
            asyncapi.update(asyncapi_document(settings, streams, consumer))
        return asyncapi

    return app
