"""A stream client dropped because it read nothing is logged as one warning, not as an error
with a traceback from both our middleware and uvicorn (the chaos run's 60 stalled readers
made 120 error lines; a real error must still be an error)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sse_starlette.sse import SendTimeoutError

from services.infra.logs import RequestContext, configure_logging


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("claimledger.http")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.DEBUG
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _stream_ending_with(exc: BaseException) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        raise exc

    return app


def _serve(app: Any) -> None:
    scope = {"type": "http", "method": "GET", "path": "/v1/stream", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    asyncio.run(RequestContext(app)(scope, receive, send))


@pytest.mark.parametrize(
    "exc",
    [SendTimeoutError(), ExceptionGroup("task group", [SendTimeoutError()])],
    ids=["bare", "in a task group"],
)
def test_a_dropped_stream_client_is_one_warning(records: _Records, exc: Exception) -> None:
    with pytest.raises(type(exc)):  # the server still closes the connection
        _serve(_stream_ending_with(exc))
    levels = [(r.levelno, r.getMessage()) for r in records.records if r.levelno >= logging.WARNING]
    assert [lvl for lvl, _ in levels] == [logging.WARNING]
    assert "dropped a stream client" in levels[0][1]


def test_a_stream_that_fails_otherwise_is_still_an_error(records: _Records) -> None:
    with pytest.raises(RuntimeError):
        _serve(_stream_ending_with(RuntimeError("bug")))
    assert [r.getMessage() for r in records.records if r.levelno >= logging.ERROR] == [
        "unhandled error"
    ]


def test_uvicorn_does_not_log_a_dropped_client_as_an_error() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn_error = logging.getLogger("uvicorn.error")
    saved_filters = uvicorn_error.filters[:]
    try:
        configure_logging("query")
        records = _Records()
        root.addHandler(records)
        for exc in (SendTimeoutError(), ExceptionGroup("g", [SendTimeoutError()])):
            try:
                raise exc
            except BaseException:
                uvicorn_error.exception("Exception in ASGI application\n")
        try:
            raise RuntimeError("bug")
        except RuntimeError:
            uvicorn_error.exception("Exception in ASGI application\n")
        assert [r.exc_info[0] for r in records.records if r.exc_info] == [RuntimeError]
    finally:
        root.handlers, root.level = saved
        uvicorn_error.filters = saved_filters
