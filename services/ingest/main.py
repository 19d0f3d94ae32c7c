"""Ingest's composition root: settings -> engine, redis, relay, keys -> app (in the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.middleware import Middleware

from services.infra import tasks as supervised
from services.infra.app import adapters, service_app
from services.infra.db import SQLITE_BUSY_TIMEOUT_MS, database_ok
from services.infra.http import BodyLimit, RateLimiter
from services.infra.keys import KeyChecker, register_key
from services.infra.observability import start_sampler
from services.infra.probes import NotReady
from services.infra.processes import tune_gc_for_throughput
from services.ingest import api, outbox
from services.ingest.batches import BatchConfig, BatchLanes
from services.ingest.commits import GroupCommit
from services.ingest.extract_api import router as extract_router
from services.ingest.leader import publisher_lock
from services.ingest.learning import reweigh_periodically
from services.ingest.metrics import INGEST_METRICS, ingest_sampler
from services.ingest.relay import Relay
from shared.attributes import AttributeRegistry
from shared.settings import CommonSettings
from shared.timeaxes import parse_iso


class IngestSettings(CommonSettings):
    max_body_bytes: int = 8 * 1024 * 1024
    republish_after_s: float = 30.0
    hedge_tolerance: float = 0.10
    # writes need no key while none is active, even after keys existed (default: once any
    # key was ever created, writes need one, so revoking the last key never opens them)
    open_writes: bool = False
    rate_limit_per_min: float = 0  # per API key (per client address when auth is off); 0 = off
    future_tolerance_s: float = 86_400.0  # published_at may be at most this far in the future
    # Learned source reliability and copy detection, re-run every N seconds when claims
    # changed (in a worker process; 0 = off, `claimledger reweigh` runs it once).
    reweigh_every_s: float = 10
    # /readyz answers 503 once the oldest event never sent to Redis is older than this
    # (the relay is stuck: locked database, Redis gone, a bug): acknowledged work waits
    outbox_max_age_s: float = 60.0
    # SQLite: how long a statement waits for the write lock before "database is locked"
    # (a request then answers 503 with Retry-After; the relay retries)
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    # processes per ingest worker for a :batch request that arrives while the worker runs
    # one already (services/ingest/batches.py); 0: one batch at a time per worker
    batch_processes: int = 1


async def checkpoint_periodically(engine: Engine, every_s: float = 0.5) -> None:
    """The WAL checkpoints ingest's commits leave (outbox.leave_checkpoints_to_checkpointer),
    in a thread, outside every write transaction."""
    while True:
        await asyncio.sleep(every_s)
        await asyncio.to_thread(outbox.checkpoint, engine)


async def outbox_fresh(engine: Engine, max_age_s: float) -> bool:
    """Readiness: the oldest event never sent to Redis is younger than `max_age_s`."""
    oldest = await asyncio.to_thread(outbox.oldest_unpublished, engine)
    if oldest is None:
        return True
    age = (datetime.now(UTC) - parse_iso(oldest)).total_seconds()
    if age > max_age_s:
        raise NotReady(
            f"the oldest unpublished outbox event is {age:.0f} s old (bound {max_age_s:g} s)"
        )
    return True


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with adapters(
            settings, socket_timeout=5, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        ) as (engine, redis):
            if settings.bootstrap_write_key:
                await asyncio.to_thread(
                    register_key, engine, settings.bootstrap_write_key, ["write"], "bootstrap"
                )
            outbox.leave_checkpoints_to_checkpointer(engine)
            relay_lock = publisher_lock(engine)
            relay = Relay(
                engine, redis, republish_after_s=settings.republish_after_s, leader=relay_lock
            )
            commits = GroupCommit(engine)
            batches = BatchLanes(
                BatchConfig(
                    database_url=settings.database_url,
                    sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                    attributes_file=settings.attributes_file,
                    partitions=settings.partitions,
                    tolerance=settings.hedge_tolerance,
                    future_tolerance_s=settings.future_tolerance_s,
                ),
                settings.batch_processes,
            )
            app.state.ingest = api.IngestContext(
                engine=engine,
                relay=relay,
                registry=AttributeRegistry.load(settings.attributes_file),
                keys=KeyChecker(engine, open_writes=settings.open_writes),
                partitions=settings.partitions,
                tolerance=settings.hedge_tolerance,
                limiter=RateLimiter(settings.rate_limit_per_min),
                future_tolerance_s=settings.future_tolerance_s,
                commits=commits,
                batches=batches,
            )
            app.state.readiness = {
                "database": lambda: database_ok(engine),
                "redis": lambda: relay.redis_ok,
                "outbox": functools.partial(outbox_fresh, engine, settings.outbox_max_age_s),
            }
            tasks = [
                supervised.start("outbox-relay", relay.run),
                supervised.start("relay-wake", relay.listen_for_appends),
            ]
            if engine.dialect.name == "sqlite":
                tasks.append(
                    supervised.start(
                        "wal-checkpoint", functools.partial(checkpoint_periodically, engine)
                    )
                )
            commits.start()
            # the service serves :batch at full speed once it answers (the processes'
            # start, a second or two, would otherwise be taken from the first batches)
            await batches.start()
            sampler = start_sampler(ingest_sampler(engine), INGEST_METRICS)
            if settings.reweigh_every_s > 0:
                tasks.append(
                    supervised.start(
                        "reweigh",
                        functools.partial(
                            reweigh_periodically,
                            engine,
                            settings.database_url,
                            settings.partitions,
                            settings.reweigh_every_s,
                            relay.kick,
                            # one learner per deployment: the publishing relay's process
                            lambda: relay.leading,
                        ),
                    )
                )
            tune_gc_for_throughput()
            try:
                yield
            finally:
                await sampler.stop()
                await commits.stop()
                await batches.stop()
                await supervised.cancel(tasks)
                await asyncio.to_thread(relay_lock.release)  # a standing-by replica takes over

    return service_app(
        "ingest",
        lifespan,
        [api.router, extract_router],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
        innermost=[Middleware(api.FastReports)],
    )
