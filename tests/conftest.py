"""Fixtures with real parts: a redis-server per test on a free port, SQLite files in tmp, and
PostgreSQL databases (tests/postgres.py) where a test or module asks for that backend."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from services.localredis import LocalRedis, free_port
from tests.postgres import PostgresServer, PostgresUnavailable, provide_postgres

# No per-example wall-clock deadline (hypothesis' default is 200 ms): the machine is shared,
# and a slow example is not a wrong one.
hypothesis_settings.register_profile("claimledger", deadline=None)
hypothesis_settings.load_profile("claimledger")

BACKENDS = ["sqlite", "postgresql"]  # `pytest.mark.parametrize("db_url", BACKENDS, indirect=True)`


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop(kill=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (see tests/postgres.py for where it comes from).

    Unavailable: a failure under CI (env CI set), so a CI run never passes by skipping the
    PostgreSQL half; elsewhere a skip that says how to get one."""
    try:
        server = provide_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL required in CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty, uniquely named PostgreSQL database for this test (dropped at the end of
    the session: a drop waits for a checkpoint)."""
    return postgres_server.create_database()


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite by default; a test or module parametrized indirectly over BACKENDS gets each."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'claimledger.db'}"


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


class Cluster:
    """The three services as real processes, configured only by CLAIMLEDGER_* variables."""

    def __init__(self, tmp: Path, redis_url: str, db_url: str, **env: str) -> None:
        self.tmp, self.redis_url, self.db_url = tmp, redis_url, db_url
        self.env = {
            **os.environ,
            "CLAIMLEDGER_REDIS_URL": redis_url,
            "CLAIMLEDGER_DATABASE_URL": db_url,
            **env,
        }
        self.services: dict[str, Service] = {}

    def start(
        self, name: str, *, port: int | None = None, log_level: str = "warning", **env: str
    ) -> Service:
        port = port or free_port()
        log = self.tmp / f"{name}-{port}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                name,
                "--port",
                str(port),
                "--log-level",
                log_level,
            ],
            env={**self.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        service = Service(name, f"http://127.0.0.1:{port}", proc, log)
        self.services[name] = service
        self.wait_ready(service)
        return service

    def start_together(self, *names: str) -> None:
        """Start several services at the same moment (any order must work)."""
        for name in names:
            port = free_port()
            log = self.tmp / f"{name}-{port}.log"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "serve",
                    name,
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=self.env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            self.services[name] = Service(name, f"http://127.0.0.1:{port}", proc, log)
        for name in names:
            self.wait_ready(self.services[name])

    def wait_ready(self, service: Service, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.name} exited:\n{service.log.read_text()}")
            try:
                if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{service.name} not ready:\n{service.log.read_text()}")

    def stop(self, name: str, *, kill: bool = False) -> None:
        service = self.services.pop(name)
        if kill:
            service.process.kill()
        else:
            service.process.terminate()
        try:
            service.process.wait(15)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()

    def port(self, name: str) -> int:
        return int(self.services[name].url.rsplit(":", 1)[1])

    def restart(self, name: str, *, kill: bool = False, **env: str) -> Service:
        """Stops a service and starts a new process of it on the same port."""
        port = self.port(name)
        self.stop(name, kill=kill)
        return self.start(name, port=port, **env)

    def stop_all(self) -> None:
        for name in list(self.services):
            self.stop(name)

    def url(self, name: str) -> str:
        return self.services[name].url


@pytest.fixture
def cluster(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_server.url, db_url, CLAIMLEDGER_REPUBLISH_AFTER_S="5")
    try:
        yield c
    finally:
        c.stop_all()


def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Polls until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval_s)


@contextlib.contextmanager
def system(tmp: Path, *services: str, db_url: str | None = None, **env: str) -> Iterator[Cluster]:
    """A redis-server plus a Cluster on `db_url` (default: SQLite under `tmp`), with `services`
    started; torn down on exit. Callers that start services their own way pass none."""
    server = LocalRedis(tmp / "redis", persist=False).start()
    c = Cluster(tmp, server.url, db_url or f"sqlite:///{tmp / 'claimledger.db'}", **env)
    try:
        for name in services:
            c.start(name)
        yield c
    finally:
        c.stop_all()
        server.stop(kill=True)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One running system shared by a module's tests (they use distinct keys/report ids)."""
    with system(
        tmp_path_factory.mktemp("running"),
        "ingest",
        "reconcile",
        "query",
        CLAIMLEDGER_REPUBLISH_AFTER_S="5",
    ) as c:
        yield c
