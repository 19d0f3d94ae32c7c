"""The skeleton every service's composition root shares.

`adapters` opens the engine (schema migrated) and the Redis client for a lifespan and
closes them after it; `service_app` builds the FastAPI app with what every service
serves (offline docs, problem+json errors, /metrics, /readyz) and the request-context
middleware outermost. Each `main.py` adds only what is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis
from sqlalchemy.engine import Engine
from starlette.middleware import Middleware

from services.infra.apidocs import install_offline_docs
from services.infra.db import create_schema, make_engine
from services.infra.http import NATIVE_TELEMETRY_OFF, install_error_handlers, install_metrics
from services.infra.logs import RequestContext
from services.infra.probes import readiness_router
from services.infra.redisconn import connect
from shared.settings import CommonSettings


@contextlib.asynccontextmanager
async def adapters(
    settings: CommonSettings,
    *,
    socket_timeout: float,
    sqlite_busy_timeout_ms: int | None = None,
) -> AsyncIterator[tuple[Engine, Redis]]:
    """The engine (schema created or migrated) and Redis; closed, Redis first, on exit."""
    engine = make_engine(settings.database_url, sqlite_busy_timeout_ms=sqlite_busy_timeout_ms)
    await asyncio.to_thread(create_schema, engine)
    redis = connect(settings, socket_timeout=socket_timeout)
    try:
        yield engine, redis
    finally:
        await redis.aclose()
        engine.dispose()


def service_app(
    name: str,
    lifespan: Callable[[FastAPI], Any],
    routers: Sequence[APIRouter] = (),
    *,
    middleware: Sequence[Middleware] = (),
    innermost: Sequence[Middleware] = (),
) -> FastAPI:
    """The app of service `name`: its routers, then /readyz; `middleware` runs inside
    RequestContext, so every response, theirs too, carries a request id. `innermost` runs
    inside the latency metrics too, just outside the routing: a hot route served there
    (services.ingest.api.FastReports) is measured and limited like any other."""
    app = FastAPI(
        title=f"claimledger {name}",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=NATIVE_TELEMETRY_OFF,
        docs_url=None,  # install_offline_docs serves them without a CDN
        redoc_url=None,
    )
    install_offline_docs(app)
    install_error_handlers(app)
    for inner in innermost:  # added first: the innermost of the middlewares
        app.add_middleware(inner.cls, *inner.args, **inner.kwargs)
    install_metrics(app, name)
    for router in routers:
        app.include_router(router)
    app.include_router(readiness_router())
    for inner in middleware:  # inside RequestContext, outside the metrics' timing
        app.add_middleware(inner.cls, *inner.args, **inner.kwargs)
    app.add_middleware(RequestContext)  # outermost: every response has an id
    return app
