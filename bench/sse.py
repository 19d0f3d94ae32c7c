"""SSE fan-out benchmark: N subscribers, a fixed claim rate, commit->subscriber latency.

    .venv/bin/python -m bench.sse --subscribers 1000 --rate 1000 --seconds 20

Starts Redis and the three services as real processes (tests.conftest.system), then a
separate subscriber process (one asyncio loop, raw sockets, so the client neither
shares the query service's event loop nor costs much) that opens N
`/v1/stream?subject=...` streams (subjects spread over --keys). It posts reports of
--claims-per-report claims at --rate claims/s and measures, per delivered version,
the time from its commit to its arrival at each subscriber.

Commit time: the millisecond time of the version's entry on the updates stream
(`claimledger:updates`), which the reconciler writes right after its SQL commit; read
back with XRANGE at the end. Arrival: wall clock when the subscriber process read the
frame (same machine, same clock). A version's `recorded_at` would be ingest time, not
commit time, so it is not used.

Expected deliveries: every version committed while subscribed (from SQL) whose subject
is the subscriber's; lost = expected but never received.

Baseline (unless --no-baseline): the same number of connections fed by a trivial SSE
server (raw asyncio, forwards each updates-stream entry to the sockets of its subject,
no SQL, no rendering), under the same posting load, measured the same way. The ratio
says what the query service adds over the machine's floor.

Appends a section to bench/RESULTS.md unless --no-record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from redis import Redis

from services.harness.cluster import Cluster, system
from services.harness.factories import claim, report
from services.infra.localredis import free_port
from shared.positions import Cursor, parse_token, position_of, version_id

RESULTS = Path(__file__).parent / "RESULTS.md"
UPDATES = "claimledger:updates"


# -- subscriber process ---------------------------------------------------------------


POSITION = re.compile(rb'"position":"(p[0-9._]*)"')


class StreamClient(asyncio.Protocol):
    """One SSE stream over a raw socket: records (version id, arrival time)."""

    def __init__(self, host: str, path: str, opened: asyncio.Future[None]) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        self.opened = opened
        self.rest = b""
        self.start: str | None = None  # the token it starts from
        self.pending: str | None = None
        self.ids: list[int] = []  # version ids, from each frame's position
        self.times: list[float] = []
        self.resyncs = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if line.startswith(b"id: "):
                self.pending = line[4:].strip().decode()
                if self.start is None:
                    self.start = self.pending
                    if not self.opened.done():
                        self.opened.set_result(None)
            elif line.startswith(b"data: ") and self.start is not None:
                found = POSITION.search(line)
                if found:
                    ((part, seq),) = parse_token(found.group(1).decode()).items()
                    self.ids.append(version_id(part, seq))
                    self.times.append(now)
            elif line.startswith(b"event: resync"):
                self.resyncs += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before start"))


async def subscribers_main(url: str, subjects: list[str], out: Path) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    clients: list[tuple[str, StreamClient]] = []
    for i in range(0, len(subjects), 100):  # open in waves: a listen backlog is finite
        wave = []
        for subject in subjects[i : i + 100]:
            opened: asyncio.Future[None] = loop.create_future()
            client = StreamClient(host, f"/v1/stream?subject={quote(subject)}", opened)
            await loop.create_connection(lambda c=client: c, host, port)  # type: ignore[misc]
            clients.append((subject, client))
            wave.append(opened)
        await asyncio.wait_for(asyncio.gather(*wave), 120)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the orchestrator writes a line to stop
    while not stop.is_set():
        print("received", sum(len(c.ids) for _, c in clients), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    result = [
        {
            "subject": s,
            "start": c.start,
            "ids": c.ids,
            "times": c.times,
            "resyncs": c.resyncs,
            "closed": c.closed,
        }
        for s, c in clients
    ]
    out.write_text(json.dumps(result))
    print("done", flush=True)


# -- trivial SSE server (baseline) ----------------------------------------------------


async def baseline_main(redis_url: str, port: int) -> None:
    """Forwards each updates-stream entry to the sockets subscribed to its subject."""
    by_subject: dict[str, set[asyncio.StreamWriter]] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ", 2)[1].decode()
        subject = parse_qs(urlsplit(target).query).get("subject", [""])[0]
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-store\r\n\r\n: start\r\nid: 0\r\n\r\n"
        )
        by_subject.setdefault(subject, set()).add(writer)
        try:
            await reader.read()  # until the client goes
        finally:
            by_subject[subject].discard(writer)

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=2048)
    from redis.asyncio import Redis as AsyncRedis

    redis = AsyncRedis.from_url(redis_url)
    print("ready", flush=True)
    last: Any = "$"
    async with server:
        while True:
            reply: Any = await redis.xread({UPDATES: last}, block=1000, count=1000)
            if not reply:
                continue
            for entry_id, fields in reply[0][1]:
                last = entry_id
                item = json.loads(fields[b"__data__"])
                data = {**item, "position": position_of(item["id"])}
                text = json.dumps(data, separators=(",", ":")).encode()
                frame = b"id: 0\r\nevent: consensus\r\ndata: " + text + b"\r\n\r\n"
                for writer in by_subject.get(item["subject"], ()):
                    writer.write(frame)


# -- orchestrator ---------------------------------------------------------------------


async def post_at_rate(
    url: str, keys: list[str], rate: float, seconds: float, per_report: int, tag: str
) -> tuple[int, int]:
    """Posts reports at `rate` claims/s; returns (reports accepted, failures)."""
    accepted = failures = 0
    interval = per_report / rate
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        n = 0

        async def one(body: dict[str, Any]) -> None:
            nonlocal accepted, failures
            try:
                r = await client.post(f"{url}/v1/reports", json=body)
                if r.status_code == 202:
                    accepted += 1
                else:
                    failures += 1
            except httpx.HTTPError:
                failures += 1

        while time.perf_counter() - start < seconds:
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            claims = [
                claim(
                    subject=keys[(n * per_report + j) % len(keys)],
                    value=10_000 + n * per_report + j,
                    attributed_to=f"origin-{n}-{j}",
                )
                for j in range(per_report)
            ]
            body = report(*claims, report_id=f"bench-sse-{tag}-{n}", source=f"src-{n % 50}")
            task = asyncio.create_task(one(body))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        if pending:
            await asyncio.gather(*pending)
    return accepted, failures


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _versions(db: Path, after: Cursor) -> list[tuple[int, str]]:
    """Version rows past `after`, in id order (each partition's commit order)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, subject FROM versions WHERE version > 0 ORDER BY id")
        return [(int(i), str(s)) for i, s in rows if not after.sent(int(i))]


def _last_version(db: Path) -> Cursor:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT partition, seq FROM partition_fences WHERE partition >= 0")
        return Cursor({int(p): int(s) for p, s in rows})


def _commit_times(redis_url: str) -> dict[int, float]:
    """Version id -> updates-stream entry time (s), i.e. just after the reconciler's commit."""
    redis = Redis.from_url(redis_url)
    out: dict[int, float] = {}
    entries: Any = redis.xrange(UPDATES, "-", "+")
    for entry_id, fields in entries:
        ms = int(entry_id.split(b"-")[0])
        out[int(json.loads(fields[b"__data__"])["id"])] = ms / 1000
    redis.close()
    return out


def phase(
    args: argparse.Namespace, cluster: Cluster, db: Path, stream_url: str, tag: str
) -> dict[str, Any]:
    """Opens the subscribers on `stream_url`, posts the load, gathers what arrived."""
    keys = [f"bench-sse-key-{k}" for k in range(args.keys)]
    subjects = [keys[i % len(keys)] for i in range(args.subscribers)]
    out = cluster.tmp / f"subscribers-{tag}.json"
    (cluster.tmp / f"subjects-{tag}.json").write_text(json.dumps(subjects))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.sse",
            "--role",
            "subscribers",
            "--url",
            stream_url,
            "--subjects-file",
            str(cluster.tmp / f"subjects-{tag}.json"),
            "--out",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    t_open = time.perf_counter()
    line = child.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"subscribers did not open: {line!r}")
    open_s = time.perf_counter() - t_open
    time.sleep(1.5)  # the gauge is sampled every second
    peak = _metric(stream_url, "claimledger_sse_subscribers") if tag == "query" else None
    before = _last_version(db)
    ingest = cluster.url("ingest")
    t0 = time.perf_counter()
    accepted, failures = asyncio.run(
        post_at_rate(ingest, keys, args.rate, args.seconds, args.claims_per_report, tag)
    )
    post_s = time.perf_counter() - t0
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        if _metric(ingest, "claimledger_outbox_depth") == 0:
            break
        time.sleep(0.5)
    drain_s = time.perf_counter() - t0 - post_s
    committed = _versions(db, before)
    per_subject: dict[str, list[int]] = {}
    for vid, subject in committed:
        per_subject.setdefault(subject, []).append(vid)
    want = sum(len(per_subject.get(s, [])) for s in subjects)
    received = 0
    while time.monotonic() < deadline and received < want:
        words = child.stdout.readline().split()
        if words and words[0] == "received":
            received = int(words[1])
    child.stdin.write("stop\n")
    child.stdin.flush()
    for line in child.stdout:
        if line.strip() == "done":
            break
    child.wait(60)
    subs = json.loads(out.read_text())
    commit = _commit_times(cluster.redis_url)
    latencies: list[float] = []
    lost = dup = out_of_order = resyncs = no_commit_time = 0
    for sub in subs:
        start = parse_token(sub["start"])
        expected = [v for v in per_subject.get(sub["subject"], []) if not start.sent(v)]
        got = [v for v in sub["ids"] if not before.sent(v)]
        resyncs += sub["resyncs"]
        dup += len(got) - len(set(got))
        out_of_order += sum(1 for a, b in itertools.pairwise(got) if b <= a)
        lost += len(set(expected) - set(got))
        for vid, t in zip(sub["ids"], sub["times"], strict=True):
            if before.sent(vid):
                continue
            if vid in commit:
                latencies.append(t - commit[vid])
            else:
                no_commit_time += 1
    return {
        "open_s": open_s,
        "peak": peak,
        "accepted": accepted,
        "failures": failures,
        "claims": accepted * args.claims_per_report,
        "post_s": post_s,
        "drain_s": drain_s,
        "versions": len(committed),
        "expected": want,
        "delivered": len(latencies),
        "lost": lost,
        "duplicates": dup,
        "out_of_order": out_of_order,
        "resyncs": resyncs,
        "no_commit_time": no_commit_time,
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
    }


def _row(name: str, r: dict[str, Any], seconds: float) -> str:
    return (
        f"| {name} | {r['expected']} / {r['delivered']} | {r['lost']} / {r['duplicates']} / "
        f"{r['out_of_order']} | {r['p50'] * 1000:.0f} / {r['p99'] * 1000:.0f} / "
        f"{r['max'] * 1000:.0f} ms | {r['claims']} claims accepted "
        f"({r['claims'] / seconds:.0f}/s over the {seconds:g} s window, posting took "
        f"{r['post_s']:.0f} s; {r['failures']} failed posts), {r['versions']} versions "
        f"| {r['drain_s']:.1f} s |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000, help="claims per second")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--keys", type=int, default=100, help="distinct subjects")
    p.add_argument("--claims-per-report", type=int, default=10)
    p.add_argument("--drain", type=float, default=120, help="max wait after posting, s")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-record", action="store_true")
    p.add_argument(
        "--role",
        choices=["bench", "subscribers", "baseline"],
        default="bench",
        help=argparse.SUPPRESS,
    )
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--subjects-file", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--redis-url", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "subscribers":
        subjects = json.loads(Path(args.subjects_file).read_text())
        asyncio.run(subscribers_main(args.url, subjects, Path(args.out)))
        return
    if args.role == "baseline":
        asyncio.run(baseline_main(args.redis_url, args.port))
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # every bench subscriber comes from 127.0.0.1: lift the per-client stream limit
        with system(
            tmp, "ingest", "reconcile", "query", CLAIMLEDGER_MAX_STREAMS_PER_CLIENT="0"
        ) as cluster:
            db = tmp / "claimledger.db"
            t0 = time.perf_counter()
            real = phase(args, cluster, db, cluster.url("query"), "query")
            base = None
            if not args.no_baseline:
                port = free_port()
                server = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.sse",
                        "--role",
                        "baseline",
                        "--redis-url",
                        cluster.redis_url,
                        "--port",
                        str(port),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    assert server.stdout is not None
                    if server.stdout.readline().strip() != "ready":
                        raise RuntimeError("baseline server did not start")
                    base = phase(args, cluster, db, f"http://127.0.0.1:{port}", "baseline")
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(10)
            wall = time.perf_counter() - t0

    cmd = (
        f".venv/bin/python -m bench.sse --subscribers {args.subscribers} --rate {args.rate:g} "
        f"--seconds {args.seconds:g} --keys {args.keys} "
        f"--claims-per-report {args.claims_per_report}"
    )
    lines = [
        f"## SSE fan-out, shared fan-out ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "SQLite)",
        "",
        f"`{cmd}`",
        "",
        f"{args.subscribers} subscribers (per /metrics: {real['peak']}), one subject each over "
        f"{args.keys} subjects, opened in {real['open_s']:.1f} s. Latency: updates-stream entry "
        "time (written just after the reconciler's commit) -> frame read by the subscriber "
        "process.",
        "",
        "| server | deliveries expected / received | lost / duplicated / out of order | "
        "commit -> subscriber p50 / p99 / max | load | outbox drained after posting |",
        "|---|---|---|---|---|---|",
        _row("query service (`/v1/stream`)", real, args.seconds),
    ]
    if base is not None:
        lines.append(_row("baseline: trivial SSE server, same connections", base, args.seconds))
    lines.append("")
    if real["resyncs"] or real["no_commit_time"]:
        lines.append(
            f"resyncs: {real['resyncs']}; deliveries without an updates-stream entry "
            f"(no commit time): {real['no_commit_time']}"
        )
    if base is not None and base["p99"] > 0:
        lines.append(
            f"Ratios query / baseline: p50 {real['p50'] / base['p50']:.1f}x, "
            f"p99 {real['p99'] / base['p99']:.1f}x."
        )
    lines += [f"Wall time {wall:.0f} s.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
