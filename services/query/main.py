"""Query's composition root: engine + SSE fan-out -> app (in the lifespan)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from services.infra import tasks as supervised
from services.infra.app import adapters, service_app
from services.infra.db import database_ok
from services.infra.keys import KeyChecker
from services.infra.observability import QUERY_METRICS, query_sampler, start_sampler
from services.query import api, views
from services.query.stream import Fanout
from services.query.watermark import Watermark, pending_events
from shared.attributes import AttributeRegistry
from shared.settings import CommonSettings

log = logging.getLogger("claimledger.query")
WEB = Path(__file__).parent / "web"


class QuerySettings(CommonSettings):
    min_token_wait_s: float = 5.0
    require_read_key: bool = False  # reads need a read/write/admin key when true
    max_streams_per_client: int = 100  # open SSE streams per client address; 0: no limit
    stream_buffer: int = 4096  # frames a live SSE subscriber may lag before `resync`
    stream_buffer_bytes: int = 2 * 2**20  # and bytes: frames differ much in size
    stream_send_timeout_s: float = 30.0  # an SSE client that reads nothing this long is dropped


def attribute_labels(registry: AttributeRegistry) -> dict[str, str]:
    """Attribute -> label from the registry (packaged plus the operator's file)."""
    return {spec.name: spec.label for spec in registry if spec.label}


def create_app(settings: QuerySettings | None = None) -> FastAPI:
    settings = settings or QuerySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with adapters(settings, socket_timeout=5) as (engine, redis):
            registry = AttributeRegistry.load(settings.attributes_file)
            ctx = api.QueryContext(
                engine=engine,
                min_token_wait_s=settings.min_token_wait_s,
                max_streams_per_client=settings.max_streams_per_client,
                stream_send_timeout_s=settings.stream_send_timeout_s,
                registry=registry,
                labels=attribute_labels(registry),
            )
            app.state.query = ctx
            if settings.require_read_key:
                ctx.read_keys = KeyChecker(engine)
            ctx.watermark = Watermark(
                functools.partial(views.watermark, engine),
                pending=functools.partial(pending_events, engine),
            )
            ctx.watermark.start()
            fanout = Fanout(
                engine,
                redis,
                buffer=settings.stream_buffer,
                buffer_bytes=settings.stream_buffer_bytes,
                on_announce=ctx.watermark.nudge,
            )
            await fanout.start()
            ctx.fanout = fanout
            app.state.readiness = {
                "database": lambda: database_ok(engine),
                "redis": lambda: fanout.redis_ok,
            }
            task = supervised.start("sse-fanout", fanout.run)
            sampler = start_sampler(query_sampler(ctx), QUERY_METRICS, interval_s=1.0)
            try:
                yield
            finally:
                await sampler.stop()
                await ctx.watermark.stop()
                await supervised.cancel([task])

    app = service_app("query", lifespan, [api.router])

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
