"""Where ingest's CPU goes under the bench's load: py-spy samples of the ingest process, bucketed.

    .venv/bin/python -m bench.profile_ingest [--mode single|batch] [--count 4000]

Starts ingest (SQLite, a redis-server of its own) as `bench.run` does, records the process
(and its children: the ingest workers when CLAIMLEDGER_INGEST_WORKERS > 1) with
`py-spy record --gil --subprocesses` while single reports (64 connections) or batches (2
connections) are posted, then attributes every sample to the innermost bucket it is in.
`--gil`: only the thread holding the GIL is sampled, so a thread waiting for it is not
charged to the line it waits on.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen import encode_posts, post_all
from bench.profile import bucket_shares, py_spy_record
from bench.run import report_body
from services.harness.cluster import Cluster
from services.infra.localredis import LocalRedis

# innermost match wins: a stack is scanned from the leaf up
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("SQL: outbox transaction (SQLAlchemy + sqlite3)", ("accept_reports", "_accept (")),
    ("WAL checkpoint (background)", ("checkpoint",)),
    ("relay: read outbox, mark published", ("due_for_publishing", "mark_published")),
    ("relay: Redis send (packing, socket)", ("_send (services/ingest/relay", "redis/")),
    ("claim id content (claim_content, json)", ("claim_content", "json/encoder")),
    ("normalise (values, times, ClaimFacts)", ("normalise_report",)),
    ("events, claim_to_dict, canonical JSON", ("prepare_report",)),
    (
        "body: JSON decode + pydantic validate",
        ("_plain_report", "model_validate", "_batch_items"),
    ),
    ("logging (structlog, stdlib)", ("structlog/", "logging/")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("request id middleware", ("RequestContext",)),
    ("FastAPI / Starlette (routing, responses)", ("starlette/", "fastapi/")),
    ("uvicorn / httptools (HTTP protocol)", ("uvicorn/", "httptools")),
    ("batch process hand-off (pickling, pipes)", ("concurrent/futures/process", "_accept_there")),
    ("thread hand-offs (to_thread, futures)", ("to_thread", "concurrent/futures", "threading")),
    ("asyncio / uvloop event loop", ("asyncio/", "uvloop")),
]


def summarize(raw: Path) -> tuple[list[tuple[str, float]], int]:
    """Ingest's buckets over the samples that are not idle, and how many those are."""
    return bucket_shares(
        raw, BUCKETS, "other", lambda stack: bool(stack) and "process_idle" not in stack
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("single", "batch"), default="single")
    parser.add_argument("--count", type=int, default=4000, help="reports (single) or batches")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples/s")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="claimledger-profile-ingest-"))
    server = LocalRedis(tmp / "redis", persist=False).start()
    cluster = Cluster(tmp, server.url, f"sqlite:///{tmp / 'ingest.db'}")
    raw = tmp / "ingest.txt"
    rnd = random.Random(11)
    try:
        service = cluster.start("ingest")
        if args.mode == "single":
            bodies = [report_body(600_000 + i, 10_000, 1, rnd) for i in range(args.count)]
            posts, connections = encode_posts(service.url, "/v1/reports", bodies), 64
        else:
            batches = [
                [report_body(b * 100 + i, 10_000, 10, rnd) for i in range(100)]
                for b in range(args.count)
            ]
            posts, connections = encode_posts(service.url, "/v1/reports:batch", batches), 2
        spy = subprocess.Popen(
            py_spy_record(
                raw, args.rate, ["--pid", str(service.process.pid)], ("--gil", "--subprocesses")
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        time.sleep(1.0)  # py-spy attaches
        result = asyncio.run(post_all(service.url, posts, connections))
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        spy.wait(60)
    finally:
        cluster.stop_all()
        server.stop(kill=True)
    print(f"{args.mode}: {result.rate:,.0f} requests/s, statuses {result.statuses}")
    rows, total = summarize(raw)
    print(f"\n{total:,} samples with the GIL held\n\n| where | share |\n|---|---|")
    for name, share in rows:
        print(f"| {name} | {share:.1f}% |")
    print(f"\nraw samples: {raw}")


if __name__ == "__main__":
    main(sys.argv[1:])
