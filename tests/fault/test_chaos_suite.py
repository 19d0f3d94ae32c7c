"""The chaos-and-hostility suite (issues 5 and 24) at small sizes: `bench/chaos.py`'s run,
every fault and hostile input once, on real processes. `python -m bench.chaos` is the same
run with the heavy sizes (`--quick`: a few minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import TINY, print_table, run

pytestmark = pytest.mark.fault


@pytest.mark.timeout(600)
def test_nothing_acknowledged_is_lost_applied_twice_or_out_of_order_and_no_5xx(
    tmp_path: Path,
) -> None:
    verdict = run(TINY, tmp_path)
    print_table(verdict)
    assert verdict.lost == 0, "acknowledged reports or corrections not applied"
    assert verdict.twice == 0, "claims or events applied twice"
    assert verdict.server_errors == 0, verdict.figures
    assert verdict.unexpected == [], "hostile input answered other than refused"
    assert verdict.failed_checks == []
    assert verdict.out_of_order == 0, "claims applied before earlier entries of their subject"
