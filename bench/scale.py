"""Reconcile scale-out (issue 12): drain throughput with 1, 2 and 3 reconciler processes on
PostgreSQL, same workload each time, plus the raw XREADGROUP+XACK baseline.

Run: .venv/bin/python -m bench.scale [--claims 50000 --keys 5000 --reconcilers 1 2 3]
     [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

1. A real ingest process (`claimledger serve ingest`, CLAIMLEDGER_PARTITIONS=4) takes the
   claims through `POST /v1/reports:batch`; its relay fills the four partition streams. No
   reconciler runs yet. Ingest is then stopped; its database becomes the template.
2. Baseline: one process reads every stream with XREADGROUP COUNT 1000 and XACKs (another
   group), decoding nothing: the ceiling Redis and redis-py put on consumption here.
3. For N in --reconcilers: a fresh copy of the template database (CREATE DATABASE ...
   TEMPLATE), the consumer group re-created at 0, then N `claimledger serve reconcile`
   processes started together; the drain time runs from the first applied event to the last
   (so process start-up is left out; partition hand-over between the starting reconcilers
   is in). Every run ends with the event count checked and the projection hash compared with
   the 1-reconciler run (same log content -> same versions).
Prints a Markdown table for bench/RESULTS.md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.harness import load as helpers
from services.harness.cluster import Cluster, Service
from services.infra.db import make_engine
from services.infra.localredis import LocalRedis, free_port
from services.reconcile.partitions import MEMBERS_KEY, lease_key
from services.reconcile.replay import projection_hash
from shared.events import CONSUMER_GROUP, stream_for

PARTITIONS = 4


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def _db_url(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


class _Progress:
    """How many events are applied, asked every 100 ms while the reconcilers drain, on ONE
    connection and mostly by the events' primary key: a new engine and a count(*) over the
    events table each time took 10-20 % of a core on this 2-core machine, CPU the measured
    reconcilers then did not get. Positions can skip a number (a refolded batch's rolled-back
    insert), so a maximum that reached the target is confirmed by counting."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.conn = self.engine.connect()

    def applied(self, target: int) -> int:
        last = self.conn.execute(text("SELECT coalesce(max(position), 0) FROM events")).scalar_one()
        self.conn.rollback()  # a fresh snapshot next time
        if int(last) < target:
            return int(last)
        count = int(self.conn.execute(text("SELECT count(*) FROM events")).scalar_one())
        self.conn.rollback()
        return count

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def _fill(tmp: Path, redis: LocalRedis, db_url: str, args: argparse.Namespace) -> int:
    cluster = Cluster(
        tmp,
        redis.url,
        db_url,
        CLAIMLEDGER_PARTITIONS=str(PARTITIONS),
        CLAIMLEDGER_REPUBLISH_AFTER_S="3600",
    )
    try:
        cluster.start("ingest")
        reports = helpers.make_reports(
            "scale",
            args.claims // args.claims_per_report,
            args.claims_per_report,
            keys=args.keys,
            seed=1,
        )
        acked = helpers.Acked()
        start = time.perf_counter()
        with httpx.Client(timeout=120) as client:
            for batch in helpers.batches(reports, args.batch):
                helpers.post_batch(client, cluster.url("ingest"), batch, acked)
        with closing(Redis.from_url(redis.url)) as r:
            while sum(r.xlen(stream_for(p)) for p in range(PARTITIONS)) < acked.events:
                time.sleep(0.2)
        print(
            f"ingested {acked.claims} claims ({acked.events} events) "
            f"in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        return acked.events
    finally:
        cluster.stop_all()


def _reset_group(redis_url: str) -> None:
    with closing(Redis.from_url(redis_url)) as r:
        for p in range(PARTITIONS):
            r.xgroup_destroy(stream_for(p), CONSUMER_GROUP)
            r.xgroup_create(stream_for(p), CONSUMER_GROUP, id="0")
            r.delete(lease_key(p))
        r.delete(MEMBERS_KEY)


def _raw_baseline(redis_url: str, events: int) -> float:
    """XREADGROUP COUNT 1000 + XACK over the partitions, nothing decoded or stored."""
    group = f"bench-raw-{uuid.uuid4().hex[:6]}"
    with closing(Redis.from_url(redis_url)) as r:
        streams = [stream_for(p) for p in range(PARTITIONS)]
        for s in streams:
            r.xgroup_create(s, group, id="0")
        read = 0
        start = time.perf_counter()
        while read < events:
            reply = r.xreadgroup(group, "raw", {s: ">" for s in streams}, count=1000)
            if not reply:
                break
            for stream, entries in reply:
                r.xack(stream, group, *[entry_id for entry_id, _ in entries])
                read += len(entries)
        elapsed = time.perf_counter() - start
        for s in streams:
            r.xgroup_destroy(s, group)
    return read / elapsed


@dataclass
class Locking:
    """What the reconcilers of one run spent on the apply path's writer lock (summed over
    them, from their /metrics), and the CPU seconds they and PostgreSQL used."""

    apply_s: float = 0.0
    wait_s: float = 0.0
    held_s: float = 0.0
    refolded: int = 0
    cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0

    @property
    def wait_share(self) -> float:
        return self.wait_s / self.apply_s if self.apply_s else 0.0

    @property
    def held_share(self) -> float:
        return self.held_s / self.apply_s if self.apply_s else 0.0


METRICS = {
    "claimledger_apply_transaction_seconds_total": "apply_s",
    "claimledger_apply_lock_wait_seconds_total": "wait_s",
    "claimledger_apply_lock_held_seconds_total": "held_s",
    "claimledger_apply_refolded_total": "refolded",
}


def _scrape(url: str, into: Locking) -> None:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            field_ = METRICS[name]
            setattr(into, field_, type(getattr(into, field_))(getattr(into, field_) + float(value)))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s(url: str) -> float:
    """CPU seconds of every PostgreSQL backend of the bench's database (the reconcilers'
    sessions and this script's polls), read from /proc: the server runs on this machine."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            return sum(_cpu_s(int(pid)) for pid in pids)
    finally:
        engine.dispose()


def _drain(
    tmp: Path, redis: LocalRedis, db_url: str, n: int, events: int, timeout_s: float
) -> tuple[float, float, Locking]:
    """Starts n reconcilers; returns (seconds first->last applied, seconds from launch, what
    they spent on the writer lock)."""
    _reset_group(redis.url)
    cluster = Cluster(tmp, redis.url, db_url, CLAIMLEDGER_PARTITIONS=str(PARTITIONS))
    launched = time.perf_counter()
    progress: _Progress | None = None
    try:
        for i in range(n):  # launched together, then waited for
            port = free_port()
            log = tmp / f"rec-{n}-{i}.log"
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "serve",
                    "reconcile",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env={**cluster.env, "CLAIMLEDGER_CONSUMER_NAME": f"rec-{i}"},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            cluster.services[f"rec-{i}"] = Service(
                "reconcile", f"http://127.0.0.1:{port}", process, log
            )
        first: float | None = None
        deadline = time.perf_counter() + timeout_s
        progress = _Progress(db_url)
        while True:
            applied = progress.applied(events)
            now = time.perf_counter()
            if applied and first is None:
                first = now
            if applied >= events:
                assert first is not None
                locking = Locking(postgres_cpu_s=_postgres_cpu_s(db_url))
                for name, service in cluster.services.items():
                    if name.startswith("rec-"):
                        _scrape(service.url, locking)
                        locking.cpu_s += _cpu_s(service.process.pid)
                return now - first, now - launched, locking
            if now > deadline:
                raise RuntimeError(f"{n} reconcilers: {applied}/{events} after {timeout_s} s")
            time.sleep(0.1)
    finally:
        if progress is not None:
            progress.close()
        cluster.stop_all()


@dataclass
class Measured:
    """One run: the events drained, the raw baseline, and per reconciler count its drain."""

    events: int
    raw: float
    rows: list[tuple[int, float, float, float, Locking]]  # n, drain s, wall s, events/s
    same: bool  # projection hashes equal across the runs

    def rate(self, n: int) -> float:
        return next(rate for count, _, _, rate, _ in self.rows if count == n)

    def locking(self, n: int) -> Locking:
        return next(lk for count, _, _, _, lk in self.rows if count == n)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--claims-per-report", type=int, default=10)
    parser.add_argument("--keys", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=200, help="reports per POST")
    parser.add_argument("--reconcilers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CLAIMLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> Measured:
    """Fills a template database once, then drains a copy of it with each reconciler count."""
    admin = make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
    tag = uuid.uuid4().hex[:8]
    template = f"claimledger_scale_{tag}"
    created = [template]
    rows = []
    hashes = []
    with tempfile.TemporaryDirectory(prefix="claimledger-scale-") as tmp_name:
        tmp = Path(tmp_name)
        redis = LocalRedis(tmp / "redis", persist=False).start()
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{template}"'))
            events = _fill(tmp, redis, _db_url(args.postgres, template), args)
            raw = _raw_baseline(redis.url, events)
            print(f"raw XREADGROUP+XACK: {raw:,.0f} entries/s", file=sys.stderr)
            for n in args.reconcilers:
                name = f"claimledger_scale_{tag}_{n}"
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                created.append(name)
                url = _db_url(args.postgres, name)
                drain_s, wall_s, locking = _drain(tmp, redis, url, n, events, args.timeout_s)
                assert _count(url) == events
                engine = make_engine(url)
                hashes.append(projection_hash(engine))
                engine.dispose()
                rows.append((n, drain_s, wall_s, events / drain_s, locking))
                print(
                    f"{n} reconciler(s): {events / drain_s:,.0f} events/s, lock wait "
                    f"{locking.wait_share:.1%} of apply time ({_uptime()})",
                    file=sys.stderr,
                )
        finally:
            redis.stop(kill=True)
            with admin.connect() as conn:
                for name in created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return Measured(events, raw, rows, all(h == hashes[0] for h in hashes))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run = measure(args)
    base = run.rows[0][3]
    print(
        f"\n## Reconcile scale-out ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, Python {platform.python_version()}, PostgreSQL)\n"
    )
    print(
        f"`.venv/bin/python -m bench.scale --claims {args.claims} --keys {args.keys} "
        f"--reconcilers {' '.join(map(str, args.reconcilers))}` ({run.events} events, "
        f"{PARTITIONS} partitions, {os.cpu_count()} cores)\n"
    )
    print(
        "| reconcilers | drain (first -> last applied) | incl. start-up | events/s | vs 1 "
        "| lock wait / apply time | lock held / apply time | lock held per event "
        "| refolded batches | reconciler CPU s | PostgreSQL CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, drain_s, wall_s, rate, lk in run.rows:
        print(
            f"| {n} | {drain_s:.1f} s | {wall_s:.1f} s | {rate:,.0f} | {rate / base:.2f}x "
            f"| {lk.wait_share:.1%} | {lk.held_share:.1%} "
            f"| {lk.held_s / run.events * 1e6:,.0f} us | {lk.refolded} "
            f"| {lk.cpu_s:.1f} | {lk.postgres_cpu_s:.1f} |"
        )
    print(
        f"| raw XREADGROUP COUNT 1000 + XACK (1 process, no decoding) | | | {run.raw:,.0f} "
        f"| {run.raw / base:.1f}x | | | | | | |"
    )
    print(f"\nLoad (`uptime`) at the end: {_uptime()}")
    print(f"\nProjection hash equal across runs: {'yes' if run.same else 'NO'}")
    return 0 if run.same else 1


if __name__ == "__main__":
    raise SystemExit(main())
