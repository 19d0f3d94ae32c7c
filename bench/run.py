"""`make bench`: claimledger's figures next to raw baselines measured in the same run.

Prints a table and appends it to bench/RESULTS.md. Sizes default to a run of a few minutes on
the 2-core machine; `--claims`, `--keys` and `--lookup-claims` scale it up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from services.db import create_schema, make_engine
from services.ingest.api import IngestContext, prepare_report
from services.keys import KeyChecker
from services.localredis import LocalRedis
from services.query import views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, versions_t
from shared.attributes import AttributeRegistry
from shared.reports import ReportIn
from shared.timeaxes import MAX_TIME, iso
from tests.conftest import Cluster

REGISTRY = AttributeRegistry.load()
Row = tuple[str, str, str]  # (measure, figure, against baseline)


def raw_xadd(url: str, n: int) -> float:
    client = redis.Redis.from_url(url)
    body = {"__data__": b"x" * 600}
    start = time.perf_counter()
    for i in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(1000, n - i)):
            pipe.xadd("bench:raw", body)
        pipe.execute()
    return n / (time.perf_counter() - start)


def raw_readgroup_ack(url: str, n: int) -> float:
    client = redis.Redis.from_url(url)
    client.xgroup_create("bench:raw", "g", id="0")
    start, done = time.perf_counter(), 0
    while done < n:
        reply = client.xreadgroup("g", "c", {"bench:raw": ">"}, count=1000)
        if not reply:
            break
        ids = [entry[0] for entry in reply[0][1]]
        client.xack("bench:raw", "g", *ids)
        done += len(ids)
    return done / (time.perf_counter() - start)


def raw_sqlite(path: Path, n: int) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT)")
    rows = [(f"k{i}", "v" * 200) for i in range(n)]
    start = time.perf_counter()
    with db:
        db.executemany("INSERT INTO t (k, v) VALUES (?, ?)", rows)
    return n / (time.perf_counter() - start)


def report_body(i: int, keys: int, per: int, rnd: random.Random) -> dict[str, Any]:
    # publication times mostly increase, as in a live feed
    return {
        "report_id": f"bench-{i}",
        "source": {"id": f"src{i % 97}", "kind": "news"},
        "published_at": iso(datetime.fromtimestamp(1735689600 + i * 60, UTC)),
        "claims": [
            {"subject": f"key{rnd.randrange(keys)}", "attribute": "personnel_deployed",
             "value": rnd.randrange(900, 1100), "attributed_to": f"origin{rnd.randrange(40)}"}
            for _ in range(per)
        ],
    }


def reconcile_rate(tmp: Path, claims: int, keys: int) -> tuple[float, float, bool]:
    engine = make_engine(f"sqlite:///{tmp / 'reconcile.db'}")
    create_schema(engine)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    rnd = random.Random(7)
    events = []
    for i in range(claims // 10):
        events += prepare_report(ReportIn.model_validate(report_body(i, keys, 10, rnd)), ctx,
                                 None).events
    reconciler = Reconciler(REGISTRY)
    start = time.perf_counter()
    for i in range(0, len(events), 500):
        reconciler.apply(engine, events[i : i + 500])
    elapsed = time.perf_counter() - start
    target = make_engine(f"sqlite:///{tmp / 'replayed.db'}")
    start = time.perf_counter()
    replay(engine, target, Reconciler(REGISTRY))
    replayed = len(events) / (time.perf_counter() - start)
    same = projection_hash(engine) == projection_hash(target)
    return len(events) / elapsed, replayed, same


def prepared_events(n_claims: int, keys: int, seed: int = 7, first: int = 0) -> list[Any]:
    """The events ingest would log for `n_claims` claims in reports of 10."""
    engine = make_engine("sqlite://")
    create_schema(engine)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    rnd = random.Random(seed + first)
    events: list[Any] = []
    for i in range(first, first + n_claims // 10):
        events += prepare_report(ReportIn.model_validate(report_body(i, keys, 10, rnd)), ctx,
                                 None).events
    return events


def replay_rate(tmp: Path, n_events: int, keys: int) -> tuple[float, int]:
    """Replay from a stored log of about `n_events` (written straight into the event table,
    as a reconciler would have logged them) into an empty database."""
    from services.reconcile.store import events_t

    source = make_engine(f"sqlite:///{tmp / 'log.db'}")
    create_schema(source)
    claims = n_events * 10 // 11  # one ReportReceived event per 10 claims
    for first in range(0, claims // 10, 2_000):  # 20,000 claims at a time
        events = prepared_events(min(20_000, claims - first * 10), keys, seed=13, first=first)
        with source.begin() as conn:
            conn.execute(events_t.insert(), [
                {"event_id": e.event_id, "type": e.type, "report_id": e.report_id,
                 "subject": e.subject, "attribute": e.attribute, "recorded_at": e.recorded_at,
                 "body": e.to_json()} for e in events])
    target = make_engine(f"sqlite:///{tmp / 'log-replayed.db'}")
    start = time.perf_counter()
    count = replay(source, target, Reconciler(REGISTRY))
    return count / (time.perf_counter() - start), count


def lookup_latency(tmp: Path, claims: int, keys: int) -> tuple[list[float], list[float], float]:
    """Synthetic bitemporal history: `claims` versions over `keys`, then indexed lookups."""
    engine = make_engine(f"sqlite:///{tmp / 'lookup.db'}")
    create_schema(engine)
    per_key = max(1, claims // keys)
    result = '{"status": "settled", "best": 1000, "low": 900, "high": 1100}'
    rows: list[dict[str, Any]] = []
    base = 1735689600
    for k in range(keys):
        for v in range(per_key):
            pub_from = iso(datetime.fromtimestamp(base + v * 86400, UTC))
            last = v == per_key - 1
            rows.append({
                "subject": f"key{k}", "attribute": "personnel_deployed", "version": v + 1,
                "pub_from": pub_from,
                "pub_to": MAX_TIME if last else iso(datetime.fromtimestamp(base + (v + 1) * 86400,
                                                                            UTC)),
                "rec_from": pub_from, "rec_to": MAX_TIME, "status": "settled",
                "cause_event_id": "e", "cause_report_id": None, "result": result, "diff": "{}",
            })
        if len(rows) > 50_000:
            with engine.begin() as conn:
                conn.execute(versions_t.insert(), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(versions_t.insert(), rows)
    rnd = random.Random(3)

    def timed(fn: Callable[[], Any], n: int = 2000) -> list[float]:
        out = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
        return out

    def as_of() -> Any:
        day = rnd.randrange(per_key)
        t = iso(datetime.fromtimestamp(base + day * 86400 + 3600, UTC))
        return views.consensus(engine, f"key{rnd.randrange(keys)}", "personnel_deployed", t, None)

    def recorded() -> Any:
        day = rnd.randrange(per_key)
        t = iso(datetime.fromtimestamp(base + day * 86400 + 3600, UTC))
        return views.consensus(engine, f"key{rnd.randrange(keys)}", "personnel_deployed", t, t)

    a, r = timed(as_of), timed(recorded)
    start, after = time.perf_counter(), None
    while True:
        page = views.snapshot(engine, None, None, after, 1000)
        if not page:
            break
        after = (page[-1]["subject"], page[-1]["attribute"])
    return a, r, time.perf_counter() - start


def ingest_rates(tmp: Path, redis_url: str, batches: int, singles: int) -> tuple[float, float]:
    cluster = Cluster(tmp, redis_url, f"sqlite:///{tmp / 'ingest.db'}")
    cluster.start("ingest")
    url = cluster.url("ingest")
    rnd = random.Random(11)
    try:
        bodies = [[report_body(b * 100 + i, 10_000, 10, rnd) for i in range(100)]
                  for b in range(batches)]
        with httpx.Client(timeout=60) as client:
            start = time.perf_counter()
            for body in bodies:
                assert client.post(f"{url}/v1/reports:batch", json=body).status_code == 200
            batch_rate = batches * 1000 / (time.perf_counter() - start)

        async def post_singles() -> float:
            items = [report_body(600_000 + i, 10_000, 1, rnd) for i in range(singles)]
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            for item in items:
                queue.put_nowait(item)
            async with httpx.AsyncClient(timeout=60) as client:

                async def worker() -> None:
                    while not queue.empty():
                        item = queue.get_nowait()
                        answer = await client.post(f"{url}/v1/reports", json=item)
                        assert answer.status_code == 202, answer.text

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(64)))
                return singles / (time.perf_counter() - start)

        return batch_rate, asyncio.run(post_singles())
    finally:
        cluster.stop_all()


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def end_to_end(tmp: Path, redis_url: str, rate: int, seconds: float, rss_claims: int
               ) -> tuple[list[float], int, dict[str, float], int]:
    """POST -> visible in a query, open loop at `rate` claims/s (reports of 10 claims,
    sent on a fixed schedule whatever the answers), then optionally `rss_claims` more
    through :batch; returns latencies (ms), failures, peak RSS per service (MB), and the
    claims the reconciler had applied when RSS was read.

    Visible = `GET /v1/consensus/{subject}/{attribute}?min_token=<the POST's token>`
    answers 200: the query service waits until the write's token is applied."""
    cluster = Cluster(tmp / "e2e", redis_url, f"sqlite:///{tmp / 'e2e.db'}")
    (tmp / "e2e").mkdir(exist_ok=True)
    for name in ("ingest", "reconcile", "query"):
        cluster.start(name)
    ingest, query = cluster.url("ingest"), cluster.url("query")
    rnd = random.Random(5)
    reports = int(rate * seconds) // 10
    latencies: list[float] = []
    failures = 0
    reasons: list[str] = []

    async def one(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        nonlocal failures
        start = time.perf_counter()
        try:
            posted = await client.post(f"{ingest}/v1/reports", json=body)
            token = posted.json()["token"]
            claim = body["claims"][0]
            got = await client.get(
                f"{query}/v1/consensus/{claim['subject']}/{claim['attribute']}",
                params={"min_token": token})
            if posted.status_code != 202 or got.status_code != 200:
                failures += 1
                reasons.append(f"POST {posted.status_code}, GET {got.status_code} {got.text[:200]}")
                return
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            failures += 1
            reasons.append(repr(exc))
            return
        latencies.append((time.perf_counter() - start) * 1000)

    async def drive() -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            tasks = []
            start = time.perf_counter()
            for i in range(reports):
                delay = start + i * 10 / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = report_body(400_000 + i, 10_000, 10, rnd)
                tasks.append(asyncio.create_task(one(client, body)))
            await asyncio.gather(*tasks)

    try:
        asyncio.run(drive())
        if reasons:
            print(f"end to end: {failures} failed, first: {reasons[0]}")
        fed = reports * 10
        if rss_claims:
            with httpx.Client(timeout=120) as client:
                for b in range(0, rss_claims, 1000):
                    body = [report_body(450_000 + b // 10 + i, 10_000, 10, rnd)
                            for i in range(100)]
                    assert client.post(f"{ingest}/v1/reports:batch", json=body).status_code == 200
                fed += rss_claims
                # wait until the reconciler has applied everything (bounded)
                engine = make_engine(cluster.db_url)
                deadline = time.monotonic() + max(600.0, rss_claims / 200)
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        pending = conn.exec_driver_sql(
                            "SELECT count(*) FROM outbox WHERE state = 0").scalar()
                    if not pending:
                        break
                    time.sleep(2)
        rss = {name: peak_rss_mb(svc.process.pid) for name, svc in cluster.services.items()}
    finally:
        cluster.stop_all()
    return latencies, failures, rss, fed


def peer_rates(tmp: Path, claims: int, keys: int) -> tuple[float, float, float]:
    """claims/s over append + project: claimledger, eventsourcing (FULL), (NORMAL)."""
    from bench.peer import eventsourcing_rate
    from shared.events import CLAIM_ASSERTED

    events = [e for e in prepared_events(claims, keys, seed=17) if e.type == CLAIM_ASSERTED]
    engine = make_engine(f"sqlite:///{tmp / 'peer-claimledger.db'}")
    create_schema(engine)
    reconciler = Reconciler(REGISTRY)
    start = time.perf_counter()
    for i in range(0, len(events), 500):
        reconciler.apply(engine, events[i : i + 500])
    ours = len(events) / (time.perf_counter() - start)
    plain = [(f"{e.subject}/{e.attribute}", e.payload["claim"]["claim_id"],
              float(e.payload["claim"]["value"]["best"])) for e in events]
    full = eventsourcing_rate(tmp, plain, "FULL")
    normal = eventsourcing_rate(tmp, plain, "NORMAL")
    return ours, full, normal


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000, help="reconcile workload")
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--lookup-claims", type=int, default=200_000)
    parser.add_argument("--lookup-keys", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20, help="x 1,000 claims via :batch")
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--e2e-rate", type=int, default=1_000, help="claims/s, open loop")
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    parser.add_argument("--rss-claims", type=int, default=0,
                        help="more claims through :batch before reading peak RSS (full: 1000000)")
    parser.add_argument("--replay-events", type=int, default=22_000, help="full: 1000000")
    parser.add_argument("--peer-claims", type=int, default=5_000, help="full: 100000")
    parser.add_argument("--peer-keys", type=int, default=1_000)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="claimledger-bench-"))
    server = LocalRedis(tmp / "redis", persist=False).start()
    rows: list[Row] = []
    began = time.perf_counter()
    try:
        xadd = raw_xadd(server.url, 100_000)
        readack = raw_readgroup_ack(server.url, 100_000)
        sqlite_rate = raw_sqlite(tmp / "raw.db", 200_000)
        rows += [("raw redis-py XADD, 1000/pipeline", f"{xadd:,.0f}/s", "baseline"),
                 ("raw XREADGROUP COUNT 1000 + XACK", f"{readack:,.0f}/s", "baseline"),
                 ("raw SQLite executemany (WAL, 1 txn)", f"{sqlite_rate:,.0f} rows/s",
                  "baseline")]
        batch, single = ingest_rates(tmp, server.url, args.batches, args.singles)
        rows += [("ingest POST /v1/reports:batch", f"{batch:,.0f} claims/s",
                  f"{batch / xadd:.1%} of raw XADD (target >= 25%)"),
                 ("ingest POST /v1/reports, 64 clients", f"{single:,.0f} reports/s",
                  "target >= 2,500/s")]
        applied, replayed, same = reconcile_rate(tmp, args.claims, args.keys)
        rows += [(f"reconcile apply ({args.claims:,} claims, {args.keys:,} keys)",
                  f"{applied:,.0f} events/s",
                  f"{applied / readack:.1%} of raw read+ack (target >= 40%)"),
                 ("replay of that log", f"{replayed:,.0f} events/s, projection hash "
                  + ("identical" if same else "DIFFERENT"), "hash must be identical")]
        rate, count = replay_rate(tmp, args.replay_events, args.keys)
        rows += [(f"replay (rebuild all projections, {count:,} events)",
                  f"{rate:,.0f} events/s", "target >= 50,000/s")]
        lat, failed, rss, fed = end_to_end(tmp, server.url, args.e2e_rate, args.e2e_seconds,
                                           args.rss_claims)
        if lat:
            rows += [(f"end to end POST -> visible, {args.e2e_rate:,} claims/s open loop "
                      f"({len(lat):,} reports, {failed} failed)",
                      f"p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, "
                      f"max {max(lat):.0f} ms", "target p99 <= 20 ms")]
        else:
            rows += [("end to end POST -> visible", f"all {failed} failed", "-")]
        rows += [(f"peak RSS {name} (after {fed:,} claims)", f"{mb:,.0f} MB",
                  "target <= 300 MB at 1M" if name == "reconcile" else "-")
                 for name, mb in rss.items()]
        ours, es_full, es_normal = peer_rates(tmp, args.peer_claims, args.peer_keys)
        rows += [(f"peer: append + project {args.peer_claims:,} claims, claimledger "
                  "(SQLite WAL, synchronous=NORMAL)", f"{ours:,.0f} claims/s",
                  f"{ours / es_normal:.2f}x eventsourcing at equal durability (target >= 3x)"),
                 ("peer: eventsourcing 9.5 on SQLite, synchronous=NORMAL",
                  f"{es_normal:,.0f} claims/s", "equal durability"),
                 ("peer: eventsourcing 9.5 on SQLite, synchronous=FULL (its default)",
                  f"{es_full:,.0f} claims/s", f"claimledger is {ours / es_full:.2f}x")]
        a, r, snap = lookup_latency(tmp, args.lookup_claims, args.lookup_keys)
        rows += [(f"as_of lookup ({args.lookup_claims:,} versions / {args.lookup_keys:,} keys)",
                  f"p50 {pct(a, 50):.2f} ms, p99 {pct(a, 99):.2f} ms", "target p99 <= 5 ms"),
                 ("recorded_as_of + as_of lookup",
                  f"p50 {pct(r, 50):.2f} ms, p99 {pct(r, 99):.2f} ms", "target p99 <= 5 ms"),
                 (f"snapshot of {args.lookup_keys:,} keys (pages of 1,000)", f"{snap:.2f} s",
                  "target <= 1 s")]
    finally:
        server.stop(kill=True)
    wall = time.perf_counter() - began
    table = ["| measure | figure | ratio / target |", "|---|---|---|"]
    table += [f"| {m} | {f} | {b} |" for m, f, b in rows]
    print("\n".join(table))
    print(f"wall time {wall:.0f} s")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as out:
        out.write(f"\n## make bench, {stamp} ({platform.node()}, {platform.python_version()}, "
                  f"{os.cpu_count()} cores, load average {load:.1f} at the end)\n\n"
                  f"Command: `.venv/bin/python -m bench.run {' '.join(argv or [])}` "
                  f"(wall time {wall:.0f} s)\n\n"
                  + "\n".join(table) + "\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
