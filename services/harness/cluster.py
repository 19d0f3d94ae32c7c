"""The three services as real processes on a redis-server of their own, configured only by
CLAIMLEDGER_* variables: what the e2e and fault tests and the benchmarks start."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from services.infra.localredis import LocalRedis, free_port

T = TypeVar("T")


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

    def _spawn(self, name: str, port: int, log_level: str, env: dict[str, str]) -> Service:
        """One service as a child process on `port`, its output in a log file under tmp."""
        log = self.tmp / f"{name}-{port}.log"
        command = [sys.executable, "-m", "services.cli", "serve", name]
        proc = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", log_level],
            env={**self.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        service = Service(name, f"http://127.0.0.1:{port}", proc, log)
        self.services[name] = service
        return service

    def start(
        self, name: str, *, port: int | None = None, log_level: str = "warning", **env: str
    ) -> Service:
        service = self._spawn(name, port or free_port(), log_level, env)
        self.wait_ready(service)
        return service

    def start_together(self, *names: str) -> None:
        """Start several services at the same moment (any order must work)."""
        for name in names:
            self._spawn(name, free_port(), "warning", {})
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


def wait_for(predicate: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.05) -> T:
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
