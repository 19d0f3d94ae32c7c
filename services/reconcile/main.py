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

from services.db import create_schema, database_ok, make_engine
from services.http import install_error_handlers, install_metrics
from services.logs import RequestContext
from services.observability import RECONCILE_METRICS, reconcile_sampler, start_sampler
from services.probes import readiness_router
from services.reconcile.consumer import EntryProcessor, Reclaimer
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import CONSUMER_GROUP, stream_for
from shared.settings import CommonSettings

log = logging.getLogger("claimledger.reconcile")


class ReconcileSettings(CommonSettings):
    batch_size: int = 500
    poll_ms: int = 100
    # generous: the reclaimer also sees entries a busy broker has fetched but not yet
    # applied, and each claim counts as a delivery
    claim_idle_ms: int = 60_000
    max_deliveries: int = 10
    consumer_name: str | None = None


async def ensure_groups(redis: Redis, streams: list[str]) -> None:
    for stream in streams:
        try:
            await redis.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class ConsumerGroup:
    """Owns the FastStream broker and restarts it when Redis loses the group."""

    def __init__(
        self,
        settings: ReconcileSettings,
        processor: EntryProcessor,
        redis: Redis,
        streams: list[str],
        consumer: str,
    ) -> None:
        self.settings, self.processor, self.redis = settings, processor, redis
        self.streams, self.consumer = streams, consumer
        self.broker: RedisBroker | None = None
        self.redis_ok = False

    def _build(self) -> RedisBroker:
        broker = RedisBroker(self.settings.redis_url, logger=log, log_level=logging.DEBUG)
        for stream in self.streams:
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
        while True:
            try:
                await ensure_groups(self.redis, self.streams)
                self.broker = self._build()
                await self.broker.start()
                self.redis_ok = True
                while await self._healthy():
                    await asyncio.sleep(1.0)
                log.warning("consumer group lost or subscriber stopped; restarting broker")
            except (RedisError, OSError) as exc:
                self.redis_ok = False
                log.warning("redis unavailable: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                if self.broker is not None:
                    with contextlib.suppress(Exception):
                        await self.broker.stop()
                    self.broker = None

    async def _healthy(self) -> bool:
        try:
            for stream in self.streams:
                groups = await self.redis.xinfo_groups(stream)
                if not any(_s(g["name"]) == CONSUMER_GROUP for g in groups):
                    return False
            self.redis_ok = True
        except ResponseError:  # stream gone
            return False
        except (RedisError, OSError):
            self.redis_ok = False
            return True  # keep the broker: it retries fetches with backoff by itself
        broker = self.broker
        return broker is not None and all(
            getattr(sub, "running", True) for sub in broker.subscribers
        )


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
        engine = make_engine(settings.database_url)
        await asyncio.to_thread(create_schema, engine)
        redis = Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=2)
        reconciler = Reconciler(AttributeRegistry.load(settings.attributes_file))
        processor = EntryProcessor(
            engine, redis, reconciler, serialize_writes=engine.dialect.name == "sqlite"
        )
        streams = [stream_for(p) for p in range(settings.partitions)]
        group = ConsumerGroup(settings, processor, redis, streams, consumer)
        reclaimer = Reclaimer(
            processor,
            redis,
            streams,
            consumer,
            min_idle_ms=settings.claim_idle_ms,
            max_deliveries=settings.max_deliveries,
        )
        app.state.readiness = {
            "redis": lambda: group.redis_ok,
            "database": lambda: database_ok(engine),
        }
        tasks = [
            asyncio.create_task(group.run(), name="consumer-group"),
            asyncio.create_task(reclaimer.run(), name="reclaimer"),
        ]
        sampler = start_sampler(reconcile_sampler(redis, streams), RECONCILE_METRICS)
        try:
            yield
        finally:
            await sampler.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await redis.aclose()
            engine.dispose()

    app = FastAPI(title="claimledger reconcile", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_metrics(app, "reconcile")
    app.include_router(readiness_router())
    asyncapi: dict[str, Any] = {}

    @app.get("/asyncapi", tags=["ops"])
    async def asyncapi_json() -> dict[str, Any]:
        """The AsyncAPI document of the streams this service consumes (FastStream-generated)."""
        if not asyncapi:
            streams = [stream_for(p) for p in range(settings.partitions)]
            asyncapi.update(asyncapi_document(settings, streams, consumer))
        return asyncapi

    app.add_middleware(RequestContext)
    return app
