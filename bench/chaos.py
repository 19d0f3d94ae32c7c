"""Chaos run (issue 5): a long load while reconciler, ingest and Redis are killed at random.

Run: .venv/bin/python -m bench.chaos --claims 100000 [--seed N] [--mean-fault-gap-s 6]

Real processes (`claimledger serve`), a real redis-server and SQLite, as in tests/fault/.
Faults, chosen at random: kill -9 the reconciler, SIGTERM the reconciler, kill -9 ingest,
kill -9 Redis and restart it EMPTY on the same port. The load rides through them (a batch
is retried until acknowledged). Afterwards it waits for convergence and prints: claims sent,
acknowledged and applied, duplicates, acknowledged claims missing, replay hash equality and
the time to converge after the last fault. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from services.harness import load as helpers
from services.harness.cluster import Cluster
from services.infra.localredis import LocalRedis

FAULTS = ("kill -9 reconcile", "SIGTERM reconcile", "kill -9 ingest", "kill -9 redis (empty)")
ENV = {"CLAIMLEDGER_REPUBLISH_AFTER_S": "5", "CLAIMLEDGER_CLAIM_IDLE_MS": "5000"}


def _inject(fault: str, cluster: Cluster, redis: LocalRedis, rnd: random.Random) -> None:
    if fault == "kill -9 reconcile":
        cluster.stop("reconcile", kill=True)
        time.sleep(rnd.uniform(0, 2))
        cluster.start("reconcile")
    elif fault == "SIGTERM reconcile":
        service = cluster.services.pop("reconcile")
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(60)
        cluster.start("reconcile")
    elif fault == "kill -9 ingest":
        cluster.stop("ingest", kill=True)
        time.sleep(rnd.uniform(0, 2))
        cluster.start("ingest")
    else:
        redis.stop(kill=True)
        time.sleep(rnd.uniform(1, 4))
        redis.wipe()
        redis.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--claims-per-report", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200, help="reports per POST")
    parser.add_argument("--keys", type=int, default=10_000, help="subject/attribute keys")
    parser.add_argument("--mean-fault-gap-s", type=float, default=6.0)
    parser.add_argument("--converge-timeout-s", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rnd = random.Random(seed)

    tmp = Path(tempfile.mkdtemp(prefix="claimledger-chaos-"))
    redis = LocalRedis(tmp / "redis", persist=False).start()
    cluster = Cluster(tmp, redis.url, f"sqlite:///{tmp / 'claimledger.db'}", **ENV)
    faults: list[tuple[float, str]] = []
    try:
        cluster.start("ingest")
        cluster.start("reconcile")
        reports = helpers.make_reports(
            "chaos",
            args.claims // args.claims_per_report,
            args.claims_per_report,
            keys=args.keys,
            seed=seed,
        )

        def ingest_url() -> str | None:
            service = cluster.services.get("ingest")
            return service.url if service else None

        started = last_fault = time.monotonic()
        loader = helpers.Loader(ingest_url, reports, batch_size=args.batch)
        loader.start()
        expected_total = len(reports) + sum(len(r["claims"]) for r in reports)
        # faults while the load is posted or still being applied
        while loader.is_alive() or helpers.applied_events(cluster.db_url) < expected_total * 0.9:
            time.sleep(rnd.expovariate(1 / args.mean_fault_gap_s))
            fault = rnd.choice(FAULTS)
            at = time.monotonic() - started
            _inject(fault, cluster, redis, rnd)
            faults.append((at, fault))
            last_fault = time.monotonic()
            print(f"{at:7.1f}s  {fault}", flush=True)
        acked = loader.finish(timeout_s=args.converge_timeout_s)
        deadline = last_fault + args.converge_timeout_s
        while not helpers.converged(cluster.db_url, redis.url, acked.events):
            if time.monotonic() > deadline:
                print("did NOT converge in time", file=sys.stderr)
                break
            time.sleep(0.5)
        converge_s = time.monotonic() - last_fault
        total_s = time.monotonic() - started

        c = helpers.counts(cluster.db_url)
        acked_ids = {cid for ids in acked.reports.values() for cid in ids}
        stored_ids = helpers.claim_ids(cluster.db_url)
        replayed = helpers.clean_replay(cluster.db_url, tmp / "replay")
        kinds = {f: sum(1 for _, k in faults if k == f) for f in FAULTS}
        print()
        print(f"seed                      {seed}")
        print(f"claims sent               {acked.sent_claims}")
        print(f"claims acknowledged       {acked.claims} ({len(acked.reports)} reports)")
        print(f"claims applied            {c['claim_events']} (claim rows {c['claims']})")
        print(
            f"duplicates                {c['events'] - c['distinct_event_ids']} events, "
            f"{c['claim_events'] - len(stored_ids)} claims"
        )
        print(f"acknowledged, not applied {len(acked_ids - stored_ids)}")
        print(f"events                    {c['events']} (expected {acked.events})")
        print(f"outbox pending / dead     {c['outbox_pending']} / {c['outbox_dead']}")
        print(f"failed posts (retried)    {acked.failed_posts}")
        print(
            f"faults                    {len(faults)}: "
            + ", ".join(f"{n}x {k}" for k, n in kinds.items())
        )
        print(
            f"replay hash equal         {replayed.live_hash == replayed.replay_hash} "
            f"(versions per key equal: {replayed.live_versions == replayed.replay_versions})"
        )
        print(f"time to converge          {converge_s:.1f}s after the last fault's recovery began")
        print(f"total                     {total_s:.1f}s")
        ok = (
            c["events"] == c["distinct_event_ids"] == acked.events
            and acked_ids == stored_ids
            and replayed.live_hash == replayed.replay_hash
        )
        return 0 if ok else 1
    finally:
        cluster.stop_all()
        redis.stop(kill=True)


if __name__ == "__main__":
    sys.exit(main())
