"""A client may hold only so many SSE streams open at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import Cluster, wait_for


@pytest.fixture
def limited(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_server.url, db_url, CLAIMLEDGER_MAX_STREAMS_PER_CLIENT="2")
    try:
        c.start("query")
        yield c
    finally:
        c.stop_all()


def test_a_third_stream_from_one_client_is_refused_with_retry_after(limited: Cluster) -> None:
    url = f"{limited.url('query')}/v1/stream"
    client = httpx.Client(timeout=10)
    with client, client.stream("GET", url) as first, client.stream("GET", url) as second:
        assert first.status_code == second.status_code == 200
        refused = client.get(url)
        assert refused.status_code == 429
        assert refused.headers["retry-after"]
        assert refused.headers["content-type"] == "application/problem+json"


def _open_raw(url: str, n: int) -> list[socket.socket]:
    """`n` stream requests sent back to back on their own connections, before any answer
    is read: the server sees them as one burst."""
    host, port = url.removeprefix("http://").split(":")
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(n)]
    request = f"GET /v1/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    for sock in socks:
        sock.sendall(request.encode())
    return socks


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, "closed before a status line"
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_a_burst_of_streams_from_one_client_admits_only_the_limit(limited: Cluster) -> None:
    socks = _open_raw(limited.url("query"), 40)
    try:
        statuses = [_status(s) for s in socks]
    finally:
        for s in socks:
            s.close()
    assert statuses.count(200) == 2  # CLAIMLEDGER_MAX_STREAMS_PER_CLIENT
    assert statuses.count(429) == 38
    # the refused and the closed ones free their slots: two may open again
    url = f"{limited.url('query')}/v1/stream"
    client = httpx.Client(timeout=10)

    def opened() -> bool:
        with client.stream("GET", url) as first:
            if first.status_code != 200:
                return False
            with client.stream("GET", url) as second:
                return second.status_code == 200

    with client:
        wait_for(opened, timeout_s=30, interval_s=0.2)
