"""What a `version written` log line costs the reconciler (services/infra/logs.py,
JSON to /dev/null).

python -m bench.logcost [--level info|warning] [--versions 1000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import logging
import time

from services.infra.logs import configure_logging
from services.reconcile.consumer import _log_applied
from services.reconcile.store import VersionWritten


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--level", default="info")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    configure_logging("reconcile", level=args.level)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open("/dev/null", "w"))  # noqa: SIM115 - the process's lifetime
    written = [
        VersionWritten(
            i,
            f"subject-{i}",
            "personnel_deployed",
            3,
            True,
            "e_0e7cffd5d64b8afaef9c0c8013",
            "report-1",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        )
        for i in range(args.versions)
    ]
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        _log_applied("claimledger:events:{0}", len(written), written, 0.1)
        times.append(time.perf_counter() - start)
    times.sort()
    per = [t / len(written) * 1e6 for t in (times[0], times[len(times) // 2])]
    print(
        f"level {args.level}: {per[0]:.1f} us per version best, {per[1]:.1f} us median "
        f"({args.rounds} batches of {len(written)})"
    )


if __name__ == "__main__":
    main()
