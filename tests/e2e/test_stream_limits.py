"""A client may hold only so many SSE streams open at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.localredis import LocalRedis
from tests.conftest import Cluster


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
