"""HTTP edges shared by the FastAPI services: problem+json errors, body limits, probes."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.validtime import TimeProblem, parse_instant

# Observability is ours (prometheus-client metrics, structlog lines with trace ids); FastAPI's
# native OpenTelemetry hooks would otherwise look up the global providers on every request.
NATIVE_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

PROBLEM = "application/problem+json"

HTTP_LATENCY = Histogram(
    "claimledger_http_request_seconds",
    "HTTP request latency by route",
    ["service", "method", "route", "status"],
)


class Problem(Exception):
    """An RFC 9457 problem answered as application/problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors, self.headers, self.extra = errors, headers, extra


def time_parameter(name: str, value: str) -> tuple[datetime, str]:
    """`value` of the time parameter `name` parsed (moment, precision), or a 422 Problem
    naming the parameter, with TimeProblem's detail."""
    try:
        return parse_instant(value, field=name)
    except TimeProblem as exc:
        raise Problem(
            422,
            f"Invalid {name}",
            exc.detail,
            errors=[{"pointer": f"/{name}", "detail": exc.detail}],
        ) from exc


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def json_pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    # drop pydantic's union-branch labels (e.g. "int", "ValueIn", "constrained-str")
    return "/" + "/".join(p for p in parts if not _is_branch_label(p))


def _is_branch_label(part: str) -> bool:
    return part in {
        "int",
        "float",
        "str",
        "ValueIn",
        "ValidTimeIn",
        "list[...]",
    } or part.startswith(("function-after", "constrained-", "union[", "literal[", "json-or-python"))


def problem_answer(exc: Problem) -> JSONResponse:
    """The answer to a raised Problem (the app's handler, and routes served outside FastAPI's
    routing such as services.ingest.api.FastReports)."""
    return problem_response(
        exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers, **exc.extra
    )


def busy_answer(exc: Exception) -> JSONResponse | None:
    """503 with Retry-After for a database lock wait or timeout (see database_busy); None
    for any other error."""
    if not database_busy(exc):
        return None
    # nothing was written (the transaction rolled back): the client may retry
    return problem_response(
        503,
        "Database busy",
        "the database did not answer in time (lock wait or timeout); retry shortly",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_answer(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors, seen = [], set()
        for err in exc.errors():
            pointer = json_pointer(tuple(err.get("loc", ())))
            if (pointer, err.get("msg")) in seen:
                continue
            seen.add((pointer, err.get("msg")))
            errors.append({"pointer": pointer, "detail": err.get("msg", "invalid")})
        first = errors[0]["pointer"] if errors else ""
        return problem_response(
            422,
            "Invalid request",
            f"{first}: {errors[0]['detail']}" if errors else "invalid request",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # logged by RequestContext
        return problem_response(500, "Internal error", type(exc).__name__)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: Exception) -> JSONResponse:
        answer = busy_answer(exc)
        if answer is None:
            raise exc  # a 500, logged by RequestContext
        return answer


BUSY_RETRY_AFTER_S = 1
# PostgreSQL SQLSTATEs of a wait that gave up or a server going away (not a bad request)
_BUSY_SQLSTATES = ("55P03", "57014", "57P01", "57P02", "57P03", "40P01", "08")


def database_busy(exc: BaseException) -> bool:
    """An SQL lock wait or timeout that a retry can get past: SQLite's "database is
    locked", PostgreSQL lock/statement timeouts, deadlocks and lost connections, a full
    connection pool."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    text = str(exc.orig).lower()
    return sqlstate.startswith(_BUSY_SQLSTATES) or "locked" in text or "busy" in text


class BodyLimit:
    """Answers 413 before reading more than `max_bytes` of a request body.

    A declared Content-Length over the limit is refused before the app runs. A chunked body
    is counted as it is read; once over, the 413 is sent from here and the app is told the
    client went away. (Raising through the app instead let FastAPI's body parsing turn the
    error into a 400.) Whatever the app answers after that is dropped.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen, refused, started = 0, False, False

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not refused:
                raise  # the app's own failure; only a disconnect we caused is ours to hide

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "Request body too large", f"the limit is {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class _Timed:
    """Request latency to the response start, by route. Pure ASGI on purpose: Starlette's
    BaseHTTPMiddleware (`@app.middleware("http")`) relays every body chunk through an
    extra memory stream and task, which costs streaming responses (SSE) per event."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = getattr(scope.get("route"), "path", "unmatched")
                HTTP_LATENCY.labels(
                    self.service, scope["method"], path, str(message["status"])
                ).observe(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed_send)


class Health(BaseModel):
    """/healthz: the process serves."""

    status: Literal["ok"]
    service: str


def exposition() -> bytes:
    """/metrics' text. A service run as several worker processes (ingest's
    CLAIMLEDGER_INGEST_WORKERS) has PROMETHEUS_MULTIPROC_DIR set: every worker's counters and
    histograms are summed from their files there, whichever worker answers the scrape; the
    sampled gauges (database- or Redis-wide) are this worker's, and process_* metrics are
    not exposed (one process's would pass for the service's)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest()
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    from services.infra.observability import SAMPLED_NAMES

    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed)
    return generate_latest(summed) + generate_latest(REGISTRY.restricted_registry(SAMPLED_NAMES))


def install_metrics(app: FastAPI, service: str) -> None:
    app.add_middleware(_Timed, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"], response_model=Health)
    async def healthz() -> dict[str, str]:
        """Alive: answers as soon as the process serves."""
        return {"status": "ok", "service": service}


class RateLimiter:
    """A token bucket per client key: `per_minute` requests a minute, bursting up to that many.

    `per_minute <= 0` turns it off. Buckets live in memory (one process); idle full
    buckets are dropped when the table grows large, so memory stays bounded.
    """

    MAX_BUCKETS = 100_000

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate_per_s = float(per_minute) / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def acquire(self, key: str) -> float:
        """Takes one token for `key`: 0.0 when allowed, else seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate_per_s)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return 0.0
        self._store(key, tokens, now)
        return (1.0 - tokens) / self.rate_per_s

    def check(self, key: str) -> None:
        """Raises a 429 problem with Retry-After (whole seconds) when `key` is over its limit."""
        wait = self.acquire(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise Problem(
                429,
                "Too many requests",
                f"rate limit is {self.capacity:g} requests per minute; retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self.MAX_BUCKETS:
            self._evict(now)
        self._buckets[key] = (tokens, now)

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate_per_s >= self.capacity
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.MAX_BUCKETS:
            self._buckets.clear()  # everyone refilled: lenient, never unbounded


def bearer_scopes(request: Any, checker: Any) -> tuple[str, frozenset[str]]:
    """The bearer secret and its scopes; 401 when missing or unknown (shared by the services).

    `checker` is a services.infra.keys.KeyChecker.
    """
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Problem(
            401,
            "API key required",
            "send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scopes = checker.scopes(secret)
    if scopes is None:
        raise Problem(401, "Invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return secret, scopes
