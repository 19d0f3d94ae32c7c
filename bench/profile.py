"""Where the time goes: py-spy samples of the reconciler's apply path, bucketed.

    .venv/bin/python -m bench.profile [--claims 20000 --keys 2000]

Runs the reconciler's core (Reconciler.apply on batches of 500 events, SQLite, the same
events ingest would log) under `py-spy record`, then attributes every sample to the
innermost bucket it is in: consensus computation, the timeline revision around it,
encoding the result (JSON + digest + diff), SQL (SQLAlchemy + the sqlite3 driver,
including commit), event decoding and the rest. Prints a table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

# innermost match wins: a frame list is scanned from the leaf up
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("SQL (SQLAlchemy + sqlite3, incl. commit)", ("sqlalchemy/", "sqlite3", "_insert_many")),
    (
        "result encoding (dict, JSON, digest, diff)",
        # the delta and the per-field encoding are this stage too (issue #19's profile
        # counted them here by hand)
        (
            "result_to_dict",
            "_computed",
            "_diff",
            "_body",
            "_assemble",
            "result_fields",
            "encode_fields",
            "join_fields",
            "_stored_result",
            "result_delta",
        ),
    ),
    ("consensus: explanation sentence", ("explain_numeric", "explain_vote")),
    ("consensus: clusters and origins", ("assign_clusters", "make_groups", "_clusters")),
    ("consensus: admission (hedges, weights)", ("admit",)),
    ("consensus: fusion (weighted median, band)", ("fuse", "vote")),
    ("consensus: rest", ("compute_consensus",)),
    ("timeline revision (which steps change)", ("revise",)),
    ("claim/event decoding", ("claim_from_dict", "event_from_json", "to_json")),
    ("key state loading", ("_load_states", "_prefetch", "_know_subjects")),
]


Buckets = list[tuple[str, tuple[str, ...]]]


def py_spy_record(
    raw: Path, rate: int, target: list[str], flags: tuple[str, ...] = ()
) -> list[str]:
    """The `py-spy record` command (the py-spy beside this interpreter) that writes raw samples,
    `rate` a second, to `raw`; `target`: `["--pid", pid]` or `["--", command...]`."""
    spy = Path(sys.executable).with_name("py-spy")
    return [str(spy), "record", *flags, "-r", str(rate), "-f", "raw", "-o", str(raw), *target]


def bucket_of(frames: list[str], buckets: Buckets, other: str) -> str:
    for frame in reversed(frames):
        for name, needles in buckets:
            if any(n in frame for n in needles):
                return name
    return other


def bucket_shares(
    raw: Path, buckets: Buckets, other: str, keep: Callable[[str], bool]
) -> tuple[list[tuple[str, float]], int]:
    """Per bucket, its share (%) of the samples in py-spy's raw output (a line: the frames
    joined by ';', a space, a count) whose stack `keep` accepts, most first; and their total."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not keep(stack):
            continue
        counts[bucket_of(stack.split(";"), buckets, other)] += int(n)
        total += int(n)
    return [(name, 100 * c / total) for name, c in counts.most_common()] if total else [], total


def summarize(raw: Path, root: str) -> list[tuple[str, float]]:
    """The reconciler's buckets over the samples inside `root` (a frame name, no ';')."""
    other = "other (batch bookkeeping, interpreter)"
    return bucket_shares(raw, BUCKETS, other, lambda stack: root in stack)[0]


def worker(claims: int, keys: int) -> None:
    from bench.run import apply_in_batches, prepared_events

    events = prepared_events(claims, keys)
    tmp = Path(tempfile.mkdtemp(prefix="claimledger-profile-"))
    elapsed = apply_in_batches(tmp / "profile.db", events)
    print(
        f"{len(events):,} events applied in {elapsed:.1f} s under the profiler "
        f"({len(events) / elapsed:,.0f} events/s, {1e6 * elapsed / len(events):,.0f} us/event)"
    )


def budgets() -> list[tuple[str, float]]:
    """CPU per unit of the pure stages, without I/O: what one core can do at best."""
    import random

    from bench.run import REGISTRY, report_body
    from services.infra.db import create_schema, make_engine
    from services.infra.keys import KeyChecker
    from services.ingest.api import IngestContext, prepare_report
    from services.reconcile.store import _computed_result
    from shared.codec import claim_from_dict
    from shared.consensus import compute_consensus
    from shared.reports import ReportIn

    engine = make_engine("sqlite://")
    create_schema(engine)
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    rnd = random.Random(1)
    bodies = [report_body(i, 10_000, 10, rnd) for i in range(1000)]
    start = time.process_time()
    claims = []
    for body in bodies:
        item = prepare_report(ReportIn.model_validate(body), ctx, None)
        claims += [
            claim_from_dict(e.payload.claim) for e in item.events if e.type == "ClaimAsserted"
        ]
    per_claim = (time.process_time() - start) / 10_000
    rows = [("ingest: validate + normalise + build events, per claim", per_claim * 1e6)]
    spec = REGISTRY.spec_for("personnel_deployed", numeric=True)
    for n in (10, 20):
        groups = [claims[i : i + n] for i in range(0, 4000, n)]
        memos: list[dict] = [{} for _ in groups]  # type: ignore[type-arg]
        for g, memo in zip(groups, memos, strict=True):  # admissions memoised, as live
            compute_consensus(g, spec, memo=memo)
        start = time.process_time()
        for _ in range(3):
            for g, memo in zip(groups, memos, strict=True):
                _computed_result(compute_consensus(g, spec, memo=memo))
        per = (time.process_time() - start) / (3 * len(groups))
        rows.append((f"reconcile: one consensus + its encoding, key of {n} claims", per * 1e6))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples/s")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.claims, args.keys)
        return
    raw = Path(tempfile.mkdtemp(prefix="claimledger-profile-")) / "reconcile.txt"
    worker_argv = ["--worker", "--claims", str(args.claims), "--keys", str(args.keys)]
    subprocess.run(
        py_spy_record(raw, args.rate, ["--", sys.executable, "-m", "bench.profile", *worker_argv]),
        check=True,
    )
    print("\nCPU per unit of the pure stages (one core, no I/O)\n")
    print("| stage | CPU | at most, one core |\n|---|---|---|")
    for name, us in budgets():
        print(f"| {name} | {us:,.0f} us | {1e6 / us:,.0f}/s |")
    rows = summarize(raw, "Reconciler.apply")
    print(
        f"\nReconciler.apply, {args.claims:,} claims on {args.keys:,} keys "
        "(share of samples inside apply)\n"
    )
    print("| where | share |\n|---|---|")
    for name, share in rows:
        print(f"| {name} | {share:.1f}% |")
    print(f"\nraw samples: {raw}")


if __name__ == "__main__":
    main(sys.argv[1:])
