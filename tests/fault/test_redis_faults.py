"""Redis dies (kill -9) mid-load and comes back EMPTY on the same port: the outbox is the
source of truth, so everything acknowledged is applied exactly once anyway."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import Cluster, wait_for
from tests.fault import helpers

pytestmark = pytest.mark.fault


def _ingest_url(cluster: Cluster) -> str | None:
    service = cluster.services.get("ingest")
    return service.url if service else None


def _redis_unavailable(url: str) -> bool:
    status, body = helpers.readiness(url)
    return status == 503 and body.get("dependencies", {}).get("redis") == "unavailable"


def test_redis_restarted_empty_mid_load_loses_and_doubles_nothing(
    fault_cluster: Cluster, redis_server: LocalRedis, tmp_path: Path
) -> None:
    for name in ("ingest", "reconcile", "query"):
        fault_cluster.start(name)
    ingest, reconcile = fault_cluster.url("ingest"), fault_cluster.url("reconcile")
    query = fault_cluster.url("query")
    reports = helpers.make_reports("rz", 500, 10, seed=3)
    during_outage = helpers.make_reports("rz-outage", 50, 10, seed=4)
    loader = helpers.Loader(lambda: _ingest_url(fault_cluster), reports, batch_size=100)
    loader.start()
    wait_for(lambda: helpers.applied_events(fault_cluster.db_url) > 1000, timeout_s=60)

    redis_server.stop(kill=True)
    # ingest keeps accepting: the reports are durable in its outbox
    outage = helpers.Acked()
    with httpx.Client(timeout=30) as client:
        helpers.post_batch(client, ingest, during_outage, outage)
    assert len(outage.reports) == len(during_outage)
    wait_for(lambda: _redis_unavailable(ingest), timeout_s=15)
    wait_for(lambda: _redis_unavailable(reconcile), timeout_s=15)
    applied_during_outage = helpers.applied_events(fault_cluster.db_url)

    redis_server.wipe()
    redis_server.start()  # same port, no data: streams and the consumer group are gone
    acked = loader.finish()
    expected = acked.events + outage.events
    wait_for(
        lambda: helpers.converged(fault_cluster.db_url, redis_server.url, expected),
        timeout_s=120,
        interval_s=0.5,
    )
    print(f"applied when redis died: {applied_during_outage} of {expected} events")
    assert applied_during_outage < expected

    c = helpers.counts(fault_cluster.db_url)
    assert c["events"] == c["distinct_event_ids"] == expected, c
    assert c["claims"] == acked.claims + outage.claims
    assert c["outbox_pending"] == c["outbox_dead"] == 0
    with httpx.Client(timeout=10) as client:
        for report_id in outage.reports:
            assert client.get(f"{query}/v1/reports/{report_id}").json()["applied"] is True
    helpers.wait_ready(fault_cluster, "ingest")
    helpers.wait_ready(fault_cluster, "reconcile")
    replayed = helpers.clean_replay(fault_cluster.db_url, tmp_path / "replay")
    assert replayed.live_versions == replayed.replay_versions
    assert replayed.live_hash == replayed.replay_hash


def test_idle_ingest_reports_redis_unavailable_in_readyz(
    fault_cluster: Cluster, redis_server: LocalRedis
) -> None:
    ingest = fault_cluster.start("ingest").url
    assert helpers.readiness(ingest)[0] == 200
    redis_server.stop(kill=True)  # nothing to publish: the relay has no reason to touch Redis
    wait_for(lambda: _redis_unavailable(ingest), timeout_s=15)
    redis_server.start()
    wait_for(lambda: helpers.readiness(ingest)[0] == 200, timeout_s=15)
