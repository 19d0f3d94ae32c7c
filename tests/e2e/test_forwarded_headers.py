"""Behind a proxy, per-client limits see the client, not the proxy, and only then.

`CLAIMLEDGER_FORWARDED_ALLOW_IPS` names the proxies whose X-Forwarded-For is believed. The
test client connects from 127.0.0.1: trusted, it stands for a proxy relaying two clients;
not trusted, it is one client that cannot escape its limit by forging the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import Cluster

pytestmark = pytest.mark.e2e


def _query(tmp_path: Path, redis_url: str, db_url: str, trusted: str) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path,
        redis_url,
        db_url,
        CLAIMLEDGER_MAX_STREAMS_PER_CLIENT="1",
        CLAIMLEDGER_FORWARDED_ALLOW_IPS=trusted,
    )
    try:
        c.start("query")
        yield c
    finally:
        c.stop_all()


@pytest.fixture
def behind_proxy(tmp_path: Path, redis_server: LocalRedis) -> Iterator[Cluster]:
    yield from _query(tmp_path, redis_server.url, f"sqlite:///{tmp_path / 'a.db'}", "127.0.0.1")


@pytest.fixture
def proxy_elsewhere(tmp_path: Path, redis_server: LocalRedis) -> Iterator[Cluster]:
    yield from _query(tmp_path, redis_server.url, f"sqlite:///{tmp_path / 'b.db'}", "10.0.0.0/8")


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_a_trusted_proxy_relays_each_clients_own_limit(behind_proxy: Cluster) -> None:
    url = f"{behind_proxy.url('query')}/v1/stream"
    client = httpx.Client(timeout=10)
    with (
        client,
        client.stream("GET", url, headers=_from("203.0.113.1")) as one,
        client.stream("GET", url, headers=_from("203.0.113.2")) as two,
    ):
        assert one.status_code == two.status_code == 200
        assert client.get(url, headers=_from("203.0.113.1")).status_code == 429


def test_an_untrusted_peer_cannot_pick_its_address(proxy_elsewhere: Cluster) -> None:
    url = f"{proxy_elsewhere.url('query')}/v1/stream"
    client = httpx.Client(timeout=10)
    with client, client.stream("GET", url, headers=_from("203.0.113.1")) as one:
        assert one.status_code == 200
        assert client.get(url, headers=_from("203.0.113.2")).status_code == 429
