"""`make bench`: claimledger's figures next to raw baselines measured in the same run.

Prints a table and appends it to bench/RESULTS.md. Sizes default to a run of a few minutes on
the 2-core machine; `--claims`, `--keys` and `--lookup-claims` scale it up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bench import scale
from bench.loadgen import LoadResult, Pool, encode_posts, post_all
from services.harness.cluster import Cluster
from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.infra.localredis import LocalRedis, free_port
from services.ingest.api import IngestContext, prepare_report
from services.query import views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, versions_t
from shared.attributes import AttributeRegistry
from shared.reports import ReportIn
from shared.timeaxes import MAX_TIME, iso

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
            {
                "subject": f"key{rnd.randrange(keys)}",
                "attribute": "personnel_deployed",
                "value": rnd.randrange(900, 1100),
                "attributed_to": f"origin{rnd.randrange(40)}",
            }
            for _ in range(per)
        ],
    }


def prepared_events(n_claims: int, keys: int, seed: int = 7, first: int = 0) -> list[Any]:
    """The events ingest would log for `n_claims` claims in reports of 10."""
    engine = make_engine("sqlite://")
    create_schema(engine)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    rnd = random.Random(seed + first)
    events: list[Any] = []
    for i in range(first, first + n_claims // 10):
        events += prepare_report(
            ReportIn.model_validate(report_body(i, keys, 10, rnd)), ctx, None
        ).events
    return events


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
            rows.append(
                {
                    "subject": f"key{k}",
                    "attribute": "personnel_deployed",
                    "version": v + 1,
                    "pub_from": pub_from,
                    "pub_to": MAX_TIME
                    if last
                    else iso(datetime.fromtimestamp(base + (v + 1) * 86400, UTC)),
                    "rec_from": pub_from,
                    "rec_to": MAX_TIME,
                    "status": "settled",
                    "cause_event_id": "e",
                    "cause_report_id": None,
                    "result": result,
                    "diff": "{}",
                }
            )
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


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants (ingest's workers),
    from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
            continue
    return total


def settle(pid: int, interval_s: float = 0.5, idle_share: float = 0.1, limit_s: float = 30) -> None:
    """Waits until the process tree `pid` is nearly idle: ready means one ingest worker
    answers, while the others may still be starting (imports, their batch processes), which
    the load's CPU figures would otherwise count and its rate would compete with."""
    deadline = time.monotonic() + limit_s
    last = tree_cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        now = tree_cpu_s(pid)
        if now - last < idle_share * interval_s:
            return
        last = now


def ingest_rates(
    tmp: Path,
    redis_url: str,
    batches: int,
    singles: int,
    workers: int | None = None,
    db_url: str | None = None,
) -> tuple[float, LoadResult, LoadResult, tuple[float, float]]:
    """claims/s through :batch (1,000 claims a request, 2 connections); single reports
    with 64 connections, against the ingest service and against bench.trivial (the same
    stack answering without doing anything), with the same client in the same run.
    `workers`: CLAIMLEDGER_INGEST_WORKERS for ingest (None: the service's default).
    Also the ingest processes' CPU per claim (:batch) and per single report, microseconds
    (/proc, around each load, the relay's work included; the figure that a machine shared
    with other work moves least). `db_url`: the database (default: a fresh SQLite file)."""
    cluster = Cluster(tmp, redis_url, db_url or f"sqlite:///{tmp / 'ingest.db'}")
    if workers is None:
        service = cluster.start("ingest")
    else:
        service = cluster.start("ingest", CLAIMLEDGER_INGEST_WORKERS=str(workers))
    url = cluster.url("ingest")
    rnd = random.Random(11)
    try:
        bodies = [
            [report_body(b * 100 + i, 10_000, 10, rnd) for i in range(100)] for b in range(batches)
        ]
        posts = encode_posts(url, "/v1/reports:batch", bodies)
        settle(service.process.pid)
        cpu = tree_cpu_s(service.process.pid)
        batch = asyncio.run(post_all(url, posts, 2))
        time.sleep(0.5)  # the relay sends the last events
        batch_us = (tree_cpu_s(service.process.pid) - cpu) * 1e6 / (batches * 1000)
        assert batch.statuses == {200: batches}, batch.statuses
        items = [report_body(600_000 + i, 10_000, 1, rnd) for i in range(singles)]
        posts = encode_posts(url, "/v1/reports", items)
        cpu = tree_cpu_s(service.process.pid)
        single = asyncio.run(post_all(url, posts, 64))
        time.sleep(0.5)
        single_us = (tree_cpu_s(service.process.pid) - cpu) * 1e6 / singles
        assert set(single.statuses) == {202}, single.statuses
    finally:
        cluster.stop_all()
    port = free_port()
    trivial = subprocess.Popen([sys.executable, "-m", "bench.trivial", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/healthz")
        floor = asyncio.run(post_all(base, encode_posts(base, "/v1/reports", items), 64))
    finally:
        trivial.terminate()
        trivial.wait()
    return batch.rate * 1000, single, floor, (batch_us, single_us)


@contextlib.contextmanager
def _ingest_database(server: str | None) -> Iterator[str | None]:
    """None (SQLite), or a fresh database on the PostgreSQL `server`, dropped afterwards."""
    if server is None:
        yield None
        return
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    name = f"claimledger_bench_ingest_{os.getpid()}_{int(time.time())}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Sustained:
    claims: int
    events: int
    post_rate: float  # claims/s accepted by ingest while the reconciler ran
    apply_rate: float  # events/s from the first applied to the last
    rss_mb: dict[str, float]
    db_path: Path


def sustained(tmp: Path, redis_url: str, claims: int, keys: int) -> Sustained:
    """The three services; `claims` claims over `keys` keys posted through :batch while the
    reconciler applies them (stream -> consensus -> SQL versions); the apply rate is
    measured from the first event applied to the last, and peak RSS read at the end."""
    db_path = tmp / "sustained.db"
    (tmp / "sustained").mkdir(exist_ok=True)
    cluster = Cluster(tmp / "sustained", redis_url, f"sqlite:///{db_path}")
    for name in ("ingest", "reconcile", "query"):
        cluster.start(name)
    url = cluster.url("ingest")
    rnd = random.Random(7)
    engine = make_engine(f"sqlite:///{db_path}")

    def applied() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one())

    first_applied: list[float] = []

    async def watch_first(stop: asyncio.Event) -> None:
        while not stop.is_set() and not first_applied:
            if await asyncio.to_thread(applied):
                first_applied.append(time.perf_counter())
            await asyncio.sleep(0.05)

    async def post() -> LoadResult:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_first(stop))
        result = LoadResult(0.0)
        for chunk in range(0, claims, 20_000):  # encode as we go: constant client memory
            bodies = [
                [report_body(chunk // 10 + b * 100 + i, keys, 10, rnd) for i in range(100)]
                for b in range(min(20_000, claims - chunk) // 1000)
            ]
            part = await post_all(url, encode_posts(url, "/v1/reports:batch", bodies), 2)
            assert set(part.statuses) == {200}, part.statuses
            result.seconds += part.seconds
            result.latencies_ms += part.latencies_ms
        stop.set()
        await watcher
        return result

    try:
        posted = asyncio.run(post())
        with engine.connect() as conn:
            total = int(conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar_one())
        deadline = time.monotonic() + max(600.0, claims / 100)
        done = applied()
        while done < total and time.monotonic() < deadline:
            time.sleep(0.2)
            done = applied()
        finished = time.perf_counter()
        rss = {name: peak_rss_mb(svc.process.pid) for name, svc in cluster.services.items()}
    finally:
        cluster.stop_all()
        engine.dispose()
    start = first_applied[0] if first_applied else finished
    return Sustained(
        claims, done, claims / posted.seconds, done / max(finished - start, 1e-9), rss, db_path
    )


def apply_in_batches(db_path: Path, events: list[Any], batch: int = 500) -> float:
    """Reconciler.apply over a fresh SQLite file, `batch` events per transaction (as the
    live consumer's batches); returns the seconds it took."""
    engine = make_engine(f"sqlite:///{db_path}")
    create_schema(engine)
    reconciler = Reconciler(REGISTRY)
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        reconciler.apply(engine, events[i : i + batch])
    return time.perf_counter() - start


def replay_rate(tmp: Path, source_path: Path) -> tuple[float, int, bool]:
    """Rebuilds every projection from the stored log into an empty database; the result
    must hash equal to the projection the live services built."""
    source = make_engine(f"sqlite:///{source_path}")
    target = make_engine(f"sqlite:///{tmp / 'replayed.db'}")
    start = time.perf_counter()
    count = replay(source, target, Reconciler(REGISTRY))
    rate = count / (time.perf_counter() - start)
    same = projection_hash(source) == projection_hash(target)
    return rate, count, same


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def end_to_end(
    tmp: Path, redis_url: str, rate: int, seconds: float
) -> tuple[list[float], int, list[str]]:
    """POST -> visible in a query, open loop at `rate` claims/s (reports of 10 claims,
    sent on a fixed schedule whatever the answers); returns latencies (ms) and failures.

    Visible = `GET /v1/consensus/{subject}/{attribute}?min_token=<the POST's token>`
    answers 200: the query service waits until the write's token is applied."""
    cluster = Cluster(tmp / "e2e", redis_url, f"sqlite:///{tmp / 'e2e.db'}")
    (tmp / "e2e").mkdir(exist_ok=True)
    for name in ("ingest", "reconcile", "query"):
        cluster.start(name)
    ingest, query = cluster.url("ingest"), cluster.url("query")
    rnd = random.Random(5)
    reports = int(rate * seconds) // 10
    bodies = [report_body(400_000 + i, 10_000, 10, rnd) for i in range(reports)]
    posts = encode_posts(ingest, "/v1/reports", bodies)
    latencies: list[float] = []
    reasons: list[str] = []

    async def drive() -> None:
        ingest_pool, query_pool = Pool(ingest), Pool(query)

        async def one(i: int) -> None:
            start = time.perf_counter()
            try:
                status, body = await ingest_pool.call(posts[i])
                if status != 202:
                    reasons.append(f"POST {status} {body[:200]!r}")
                    return
                token = json.loads(body)["token"]
                claim = bodies[i]["claims"][0]
                status, body = await query_pool.call(
                    query_pool.get(
                        f"/v1/consensus/{claim['subject']}/{claim['attribute']}?min_token={token}"
                    )
                )
                if status != 200:
                    reasons.append(f"GET {status} {body[:200]!r}")
                    return
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                reasons.append(repr(exc))
                return
            latencies.append((time.perf_counter() - start) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(reports):
            delay = start + i * 10 / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        ingest_pool.close()
        query_pool.close()

    try:
        asyncio.run(drive())
    finally:
        cluster.stop_all()
    return latencies, len(reasons), reasons[:3]


def peer_rates(tmp: Path, claims: int, keys: int) -> tuple[float, float, float]:
    """claims/s over append + project: claimledger, eventsourcing (FULL), (NORMAL)."""
    from bench.peer import eventsourcing_rate
    from shared.events import CLAIM_ASSERTED

    events = [e for e in prepared_events(claims, keys, seed=17) if e.type == CLAIM_ASSERTED]
    ours = len(events) / apply_in_batches(tmp / "peer-claimledger.db", events)
    plain = [
        (
            f"{e.subject}/{e.attribute}",
            e.payload.claim["claim_id"],
            float(e.payload.claim["value"]["best"]),
        )
        for e in events
    ]
    full = eventsourcing_rate(tmp, plain, "FULL")
    normal = eventsourcing_rate(tmp, plain, "NORMAL")
    return ours, full, normal


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--claims",
        type=int,
        default=200_000,
        help="sustained reconcile workload through the services (issue: 200k; "
        "1,000,000 for RSS at 1M)",
    )
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--lookup-claims", type=int, default=200_000)
    parser.add_argument("--lookup-keys", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20, help="x 1,000 claims via :batch")
    parser.add_argument("--singles", type=int, default=5_000)
    parser.add_argument("--e2e-rate", type=int, default=1_000, help="claims/s, open loop")
    parser.add_argument("--e2e-seconds", type=float, default=20.0)
    parser.add_argument("--peer-claims", type=int, default=20_000, help="issue: 100000")
    parser.add_argument(
        "--peer-keys",
        type=int,
        default=0,
        help="default: claims / 10, the density of the issue's 100k claims on 10k keys",
    )
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument(
        "--only-ingest",
        action="store_true",
        help="the raw baselines and the two ingest figures only (issue #21, ~1 minute)",
    )
    parser.add_argument(
        "--scale-claims",
        type=int,
        # 55,000 events: at 11,000 a run with two reconcilers drains in ~10 s, of which the
        # lease hand-over at start (one takes all partitions, then gives half away) is a
        # large share; throughput is what the figure is for (bench/RESULTS.md, issue 26)
        default=50_000,
        help="reconcile scale-out on PostgreSQL (bench/scale.py, 1 and 2 reconcilers); 0: skip",
    )
    parser.add_argument(
        "--only-scale", action="store_true", help="the scale-out figures only (issue #26)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only, no RESULTS.md")
    parser.add_argument(
        "--ingest-postgres",
        metavar="URL",
        default=None,
        help="the ingest figures on a fresh database of this PostgreSQL server "
        "(postgresql://user@host:port/db, a role that may CREATE DATABASE); default SQLite",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=None,
        help="CLAIMLEDGER_INGEST_WORKERS for the ingest figures (default: the service's)",
    )
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="claimledger-bench-"))
    server = LocalRedis(tmp / "redis", persist=False).start()
    rows: list[Row] = []
    began = time.perf_counter()
    try:
        if args.only_scale:
            rows += scale_out(args.scale_claims)
            _finish(rows, began, argv, args.no_record)
            return
        xadd = raw_xadd(server.url, 100_000)
        readack = raw_readgroup_ack(server.url, 100_000)
        sqlite_rate = raw_sqlite(tmp / "raw.db", 200_000)
        rows += [
            ("raw redis-py XADD, 1000/pipeline", f"{xadd:,.0f}/s", "baseline"),
            ("raw XREADGROUP COUNT 1000 + XACK", f"{readack:,.0f}/s", "baseline"),
            ("raw SQLite executemany (WAL, 1 txn)", f"{sqlite_rate:,.0f} rows/s", "baseline"),
        ]
        redis.Redis.from_url(server.url).flushall()
        with _ingest_database(args.ingest_postgres) as db_url:
            batch, single, floor, (batch_us, single_us) = ingest_rates(
                tmp, server.url, args.batches, args.singles, args.ingest_workers, db_url
            )
        s_lat = single.latencies_ms
        workers = "" if args.ingest_workers is None else f", {args.ingest_workers} worker(s)"
        if args.ingest_postgres:
            workers += ", PostgreSQL"
        rows += [
            (
                f"ingest POST /v1/reports:batch (1,000 claims each, 2 connections){workers}",
                f"{batch:,.0f} claims/s",
                f"{batch / xadd:.1%} of raw XADD (target >= 25%)",
            ),
            (
                f"ingest POST /v1/reports, 64 connections{workers}",
                f"{single.rate:,.0f} reports/s (p50 {pct(s_lat, 50):.0f} ms, "
                f"p99 {pct(s_lat, 99):.0f} ms)",
                f"{single.rate / floor.rate:.0%} of the trivial endpoint (target >= 2,500/s)",
            ),
            (
                "baseline: trivial FastAPI endpoint, same client",
                f"{floor.rate:,.0f} requests/s",
                "baseline",
            ),
            (
                f"ingest CPU per claim (:batch) / per single report{workers}",
                f"{batch_us:,.0f} us / {single_us:,.0f} us",
                f"all processes; one core: {1e6 / batch_us:,.0f} claims/s, "
                f"{1e6 / single_us:,.0f} reports/s",
            ),
        ]
        if args.only_ingest:
            _finish(rows, began, argv, args.no_record)
            return
        redis.Redis.from_url(server.url).flushall()
        run = sustained(tmp, server.url, args.claims, args.keys)
        rows += [
            (
                f"reconcile, sustained: {run.claims:,} claims on {args.keys:,} keys posted "
                f"through :batch ({run.events:,} events)",
                f"{run.apply_rate:,.0f} events/s",
                f"{run.apply_rate / readack:.1%} of raw read+ack (target >= 40%)",
            ),
            ("ingest :batch while the reconciler runs", f"{run.post_rate:,.0f} claims/s", "-"),
        ]
        rows += [
            (
                f"peak RSS {name} (after {run.claims:,} claims)",
                f"{mb:,.0f} MB",
                "target <= 300 MB at 1M" if name == "reconcile" else "-",
            )
            for name, mb in run.rss_mb.items()
        ]
        if not args.skip_replay:
            rate, count, same = replay_rate(tmp, run.db_path)
            rows += [
                (
                    f"replay: rebuild all projections from the stored log ({count:,} events)",
                    f"{rate:,.0f} events/s, projection hash "
                    + ("identical to the live one" if same else "DIFFERENT"),
                    "target >= 50,000/s",
                )
            ]
        redis.Redis.from_url(server.url).flushall()
        lat, failed, reasons = end_to_end(tmp, server.url, args.e2e_rate, args.e2e_seconds)
        if reasons:
            print(f"end to end: {failed} failed, first: {reasons[0]}")
        if lat:
            rows += [
                (
                    f"end to end POST -> visible, {args.e2e_rate:,} claims/s open loop "
                    f"({len(lat):,} reports, {failed} failed)",
                    f"p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms",
                    "target p99 <= 20 ms",
                )
            ]
        else:
            rows += [("end to end POST -> visible", f"all {failed} failed", "-")]
        peer_keys = args.peer_keys or max(1, args.peer_claims // 10)
        ours, es_full, es_normal = peer_rates(tmp, args.peer_claims, peer_keys)
        rows += [
            (
                f"peer: append + project {args.peer_claims:,} claims, claimledger "
                f"on {peer_keys:,} keys (SQLite WAL, synchronous=NORMAL)",
                f"{ours:,.0f} claims/s",
                f"{ours / es_normal:.2f}x eventsourcing at equal durability (target >= 3x)",
            ),
            (
                "peer: eventsourcing 9.5 on SQLite, synchronous=NORMAL",
                f"{es_normal:,.0f} claims/s",
                "equal durability",
            ),
            (
                "peer: eventsourcing 9.5 on SQLite, synchronous=FULL (its default)",
                f"{es_full:,.0f} claims/s",
                f"claimledger is {ours / es_full:.2f}x",
            ),
        ]
        a, r, snap = lookup_latency(tmp, args.lookup_claims, args.lookup_keys)
        rows += [
            (
                f"as_of lookup ({args.lookup_claims:,} versions / {args.lookup_keys:,} keys)",
                f"p50 {pct(a, 50):.2f} ms, p99 {pct(a, 99):.2f} ms",
                "target p99 <= 5 ms",
            ),
            (
                "recorded_as_of + as_of lookup",
                f"p50 {pct(r, 50):.2f} ms, p99 {pct(r, 99):.2f} ms",
                "target p99 <= 5 ms",
            ),
            (
                f"snapshot of {args.lookup_keys:,} keys (pages of 1,000)",
                f"{snap:.2f} s",
                "target <= 1 s",
            ),
        ]
        rows += scale_out(args.scale_claims)
    finally:
        server.stop(kill=True)
    _finish(rows, began, argv, args.no_record)


def scale_out(claims: int) -> list[Row]:
    """1 and 2 reconciler processes draining the same log on PostgreSQL (bench/scale.py),
    and the share of their apply time spent waiting for the writer lock (issue #26)."""
    if claims <= 0:
        return []
    args = scale.parse(["--claims", str(claims), "--keys", str(max(1, claims // 10))])
    args.reconcilers = [1, 2]
    try:
        run = scale.measure(args)
    except OperationalError as exc:  # no PostgreSQL server: say so, measure the rest
        return [("reconcile scale-out on PostgreSQL", "skipped", f"no server: {exc!s:.80}")]
    one, two, lock = run.rate(1), run.rate(2), run.locking(2)
    label = f"{run.events:,} events, {scale.PARTITIONS} partitions"
    return [
        (
            f"reconcile scale-out, PostgreSQL, 1 reconciler ({label})",
            f"{one:,.0f} events/s ({run.locking(1).cpu_s:.1f} CPU s)",
            "-",
        ),
        (
            "reconcile scale-out, PostgreSQL, 2 reconcilers",
            f"{two:,.0f} events/s ({lock.cpu_s:.1f} CPU s), projection hash "
            + ("equal to 1's" if run.same else "DIFFERENT"),
            f"{two / one:.2f}x of 1 reconciler (target >= 1.6x)",
        ),
        (
            "writer lock wait / apply time, 2 reconcilers",
            f"{lock.wait_share:.1%} (held {lock.held_share:.1%}, "
            f"{lock.held_s / run.events * 1e6:,.0f} us per event; "
            f"{lock.refolded} batches refolded)",
            "target < 5%",
        ),
    ]


def _finish(rows: list[Row], began: float, argv: list[str] | None, no_record: bool) -> None:
    wall = time.perf_counter() - began
    table = ["| measure | figure | ratio / target |", "|---|---|---|"]
    table += [f"| {m} | {f} | {b} |" for m, f, b in rows]
    print("\n".join(table))
    print(f"wall time {wall:.0f} s")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if no_record:
        return
    with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as out:
        out.write(
            f"\n## make bench, {stamp} ({platform.node()}, {platform.python_version()}, "
            f"{os.cpu_count()} cores, load average {load:.1f} at the end)\n\n"
            f"Command: `.venv/bin/python -m bench.run {' '.join(argv or [])}` "
            f"(wall time {wall:.0f} s)\n\n" + "\n".join(table) + "\n"
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
