"""Query's composition root: engine + update listener -> app (in the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.db import create_schema, database_ok, make_engine
from services.http import install_error_handlers, install_metrics
from services.keys import KeyChecker
from services.observability import QUERY_METRICS, query_sampler, start_sampler
from services.probes import readiness_router
from services.query import api
from services.redisconn import connect
from shared.events import UPDATES_STREAM
from shared.settings import CommonSettings

log = logging.getLogger("claimledger.query")
WEB = Path(__file__).parent / "web"


class QuerySettings(CommonSettings):
    min_token_wait_s: float = 5.0
    require_read_key: bool = False  # reads need a read/write/admin key when true
    max_streams_per_client: int = 100  # open SSE streams per client address; 0: no limit


class UpdateListener:
    """Wakes SSE subscribers when the reconciler announces versions (after its commit).

    Only a nudge: subscribers read the versions themselves from SQL, so a lost
    announcement delays delivery by at most their poll interval, never drops it.
    """

    def __init__(self, redis: Redis, condition: asyncio.Condition) -> None:
        self.redis, self.condition, self.redis_ok = redis, condition, False

    async def run(self) -> None:
        last: Any = "$"
        while True:
            try:
                reply: Any = await self.redis.xread({UPDATES_STREAM: last}, block=1000, count=1000)
                self.redis_ok = True
                if reply:
                    last = reply[0][1][-1][0]
                    async with self.condition:
                        self.condition.notify_all()
            except (RedisError, OSError):
                self.redis_ok = False
                await asyncio.sleep(1.0)


def create_app(settings: QuerySettings | None = None) -> FastAPI:
    settings = settings or QuerySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await asyncio.to_thread(create_schema, engine)
        redis = connect(settings, socket_timeout=5)
        ctx = api.QueryContext(
            engine=engine,
            min_token_wait_s=settings.min_token_wait_s,
            max_streams_per_client=settings.max_streams_per_client,
        )
        app.state.query = ctx
        if settings.require_read_key:
            ctx.read_keys = KeyChecker(engine)
        listener = UpdateListener(redis, ctx.updates)
        app.state.readiness = {
            "database": lambda: database_ok(engine),
            "redis": lambda: listener.redis_ok,
        }
        task = asyncio.create_task(listener.run(), name="update-listener")
        sampler = start_sampler(query_sampler(ctx), QUERY_METRICS, interval_s=1.0)
        try:
            yield
        finally:
            await sampler.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await redis.aclose()
            engine.dispose()

    app = FastAPI(title="claimledger query", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_metrics(app, "query")
    app.include_router(api.router)
    app.include_router(readiness_router())

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
