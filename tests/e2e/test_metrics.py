"""/metrics on the three services: operational gauges agree with what was sent."""

from __future__ import annotations

import threading
import time

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.events import stream_for
from tests.conftest import Cluster, wait_for
from tests.factories import claim, report

REPORTS = 12


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(url: str, name: str) -> float | None:
    return _scrape(url).get((name, ()))


def _per_stream(url: str, name: str) -> dict[str, float]:
    return {dict(labels)["stream"]: v for (n, labels), v in _scrape(url).items() if n == name}


def _hold_stream(url: str, subject: str, stop: threading.Event) -> None:
    with httpx.stream("GET", f"{url}/v1/stream", params={"subject": subject}, timeout=30) as r:
        for _ in r.iter_lines():
            if stop.is_set():
                return


def test_gauges_follow_the_pipeline(running: Cluster) -> None:
    ingest, reconcile, query = (running.url(n) for n in ("ingest", "reconcile", "query"))
    stored_before = _value(ingest, "claimledger_reports_stored") or 0.0
    for i in range(REPORTS):
        body = report(claim(subject=f"metrics-subject-{i}", value=1000 + i))
        assert httpx.post(f"{ingest}/v1/reports", json=body).status_code == 202

    wait_for(lambda: _value(ingest, "claimledger_reports_stored") == stored_before + REPORTS,
             timeout_s=15)
    wait_for(lambda: _value(ingest, "claimledger_outbox_depth") == 0, timeout_s=20)
    assert _value(ingest, "claimledger_outbox_oldest_age_seconds") == 0

    wait_for(lambda: (p := _per_stream(reconcile, "claimledger_stream_pending"))
             and all(v == 0 for v in p.values()), timeout_s=15)
    lag = _per_stream(reconcile, "claimledger_stream_lag")
    assert lag and all(v == 0 for v in lag.values())
    assert stream_for(0) in lag
    assert _value(reconcile, "claimledger_dead_letters") == 0

    # one poison entry: dead-lettered, and counted
    r = redis.Redis.from_url(running.redis_url)
    try:
        r.xadd(stream_for(0), {"__data__": b"\xff not an event"})
    finally:
        r.close()
    wait_for(lambda: _value(reconcile, "claimledger_dead_letters") == 1, timeout_s=15)

    # SSE subscribers: counted while open, gone after they close
    stop = threading.Event()
    threads = [threading.Thread(target=_hold_stream, args=(query, f"metrics-subject-{i}", stop),
                                daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: _value(query, "claimledger_sse_subscribers") == 3, timeout_s=10)
    finally:
        stop.set()
        # wake the readers: a new version on each subject makes every stream yield a line
        for i in range(3):
            body = report(claim(subject=f"metrics-subject-{i}", value=2000 + i))
            httpx.post(f"{ingest}/v1/reports", json=body)
        for t in threads:
            t.join(20)
    time.sleep(0.1)
    wait_for(lambda: _value(query, "claimledger_sse_subscribers") == 0, timeout_s=10)
