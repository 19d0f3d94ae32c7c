"""CPU per version of the reconciler's result encoding, and CPU per applied event, in
process time (best of several runs): on a loaded machine wall-clock rates move by tens of
percent between runs, process time much less.

    python -m bench.encoding [--claims 4000 --keys 200]

"encoding": a key's consensus results, in the order its claims came, turned into what a
version row stores (digest, parts, whole result or delta, diff); consensus itself is
computed beforehand and not timed. "apply": bench.grouping's news-shaped and
dataset-shaped events through Reconciler.apply in batches of 500 (SQLite file).
Runs on any checkout (PYTHONPATH=<checkout>), so the same script measures the code before
and after a change.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.grouping import _events, dataset, news
from bench.run import REGISTRY, prepared_events
from services.infra.db import create_schema, make_engine
from services.reconcile import store
from shared.codec import claim_from_dict, result_to_dict
from shared.consensus import compute_consensus


def best_of(runs: int, work: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def encoding_us(claims: int, keys: int) -> float:
    events = prepared_events(claims, keys)
    by_key: dict[str, list[Any]] = {}
    for e in events:
        if e.type == "ClaimAsserted":
            claim = claim_from_dict(e.payload.claim)
            by_key.setdefault(claim.subject, []).append(claim)
    spec = REGISTRY.spec_for("personnel_deployed", numeric=True)
    timelines = []
    for held in by_key.values():
        memo: dict[str, Any] = {}
        timelines.append(
            [compute_consensus(held[:i], spec, memo=memo) for i in range(1, len(held) + 1)]
        )
    # the path of the checkout measured: straight from the dataclass where it exists
    computed = getattr(store, "_computed_result", None) or (
        lambda r: store._computed(result_to_dict(r))
    )

    def work() -> None:
        for results in timelines:
            state, previous = store.KeyState("s", "a"), None
            for result in results:
                c = computed(result)
                state.head += 1
                store._stored_result(state, c)
                store._diff(previous, c)
                previous = c

    return 1e6 * best_of(7, work) / sum(map(len, timelines))


def apply_us(events: list[Any]) -> float:
    def work() -> None:
        path = Path(tempfile.mkdtemp(prefix="bench-encoding-")) / "apply.db"
        engine = make_engine(f"sqlite:///{path}")
        create_schema(engine)
        reconciler = store.Reconciler(REGISTRY)
        for i in range(0, len(events), 500):
            reconciler.apply(engine, events[i : i + 500])

    return 1e6 * best_of(3, work) / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=4000)
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args()
    print(f"encoding: {encoding_us(args.claims, args.keys):.1f} us CPU per version")
    for name, requests in (
        ("news-shaped", news(6000, 600)),
        ("dataset-shaped", dataset(20, 150)),
    ):
        print(f"apply {name}: {apply_us(_events(requests, False)):.0f} us CPU per event")


if __name__ == "__main__":
    main()
