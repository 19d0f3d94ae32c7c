"""What bounds the reconciler's apply rate (issue #19): the least any Python reconciler does
per event, and the consensus engine's cost per evaluation as a key's claims grow, measured in
one run next to the raw stream baseline the issue's targets are ratios of.

    python -m bench.reconfloor [--events 50000] [--sizes 5,10,20,50,100,200]

- raw: XREADGROUP COUNT 1000 + XACK of the stream (`make bench`'s baseline, the issue's),
  best of three passes (so is the floor);
- floor: the same in batches of 500 (the reconciler's), plus decoding each entry into an
  `Event` and writing one row per event to SQLite (WAL, one transaction per batch): a
  reconciler with a free consensus;
- consensus at n: one evaluation of a key holding n claims (the bench's news-shaped claims),
  its result encoded (`result_fields`) and diffed against the key's previous result
  (`fields_delta`), the admissions memo warm: what the reconciler pays per claim appended
  at the head of a key, today's engine, with no SQL.

The last table is the model: an apply rate of 1 / (floor + one evaluation at n) per event,
as a share of raw, next to the issue's 15 % target, and the per-evaluation cost that target
leaves. It is an upper bound for the current design (one full evaluation per event; the
services add learned runs, cache misses and the stream's other work).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.run import prepared_events
from services.infra.localredis import LocalRedis
from shared.attributes import AttributeRegistry
from shared.codec import claim_from_dict, fields_delta, result_fields
from shared.consensus import compute_consensus
from shared.events import CLAIM_ASSERTED, event_from_json

STREAM, BATCH = "bench:floor", 500


def fill(client: redis.Redis, texts: list[str]) -> None:
    for i in range(0, len(texts), 1000):
        pipe = client.pipeline(transaction=False)
        for text in texts[i : i + 1000]:
            pipe.xadd(STREAM, {"__data__": text})
        pipe.execute()


def drain(client: redis.Redis, group: str, each: Any = None, count: int = BATCH) -> float:
    """Events/s through one consumer of `group`; `each(entries)` handles every batch."""
    client.xgroup_create(STREAM, group, id="0")
    start, done = time.perf_counter(), 0
    while True:
        reply: Any = client.xreadgroup(group, "c", {STREAM: ">"}, count=count)
        if not reply:
            break
        entries = reply[0][1]
        if each is not None:
            each(entries)
        client.xack(STREAM, group, *[entry[0] for entry in entries])
        done += len(entries)
    return done / (time.perf_counter() - start)


def floor_writer(path: Path) -> Any:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE versions (id INTEGER PRIMARY KEY, subject TEXT, attribute TEXT,"
        " cause TEXT, recorded_at TEXT, result TEXT)"
    )

    def each(entries: list[Any]) -> None:
        rows = []
        for _, fields in entries:
            event = event_from_json(fields[b"__data__"])
            rows.append(
                (event.subject, event.attribute, event.event_id, event.recorded_at, "{}" * 40)
            )
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO versions (subject, attribute, cause, recorded_at, result)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")

    return each


def evaluation_us(claims: list[Any], n: int, repeats: int) -> float:
    """Median microseconds of one evaluation of n claims (memo warm with the first n - 1,
    as the reconciler's is), its encoding and its delta from the n - 1 result."""
    spec = AttributeRegistry.load().spec_for(claims[0].attribute, numeric=True)
    times = []
    for _ in range(repeats):
        memo: dict[str, Any] = {}
        before = result_fields(compute_consensus(claims[: n - 1], spec, memo=memo))
        start = time.perf_counter()
        fields = result_fields(compute_consensus(claims[:n], spec, memo=memo))
        fields_delta(before, fields)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--sizes", default="5,10,20,50,100,200")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-reconfloor-"))
    events = [e for e in prepared_events(args.events, 2_000) if e.type == CLAIM_ASSERTED]
    texts = [e.to_json() for e in events]
    server = LocalRedis(tmp / "redis", persist=False).start()
    try:
        client = redis.Redis.from_url(server.url)
        fill(client, texts)
        # best of three for each: one pass over 50k entries is a fraction of a second, and
        # a noisy machine can halve one pass
        raw = max(drain(client, f"raw{i}", count=1000) for i in range(3))  # bench.run's
        floor = max(
            drain(client, f"floor{i}", floor_writer(tmp / f"floor{i}.db")) for i in range(3)
        )
    finally:
        server.stop()
    one_key = [e for e in prepared_events(max(sizes) * 10 + 10, 1) if e.type == CLAIM_ASSERTED]
    claims = [claim_from_dict(e.payload.claim) for e in one_key]
    curve = {n: evaluation_us(claims, n, args.repeats) for n in sizes}

    floor_us = 1e6 / floor
    print(f"{len(texts):,} ClaimAsserted events, batches of {BATCH}")
    print(f"raw XREADGROUP+XACK   {raw:>10,.0f} events/s   ({1e6 / raw:.1f} us/event)")
    print(f"floor (decode + row)  {floor:>10,.0f} events/s   ({floor_us:.1f} us/event)")
    print(f"{'':22}= {floor / raw:.1%} of raw: the most any design of this shape reaches")
    target = 0.15 * raw
    left = 1e6 / target - floor_us
    print(
        f"15 % of raw = {target:,.0f} events/s: {1e6 / target:.1f} us/event, "
        f"{left:.1f} us left for consensus after the floor"
    )
    print()
    head = ("claims on the key", "evaluation", "per claim", "model rate", "of raw")
    print("{:>18} {:>12} {:>10} {:>12} {:>8}".format(*head))
    for n, us in curve.items():
        rate = 1e6 / (floor_us + us)
        print(f"{n:>18} {us:>9,.0f} us {us / n:>7.1f} us {rate:>9,.0f}/s {rate / raw:>8.2%}")


if __name__ == "__main__":
    main()
