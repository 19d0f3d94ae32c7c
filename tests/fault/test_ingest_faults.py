"""Ingest under faults: killed (kill -9) right after answering 202, its database locked."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from services.infra.localredis import LocalRedis
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


LOCKED_ENV = {
    "CLAIMLEDGER_SQLITE_BUSY_TIMEOUT_MS": "500",  # a lock held longer fails a statement
    "CLAIMLEDGER_OUTBOX_MAX_AGE_S": "1",
}


def _outbox_stuck(url: str) -> bool:
    status, body = helpers.readiness(url)
    return (
        status == 503
        and body["dependencies"].get("outbox") == "unavailable"
        and "unpublished" in body.get("reasons", {}).get("outbox", "")
    )


def test_write_lock_held_past_the_busy_timeout_is_survived_logged_and_shown_in_readyz(
    fault_cluster: Cluster, redis_server: LocalRedis
) -> None:
    """Acknowledged events must not wait for a restart when SQLite's write lock is held
    past the busy timeout (issue #24 item 1): the relay's failure is logged at once, the
    relay retries, /readyz names the stuck outbox, and posts meanwhile answer 503."""
    ingest = fault_cluster.start("ingest", **LOCKED_ENV)
    for name in ("reconcile", "query"):
        fault_cluster.start(name)
    url = ingest.url
    acked = helpers.Acked()
    with httpx.Client(timeout=30) as client:
        helpers.post_batch(client, url, helpers.make_reports("lk-before", 40, 5, seed=1), acked)
        # Redis gone: what is acknowledged now stays unsent in the outbox
        redis_server.stop(kill=True)
        helpers.post_batch(client, url, helpers.make_reports("lk-outage", 40, 5, seed=2), acked)
        wait_for(lambda: _outbox_stuck(url), timeout_s=15)

        # the write lock held from another connection, then Redis back: the relay sends
        # the stuck events but cannot record it in SQL for as long as the lock is held
        path = fault_cluster.db_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            holder.execute("BEGIN IMMEDIATE")
            redis_server.start()
            wait_for(lambda: "database is locked" in ingest.log.read_text(), timeout_s=20)
            assert "outbox-relay" in ingest.log.read_text()
            status, body = helpers.readiness(url)
            assert status == 503 and body["dependencies"]["outbox"] == "unavailable", body
            refused = client.post(
                f"{url}/v1/reports:batch", json=helpers.make_reports("lk-refused", 2, 2)
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
        finally:
            holder.rollback()
            holder.close()

        # the same ingest process, never restarted, delivers everything acknowledged
        helpers.post_batch(client, url, helpers.make_reports("lk-after", 40, 5, seed=3), acked)
        wait_for(
            lambda: helpers.converged(fault_cluster.db_url, redis_server.url, acked.events),
            timeout_s=60,
            interval_s=0.3,
        )
        not_applied = [
            r for r in acked.reports if not _applied(client, fault_cluster.url("query"), r)
        ]
    assert not_applied == []
    assert ingest.process.poll() is None
    wait_for(lambda: helpers.readiness(url)[0] == 200, timeout_s=15)
    c = helpers.counts(fault_cluster.db_url)
    assert c["events"] == c["distinct_event_ids"] == acked.events
