"""Database bytes per claim (issue #24 item 5): many claims on few keys, applied by the
reconciler straight from events (no HTTP), publication dates in order or shuffled.

    python -m bench.storage [--keys 20] [--claims-per-key 300] [--order in|shuffled|both]

The issue's batch is 160k claims on 20 keys (8,000 per key). Per-key cost is what grows
with a key's claims, so a scaled-down run keeps 20 keys and fewer claims per key, and is
measured at two sizes: bytes per claim staying flat as claims per key double means linear
storage, and the larger size extrapolates to the batch. Prints one row per run and, with
--append, adds them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.ingest.api import IngestContext, prepare_report
from services.reconcile.store import Reconciler, versions_t
from shared.attributes import AttributeRegistry
from shared.reports import ReportIn
from shared.timeaxes import now_iso

REGISTRY = AttributeRegistry.load()
BATCH_CLAIMS = 160_000  # the batch
BATCH_KEYS = 20


def _reports(keys: int, per_key: int, shuffled: bool, seed: int = 5) -> list[dict[str, Any]]:
    """One claim per report (a batch of single-claim reports, as `claimledger import`
    sends, in one request), each key's claims published on successive days from many
    sources."""
    rnd = random.Random(seed)
    start = date(2020, 1, 1)
    out = []
    for k in range(keys):
        for i in range(per_key):
            out.append(
                {
                    "report_id": f"storage-{k}-{i}",
                    "source": {"id": f"outlet-{rnd.randint(1, 400)}", "kind": "news"},
                    "published_at": (start + timedelta(days=i)).isoformat(),
                    "claims": [
                        {
                            "subject": f"storage-subject-{k}",
                            "attribute": "personnel_deployed",
                            "value": rnd.randint(9_000, 14_000),
                            "attributed_to": f"official-{rnd.randint(1, 50)}",
                        }
                    ],
                }
            )
    if shuffled:
        rnd.shuffle(out)
    else:  # keys interleaved, each key's claims in publication order
        out.sort(key=lambda r: (r["published_at"], r["report_id"]))
    return out


def run(keys: int, per_key: int, shuffled: bool, batch: int = 500) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'storage.db'}")
        create_schema(engine)
        ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=4, tolerance=0.1)
        recorded = now_iso()  # one batch request: ingest stamps it with one recorded time
        events = [
            e
            for body in _reports(keys, per_key, shuffled)
            for e in prepare_report(ReportIn.model_validate(body), ctx, None, recorded).events
        ]
        reconciler = Reconciler(REGISTRY)
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            reconciler.apply(engine, events[i : i + batch])
        seconds = time.perf_counter() - started
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            columns = [
                c for c in ("result", "delta", "diff") if c in versions_t.c
            ]  # a checkout before revision 0003 has no delta: the bench runs there too
            rows, payload = conn.execute(
                select(
                    func.count(),
                    func.sum(sum(func.coalesce(func.length(versions_t.c[c]), 0) for c in columns)),
                )
            ).one()
        engine.dispose()
    claims = keys * per_key
    db_bytes = int(pages) * int(page_size)
    return {
        "order": "shuffled" if shuffled else "in order",
        "keys": keys,
        "per_key": per_key,
        "claims": claims,
        "seconds": seconds,
        "versions": int(rows),
        "db_bytes": db_bytes,
        "version_bytes": int(payload or 0),
        "db_per_claim": db_bytes / claims,
        "versions_per_claim": int(rows) / claims,
    }


def extrapolate(small: dict[str, Any], large: dict[str, Any]) -> float:
    """The issue's batch in bytes: per-key bytes fitted as a + b*n + c*n^2 through the two
    runs would need three points; with two, the growth exponent between them is fitted
    (bytes ~ n^e per key) and applied up to 8,000 claims per key on 20 keys."""
    import math

    n1, n2 = small["per_key"], large["per_key"]
    b1, b2 = small["db_bytes"] / small["keys"], large["db_bytes"] / large["keys"]
    exponent = math.log(b2 / b1) / math.log(n2 / n1)
    per_key = b2 * (BATCH_CLAIMS / BATCH_KEYS / n2) ** exponent
    return float(per_key * BATCH_KEYS)


def _row(r: dict[str, Any]) -> str:
    return (
        f"| {r['order']} | {r['keys']} x {r['per_key']} | {r['versions']:,} "
        f"({r['versions_per_claim']:.1f}/claim) | {r['db_bytes'] / 2**20:.1f} MiB "
        f"| {r['db_per_claim']:,.0f} B | {r['version_bytes'] / 2**20:.1f} MiB "
        f"| {r['seconds']:.1f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=BATCH_KEYS)
    parser.add_argument("--claims-per-key", type=int, default=200)
    parser.add_argument("--order", choices=("in", "shuffled", "both"), default="both")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    lines = [
        "| publication dates | keys x claims | versions | database | per claim "
        "| version payload | apply |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for shuffled in {"in": [False], "shuffled": [True], "both": [False, True]}[args.order]:
        small = run(args.keys, args.claims_per_key // 2, shuffled)
        large = run(args.keys, args.claims_per_key, shuffled)
        lines += [_row(small), _row(large)]
        notes.append(
            f"{large['order']}: the issue's batch ({BATCH_CLAIMS:,} claims on {BATCH_KEYS} "
            f"keys) extrapolates to {extrapolate(small, large) / 2**30:.2f} GiB"
        )
        print("\n".join(lines[-2:]), flush=True)
    text = "\n".join(lines + [""] + [f"- {n}" for n in notes])
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as out:
            out.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
