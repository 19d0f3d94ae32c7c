"""The reconciler dies (kill -9) or is stopped (SIGTERM) mid-load: every acknowledged claim is
applied exactly once, and the projections equal a clean replay of the event log."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import BACKENDS, Cluster, wait_for
from tests.fault import helpers

pytestmark = pytest.mark.fault


def _assert_applied_exactly_once(cluster: Cluster, acked: helpers.Acked, tmp: Path) -> None:
    c = helpers.counts(cluster.db_url)
    assert c["events"] == acked.events, c
    assert c["distinct_event_ids"] == c["events"], "an event_id was stored twice"
    assert c["report_events"] == len(acked.reports)
    assert c["claim_events"] == c["claims"] == acked.claims
    assert c["outbox_pending"] == 0 and c["outbox_dead"] == 0, c
    assert helpers.claim_ids(cluster.db_url) == {
        cid for ids in acked.reports.values() for cid in ids
    }
    replayed = helpers.clean_replay(cluster.db_url, tmp / "replay")
    assert replayed.events == acked.events
    assert replayed.live_versions == replayed.replay_versions
    assert replayed.live_hash == replayed.replay_hash


def _ingest_url(cluster: Cluster) -> str | None:
    service = cluster.services.get("ingest")
    return service.url if service else None


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_reconciler_killed_five_times_applies_every_claim_once(
    fault_cluster: Cluster, redis_server: LocalRedis, tmp_path: Path
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(1_000_000))
    rnd = random.Random(seed)
    print(f"FAULT_SEED={seed}")  # set it to replay the same kill points and load
    for name in ("ingest", "reconcile"):
        fault_cluster.start(name)
    reports = helpers.make_reports("k9", 1000, 10, seed=seed)  # 10,000 claims
    loader = helpers.Loader(lambda: _ingest_url(fault_cluster), reports, batch_size=200)
    loader.start()

    # kill at random points of the apply phase: when the log passes random thresholds
    total_events = 1000 + 10_000
    thresholds = sorted(rnd.randrange(1, int(total_events * 0.7)) for _ in range(5))
    applied_at_kill = []
    for threshold in thresholds:
        wait_for(
            lambda t=threshold: helpers.applied_events(fault_cluster.db_url) >= t,
            timeout_s=120,
            interval_s=0.05,
        )
        fault_cluster.stop("reconcile", kill=True)
        applied_at_kill.append(helpers.applied_events(fault_cluster.db_url))
        time.sleep(rnd.uniform(0.0, 1.0))
        fault_cluster.start("reconcile")
    acked = loader.finish()
    print(f"applied events at each kill: {applied_at_kill}")
    assert acked.claims == 10_000
    assert applied_at_kill[-1] < acked.events  # the kills hit a moving load

    wait_for(
        lambda: helpers.converged(fault_cluster.db_url, redis_server.url, acked.events),
        timeout_s=180,
        interval_s=0.5,
    )
    _assert_applied_exactly_once(fault_cluster, acked, tmp_path)


def test_reconciler_stopped_by_sigterm_mid_load_leaves_nothing_pending_or_doubled(
    fault_cluster: Cluster, redis_server: LocalRedis, tmp_path: Path
) -> None:
    for name in ("ingest", "reconcile"):
        fault_cluster.start(name)
    reports = helpers.make_reports("term", 600, 10, seed=5)  # 6,000 claims
    loader = helpers.Loader(lambda: _ingest_url(fault_cluster), reports, batch_size=200)
    loader.start()
    # mid-load: some applied, and batches delivered to the consumer but not yet acknowledged
    wait_for(
        lambda: (
            helpers.applied_events(fault_cluster.db_url) > 1000
            and helpers.pending_entries(redis_server.url) > 0
        ),
        timeout_s=60,
    )
    service = fault_cluster.services.pop("reconcile")
    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(60)  # graceful: it exits by itself
    # uvicorn re-raises the signal after its graceful shutdown, hence -SIGTERM
    assert code in (0, -signal.SIGTERM), code
    assert "Traceback" not in service.log.read_text()
    stopped_at = helpers.applied_events(fault_cluster.db_url)
    # the in-flight batches were finished and acknowledged, not abandoned to the reclaimer
    assert helpers.pending_entries(redis_server.url) == 0

    acked = loader.finish()
    assert helpers.applied_events(fault_cluster.db_url) == stopped_at  # really stopped
    fault_cluster.start("reconcile")
    wait_for(
        lambda: helpers.converged(fault_cluster.db_url, redis_server.url, acked.events),
        timeout_s=120,
        interval_s=0.5,
    )
    assert helpers.pending_entries(redis_server.url) == 0
    _assert_applied_exactly_once(fault_cluster, acked, tmp_path)
