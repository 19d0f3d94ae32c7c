"""When reads need a key, the stream also takes it as `access_token` (EventSource cannot
send Authorization), and only the stream does."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.infra.db import make_engine
from services.infra.keys import create_key
from tests.conftest import Cluster, system


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, str]]]:
    with system(tmp_path_factory.mktemp("keyed")) as c:
        c.start("query", CLAIMLEDGER_REQUIRE_READ_KEY="true")
        engine = make_engine(c.db_url)
        try:
            keys = {s: create_key(engine, [s], name=s)[1] for s in ("read", "write", "admin")}
        finally:
            engine.dispose()
        yield c, keys


def _open(url: str, **kwargs: object) -> int:
    with httpx.stream("GET", url, timeout=10, **kwargs) as response:  # type: ignore[arg-type]
        return response.status_code


def test_the_stream_accepts_a_read_key_as_access_token(
    keyed: tuple[Cluster, dict[str, str]],
) -> None:
    c, keys = keyed
    url = f"{c.url('query')}/v1/stream"
    assert _open(url) == 401
    assert _open(url, params={"access_token": "not-a-key"}) == 401
    for scope in ("read", "write", "admin"):
        assert _open(url, params={"access_token": keys[scope]}) == 200
    assert _open(url, headers={"Authorization": f"Bearer {keys['read']}"}) == 200


def test_other_reads_do_not_take_a_key_in_the_url(keyed: tuple[Cluster, dict[str, str]]) -> None:
    c, keys = keyed
    got = httpx.get(f"{c.url('query')}/v1/subjects", params={"access_token": keys["read"]})
    assert got.status_code in (401, 422)  # keys in URLs end up in logs: only where unavoidable
    assert got.status_code != 200
