"""Accuracy benchmark (issue #8): claimledger's consensus against ground truth, next to
baselines computed in the same run.

    .venv/bin/python -m bench.accuracy                      # all three data sets
    .venv/bin/python -m bench.accuracy --sets population-subset --no-record

For each data set (from ../shared/benchmarks, see their PROVENANCE.md) it starts Redis
and the three services as real processes on a fresh SQLite file (tests.conftest.system),
imports the claims through the product (`import_claims`: the `claimledger import`
command, which posts to the public batch endpoint), reads every key's consensus back
through the query API (`GET /v1/snapshot`, with `min_token` so every write is visible),
runs the re-weighting the way an operator does (`claimledger reweigh`, which appends a
SourceReliabilityLearned event that the reconciler applies), reads the consensus again,
and scores both readings.

Baselines over the same claims: mean, median, majority vote (ties: the median of the
tied values), and the `truthdiscovery` PyPI package's Sums, AverageLog, Investment,
PooledInvestment and TruthFinder. That package pins old numpy/pytest, so it lives in its
own virtualenv (`make bench-peer` creates `.venv-bench`); without it the peer rows are
reported as missing, not silently skipped.

Scores: Population (numeric, truth = census figure) -> MAE, RMSE and error rate
(|error| > 1% of the truth) over the keys with ground truth. Weather (truth = the
AccuWeather reading, absent from the claims; some keys have several truth values) ->
agreement = share of keys whose consensus equals one of the key's truth values exactly,
plus MAE to the nearest truth value. Each source's latest reading of a key is its
claim there (timestamps to the second): the product does this by itself (one origin
votes once, with its latest statement); the baselines get the same latest readings.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from claimledger.client import ClaimledgerError, Client
from services.harness.cluster import Cluster, system
from shared.attributes import AttributeRegistry
from shared.consensus._numeric import MEDIAN_OR_MODE, PLURALITY
from shared.consensus._weights import RANK
from shared.consensus.reliability import Observation, learn_reliability

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
DATA = Path(os.environ.get("CLAIMLEDGER_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
PEER_SCRIPT = ROOT / "bench" / "peer_truthdiscovery.py"
PEER_ALGORITHMS = ("Sums", "AverageLog", "Investment", "PooledInvestment", "TruthFinder")
# The Weather attributes are declared measures (signed readings, plurality rule); the
# services get this file as CLAIMLEDGER_ATTRIBUTES_FILE, the pure learner reads it too.
WEATHER_ATTRIBUTES = ROOT / "bench" / "weather_attributes.toml"
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Claim:
    subject: str
    attribute: str
    source: str
    value: float
    published: str  # ISO-8601 UTC


@dataclass(slots=True)
class Dataset:
    name: str
    claims: list[Claim]
    truth: dict[Key, list[float]]
    kind: str  # "population" | "weather"
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def attributes_file(self) -> Path | None:
        return WEATHER_ATTRIBUTES if self.kind == "weather" else None


# -- data sets -------------------------------------------------------------------------


def load_population(file: str) -> Dataset:
    """GTM preprocessing: `object<TAB>contributor<TAB>value<TAB>year`; truth rows
    `city, state, year, population`, object = `city, state_year`."""
    folder = DATA / "population"
    truth: dict[Key, list[float]] = {}
    for line in (folder / "population-gd.txt").read_text("utf-8", errors="replace").splitlines():
        place, year, pop = (p.strip() for p in line.rsplit(",", 2))
        truth[(f"{place}_{year}", "population")] = [float(pop)]
    claims = []
    skipped: Counter[str] = Counter()
    text = (folder / file).read_text("utf-8", errors="replace")
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            skipped["malformed line"] += 1
            continue
        obj, source, value, _year = parts
        # Wikipedia edit times are not in the file: one nominal publication date.
        claims.append(Claim(obj, "population", source, float(value), "2009-01-01T00:00:00Z"))
    name = "population-subset" if file == "population-new-new.txt" else "population-all"
    return Dataset(name, claims, truth, "population", skipped)


def _number(text: str) -> float | None:
    """'30.06' -> 30.06, '1 1/2' -> 1.5 (visibility in miles)."""
    try:
        return float(sum(Fraction(part) for part in text.split()))
    except (ValueError, ZeroDivisionError):
        return None


def _sampled(obj: str, percent: int) -> bool:
    return int(hashlib.sha256(obj.encode()).hexdigest()[:8], 16) % 100 < percent


def load_weather(percent: int = 100) -> Dataset:
    """`percent`: a deterministic sample of the objects (city-hours), all their claims."""
    folder = DATA / "weather"
    claims = []
    skipped: Counter[str] = Counter()
    for path in sorted((folder / "claims").glob("*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if percent < 100 and not _sampled(row["ObjectID"], percent):
                    continue
                value = _number(row["PropertyValue"])
                if value is None:
                    skipped[f"not a number: {row['PropertyValue']!r}"] += 1
                    continue
                when = datetime.strptime(row["TimeStamp"], "%a %b %d %H:%M:%S %Y")
                claims.append(
                    Claim(
                        row["ObjectID"],
                        row["PropertyID"],
                        row["SourceID"],
                        value,
                        when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    )
                )
    truth: dict[Key, list[float]] = defaultdict(list)
    with (folder / "ground_truth" / "weather_truth.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if percent < 100 and not _sampled(row["ObjectID"], percent):
                continue
            value = _number(row["PropertyValue"])
            if value is not None and value not in truth[(row["ObjectID"], row["PropertyID"])]:
                truth[(row["ObjectID"], row["PropertyID"])].append(value)
    name = "weather" if percent >= 100 else f"weather ({percent}% of objects)"
    return Dataset(name, claims, dict(truth), "weather", skipped)


# -- through the product -----------------------------------------------------------------


def import_claims(cluster: Cluster, dataset: Dataset, folder: Path) -> int:
    """Import a data set through the product's `claimledger import` command (docs/import.md);
    returns the highest write token it reports (`--json`), for `min_token`.

    The claims are written to one CSV whose columns map by name (one report per row,
    the importer's rule); rows the importer or the server refuses are counted."""
    path = folder / f"{re.sub(r'[^a-z0-9]+', '-', dataset.name.lower())}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["subject", "attribute", "source.id", "value", "published_at"])
        for c in dataset.claims:
            out.writerow(
                [
                    c.subject,
                    c.attribute,
                    c.source,
                    int(c.value) if c.value.is_integer() else repr(c.value),
                    c.published,
                ]
            )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "import",
            str(path),
            "--url",
            cluster.url("ingest"),
            "--batch-size",
            "1000",
            "--no-progress",
            "--json",
            "--state",
            str(folder / "import-state.json"),
            "--rejects",
            str(folder / "rejects.jsonl"),
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for reason, n in summary.get("reasons", {}).items():
        dataset.skipped[f"rejected by import: {reason}"] += int(n)
    return int(summary["token"])


def reweigh(cluster: Cluster) -> int:
    """`claimledger reweigh` against the running system's database; returns its token."""
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "reweigh"],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(out.strip(), flush=True)
    found = re.search(r"token (\d+)", out)
    return int(found.group(1)) if found else 0


def wait_visible(client: Client, token: str | int, timeout_s: float = 1800) -> None:
    """Returns once the write `token` is visible to reads (min_token answers 504 meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            next(iter(client.snapshot(min_token=token, page_size=1)), None)
            return
        except ClaimledgerError:
            if time.monotonic() > deadline:
                raise


def read_consensus(client: Client, token: int, timeout_s: float = 1800) -> dict[Key, float]:
    """Every key's current best, once the write `token` is applied."""
    wait_visible(client, token, timeout_s)
    return {
        (item["subject"], item["attribute"]): item["best"]
        for item in client.snapshot(page_size=1000)
        if item.get("best") is not None
    }


# -- baselines ---------------------------------------------------------------------------


def latest_claims(dataset: Dataset) -> dict[Key, dict[str, float]]:
    """key -> source -> that source's latest value there."""
    out: dict[Key, dict[str, tuple[str, float]]] = defaultdict(dict)
    for c in dataset.claims:
        key = (c.subject, c.attribute)
        seen = out[key].get(c.source)
        if seen is None or c.published >= seen[0]:
            out[key][c.source] = (c.published, c.value)
    return {k: {s: v for s, (_, v) in by.items()} for k, by in out.items()}


def vote(values: list[float]) -> float:
    counts = Counter(values)
    top = max(counts.values())
    return statistics.median_low(sorted(v for v, n in counts.items() if n == top))


def baselines(by_key: dict[Key, dict[str, float]]) -> dict[str, dict[Key, float]]:
    out: dict[str, dict[Key, float]] = {"mean": {}, "median": {}, "majority vote": {}}
    for key, by_source in by_key.items():
        values = sorted(by_source.values())
        out["mean"][key] = math.fsum(values) / len(values)
        out["median"][key] = statistics.median(values)
        out["majority vote"][key] = vote(values)
    return out


def peer_baselines(by_key: dict[Key, dict[str, float]]) -> dict[str, dict[Key, float]] | str:
    """The truthdiscovery package's algorithms, run in its own virtualenv."""
    if not PEER_PYTHON.exists():
        return "missing: run `make bench-peer` (creates .venv-bench with truthdiscovery==1.0.4)"
    names = {"\x1f".join(k) for k in by_key}
    rows = [[s, "\x1f".join(k), v] for k, by in sorted(by_key.items()) for s, v in by.items()]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps({"claims": rows, "algorithms": PEER_ALGORITHMS}))
        done = subprocess.run(
            [str(PEER_PYTHON), str(PEER_SCRIPT), str(src), str(dst)], capture_output=True, text=True
        )
        if done.returncode != 0:
            return f"failed: {done.stderr.strip().splitlines()[-1:]}"
        found = json.loads(dst.read_text())
    out: dict[str, dict[Key, float]] = {}
    for algorithm, values in found.items():
        out[algorithm] = {
            tuple(name.split("\x1f", 1)): v  # type: ignore[misc]
            for name, v in values.items()
            if name in names
        }
    return out


# -- scoring -----------------------------------------------------------------------------


def score(estimates: dict[Key, float], truth: dict[Key, list[float]]) -> dict[str, float]:
    keys = [k for k in truth if k in estimates]
    nearest = {k: _nearest(estimates[k], truth[k]) for k in keys}
    errors = [estimates[k] - nearest[k] for k in keys]
    wrong = [k for k, e in zip(keys, errors, strict=True) if abs(e) > 0.01 * abs(nearest[k])]
    exact = [k for k in keys if estimates[k] in truth[k]]
    n = max(len(keys), 1)
    return {
        "keys": len(keys),
        "mae": math.fsum(abs(e) for e in errors) / n,
        "rmse": math.sqrt(math.fsum(e * e for e in errors) / n),
        "error_rate": len(wrong) / n,
        "agreement": len(exact) / n,
        "wrong": len(wrong),
    }


def _nearest(estimate: float, truths: list[float]) -> float:
    """The truth value closest to the estimate (the first of equals)."""
    return min(truths, key=lambda t: math.fabs(estimate - t))


# prior_weight of an ungraded "other" claim, as imported (services: _weights.prior_weight)
PRIOR = 0.18


def offline_learned(dataset: Dataset, preferred: frozenset[int] = frozenset()) -> dict[Key, float]:
    """The pure learner alone (no services): its consensus is the product's fusion with
    the learned scores (tests/unit/test_reliability.py checks the equivalence). Used
    only for data too large to import within a bench run, and labelled so.

    `preferred`: indexes into `dataset.claims` an analyst assessed "preferred" (gold
    answers), as the product sees them: rank preferred, prior x RANK["preferred"]."""
    registry = AttributeRegistry.load(dataset.attributes_file)
    measures = {spec.name for spec in registry if spec.kind == "measure"}
    obs = [
        Observation(
            f"{c.subject}\x1f{c.attribute}",
            c.source,
            c.value,
            published=datetime.fromisoformat(c.published).timestamp(),
            claim_id=f"{i:09d}",
            prior=PRIOR * RANK["preferred"] if i in preferred else PRIOR,
            rule=PLURALITY if c.attribute in measures else MEDIAN_OR_MODE,
            attribute=c.attribute,
            rank="preferred" if i in preferred else "normal",
        )
        for i, c in enumerate(dataset.claims)
    ]
    learned = learn_reliability(obs)
    return {
        (k.split("\x1f", 1)[0], k.split("\x1f", 1)[1]): float(v)
        for k, v in learned.consensus.items()
    }


# -- analysts' gold answers, scored out of sample (issue 18) ------------------------------


@dataclass(frozen=True, slots=True)
class Gold:
    """A seeded share of the keys with ground truth whose truth an analyst gives the
    product (the claims stating it assessed "preferred"); every other key is held out."""

    keys: frozenset[Key]  # the keys an analyst settled
    preferred: frozenset[int]  # indexes into dataset.claims stating the truth there
    unanchored: int  # settled keys whose truth no claim states: nothing to assess
    held_out: frozenset[Key]  # the keys scored: ground truth, claims, not settled


def gold_sample(dataset: Dataset, share: float, seed: int) -> Gold:
    """The first round(share * n) keys of a seeded shuffle of the n keys that have ground
    truth and claims (so a larger share at the same seed settles a superset)."""
    claimed = {(c.subject, c.attribute) for c in dataset.claims}
    keys = sorted(k for k in dataset.truth if k in claimed)
    random.Random(seed).shuffle(keys)
    settled = frozenset(keys[: round(share * len(keys))])
    preferred = frozenset(
        i
        for i, c in enumerate(dataset.claims)
        if (key := (c.subject, c.attribute)) in settled and c.value in dataset.truth[key]
    )
    anchored = {(dataset.claims[i].subject, dataset.claims[i].attribute) for i in preferred}
    return Gold(settled, preferred, len(settled - anchored), frozenset(keys) - settled)


def held_out_score(
    estimates: dict[Key, float], truth: dict[Key, list[float]], keys: frozenset[Key]
) -> dict[str, float]:
    return score({k: v for k, v in estimates.items() if k in keys}, truth)


def run_gold_offline(dataset: Dataset, shares: list[float], seeds: list[int]) -> list[str]:
    """Pure learner with analysts' gold answers on a share of the keys, scored on the
    held-out keys only, next to the learner without them (F = 0) on the same keys."""
    print(f"{dataset.name}: {len(dataset.claims)} claims (pure learner, gold answers)", flush=True)
    plain = offline_learned(dataset)
    population = dataset.kind == "population"
    lines = [
        f"### {dataset.name}, pure learner, analysts' gold answers on a share F of the keys",
        "",
        "| F | seed | keys settled (no claim states the truth) | held-out keys | "
        + (
            "F = 0 on them: MAE / error rate (wrong) | with gold: MAE / error rate (wrong) |"
            if population
            else "F = 0 on them: agreement / MAE | with gold: agreement / MAE |"
        ),
        "|---|---|---|---|---|---|",
    ]
    summary: dict[float, list[tuple[dict[str, float], dict[str, float]]]] = defaultdict(list)
    for share in shares:
        for seed in seeds:
            gold = gold_sample(dataset, share, seed)
            base = held_out_score(plain, dataset.truth, gold.held_out)
            with_gold = held_out_score(
                offline_learned(dataset, gold.preferred), dataset.truth, gold.held_out
            )
            summary[share].append((base, with_gold))
            lines.append(
                f"| {share:g} | {seed} | {len(gold.keys)} ({gold.unanchored}) | "
                f"{len(gold.held_out)} | {_brief(base, population)} | "
                f"{_brief(with_gold, population)} |"
            )
            print(lines[-1], flush=True)
    lines += ["", "Mean [range] over the seeds:", ""]
    lines += [
        "| F | F = 0 on the held-out keys | with gold |",
        "|---|---|---|",
    ]
    for share, runs in summary.items():
        lines.append(
            f"| {share:g} | {_spread([b for b, _ in runs], population)} | "
            f"{_spread([g for _, g in runs], population)} |"
        )
    lines.append("")
    return lines


def _brief(m: dict[str, float], population: bool) -> str:
    if population:
        return f"{m['mae']:.1f} / {m['error_rate']:.4f} ({m['wrong']:.0f})"
    return f"{m['agreement']:.4f} / {m['mae']:.3f}"


def _spread(runs: list[dict[str, float]], population: bool) -> str:
    def one(name: str, fmt: str) -> str:
        values = [r[name] for r in runs]
        return f"{statistics.fmean(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"

    if population:
        return (
            f"MAE {one('mae', '.1f')}, error {one('error_rate', '.4f')}, "
            f"wrong {one('wrong', '.1f')}"
        )
    return f"agreement {one('agreement', '.4f')}, MAE {one('mae', '.3f')}"


def run_offline(dataset: Dataset) -> dict[str, Any]:
    print(f"{dataset.name}: {len(dataset.claims)} claims (pure learner, no services)", flush=True)
    by_key = latest_claims(dataset)
    t0 = time.perf_counter()
    rows = {
        "pure learner (offline), learned reliability": score(
            offline_learned(dataset), dataset.truth
        )
    }
    timings = {"pure learner": time.perf_counter() - t0}
    for name, estimates in baselines(by_key).items():
        rows[name] = score(estimates, dataset.truth)
    peer = peer_baselines(by_key)
    if not isinstance(peer, str):
        for algorithm, estimates in peer.items():
            rows[f"truthdiscovery {algorithm}"] = score(estimates, dataset.truth)
    return {
        "rows": rows,
        "timings": timings,
        "claims": len(dataset.claims),
        "keys": len(by_key),
        "skipped": dict(dataset.skipped),
    }


def settled(read: Any, first: Any, limit_s: float = 300, every_s: float = 10) -> tuple[Any, float]:
    """Learning runs by itself (every 10 s by default, when claims changed): `read()`
    until two reads `every_s` apart agree after at least one change, or `limit_s`.
    Returns the last reading and the seconds waited."""
    started = time.monotonic()
    previous, changed = first, False
    while time.monotonic() - started < limit_s:
        time.sleep(every_s)
        now = read()
        if now != previous:
            previous, changed = now, True
        elif changed:
            break
    return previous, time.monotonic() - started


def defaults(cluster: Cluster) -> Cluster:
    """The services as a user runs them: without the suite's switch that turns learning
    off (tests/conftest.py sets it for the tests; the bench imports that module)."""
    cluster.env.pop("CLAIMLEDGER_REWEIGH_EVERY_S", None)
    return cluster


def assess_gold(client: Client, dataset: Dataset, gold: Gold) -> tuple[int, int]:
    """An analyst's gold answers, as a user gives them: on each settled key, every claim
    stating the truth assessed "preferred" (`POST /v1/claims/{id}/assessment`). Returns
    (claims assessed, the last write token)."""
    assessed, token = 0, 0
    for subject, attribute in sorted(gold.keys):
        truth = dataset.truth[(subject, attribute)]
        for item in client.claims(subject, attribute):
            if item["value"].get("best") in truth:
                done = client.assess(item["claim_id"], "census figure", rank="preferred")
                assessed, token = assessed + 1, max(token, int(done["token"]))
    return assessed, token


def run_set(dataset: Dataset, gold: Gold | None = None) -> dict[str, Any]:
    """Through the product. With `gold`: after learning by itself settles, the analyst's
    gold answers are posted and learning settles again; every row is then scored on the
    held-out keys only (the defaults row is F = 0 on those keys)."""
    print(f"{dataset.name}: {len(dataset.claims)} claims", flush=True)
    by_key = latest_claims(dataset)
    truth = dataset.truth
    if gold is not None:
        truth = {k: v for k, v in truth.items() if k in gold.held_out}
    rows: dict[str, dict[str, float]] = {}
    assessed: dict[Key, float] = {}
    timings: dict[str, float] = {}
    extra = (
        {"CLAIMLEDGER_ATTRIBUTES_FILE": str(dataset.attributes_file)}
        if dataset.attributes_file
        else {}
    )
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        system(Path(tmp_name), **extra) as cluster,
    ):
        for name in ("ingest", "reconcile", "query"):
            defaults(cluster).start(name)
        with Client(cluster.url("ingest"), cluster.url("query"), timeout=120) as client:
            t0 = time.perf_counter()
            token = import_claims(cluster, dataset, Path(tmp_name))
            plain = read_consensus(client, token)
            timings["import + read"] = time.perf_counter() - t0
            print(f"  imported and read back in {timings['import + read']:.0f} s", flush=True)
            auto, waited = settled(lambda: read_consensus(client, 0), plain)
            timings["learning by itself, settled after"] = waited
            print(f"  learning by itself settled after {waited:.0f} s", flush=True)
            if gold is not None:
                t0 = time.perf_counter()
                n, token = assess_gold(client, dataset, gold)
                first = read_consensus(client, token)
                timings["gold answers posted + read"] = time.perf_counter() - t0
                print(f"  {n} claims assessed preferred", flush=True)
                assessed, waited = settled(lambda: read_consensus(client, 0), first)
                timings["learning with gold answers, settled after"] = waited
                print(f"  learning with gold answers settled after {waited:.0f} s", flush=True)
            t0 = time.perf_counter()
            token = reweigh(cluster)
            learned = read_consensus(client, token)
            timings["then reweigh + read"] = time.perf_counter() - t0
            print(
                f"  reweighed and read back in {timings['then reweigh + read']:.0f} s", flush=True
            )
    rows["claimledger at its defaults (learning by itself)"] = score(auto, truth)
    if gold is not None:
        rows["claimledger with the gold answers (learning by itself)"] = score(assessed, truth)
        pure = offline_learned(dataset, gold.preferred)
        rows["pure learner (offline) with the same gold answers"] = score(pure, truth)
        differ = [k for k in truth if k in assessed and assessed[k] != pure.get(k)]
        print(f"  the product and the pure learner differ on {len(differ)} scored keys", flush=True)
        for k in differ:
            print(
                f"    {k}: product {assessed[k]}, pure {pure.get(k)}, truth {truth[k]}", flush=True
            )
    rows["claimledger, then `claimledger reweigh`"] = score(learned, truth)
    rows["claimledger, first answers (before learning)"] = score(plain, truth)
    for name, estimates in baselines(by_key).items():
        rows[name] = score(estimates, truth)
    t0 = time.perf_counter()
    peer = peer_baselines(by_key)
    timings["truthdiscovery peer"] = time.perf_counter() - t0
    if isinstance(peer, str):
        for algorithm in PEER_ALGORITHMS:
            rows[f"truthdiscovery {algorithm}"] = {"missing": peer}  # type: ignore[dict-item]
    else:
        for algorithm, estimates in peer.items():
            rows[f"truthdiscovery {algorithm}"] = score(estimates, truth)
    return {
        "rows": rows,
        "timings": timings,
        "claims": len(dataset.claims),
        "keys": len(by_key),
        "skipped": dict(dataset.skipped),
    }


def table(name: str, kind: str, result: dict[str, Any]) -> list[str]:
    lines = [f"### {name} ({result['claims']} claims, {result['keys']} keys)", ""]
    if kind == "population":
        lines += [
            "| method | keys scored | MAE | RMSE | error rate (>1%) |",
            "|---|---|---|---|---|",
        ]
    else:
        lines += [
            "| method | keys scored | agreement (exact) | MAE | error rate (>1%) |",
            "|---|---|---|---|---|",
        ]
    for method, m in result["rows"].items():
        if "missing" in m:
            lines.append(f"| {method} | {m['missing']} | | | |")
        elif kind == "population":
            lines.append(
                f"| {method} | {m['keys']} | {m['mae']:.1f} | {m['rmse']:.1f} | "
                f"{m['error_rate']:.4f} ({m['wrong']:.0f}) |"
            )
        else:
            lines.append(
                f"| {method} | {m['keys']} | {m['agreement']:.4f} | {m['mae']:.3f} | "
                f"{m['error_rate']:.4f} |"
            )
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items())
    lines += ["", f"Timings: {timings}. Skipped input: {result['skipped'] or 'none'}.", ""]
    return lines


SETS = {
    "population-subset": lambda: load_population("population-new-new.txt"),
    "population-all": lambda: load_population("population-new.txt"),
    "weather": load_weather,
    "weather-10pct": lambda: load_weather(10),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--sets",
        nargs="*",
        choices=sorted(SETS),
        default=["population-subset", "population-all", "weather-10pct"],
    )
    p.add_argument(
        "--offline",
        nargs="*",
        choices=sorted(SETS),
        default=[],
        help="sets scored with the pure learner only (labelled as such)",
    )
    p.add_argument(
        "--gold-share",
        nargs="+",
        type=float,
        default=[],
        help="analysts give the truth of this share of the keys (claims stating it assessed"
        " preferred); only the other keys are scored, next to no gold answers on the same keys",
    )
    p.add_argument("--gold-seed", nargs="+", type=int, default=[1], help="seeds of the sample")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args()
    gold_args = f" --gold-share {' '.join(map(str, args.gold_share))}" if args.gold_share else ""
    if gold_args:
        gold_args += f" --gold-seed {' '.join(map(str, args.gold_seed))}"
    lines = [
        f"## Accuracy against ground truth ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, Python {platform.python_version()}, SQLite; 2-core machine "
        "shared with other work, timings noisy)",
        "",
        f"`.venv/bin/python -m bench.accuracy --sets {' '.join(args.sets)}"
        + (f" --offline {' '.join(args.offline)}" if args.offline else "")
        + f"{gold_args}`",
        "",
    ]
    for name in args.sets:
        dataset = SETS[name]()
        if args.gold_share:
            for share in args.gold_share:
                for seed in args.gold_seed:
                    gold = gold_sample(dataset, share, seed)
                    title = (
                        f"{name}, analysts' gold answers on {len(gold.keys)} keys "
                        f"(F = {share:g}, seed {seed}; {gold.unanchored} without a claim "
                        f"stating the truth), scored on the {len(gold.held_out)} held-out keys"
                    )
                    lines += table(title, dataset.kind, run_set(dataset, gold))
            print("\n".join(lines), flush=True)
            continue
        lines += table(name, dataset.kind, run_set(dataset))
        print("\n".join(lines), flush=True)
    for name in args.offline:
        dataset = SETS[name]()
        if args.gold_share:
            lines += run_gold_offline(dataset, args.gold_share, args.gold_seed)
            print("\n".join(lines), flush=True)
            continue
        lines += table(f"{name}, pure learner only", dataset.kind, run_offline(dataset))
        print("\n".join(lines), flush=True)
    text = "\n".join(lines)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
