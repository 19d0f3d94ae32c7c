"""Run the `truthdiscovery` package's algorithms on claims given as JSON (bench only).

    .venv-bench/bin/python bench/peer_truthdiscovery.py IN.json OUT.json

IN: {"claims": [[source, variable, value], ...], "algorithms": ["Sums", ...]};
OUT: {algorithm: {variable: value}}. Runs in its own virtualenv because the package
pins old numpy/pytest versions (see bench/accuracy.py). Every distinct value is a
category for these algorithms; when several values share the top belief, the lower
median of them is taken, so the output is deterministic.
"""

import json
import statistics
import sys

import truthdiscovery as td


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        spec = json.load(f)
    data = td.Dataset([tuple(c) for c in spec["claims"]], allow_multiple=True)
    out = {}
    for name in spec["algorithms"]:
        result = getattr(td, name)().run(data)
        out[name] = {
            var: statistics.median_low(sorted(result.get_most_believed_values(var)))
            for var in result.belief
        }
        print(f"{name}: {result.iterations} iterations, {result.time_taken:.1f}s", file=sys.stderr)
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
