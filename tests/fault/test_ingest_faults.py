"""Ingest dies (kill -9) right after answering 202: acknowledged means durable."""

from __future__ import annotations

import httpx
import pytest

from services.localredis import LocalRedis
from tests.conftest import Cluster, wait_for
from tests.fault import helpers

pytestmark = pytest.mark.fault


def _applied(client: httpx.Client, query: str, report_id: str) -> bool:
    answer = client.get(f"{query}/v1/reports/{report_id}")
    return answer.status_code == 200 and answer.json()["applied"] is True


def test_ingest_killed_right_after_202_still_applies_every_acknowledged_report(
    fault_cluster: Cluster, redis_server: LocalRedis
) -> None:
    for name in ("ingest", "reconcile", "query"):
        fault_cluster.start(name)
    reports = helpers.make_reports("i9", 600, 10, seed=9)
    acked = helpers.Acked()
    unpublished_at_kill = []
    with httpx.Client(timeout=60) as client:
        for batch in helpers.batches(reports, 100):
            helpers.post_batch(client, fault_cluster.url("ingest"), batch, acked)
            fault_cluster.stop("ingest", kill=True)  # the very moment the 202s are out
            unpublished_at_kill.append(helpers.counts(fault_cluster.db_url)["outbox_pending"])
            fault_cluster.start("ingest")
        print(f"outbox events not yet confirmed at each kill: {unpublished_at_kill}")
        assert len(acked.reports) == len(reports)
        assert any(unpublished_at_kill), "every kill came after the work was done"

        query = fault_cluster.url("query")
        wait_for(
            lambda: helpers.converged(fault_cluster.db_url, redis_server.url, acked.events),
            timeout_s=90,
            interval_s=0.5,
        )
        not_applied = [r for r in acked.reports if not _applied(client, query, r)]
    assert not_applied == []
    c = helpers.counts(fault_cluster.db_url)
    assert c["events"] == c["distinct_event_ids"] == acked.events
    assert c["claims"] == acked.claims
