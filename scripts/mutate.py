"""`make mutate`: mutation testing of the modules whose silent regressions matter most.

One module at a time, each in its own scratch copy of the tree (var/mutate/<target>/), with
mutmut told to mutate only that module and to run only the tests that cover it, one worker
and a time bound per target: the machine is shared. Prints, per target, the mutants
generated, killed and alive, and lists the survivors; exits 1 when more than
`--max-alive` (default 10 %) of a target's mutants survive (for shared/consensus, split into
one target per module, of all its modules' mutants together).

    python scripts/mutate.py                 # every target
    python scripts/mutate.py timeaxes views  # some
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPY = ("shared", "services", "claimledger", "tests", "pyproject.toml")
# every consensus unit test, new files included: mutmut runs, for each mutant, only those that
# call the mutated function
CONSENSUS_TESTS = tuple(
    sorted(
        str(path.relative_to(ROOT))
        for pattern in (
            "test_consensus*.py",
            "test_weight_policy.py",
            "test_point_best.py",
            "test_reliability*.py",
            "test_measures.py",
            "test_copy_detection.py",
            "test_dependence*.py",
        )
        for path in (ROOT / "tests" / "unit").glob(pattern)
    )
)
# shared/consensus one module (or two) per target: results come sooner, and a module's mutants
# run only with the tests that reach it. Together they are every file of shared/consensus
# (`__init__.py` only re-exports); the group "consensus" names them all.
CONSENSUS_MODULES = {
    "weights": ("_weights.py", "_cluster.py"),
    "numeric": ("_numeric.py",),
    "admit": ("_admit.py",),
    "vote": ("_vote.py",),
    "segments": ("_segments.py",),
    "explain": ("_explain.py",),
    "engine": ("_engine.py",),
    "dependence": ("dependence.py",),
    "reliability": ("reliability.py",),
}

# the modules whose every function the whole consensus suite reaches (each of their
# surviving mutants runs some 160 tests): at this machine's pace they do not finish in
# 30 minutes, and a target stopped at its bound leaves mutants untested
CONSENSUS_LIMITS = {
    "engine": 4200,
    "explain": 3600,
    "reliability": 3600,
    "admit": 3600,  # stopped at 30 min after 404 of 542 at load 15-18
    "numeric": 3600,  # stopped at 30 min after 265 of 525 at load 15-18
}


@dataclass(frozen=True)
class Target:
    files: tuple[str, ...]  # what mutmut may mutate
    tests: tuple[str, ...]  # the tests it runs against each mutant
    functions: tuple[str, ...] = ("*",)  # mutant names (fnmatch) counted and run
    limit_s: int = 1800  # a bound on the whole target


TARGETS = {
    "timeaxes": Target(
        ("shared/timeaxes.py",),
        ("tests/unit/test_timeaxes.py", "tests/unit/test_timeaxes_edges.py"),
    ),
    "watermark": Target(
        ("services/query/watermark.py", "services/query/views.py"),
        ("tests/unit/test_watermark.py", "tests/integration/test_read_your_writes.py"),
        # the watermark poller, and the SQL that reads the mark
        ("services.query.watermark.*", "services.query.views.x_watermark__mutmut_*"),
    ),
    "views": Target(
        ("services/query/views.py",),
        (
            "tests/integration/test_time_axes_sql.py",
            "tests/integration/test_time_travel.py",
        ),
        # the time-axis SQL: the interval tests and the reads built on them
        (
            "services.query.views.x__at__mutmut_*",
            "services.query.views.x_consensus__mutmut_*",
            "services.query.views.x_snapshot__mutmut_*",
        ),
    ),
    **{
        name: Target(
            tuple(f"shared/consensus/{f}" for f in files),
            CONSENSUS_TESTS,
            limit_s=CONSENSUS_LIMITS.get(name, 1800),
        )
        for name, files in CONSENSUS_MODULES.items()
    },
}


GROUPS = {"consensus": list(CONSENSUS_MODULES)}


def _workspace(name: str, target: Target) -> Path:
    ws = ROOT / "var" / "mutate" / name
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "artifacts")
    for item in COPY:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, ws / item, ignore=ignore)
        else:
            shutil.copy2(src, ws / item)
    lines = "\n    ".join
    (ws / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths =\n    shared\n    services\n"
        f"only_mutate =\n    {lines(target.files)}\n"
        f"pytest_add_cli_args_test_selection =\n    {lines(target.tests)}\n"
        # a mutant that makes a test hang (a poller that never wakes) fails in seconds, not at
        # the suite's 300 s: every test here takes well under a second or two
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\n    --timeout=20\n"
        "timeout_multiplier = 5.0\n"
        "use_git_change_detection = false\n"
        # fork from a server process that never ran a test: tests that start redis-server
        # children made the plain fork mode lose track of its workers
        "process_isolation = forkserver\n"
    )
    return ws


def _mutmut(ws: Path, *args: str, timeout: float | None = None) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    # 20 examples per hypothesis property (tests/conftest.py), where a unit run has 100: a
    # mutant runs every test that reaches it, and the properties were most of that time
    env = {**os.environ, "PYTHONPATH": str(ws), "CLAIMLEDGER_HYPOTHESIS_PROFILE": "mutate"}
    proc = subprocess.run(
        [str(exe), *args],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.stdout + proc.stderr


def _results(ws: Path, target: Target) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _mutmut(ws, "results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and any(fnmatch.fnmatch(name, pattern) for pattern in target.functions):
            out[name] = status
    return out


def run(name: str, target: Target) -> tuple[int, int, list[str]]:
    ws = _workspace(name, target)
    started = time.monotonic()
    names = [] if target.functions == ("*",) else list(target.functions)
    try:
        _mutmut(ws, "run", "--max-children", "1", *names, timeout=target.limit_s)
        bounded = ""
    except subprocess.TimeoutExpired:
        bounded = f" (stopped at the {target.limit_s}s bound)"
    results = _results(ws, target)
    tested = {n: s for n, s in results.items() if s not in ("not checked", "skipped")}
    alive = sorted(n for n, s in tested.items() if s in ("survived", "no tests"))
    print(
        f"{name}: {len(results)} mutants, {len(tested)} tested, "
        f"{len(tested) - len(alive)} killed, {len(alive)} alive "
        f"in {time.monotonic() - started:.0f}s{bounded}"
    )
    for n in alive:
        print(f"    alive: {n} ({results[n]})")
    return len(tested), len(alive), alive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    parser.add_argument("--max-alive", type=float, default=0.10)
    args = parser.parse_args()
    names = [n for t in args.targets for n in (GROUPS.get(t) or [t])] or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        choices = ", ".join([*TARGETS, *GROUPS])
        parser.error(f"unknown targets {sorted(unknown)}; choose from {choices}")
    counts = {name: run(name, TARGETS[name])[:2] for name in names}
    # the bound holds per target, and for shared/consensus over all its modules together
    # (issue #25 counts the mutants of shared/consensus as one): a small module with a few
    # equivalent mutants does not fail the whole
    units = {g: [n for n in members if n in counts] for g, members in GROUPS.items()}
    grouped = {n for members in units.values() for n in members}
    totals = {n: c for n, c in counts.items() if n not in grouped}
    for group, members in units.items():
        if members:
            tested = sum(counts[n][0] for n in members)
            alive = sum(counts[n][1] for n in members)
            totals[group] = (tested, alive)
            share = alive / tested if tested else 0.0
            print(f"{group} ({len(members)} targets): {tested} tested, {alive} alive ({share:.1%})")
    failed = [
        n for n, (tested, alive) in totals.items() if not tested or alive > args.max_alive * tested
    ]
    if failed:
        print(f"over {args.max_alive:.0%} of mutants alive (or none tested): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
