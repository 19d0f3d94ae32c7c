"""RequestContext on a real ASGI app: the trace id is answered, bound to logs, and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.infra.http import install_error_handlers
from services.infra.logs import RequestContext, current_trace_id


class _Captured(logging.Handler):
    """Keeps (message, trace id bound when it was logged, status) of each record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str | None, int | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        bound = structlog.contextvars.get_contextvars().get("trace_id")
        self.lines.append((record.getMessage(), bound, getattr(record, "status", None)))


@pytest.fixture
def captured() -> Iterator[_Captured]:
    handler = _Captured()
    logger = logging.getLogger("claimledger.http")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/echo")
    async def echo() -> dict[str, str | None]:
        return {"trace_id": current_trace_id()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    app.add_middleware(RequestContext)
    return TestClient(app, raise_server_exceptions=False)


def test_the_handler_sees_the_id_the_response_carries(client: TestClient) -> None:
    r = client.get("/echo", headers={"X-Request-ID": "abc"})
    assert r.headers["x-request-id"] == "abc" == r.json()["trace_id"]
    r = client.get("/echo", headers={"X-Request-ID": "bad id"})
    made = r.headers["x-request-id"]
    assert made != "bad id" and len(made) == 32 and r.json()["trace_id"] == made


def test_each_request_is_logged_once_with_its_id_and_status(
    client: TestClient, captured: _Captured
) -> None:
    client.get("/echo", headers={"X-Request-ID": "one"})
    assert captured.lines == [("request", "one", 200)]
    assert structlog.contextvars.get_contextvars().get("trace_id") is None  # unbound after


def test_an_unhandled_error_is_logged_with_the_id_and_answered_as_a_problem(
    client: TestClient, captured: _Captured
) -> None:
    r = client.get("/boom", headers={"X-Request-ID": "two"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "two"
    assert r.json()["detail"] == "RuntimeError"
    assert captured.lines == [("unhandled error", "two", None), ("request", "two", 500)]
