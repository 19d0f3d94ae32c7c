"""Round estimates repeated by several origins are not exact readings: the plurality rule for
exact readings (sources repeating one another's bare numbers, as timetables or censuses do)
must not take over a key of hedged estimates. Found by the property "a claim inside the band
never turns settled into contested": one more origin agreeing with the best, 12,000, switched
the key to plurality, which chose 12,500 and made the key contested."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.consensus import compute_consensus
from shared.model import AttributeSpec, ClaimFacts, Value

STOCK = AttributeSpec("personnel_deployed", "stock", unit="person")


def _claim(
    n: int, hedge: str, low: int | None, best: int | None, high: int | None, **more: object
) -> ClaimFacts:
    value = Value(low=low, best=best, high=high, hedge=hedge, rule="t", rule_version=1)  # type: ignore[arg-type]
    fields: dict[str, object] = {
        "claim_id": f"c{n:02d}",
        "report_id": f"r{n}",
        "subject": "s",
        "attribute": "personnel_deployed",
        "source_id": "s1",
        "published_at": datetime(2025, 1, 1, tzinfo=UTC),
        "value": value,
        "attributed_to": f"Origin {n}",
        "source_kind": "news",
        **more,
    }
    return ClaimFacts(**fields)  # type: ignore[arg-type]


QUOTE = "11,437 troops were seen"  # one quote: origins 3 and 4 are one cluster
ESTIMATES = [
    _claim(0, "approximately", 9_900, 11_000, 12_100),
    _claim(1, "range", 11_000, None, 11_000),
    _claim(2, "approximately", 10_800, 12_000, 13_200, machine_proposed=True),
    _claim(3, "approximately", 11_250, 12_500, 13_750, quote=QUOTE),
    _claim(4, "approximately", 11_250, 12_500, 13_750, quote=QUOTE),
    _claim(5, "at_least", 11_000, None, None),
    _claim(6, "up_to", None, None, 12_000, machine_proposed=True, credibility=5),
]
AGREEING = _claim(7, "approximately", 11_000, 12_000, 12_000, machine_proposed=True, credibility=5)


def test_one_more_origin_agreeing_with_the_best_keeps_the_key_settled() -> None:
    before = compute_consensus(ESTIMATES, STOCK)
    after = compute_consensus([*ESTIMATES, AGREEING], STOCK)
    assert (before.best, before.status) == (12_000, "settled")
    assert (after.best, after.status) == (12_000, "settled")
