"""The reconciler's core, with the raw baselines of the same run (issue #19): news-shaped
and dataset-shaped events applied by Reconciler.apply in batches of 500 on SQLite, and a
replay of the news-shaped log.

    python -m bench.grouping [--claims 20000] [--keys 2000] [--sources 38 --dataset-keys 300]

News-shaped: reports of 10 claims on random keys (bench/run.py's bodies), 100 reports per
`:batch` request. Dataset-shaped: `--sources` sources each report once on every key, one
request per source (so each key is revised once per source). Recorded times: with
`--per-report` each report has its own (what ingest did before one request got one).
Runs on any checkout whose bench/run.py has these helpers, so the same script measures
the code before and after a change (PYTHONPATH=<checkout>).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.run import (
    REGISTRY,
    apply_in_batches,
    raw_readgroup_ack,
    raw_sqlite,
    raw_xadd,
    report_body,
)
from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.infra.localredis import LocalRedis
from services.ingest.api import IngestContext, prepare_report
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.reports import ReportIn
from shared.timeaxes import iso

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _events(requests: list[list[dict[str, Any]]], per_report: bool) -> list[Any]:
    """The events ingest logs for these requests: one recorded time per request (or per
    report), set after preparation so every checkout gets the same stamps."""
    engine = make_engine("sqlite://")
    create_schema(engine)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    out: list[Any] = []
    n = 0
    for r, bodies in enumerate(requests):
        for body in bodies:
            n += 1
            recorded = iso(T0 + timedelta(seconds=n if per_report else r))
            pending = prepare_report(ReportIn.model_validate(body), ctx, None)
            out += [replace(e, recorded_at=recorded) for e in pending.events]
    return out


def news(claims: int, keys: int) -> list[list[dict[str, Any]]]:
    rnd = random.Random(7)
    bodies = [report_body(i, keys, 10, rnd) for i in range(claims // 10)]
    return [bodies[i : i + 100] for i in range(0, len(bodies), 100)]


def dataset(sources: int, keys: int) -> list[list[dict[str, Any]]]:
    """Each source reports the same day's value of every key (flight-data shaped)."""
    rnd = random.Random(11)
    return [
        [
            {
                "report_id": f"ds-{s}-{k}",
                "source": {"id": f"site{s}", "kind": "news"},
                "published_at": "2025-12-01T12:00:00Z",
                "claims": [
                    {
                        "subject": f"flight{k}",
                        "attribute": "personnel_deployed",
                        "value": 1000 + k + rnd.choice((0, 0, 0, 5, -5)),
                    }
                ],
            }
            for k in range(keys)
        ]
        for s in range(sources)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--sources", type=int, default=38)
    parser.add_argument("--dataset-keys", type=int, default=300)
    parser.add_argument("--per-report", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-grouping-"))
    server = LocalRedis(tmp / "redis", persist=False).start()
    try:
        raw_xadd(server.url, 100_000)
        readack = raw_readgroup_ack(server.url, 100_000)
    finally:
        server.stop(kill=True)
    executemany = raw_sqlite(tmp / "raw.db", 200_000)
    print(f"raw XREADGROUP+XACK {readack:,.0f}/s; raw SQLite executemany {executemany:,.0f} rows/s")
    for name, requests in (
        ("news-shaped", news(args.claims, args.keys)),
        ("dataset-shaped", dataset(args.sources, args.dataset_keys)),
    ):
        events = _events(requests, args.per_report)
        seconds = apply_in_batches(tmp / f"{name}.db", events)
        rate = len(events) / seconds
        print(
            f"{name}: {len(events):,} events in {seconds:.1f} s = {rate:,.0f}/s = "
            f"{rate / readack:.2%} of raw read+ack"
        )
        if name == "news-shaped":
            source = make_engine(f"sqlite:///{tmp / f'{name}.db'}")
            target = make_engine(f"sqlite:///{tmp / 'replayed.db'}")
            start = time.perf_counter()
            count = replay(source, target, Reconciler(REGISTRY))
            rate = count / (time.perf_counter() - start)
            same = projection_hash(source) == projection_hash(target)
            print(
                f"replay: {count:,} events at {rate:,.0f}/s = {rate / executemany:.2%} of "
                f"raw executemany; hash {'identical' if same else 'DIFFERENT'}"
            )


if __name__ == "__main__":
    main()
