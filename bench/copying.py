"""Synthetic copying benchmark (issue #18): claimledger against majority vote, AccuCopy and
the `truthdiscovery` library, on data with known truth and known copier groups.

    .venv/bin/python -m bench.copying                  # seed 7, 400 items, and record
    .venv/bin/python -m bench.copying --seeds 7 8 9 --no-record

The data come from bench/copying_model.py (the generative model of Dong et al., VLDB
2009, with wholesale, partial and lagging copiers). claimledger is measured through its
API at its defaults with nothing declared: the claims are posted as reports (one per
source and 100 items) to a fresh system of real processes, every key is read back with
`GET /v1/snapshot` once the last write is visible; then again after `claimledger
reweigh`, the operator's learning step, reported in its own row. Precision = the share
of objects answered with the true value, overall and per attribute (the bar: AccuCopy's
precision, and no attribute below majority vote).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.accuracy import PEER_ALGORITHMS, RESULTS, defaults, reweigh, settled, wait_visible
from bench.accuracy import peer_baselines as library_peers
from bench.copying_model import (
    ATTRIBUTES,
    AccuCopy,
    Claim,
    Key,
    Synthetic,
    Value,
    by_key,
    generate,
    majority_vote,
    precision,
)
from claimledger.client import Client
from services.harness.cluster import system


def reports(claims: list[Claim], per_report: int = 100) -> Iterator[dict[str, Any]]:
    """One report per source and `per_report` items, values as a user sends them: gate names
    as text (some look like numbers), readings as JSON numbers."""
    by_source: dict[str, list[Claim]] = {}
    for c in claims:
        by_source.setdefault(c.source, []).append(c)
    for source, mine in sorted(by_source.items()):
        for start in range(0, len(mine), per_report):
            chunk = mine[start : start + per_report]
            yield {
                "report_id": f"synthetic-{source}-{start // per_report}",
                "source": {"id": source, "kind": "other"},
                "published_at": chunk[0].published,
                "claims": [
                    {"subject": c.subject, "attribute": c.attribute, "value": c.value}
                    for c in chunk
                ],
            }


def read_back(client: Client, token: str | int) -> dict[Key, Value]:
    """Every key's answer (a number's best, a name's value) once `token` is visible."""
    wait_visible(client, token, timeout_s=900)
    out: dict[Key, Value] = {}
    for item in client.snapshot(page_size=1000):
        value = item.get("best")
        if value is None:
            value = item.get("value")
        if value is not None:
            out[(item["subject"], item["attribute"])] = value
    return out


def through_product(data: Synthetic) -> tuple[dict[str, dict[Key, Value]], float]:
    """The system at its defaults (env as the test harness gives it, minus the suite's
    switch that turns learning off)."""
    with tempfile.TemporaryDirectory() as tmp, system(Path(tmp)) as cluster:
        for name in ("ingest", "reconcile", "query"):
            defaults(cluster).start(name)
        with Client(cluster.url("ingest"), cluster.url("query"), timeout=120) as client:
            results = client.post_reports(reports(data.claims), chunk_size=50)
            refused = [r for r in results if r["status"] not in (200, 202)]
            if refused:
                raise SystemExit(f"{len(refused)} reports refused, first: {refused[0]}")
            token = max(int(r["token"]) for r in results)
            first = read_back(client, token)
            learned, waited = settled(lambda: read_back(client, 0), first, limit_s=180)
            print(f"  learned trust settled {waited:.0f} s after the last write was visible")
            operator = read_back(client, reweigh(cluster))
    return {
        "claimledger, first answers (before learning)": first,
        "claimledger, defaults (learning by itself, nothing declared)": learned,
        "claimledger, then `claimledger reweigh`": operator,
    }, waited


def peers(data: Synthetic) -> dict[str, dict[Key, Value] | str]:
    out: dict[str, dict[Key, Value] | str] = {"majority vote": majority_vote(data.claims)}
    t0 = time.perf_counter()
    out["AccuCopy (Dong et al. 2009, bench implementation)"] = AccuCopy().run(data.claims)
    print(f"  AccuCopy in {time.perf_counter() - t0:.1f} s", flush=True)
    found = library_peers(by_key(data.claims))  # type: ignore[arg-type]
    if isinstance(found, str):
        for algorithm in PEER_ALGORITHMS:
            out[f"truthdiscovery {algorithm}"] = found
    else:
        for algorithm, answers in found.items():
            out[f"truthdiscovery {algorithm}"] = answers  # type: ignore[assignment]
    return out


def run(seed: int, items: int) -> dict[str, Any]:
    data = generate(seed=seed, items=items)
    print(f"seed {seed}: {len(data.claims)} claims, {len(data.truth)} objects", flush=True)
    rows: dict[str, dict[str, float] | str] = {}
    product, waited = through_product(data)
    answers = {**product, **peers(data)}
    for name, found in answers.items():
        rows[name] = found if isinstance(found, str) else precision(found, data.truth)
    return {
        "seed": seed,
        "claims": len(data.claims),
        "objects": len(data.truth),
        "rows": rows,
        "learned_after_s": round(waited),
    }


def table(result: dict[str, Any]) -> list[str]:
    head = ["method", "all", *ATTRIBUTES]
    lines = [
        f"### seed {result['seed']}: {result['claims']} claims, {result['objects']} objects "
        f"(learning settled {result['learned_after_s']} s after the last write was visible)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, row in result["rows"].items():
        if isinstance(row, str):
            lines.append(f"| {name} | {row} |" + " |" * len(ATTRIBUTES))
        else:
            cells = [f"{row[c]:.4f}" for c in ("all", *ATTRIBUTES)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--no-record", action="store_true", help="don't append to RESULTS.md")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    results = [run(seed, args.items) for seed in args.seeds]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Synthetic copying benchmark, {when}",
        "",
        f"`{' '.join(['.venv/bin/python -m bench.copying', *sys.argv[1:]])}` on "
        f"{platform.node() or 'this machine'}: precision (share of objects answered with the "
        "true value). Data: bench/copying_model.py (seeded).",
        "",
    ]
    for result in results:
        lines += [*table(result), ""]
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
