"""/metrics on the three services: counts, backlogs and latencies agree with what was sent.

Each service exposes what it owns (a counter of reports accepted means nothing on the
query service): ingest the acceptance counters and the outbox, reconcile the stream
backlogs per consumer group, the apply histogram and the dead letters, query the SSE
subscribers; every service its HTTP latency by route.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.events import CONSUMER_GROUP, stream_for
from tests.conftest import Cluster, system, wait_for
from tests.factories import claim, report

REPORTS = 12
PARTITIONS = 4
AUDIT = "audit"  # a consumer group nobody reads: its lag is everything ever published

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(url: str, name: str, **labels: str) -> float | None:
    return _scrape(url).get((name, tuple(sorted(labels.items()))))


def _names(url: str) -> set[str]:
    return {name for name, _ in _scrape(url)}


def _per_stream(url: str, name: str, group: str = CONSUMER_GROUP) -> dict[str, float]:
    return {
        dict(labels)["stream"]: v
        for (n, labels), v in _scrape(url).items()
        if n == name and dict(labels).get("group") == group
    }


def _partitions(values: dict[str, float]) -> dict[str, float]:
    return {s: v for s, v in values.items() if s in {stream_for(p) for p in range(PARTITIONS)}}


def _hold_stream(url: str, subject: str, stop: threading.Event) -> None:
    with httpx.stream("GET", f"{url}/v1/stream", params={"subject": subject}, timeout=30) as r:
        for _ in r.iter_lines():
            if stop.is_set():
                return


def _http_count(url: str, service: str, method: str, route: str, status: int) -> float:
    return (
        _value(
            url,
            "claimledger_http_request_seconds_count",
            service=service,
            method=method,
            route=route,
            status=str(status),
        )
        or 0.0
    )


def test_every_service_exposes_its_metrics_and_http_latency_by_route(tmp_path: Path) -> None:
    owned = {
        "ingest": {
            "claimledger_reports_accepted_total",
            "claimledger_claims_accepted_total",
            "claimledger_outbox_depth",
            "claimledger_outbox_oldest_age_seconds",
            "claimledger_reports_stored",
        },
        "reconcile": {
            "claimledger_stream_pending",
            "claimledger_stream_lag",
            "claimledger_dead_letters",
            "claimledger_events_applied_total",
            "claimledger_events_dead_lettered_total",
            "claimledger_apply_seconds_count",
            "claimledger_apply_seconds_bucket",
        },
        "query": {"claimledger_sse_subscribers"},
    }
    with system(tmp_path, "ingest", "reconcile", "query") as c:
        for name, metrics in owned.items():
            url = c.url(name)
            assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
            ready = httpx.get(f"{url}/readyz").json()
            assert ready["status"] == "ready"
            expected = {"database", "redis"} | ({"outbox"} if name == "ingest" else set())
            assert set(ready["dependencies"]) == expected
            assert all(v == "ok" for v in ready["dependencies"].values())
            wait_for(lambda u=url, m=metrics: m <= _names(u), timeout_s=10)  # type: ignore[misc]
            # the scrape above is timed by the middleware, labelled by its route
            assert _http_count(url, name, "GET", "/readyz", 200) >= 1


def test_counts_backlogs_and_latency_agree_with_what_was_sent(tmp_path: Path) -> None:
    with system(
        tmp_path,
        CLAIMLEDGER_PARTITIONS=str(PARTITIONS),
        CLAIMLEDGER_REPUBLISH_AFTER_S="600",  # no re-sends: stream entries == events sent
    ) as c:
        for name in ("ingest", "reconcile", "query"):
            c.start(name)
        ingest, query = c.url("ingest"), c.url("query")
        r = redis.Redis.from_url(c.redis_url)
        try:
            _load_and_check(c, r, ingest, query)
        finally:
            r.close()


def _load_and_check(c: Cluster, r: redis.Redis, ingest: str, query: str) -> None:
    # the reconciler made its groups; stop it so the backlog builds up in the outbox/streams
    c.stop("reconcile")
    for p in range(PARTITIONS):
        r.xgroup_create(stream_for(p), AUDIT, id="0", mkstream=True)

    bodies = [
        report(
            *[claim(subject=f"metrics-{i}-{k}", value=1000 + i + k) for k in range(1 + i % 3)],
            report_id=f"metrics-report-{i}",
        )
        for i in range(REPORTS)
    ]
    claims = sum(len(b["claims"]) for b in bodies)
    events = REPORTS + claims  # one ReportReceived + one ClaimAsserted per claim
    for body in bodies:
        assert httpx.post(f"{ingest}/v1/reports", json=body).status_code == 202
    assert httpx.post(f"{ingest}/v1/reports", json=bodies[0]).status_code == 200  # a retry

    assert _value(ingest, "claimledger_reports_accepted_total") == REPORTS
    assert _value(ingest, "claimledger_claims_accepted_total") == claims
    assert _http_count(ingest, "ingest", "POST", "/v1/reports", 202) == REPORTS
    assert _http_count(ingest, "ingest", "POST", "/v1/reports", 200) == 1
    wait_for(lambda: _value(ingest, "claimledger_reports_stored") == REPORTS, timeout_s=15)
    # nothing is applied while the reconciler is down: every event waits in the outbox
    wait_for(lambda: _value(ingest, "claimledger_outbox_depth") == events, timeout_s=15)
    wait_for(
        lambda: (_value(ingest, "claimledger_outbox_oldest_age_seconds") or 0) > 0, timeout_s=15
    )
    # ...and has been published once: the streams hold exactly the events sent
    wait_for(lambda: sum(r.xlen(stream_for(p)) for p in range(PARTITIONS)) == events, timeout_s=15)

    c.start("reconcile")
    reconcile = c.url("reconcile")

    def outbox(url: str) -> tuple[float | None, float | None]:
        # one scrape: the sampled gauges are the answering worker's, each worker sampling
        # every 2 s, so two scrapes may read two workers' samples taken apart
        got = _scrape(url)
        return got.get(("claimledger_outbox_depth", ())), got.get(
            ("claimledger_outbox_oldest_age_seconds", ())
        )

    seen: list[tuple[float | None, float | None]] = []

    def drained_outbox() -> bool:
        seen.append(outbox(ingest))
        return seen[-1][0] == 0

    wait_for(drained_outbox, timeout_s=30)
    assert seen[-1] == (0, 0)  # drained: no event waits, so no age, in the same sample
    wait_for(lambda: _value(reconcile, "claimledger_events_applied_total") == events, timeout_s=15)

    # the reconciler's group: everything delivered and acknowledged
    def drained() -> bool:
        pending = _partitions(_per_stream(reconcile, "claimledger_stream_pending"))
        lag = _partitions(_per_stream(reconcile, "claimledger_stream_lag"))
        return len(pending) == len(lag) == PARTITIONS and all(
            v == 0 for v in [*pending.values(), *lag.values()]
        )

    wait_for(drained, timeout_s=15)
    # the unread group: its lag is every entry published, split by partition
    audit_lag = _partitions(_per_stream(reconcile, "claimledger_stream_lag", AUDIT))
    assert audit_lag == {stream_for(p): float(r.xlen(stream_for(p))) for p in range(PARTITIONS)}
    assert sum(audit_lag.values()) == events
    # read some without acknowledging: they move from lag to pending
    busiest = max(audit_lag, key=lambda s: audit_lag[s])
    r.xreadgroup(AUDIT, "auditor", {busiest: ">"}, count=2)
    wait_for(
        lambda: _per_stream(reconcile, "claimledger_stream_pending", AUDIT).get(busiest) == 2,
        timeout_s=10,
    )
    lag_now = _per_stream(reconcile, "claimledger_stream_lag", AUDIT)[busiest]
    assert lag_now == audit_lag[busiest] - 2

    applies = _value(reconcile, "claimledger_apply_seconds_count") or 0
    assert applies > 0
    assert _value(reconcile, "claimledger_dead_letters") == 0

    # one poison entry: dead-lettered, and counted
    r.xadd(stream_for(0), {"__data__": b"\xff not an event"})
    wait_for(lambda: _value(reconcile, "claimledger_dead_letters") == 1, timeout_s=15)
    assert _value(reconcile, "claimledger_events_dead_lettered_total") == 1
    assert r.xlen("claimledger:dead") == 1
    wait_for(drained, timeout_s=15)
    assert _value(reconcile, "claimledger_events_applied_total") == events

    # query: reads are timed by route; SSE subscribers counted while open, gone after
    subject = "metrics-0-0"
    assert httpx.get(f"{query}/v1/consensus/{subject}/personnel_deployed").status_code == 200
    assert _http_count(query, "query", "GET", "/v1/consensus/{rest:path}", 200) >= 1
    stop = threading.Event()
    threads = [
        threading.Thread(target=_hold_stream, args=(query, f"metrics-{i}-0", stop), daemon=True)
        for i in range(3)
    ]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: _value(query, "claimledger_sse_subscribers") == 3, timeout_s=10)
    finally:
        stop.set()
        # wake the readers: a new version on each subject makes every stream yield a line
        for i in range(3):
            body = report(
                claim(subject=f"metrics-{i}-0", value=2000 + i), report_id=f"metrics-wake-{i}"
            )
            httpx.post(f"{ingest}/v1/reports", json=body)
        for t in threads:
            t.join(20)
    wait_for(lambda: _value(query, "claimledger_sse_subscribers") == 0, timeout_s=10)
    assert _value(ingest, "claimledger_reports_accepted_total") == REPORTS + 3
