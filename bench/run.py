"""`make bench`: claimledger's figures next to raw baselines measured in the same run.

Prints a table and appends it to bench/RESULTS.md. Sizes default to a run of a few minutes on
the 2-core machine; `--claims`, `--keys` and `--lookup-claims` scale it up.
"""

from __future__ import annotations

import argparse
import asyncio
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


def reconcile_rate(tmp: Path, claims: int, keys: int) -> tuple[float, float]:
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
    from services.reconcile.replay import replay

    target = make_engine(f"sqlite:///{tmp / 'replayed.db'}")
    start = time.perf_counter()
    replay(engine, target, Reconciler(REGISTRY))
    return len(events) / elapsed, len(events) / (time.perf_counter() - start)


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
            items = [report_body(10_000_000 + i, 10_000, 1, rnd) for i in range(singles)]
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            for item in items:
                queue.put_nowait(item)
            async with httpx.AsyncClient(timeout=60) as client:

                async def worker() -> None:
                    while not queue.empty():
                        item = queue.get_nowait()
                        await client.post(f"{url}/v1/reports", json=item)

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(64)))
                return singles / (time.perf_counter() - start)

        return batch_rate, asyncio.run(post_singles())
    finally:
        cluster.stop_all()


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
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="claimledger-bench-"))
    server = LocalRedis(tmp / "redis", persist=False).start()
    rows: list[Row] = []
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
                  f"{batch / xadd:.1%} of raw XADD"),
                 ("ingest POST /v1/reports, 64 clients", f"{single:,.0f} reports/s", "-")]
        applied, replayed = reconcile_rate(tmp, args.claims, args.keys)
        rows += [(f"reconcile apply ({args.claims:,} claims, {args.keys:,} keys)",
                  f"{applied:,.0f} events/s", f"{applied / readack:.1%} of raw read+ack"),
                 ("replay (rebuild all projections)", f"{replayed:,.0f} events/s", "-")]
        a, r, snap = lookup_latency(tmp, args.lookup_claims, args.lookup_keys)
        rows += [(f"as_of lookup ({args.lookup_claims:,} versions / {args.lookup_keys:,} keys)",
                  f"p50 {pct(a, 50):.2f} ms, p99 {pct(a, 99):.2f} ms", "target p99 <= 5 ms"),
                 ("recorded_as_of + as_of lookup",
                  f"p50 {pct(r, 50):.2f} ms, p99 {pct(r, 99):.2f} ms", "target p99 <= 5 ms"),
                 (f"snapshot of {args.lookup_keys:,} keys (pages of 1,000)", f"{snap:.2f} s",
                  "target <= 1 s")]
    finally:
        server.stop(kill=True)
    table = ["| measure | figure | ratio / target |", "|---|---|---|"]
    table += [f"| {m} | {f} | {b} |" for m, f, b in rows]
    print("\n".join(table))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as out:
        out.write(f"\n## make bench, {stamp} ({platform.node()}, {platform.python_version()})\n\n"
                  f"Command: `.venv/bin/python -m bench.run {' '.join(argv or [])}`\n\n"
                  + "\n".join(table) + "\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
