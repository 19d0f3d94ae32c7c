"""The reconciler at size, in process (issue #19's slowdown): many claims per key and a
working set larger than the reconciler's claim cache, as in `make bench`'s sustained run
(200,000 claims on 10,000 keys, 100k-claim cache), scaled down.

    python -m bench.reconsize [--claims 40000] [--keys 2000] [--cache 20000]

Events: the bench's news-shaped reports (10 claims on random keys, publication times
increasing), 100 reports per `:batch` request, each request one recorded time (as ingest
stamps a request). Phase "apply": Reconciler.apply in batches of 500 over a fresh SQLite
file (the live consumer's batches), with `--cache` claims of cache; phase "replay": the
stored log rebuilt into an empty database (services.reconcile.replay, batches of 2,000).
Each phase runs in its own process, so its peak RSS (ru_maxrss) is its own.

Self-contained (imports only services/ and shared/), so the same file measures another
checkout: `cd <checkout> && .venv/bin/python <this file>`, its editable install supplying
that checkout's code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _infra(name: str) -> Any:
    """services.infra.<name>, or services.<name> in checkouts before services/infra/."""
    import importlib

    try:
        return importlib.import_module(f"services.infra.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"services.{name}")


def _db() -> tuple[Any, Any]:
    db = _infra("db")
    return db.create_schema, db.make_engine


def report_body(i: int, keys: int, rnd: random.Random) -> dict[str, Any]:
    """bench/run.py's report body (publication times mostly increase), copied rather than
    imported: this script also runs on older checkouts, whose bench/run.py differs."""
    from shared.timeaxes import iso

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
            for _ in range(10)
        ],
    }


def learned_event(run: int, recorded: str, rnd: random.Random) -> Any:
    """A re-weighting run's event (services/ingest/learning.py's shape): a learned score
    for each of the bench's 97 sources, effective when recorded."""
    from shared.events import SOURCE_RELIABILITY_LEARNED, Event, stable_id

    scores = {f"src{s}": round(rnd.uniform(0.7, 1.3), 6) for s in range(97)}
    payload = {
        "scores": scores,
        "copies": {},
        "method": "truth-discovery-agreement",
        "method_version": 1,
        "run_id": f"run_bench_{run}",
        "effective_at": recorded,
    }
    event_id = stable_id("e_", SOURCE_RELIABILITY_LEARNED, run, recorded)
    return Event(
        event_id,
        SOURCE_RELIABILITY_LEARNED,
        1,
        recorded,
        None,
        payload,
        subject="claimledger:reliability",
    )


def make_events(path: Path, claims: int, keys: int, learn_every: int = 0) -> int:
    """The events ingest logs for `claims` claims, written as JSON lines; with
    `learn_every`, a re-weighting run's event after every that many claims (the learner
    runs by itself while claims arrive)."""
    create_schema, make_engine = _db()
    KeyChecker = _infra("keys").KeyChecker
    from services.ingest.api import IngestContext, prepare_report
    from shared.attributes import AttributeRegistry
    from shared.reports import ReportIn
    from shared.timeaxes import iso

    engine = make_engine("sqlite://")
    create_schema(engine)
    ctx = IngestContext(engine, None, AttributeRegistry.load(), KeyChecker(engine), 4, 0.1)
    rnd = random.Random(7)
    scores = random.Random(11)
    n = 0
    with path.open("w") as out:
        for i in range(claims // 10):
            recorded = iso(T0 + timedelta(seconds=i // 100))  # one per 100-report request
            if learn_every and i % 100 == 0 and i and (i * 10) % learn_every == 0:
                # between two requests: recorded after the one before, before the next
                between = iso(T0 + timedelta(seconds=i // 100 - 0.5))
                out.write(learned_event(i, between, scores).to_json() + "\n")
                n += 1
            pending = prepare_report(ReportIn.model_validate(report_body(i, keys, rnd)), ctx, None)
            for event in pending.events:
                out.write(replace(event, recorded_at=recorded).to_json() + "\n")
                n += 1
    return n


def phase_apply(events_path: Path, db: Path, cache: int) -> dict[str, Any]:
    create_schema, make_engine = _db()
    from services.reconcile.store import Reconciler
    from shared.attributes import AttributeRegistry
    from shared.events import event_from_json

    with events_path.open() as lines:
        total = sum(1 for _ in lines)
    engine = make_engine(f"sqlite:///{db}")
    create_schema(engine)
    reconciler = Reconciler(AttributeRegistry.load(), cache_claims=cache)
    half = total // 2 - (total // 2) % 500
    start = time.perf_counter()
    cpu = time.process_time()
    mid = start
    with events_path.open() as lines:  # read as applied: the RSS is the reconciler's
        for i in range(0, total, 500):
            if i == half:
                mid = time.perf_counter()
            batch = [event_from_json(next(lines)) for _ in range(min(500, total - i))]
            reconciler.apply(engine, batch)
    end = time.perf_counter()
    return {
        "events": total,
        "seconds": end - start,
        "cpu_s": time.process_time() - cpu,
        "rate": total / (end - start),
        "second_half_rate": (total - half) / (end - mid),
    }


def phase_replay(source_db: Path, db: Path, cache: int) -> dict[str, Any]:
    _, make_engine = _db()
    from services.reconcile.replay import projection_hash, replay
    from services.reconcile.store import Reconciler
    from shared.attributes import AttributeRegistry

    source = make_engine(f"sqlite:///{source_db}")
    target = make_engine(f"sqlite:///{db}")
    start = time.perf_counter()
    cpu = time.process_time()
    count = replay(source, target, Reconciler(AttributeRegistry.load(), cache_claims=cache))
    seconds = time.perf_counter() - start
    cpu_s = time.process_time() - cpu
    live, rebuilt = projection_hash(source), projection_hash(target)
    return {
        "events": count,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rate": count / seconds,
        "identical": live == rebuilt,
        "hash": live[:16],
    }


def child(args: argparse.Namespace) -> None:
    tmp = Path(args.tmp)
    if args.phase == "apply":
        out = phase_apply(tmp / "events.jsonl", tmp / "live.db", args.cache)
    else:
        out = phase_replay(tmp / "live.db", tmp / "replayed.db", args.cache)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=40_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--cache", type=int, default=20_000, help="claims the cache holds")
    parser.add_argument(
        "--learn-every", type=int, default=0, help="a learned-scores event every N claims"
    )
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--phase", choices=("apply", "replay"), help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-reconsize-"))
    n = make_events(tmp / "events.jsonl", args.claims, args.keys, args.learn_every)
    print(
        f"{n:,} events: {args.claims:,} claims on {args.keys:,} keys, cache {args.cache:,}"
        + (f", learned scores every {args.learn_every:,} claims" if args.learn_every else "")
    )
    phases = ["apply"] if args.skip_replay else ["apply", "replay"]
    for phase in phases:
        cmd = [sys.executable, os.path.abspath(__file__), "--phase", phase, "--tmp", str(tmp)]
        cmd += ["--cache", str(args.cache)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        line = (
            f"{phase}: {out['events']:,} events in {out['seconds']:.1f} s = {out['rate']:,.0f}/s"
            f" (CPU {out['cpu_s']:.1f} s), peak RSS {out['peak_rss_mb']:.0f} MB"
        )
        if phase == "apply":
            line += f", second half {out['second_half_rate']:,.0f}/s"
        else:
            line += f", hash {out['hash']} {'identical' if out['identical'] else 'DIFFERENT'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
