"""Poison never blocks: undecodable entries and events that keep failing end in
`claimledger:dead` with their error, the group keeps going, and `claimledger dlq` re-drives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from services.infra.localredis import LocalRedis
from shared.events import CLAIM_ASSERTED, DEAD_LETTER_STREAM, SCHEMA_VERSION, Event, stream_for
from shared.timeaxes import now_iso
from tests.conftest import Cluster, wait_for
from tests.fault import helpers

pytestmark = pytest.mark.fault


@pytest.fixture
def redis(redis_server: LocalRedis) -> Iterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    client.close()


def _dlq(redis_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "dlq", *args],
        env={**os.environ, "CLAIMLEDGER_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _dead(redis: Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode(errors="replace") for k, v in fields.items()} | {"id": i.decode()}
        for i, fields in redis.xrange(DEAD_LETTER_STREAM)
    ]


def _failing_event(event_id: str) -> Event:
    """Well formed (it decodes), but its claim lacks every field the reconciler needs."""
    return Event(
        event_id,
        CLAIM_ASSERTED,
        SCHEMA_VERSION,
        now_iso(),
        "dlq-broken-report",
        {"claim": {"subject": "dlq-subject"}},
        subject="dlq-subject",
        attribute="personnel_deployed",
    )


def test_poison_and_repeatedly_failing_events_are_dead_lettered_while_the_rest_flow(
    fault_cluster: Cluster, redis_server: LocalRedis, redis: Redis
) -> None:
    for name in ("ingest", "reconcile"):
        fault_cluster.start(name, CLAIMLEDGER_CLAIM_IDLE_MS="500", CLAIMLEDGER_MAX_DELIVERIES="3")
    ingest = fault_cluster.url("ingest")
    before = helpers.Acked()
    with httpx.Client(timeout=30) as client:
        helpers.post_batch(client, ingest, helpers.make_reports("dl-a", 20, 5), before)
        wait_for(lambda: helpers.applied_events(fault_cluster.db_url) == before.events)

        redis.xadd(stream_for(0), {"__data__": b"\xff\x00 not an event"})
        failing = _failing_event("e_dlq_failing_claim")
        redis.xadd(stream_for(0), {"__data__": failing.to_json()})
        after = helpers.Acked()
        helpers.post_batch(client, ingest, helpers.make_reports("dl-b", 20, 5), after)

    expected = before.events + after.events
    wait_for(
        lambda: helpers.applied_events(fault_cluster.db_url) == expected, timeout_s=30
    )  # the poison did not block the partition
    wait_for(lambda: len(_dead(redis)) == 2, timeout_s=30)
    wait_for(lambda: helpers.pending_entries(redis_server.url) == 0, timeout_s=30)
    poison, failed = _dead(redis)
    assert poison["stream"] == failed["stream"] == stream_for(0)
    assert poison["error"].startswith("poison")
    assert "failed to apply 3 times" in failed["error"]
    assert json.loads(failed["data"])["event_id"] == failing.event_id
    c = helpers.counts(fault_cluster.db_url)
    assert c["events"] == c["distinct_event_ids"] == expected

    listed = _dlq(redis_server.url, "list")
    assert poison["id"] in listed and failed["id"] in listed
    assert "poison" in listed and "failed to apply 3 times" in listed

    # re-drive only the failing event: it fails again and returns with a fresh error
    assert "re-driven 1 entries" in _dlq(redis_server.url, "redrive", failed["id"])
    wait_for(
        lambda: [d["data"] for d in _dead(redis)] == [poison["data"], failed["data"]],
        timeout_s=30,
    )
    assert _dead(redis)[1]["id"] != failed["id"]

    # a dead letter whose cause is gone is applied once re-driven (a good event that was
    # dead-lettered, e.g. during a database outage; the group still consumes)
    good = Event(
        "e_dlq_good_report",
        "ReportReceived",
        SCHEMA_VERSION,
        now_iso(),
        "dlq-good-report",
        {
            "source": {"id": "dlq", "kind": "other"},
            "published_at": "2025-03-01T00:00:00.000000Z",
            "report_id": "dlq-good-report",
            "claim_ids": [],
        },  # as ingest writes it: a ReportReceived without its source is poison
    )
    good_entry = redis.xadd(
        DEAD_LETTER_STREAM,
        {
            "stream": stream_for(1),
            "entry_id": "0-1",
            "error": "database unavailable",
            "failed_at": now_iso(),
            "data": good.to_json(),
        },
    ).decode()
    assert "re-driven 1 entries" in _dlq(redis_server.url, "redrive", good_entry)
    wait_for(lambda: helpers.applied_events(fault_cluster.db_url) == expected + 1, timeout_s=30)
    wait_for(lambda: helpers.pending_entries(redis_server.url) == 0, timeout_s=30)
    assert len(_dead(redis)) == 2

    # re-drive everything: the poison is poison again, nothing is applied twice
    assert "re-driven 2 entries" in _dlq(redis_server.url, "redrive")
    wait_for(lambda: len(_dead(redis)) == 2, timeout_s=30)
    wait_for(lambda: helpers.pending_entries(redis_server.url) == 0, timeout_s=30)
    c = helpers.counts(fault_cluster.db_url)
    assert c["events"] == c["distinct_event_ids"] == expected + 1
