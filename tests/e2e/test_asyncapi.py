"""GET /asyncapi on reconcile: FastStream's AsyncAPI document of the consumed streams."""

from __future__ import annotations

import httpx

from shared.events import CONSUMER_GROUP, stream_for
from tests.conftest import Cluster


def test_reconcile_serves_asyncapi_with_its_streams(running: Cluster) -> None:
    got = httpx.get(f"{running.url('reconcile')}/asyncapi", timeout=10)
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert stream_for(0) in addresses
    groups = {ch["bindings"]["redis"]["groupName"] for ch in doc["channels"].values()}
    assert groups == {CONSUMER_GROUP}
    assert "@" not in str(doc["servers"])  # no credentials
