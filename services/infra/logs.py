"""Structured logs and the trace id that follows a report from ingest to its versions.

`configure_logging` (called once per process by `claimledger serve`) routes every log
record through structlog: our own `logging.getLogger("claimledger.*")` calls (their
`extra={...}` become fields), uvicorn's and FastStream's. Each line is one JSON object on
stderr with `timestamp` (ISO-8601 UTC), `level`, `logger`, `service`, `event` and, while
a request is served, its `trace_id`. `CLAIMLEDGER_LOG_FORMAT=console` renders the same
fields for humans instead.

The trace id: `RequestContext` takes it from `X-Request-ID`, else from a W3C
`traceparent` (its trace-id part), else makes one; every response carries it back as
`X-Request-ID`. Ingest copies it into each event's envelope (`Event.trace_id`), the
reconciler logs it with every version it writes, and the history API shows it in a
version's cause. It is never part of an event id, a digest or a projection hash: a
retried report with another trace id is the same report.

App code keeps using stdlib loggers (so modules log sensibly even where nothing was
configured, e.g. under pytest); structlog is the one formatting pipeline.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import msgspec
import structlog
from sse_starlette.sse import SendTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.infra.http import problem_response

REQUEST_ID_HEADER = "x-request-id"
_trace_id: ContextVar[str | None] = ContextVar("claimledger_trace_id", default=None)
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # visible ASCII: safe to echo and to log
# probes and scrapes are frequent and say nothing about the data: logged at DEBUG only
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})

access_log = logging.getLogger("claimledger.http")


def trace_id_from(headers: Mapping[str, str]) -> str | None:
    """The caller's id: a well-formed `X-Request-ID`, else a valid W3C `traceparent`'s trace-id.

    Malformed values are ignored (a new id is made instead), so nothing a client sends
    can break a log line or a response header.
    """
    given = (headers.get(REQUEST_ID_HEADER) or "").strip()
    if given and _REQUEST_ID.match(given):
        return given
    match = _TRACEPARENT.match((headers.get("traceparent") or "").strip().lower())
    if match and match.group(1) != "ff" and match.group(2) != "0" * 32:
        return match.group(2)
    return None


def new_trace_id() -> str:
    return os.urandom(
        16
    ).hex()  # 32 hex digits, the shape of a W3C trace-id (uuid4 minus the object)


def current_trace_id() -> str | None:
    """The trace id of the request being served (None outside a request)."""
    return _trace_id.get()


class RequestContext:
    """The outermost of a service's middlewares: picks the trace id, binds it to the logs
    of this request, echoes it as `X-Request-ID`, and logs one line per request at its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        trace_id = trace_id_from(headers) or new_trace_id()
        token = _trace_id.set(trace_id)
        bound = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        start = time.perf_counter()
        status, started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
                message.setdefault("headers", [])
                message["headers"] = [
                    *[(k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"],
                    (b"x-request-id", trace_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started and dropped_reader(exc):  # by design: one line, no traceback
                access_log.warning(
                    "dropped a stream client that read nothing for the send timeout "
                    "(it resumes from its Last-Event-ID)",
                    extra={"path": scope.get("path")},
                )
                raise
            # logged and answered here, while the trace id is bound, so the 500 carries it too
            access_log.error("unhandled error", exc_info=True, extra={"path": scope.get("path")})
            if started:
                raise
            response = problem_response(500, "Internal error", type(exc).__name__)
            await response(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = scope.get("path", "")
            access_log.log(
                logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": path,
                    "route": getattr(route, "path", None),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                },
            )
            structlog.contextvars.reset_contextvars(**bound)
            _trace_id.reset(token)


def dropped_reader(exc: BaseException) -> bool:
    """Is this the end of a stream whose client stopped reading (sse-starlette's send
    timeout, maybe inside the task group's exception group)? The query service drops such a
    client on purpose: a warning, not an error with a traceback (60 stalled readers made
    120 error lines in the chaos run)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(dropped_reader(e) for e in exc.exceptions)
    return isinstance(exc, SendTimeoutError)


class _NotDroppedReaders(logging.Filter):
    """uvicorn logs the exception that ends a response as an error with its traceback;
    a dropped stream client was logged as a warning by RequestContext already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not dropped_reader(exc)


def _service(name: str) -> Any:
    def add(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", name)
        return event

    return add


def _drop_noise(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """One handler on the root logger, rendering every record through structlog."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _service(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any
    if fmt == "console":
        # plain tracebacks: rich's would print local variables, API keys included
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        tail: list[Any] = []
    else:
        encoder = msgspec.json.Encoder(enc_hook=repr)  # ~2x json.dumps; repr for the odd object
        renderer = structlog.processors.JSONRenderer(
            serializer=lambda obj, **_: encoder.encode(obj).decode()
        )
        tail = [structlog.processors.format_exc_info]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_noise],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NotDroppedReaders) for f in errors.filters):
        errors.addFilter(_NotDroppedReaders())
