"""An SQL lock wait or timeout in a request answers 503 + Retry-After, never 500 (issue #24)."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.infra.http import database_busy, install_error_handlers


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    async def write() -> None:
        raise exc

    return app


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_locked_database_answers_503_problem_with_retry_after() -> None:
    answer = TestClient(_app(_locked()), raise_server_exceptions=False).post("/write")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["title"] == "Database busy"


def test_a_full_connection_pool_answers_503() -> None:
    answer = TestClient(_app(PoolTimeout("QueuePool limit")), raise_server_exceptions=False).post(
        "/write"
    )
    assert answer.status_code == 503


def test_other_operational_errors_stay_500() -> None:
    broken = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: outbox"))
    assert not database_busy(broken)
    answer = TestClient(_app(broken), raise_server_exceptions=False).post("/write")
    assert answer.status_code == 500


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("canceling statement")
        self.sqlstate = sqlstate


def test_postgresql_lock_and_statement_timeouts_are_busy() -> None:
    for sqlstate in ("55P03", "57014", "40P01", "08006"):
        assert database_busy(OperationalError("UPDATE", {}, _PgError(sqlstate))), sqlstate
    assert not database_busy(OperationalError("UPDATE", {}, _PgError("42P01")))
