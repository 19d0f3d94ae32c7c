"""Fixtures with real parts: a redis-server per test on a free port, SQLite files in tmp, and
PostgreSQL databases (tests/postgres.py) where a test or module asks for that backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings

from services.harness.cluster import Cluster, Service, system, wait_for  # noqa: F401 (re-exported)
from services.infra.localredis import LocalRedis
from tests.postgres import PostgresServer, PostgresUnavailable, provide_postgres

# Learning runs by itself in a deployment (every 10 s); a test that counts versions or
# reads a consensus must not have a re-weighting land in between, so the suite turns
# it off unless a test asks for it (tests/e2e/test_learning.py does).
os.environ.setdefault("CLAIMLEDGER_REWEIGH_EVERY_S", "0")

# No per-example wall-clock deadline (hypothesis' default is 200 ms): the machine is shared,
# and a slow example is not a wrong one.
hypothesis_settings.register_profile("claimledger", deadline=None)
# `make mutate` runs the properties against each of thousands of mutants: fewer examples there,
# and no shrinking: a mutant is killed by the first failing example, and shrinking it (minutes
# on a loaded machine) only ran the mutant into its CPU-time limit
hypothesis_settings.register_profile(
    "mutate",
    deadline=None,
    max_examples=20,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
hypothesis_settings.load_profile(os.environ.get("CLAIMLEDGER_HYPOTHESIS_PROFILE", "claimledger"))

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


@pytest.fixture
def cluster(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_server.url, db_url, CLAIMLEDGER_REPUBLISH_AFTER_S="5")
    try:
        yield c
    finally:
        c.stop_all()


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
