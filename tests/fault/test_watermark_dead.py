"""An event that cannot apply never holds back read-your-writes for other keys (#24 item 2).

The event goes through the outbox as a real write would (it has a seq, so it sits under
every later token), fails in the reconciler until it is dead-lettered, and meanwhile and
afterwards a write to another key is readable with its `min_token`.
"""

from __future__ import annotations

import httpx
import pytest
from redis import Redis

from services.infra.db import create_schema, make_engine
from services.ingest import outbox
from shared.events import CLAIM_ASSERTED, DEAD_LETTER_STREAM, SCHEMA_VERSION, Event, stream_for
from shared.timeaxes import now_iso
from tests.conftest import Cluster, wait_for
from tests.factories import claim, report

pytestmark = pytest.mark.fault


def _unappliable() -> Event:
    """Well formed (it decodes), but its claim lacks every field the reconciler needs: what
    a reconciler bug or an event ingest accepted before its validation was fixed looks like."""
    return Event(
        "e_watermark_unappliable",
        CLAIM_ASSERTED,
        SCHEMA_VERSION,
        now_iso(),
        "watermark-broken-report",
        {"claim": {"subject": "wm-broken"}},
        subject="wm-broken",
        attribute="personnel_deployed",
    )


def test_an_unappliable_event_holds_back_neither_other_keys_nor_anything_once_dead(
    fault_cluster: Cluster,
) -> None:
    engine = make_engine(fault_cluster.db_url)
    try:
        create_schema(engine)
        stuck = outbox.append_events(engine, [_unappliable()], [stream_for(0)])
    finally:
        engine.dispose()
    fault_cluster.start("ingest")
    # it fails for 3 deliveries 6 s apart before it is dead-lettered (the reads below take
    # less than 6 s)
    fault_cluster.start(
        "reconcile", CLAIMLEDGER_CLAIM_IDLE_MS="6000", CLAIMLEDGER_MAX_DELIVERIES="3"
    )
    fault_cluster.start("query", CLAIMLEDGER_MIN_TOKEN_WAIT_S="2")
    ingest, query = fault_cluster.url("ingest"), fault_cluster.url("query")
    posted = httpx.post(f"{ingest}/v1/reports", json=report(claim(subject="wm-other")))
    assert posted.status_code == 202, posted.text
    token = posted.json()["token"]
    assert int(token) > stuck

    # meanwhile: the other key's write is readable, the stuck one's subject is not
    other = httpx.get(
        f"{query}/v1/consensus/wm-other/personnel_deployed",
        params={"min_token": token},
        timeout=10,
    )
    assert other.status_code == 200, other.text
    assert other.json()["best"] == 12000
    redis = Redis.from_url(fault_cluster.redis_url)
    try:
        assert redis.xlen(DEAD_LETTER_STREAM) == 0  # still being retried
        broken = httpx.get(
            f"{query}/v1/consensus/wm-broken/personnel_deployed",
            params={"min_token": token},
            timeout=10,
        )
        assert broken.status_code == 504, broken.text

        # once dead-lettered, it holds back nothing (the global mark passes it)
        wait_for(lambda: redis.xlen(DEAD_LETTER_STREAM) >= 1, timeout_s=60)
    finally:
        redis.close()
    snapshot = httpx.get(f"{query}/v1/snapshot", params={"min_token": token}, timeout=10)
    assert snapshot.status_code == 200, snapshot.text
