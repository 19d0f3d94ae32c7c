"""A cluster tuned for faults: quick re-publishing and reclaiming, so recovery is observable
within a test. The values are the documented CLAIMLEDGER_* settings, nothing is patched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import Cluster

FAULT_ENV = {
    "CLAIMLEDGER_REPUBLISH_AFTER_S": "2",  # ingest re-sends unconfirmed events after 2 s
    "CLAIMLEDGER_CLAIM_IDLE_MS": "4000",  # a dead consumer's entries are reclaimed after 4 s
}


@pytest.fixture
def fault_cluster(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_server.url, db_url, **FAULT_ENV)
    try:
        yield c
    finally:
        c.stop_all()
