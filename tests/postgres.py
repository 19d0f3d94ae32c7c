"""A PostgreSQL server for the tests, and a fresh database per test.

Where the server comes from, first that works:
1. CLAIMLEDGER_TEST_POSTGRES_URL: any server; the URL's role must be allowed to CREATE DATABASE.
2. A local server on 127.0.0.1:5432 as user `postgres` with trust auth (a developer machine),
   unless CLAIMLEDGER_TEST_POSTGRES=throwaway asks for 3. even then.
3. A throwaway cluster from the system binaries (initdb + pg_ctl from /usr/lib/postgresql/*/bin
   or PATH) in a temp dir on a free port, run as the `postgres` user when we are root (PostgreSQL
   refuses to run as root). `.ci/run` installs the binaries with apt on a fresh machine.

Databases are created with an ICU `en-US` collation when the server supports it (PostgreSQL
15+): most production servers sort text linguistically, not bytewise like SQLite, and the
tables must give the same answers there (they declare COLLATE "C" where order matters).

Creating a database takes ~0.1-0.5 s, so every test gets its own, uniquely named
(`cltest_<pid>_<n>_<ns>`); nothing is shared between tests. Dropping one waits for a checkpoint
(~1.5 s on a busy server), so they are dropped together when the server is released at the end
of the session (a throwaway cluster is simply deleted).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from services.infra.localredis import free_port

ENV_URL = "CLAIMLEDGER_TEST_POSTGRES_URL"
# `throwaway`: skip the local server and start a cluster of our own (isolated, no fsync)
ENV_CHOICE = "CLAIMLEDGER_TEST_POSTGRES"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def advisory_waiters(engine: Engine) -> int:
    """How many sessions of this database wait for an advisory lock (the outbox's and the
    reconciler's writer locks): a test sees a writer waiting its turn."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
        )


def lock_waiters(engine: Engine) -> int:
    """How many sessions of this database wait for a lock of any kind (a reconciler waiting
    for a partition's row, held by another's apply transaction)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


class PostgresUnavailable(RuntimeError):
    pass


class PostgresServer:
    """A server the tests may create databases on; `stop()` ends it if we started it."""

    def __init__(self, admin_url: str, origin: str, cluster: ThrowawayCluster | None = None):
        self.admin_url, self.origin, self._cluster = admin_url, origin, cluster
        self._names = itertools.count(1)
        self._icu: bool | None = None
        self.created: list[str] = []

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL (postgresql://, psycopg driver)."""
        name = f"cltest_{os.getpid()}_{next(self._names)}_{time.monotonic_ns() % 10**6}"
        with self._admin() as conn:
            if self._icu is not False:
                try:
                    conn.execute(
                        f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                        "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                    )
                    self._icu = True
                except psycopg.Error:
                    self._icu = False
            if not self._icu:
                conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Drops the databases made here (or deletes the whole throwaway cluster).

        The drops run in a detached process: each waits for a checkpoint (~1 s on a busy
        server, ~40 s for a suite's worth), which the test run need not wait for."""
        if self._cluster is not None:
            self._cluster.stop()
            return
        if self.created:
            subprocess.Popen(
                [sys.executable, "-m", "tests.postgres", _libpq(self.admin_url), *self.created],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parent.parent,
            )
        self.created.clear()

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(_libpq(self.admin_url), autocommit=True, connect_timeout=5)


def _libpq(url: str) -> str:
    """A SQLAlchemy URL (maybe postgresql+psycopg://) as a libpq conninfo URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL bin directory with initdb and pg_ctl."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayCluster:
    """initdb + pg_ctl in a temp dir, listening on 127.0.0.1:<free port> only, no fsync."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # as root the server runs as `postgres`, which must reach the directory: not under
        # a private TMPDIR
        under = "/tmp" if self.as_root else None
        self.root = Path(tempfile.mkdtemp(prefix="claimledger-pg-", dir=under))
        self.data = self.root / "data"
        self.port = free_port()

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:  # postgres refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.root, "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        # socket in our dir (the default /var/run/postgresql may not exist or be writable)
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def provide_postgres() -> PostgresServer:
    """A server per the order in the module docstring; PostgresUnavailable says why not."""
    url = os.environ.get(ENV_URL)
    if url:
        if not _reachable(url):
            raise PostgresUnavailable(f"{ENV_URL}={url} does not answer")
        return PostgresServer(url, ENV_URL)
    if os.environ.get(ENV_CHOICE) != "throwaway" and _reachable(LOCAL_URL):
        return PostgresServer(LOCAL_URL, "local server on 127.0.0.1:5432")
    bindir = server_binaries()
    if bindir is None:
        raise PostgresUnavailable(
            f"no PostgreSQL: set {ENV_URL}, run one on 127.0.0.1:5432 (user postgres, trust), "
            "or install the server binaries (`apt-get install -y postgresql`; .ci/run does)"
        )
    cluster = ThrowawayCluster(bindir)
    admin = cluster.start()
    return PostgresServer(admin, f"throwaway cluster from {bindir}", cluster)


def _drop_databases(admin_url: str, names: list[str]) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":  # the detached dropper started by PostgresServer.stop
    _drop_databases(sys.argv[1], sys.argv[2:])
