"""SSE fan-out benchmark: N subscribers, a fixed claim rate, post->delivered latency.

    .venv/bin/python -m bench.sse --subscribers 1000 --rate 1000 --seconds 20

Starts Redis and the three services as real processes (tests.conftest.Cluster), opens N
concurrent `/v1/stream?subject=...` subscribers (subjects spread over --keys), posts
reports of --claims-per-report claims at --rate claims/s, and measures, per delivered
version, the time from the POST of the report that caused it to its arrival on each
subscriber. Lost = versions in each subject's history (caused by the posted reports)
that a subscriber of that subject never received. Appends a section to bench/RESULTS.md
unless --no-record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Cluster, system
from tests.factories import claim, report

RESULTS = Path(__file__).parent / "RESULTS.md"


class Subscriber:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.started = asyncio.Event()
        self.received: dict[int, float] = {}  # version -> arrival (perf_counter)
        self.cause: dict[int, str] = {}  # version -> report_id
        self.duplicates = 0
        self.error: str | None = None

    async def run(self, client: httpx.AsyncClient, url: str, stop: asyncio.Event) -> None:
        kind = None
        try:
            async with client.stream(
                "GET", f"{url}/v1/stream", params={"subject": self.subject}
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith((":", "id:")):  # the "start" announcement
                        self.started.set()
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "consensus":
                        item = json.loads(line[5:])
                        version = int(item["version"])
                        if version in self.received:
                            self.duplicates += 1
                        else:
                            self.received[version] = time.perf_counter()
                            self.cause[version] = (item.get("cause") or {}).get("report_id") or ""
                    if stop.is_set():
                        return
        except (httpx.HTTPError, asyncio.CancelledError) as exc:
            if not stop.is_set():
                self.error = type(exc).__name__
        finally:
            self.started.set()


async def post_at_rate(
    url: str, keys: list[str], rate: float, seconds: float, per_report: int
) -> tuple[dict[str, float], int]:
    """Posts reports at `rate` claims/s; returns report_id -> post start time, and failures."""
    posted: dict[str, float] = {}
    failures = 0
    interval = per_report / rate
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        n = 0

        async def one(body: dict[str, Any]) -> None:
            nonlocal failures
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/reports", json=body)
                if r.status_code == 202:
                    posted[body["report_id"]] = t0
                else:
                    failures += 1
            except httpx.HTTPError:
                failures += 1

        while time.perf_counter() - start < seconds:
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            claims = [
                claim(subject=keys[(n * per_report + j) % len(keys)],
                      value=10_000 + n * per_report + j, attributed_to=f"origin-{n}-{j}")
                for j in range(per_report)
            ]
            body = report(*claims, report_id=f"bench-sse-{n}", source=f"src-{n % 50}")
            task = asyncio.create_task(one(body))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        if pending:
            await asyncio.gather(*pending)
    return posted, failures


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def bench(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    ingest, query = cluster.url("ingest"), cluster.url("query")
    keys = [f"bench-sse-key-{k}" for k in range(args.keys)]
    subs = [Subscriber(keys[i % len(keys)]) for i in range(args.subscribers)]
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        tasks = [asyncio.create_task(s.run(client, query, stop)) for s in subs]
        t_open = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(s.started.wait() for s in subs)), 120)
        open_s = time.perf_counter() - t_open
        await asyncio.sleep(1.5)  # the gauge is sampled every second
        async with httpx.AsyncClient() as c:
            peak = await _metric(c, query, "claimledger_sse_subscribers")
        posted, failures = await post_at_rate(
            ingest, keys, args.rate, args.seconds, args.claims_per_report
        )
        t_posted = time.perf_counter()
        # expected: every version of each key caused by a posted report
        expected: dict[str, set[int]] = {}
        async with httpx.AsyncClient(timeout=30) as c:
            deadline = time.monotonic() + args.drain
            while True:
                depth = await _metric(c, ingest, "claimledger_outbox_depth")
                if depth == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            drain_s = time.perf_counter() - t_posted
            for key in keys:
                r = await c.get(f"{query}/v1/consensus/{key}/personnel_deployed/history")
                items = r.json().get("items", []) if r.status_code == 200 else []
                expected[key] = {
                    int(v["version"]) for v in items
                    if (v.get("cause") or {}).get("report_id") in posted
                }
        # give subscribers time to receive what was committed
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            if all(expected[s.subject] <= set(s.received) for s in subs):
                break
            await asyncio.sleep(0.5)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies: list[float] = []
    lost = delivered = dup = 0
    errors: dict[str, int] = defaultdict(int)
    for s in subs:
        for version, arrived in s.received.items():
            sent = posted.get(s.cause.get(version, ""))
            if sent is not None and version in expected[s.subject]:
                latencies.append(arrived - sent)
                delivered += 1
        lost += len(expected[s.subject] - set(s.received))
        dup += s.duplicates
        if s.error:
            errors[s.error] += 1
    versions = sum(len(v) for v in expected.values())
    return {
        "posted_reports": len(posted),
        "post_failures": failures,
        "claims": len(posted) * args.claims_per_report,
        "versions": versions,
        "expected_deliveries": sum(len(expected[s.subject]) for s in subs),
        "delivered": delivered,
        "lost": lost,
        "duplicates": dup,
        "subscriber_errors": dict(errors),
        "open_s": open_s,
        "peak_subscribers_metric": peak,
        "drain_s": drain_s,
        "p50": _pct(latencies, 0.50),
        "p99": _pct(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
    }


async def _metric(client: httpx.AsyncClient, url: str, name: str) -> float | None:
    text = (await client.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000, help="claims per second")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--keys", type=int, default=100, help="distinct subjects")
    p.add_argument("--claims-per-report", type=int, default=10)
    p.add_argument("--drain", type=float, default=120, help="max wait after posting, s")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # every bench subscriber comes from 127.0.0.1: lift the per-client stream limit
        with system(tmp, "ingest", "reconcile", "query",
                    CLAIMLEDGER_MAX_STREAMS_PER_CLIENT="0") as cluster:
            t0 = time.perf_counter()
            out = asyncio.run(bench(args, cluster))
            out["wall_s"] = time.perf_counter() - t0

    cmd = (f".venv/bin/python -m bench.sse --subscribers {args.subscribers} --rate {args.rate:g} "
           f"--seconds {args.seconds:g} --keys {args.keys} "
           f"--claims-per-report {args.claims_per_report}")
    achieved = out["claims"] / args.seconds
    lines = [
        f"## SSE fan-out ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, SQLite)",
        "",
        f"`{cmd}`",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| subscribers (open, per /metrics) | {args.subscribers} "
        f"({out['peak_subscribers_metric']}), opened in {out['open_s']:.1f} s |",
        f"| claims posted | {out['claims']} in {out['posted_reports']} reports "
        f"({achieved:.0f} claims/s offered target {args.rate:g}; "
        f"{out['post_failures']} failed posts) |",
        f"| versions caused | {out['versions']} over {args.keys} keys |",
        f"| deliveries expected / received | {out['expected_deliveries']} / "
        f"{out['delivered']} |",
        f"| lost / duplicated | {out['lost']} / {out['duplicates']} |",
        f"| post -> delivered p50 / p99 / max | {out['p50'] * 1000:.0f} ms / "
        f"{out['p99'] * 1000:.0f} ms / {out['max'] * 1000:.0f} ms |",
        f"| outbox drained after last post | {out['drain_s']:.1f} s |",
        f"| subscriber errors | {out['subscriber_errors'] or 'none'} |",
        f"| wall time | {out['wall_s']:.0f} s |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
