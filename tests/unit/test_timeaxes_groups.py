"""Supersession per recorded time: revising a recorded time's inputs in parts stores what
one revision of them all stores (shared.timeaxes.revise with `fresh` and `closed_now`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.timeaxes import MAX_TIME, Step, revise

JAN, FEB, MAR, APR = (f"2025-0{m}-01T00:00:00.000000Z" for m in (1, 2, 3, 4))


@dataclass
class Ledger:
    """The rows a store keeps for one key, applied from revisions as services/reconcile
    does: dropped rows are removed and the version count rewinds."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[tuple[str, int]] = field(default_factory=list)
    head: int = 0
    last_rec: str = ""
    sums: bool = False  # evaluate as a sum modulo 4: later inputs can restore an answer

    def revise(self, rec: str, new: list[tuple[str, int]]) -> None:
        self.inputs += new
        if rec != self.last_rec:
            self.last_rec = rec
        open_rows = [r for r in self.rows if r["rec_to"] == MAX_TIME]
        current = [Step(r["pub_from"], r["pub_to"], r["result"], r["version"]) for r in open_rows]
        fresh = {r["version"] for r in open_rows if r["rec_from"] == rec}
        closed_now = [
            Step(r["pub_from"], r["pub_to"], r["result"], r["version"])
            for r in self.rows
            if r["rec_to"] == rec
        ]
        rev = revise(
            current,
            [t for t, _ in self.inputs],
            min(t for t, _ in new),
            self.evaluate,
            fresh=fresh,
            closed_now=closed_now,
        )
        by_version = {r["version"]: r for r in self.rows}
        for s in rev.dropped:
            self.rows.remove(by_version[s.version])
        if rev.dropped:
            self.head = min(s.version for s in rev.dropped) - 1  # type: ignore[type-var,operator]
        for s in rev.closed:
            by_version[s.version]["rec_to"] = rec
        for s in rev.reopened:
            by_version[s.version]["rec_to"] = MAX_TIME
        for s in rev.retimed:
            by_version[s.version]["pub_to"] = s.pub_to
        for s in rev.opened:
            self.head += 1
            self.rows.append(
                {
                    "version": self.head,
                    "pub_from": s.pub_from,
                    "pub_to": s.pub_to,
                    "rec_from": rec,
                    "rec_to": MAX_TIME,
                    "result": s.result,
                    "previous": s.previous,
                }
            )

    def evaluate(self, t: str) -> int:
        """A step function with plateaus: the largest value published by t, in tens (or
        the sum of the values, modulo 4)."""
        if self.sums:
            return sum(v for p, v in self.inputs if p <= t) % 4
        return max((v for p, v in self.inputs if p <= t), default=0) // 10


def test_a_back_dated_input_in_a_second_part_rewrites_only_the_first_parts_later_rows() -> None:
    parts = Ledger()
    parts.revise("r1", [(JAN, 10), (MAR, 30)])  # JAN: 1, MAR: 3
    parts.revise("r1", [(FEB, 20)])  # FEB: 2 -> the MAR row is recomputed, JAN's stays
    whole = Ledger()
    whole.revise("r1", [(JAN, 10), (MAR, 30), (FEB, 20)])
    assert parts.rows == whole.rows
    assert [(r["version"], r["pub_from"], r["pub_to"], r["result"]) for r in whole.rows] == [
        (1, JAN, FEB, 1),
        (2, FEB, MAR, 2),
        (3, MAR, MAX_TIME, 3),
    ]


def test_a_step_closed_and_then_answering_again_at_the_same_recorded_time_is_reopened() -> None:
    parts, whole = Ledger(sums=True), Ledger(sums=True)
    for ledger in (parts, whole):
        ledger.revise("r0", [(JAN, 1), (MAR, 2)])  # JAN: 1, MAR: 3
    parts.revise("r1", [(FEB, 1)])  # FEB: 2, MAR: 0: the r0 MAR row closes
    assert [r["rec_to"] for r in parts.rows if r["rec_from"] == "r0"] == [MAX_TIME, "r1"]
    parts.revise("r1", [(FEB, 3)])  # FEB: 1 (JAN's answer), MAR: 3 again
    whole.revise("r1", [(FEB, 1), (FEB, 3)])
    assert parts.rows == whole.rows
    assert [(r["version"], r["rec_from"], r["rec_to"]) for r in whole.rows] == [
        (1, "r0", MAX_TIME),
        (2, "r0", MAX_TIME),  # r1 changed nothing a reader sees: no version, no close
    ]


@pytest.mark.parametrize("sums", [False, True])
def test_any_split_of_a_recorded_time_stores_what_one_revision_stores(sums: bool) -> None:
    days = [f"2025-{m:02d}-{d:02d}T00:00:00.000000Z" for m in range(1, 7) for d in (1, 15)]
    for seed in range(300):
        rnd = random.Random(seed)
        groups = [
            [(rnd.choice(days), rnd.randint(0, 99)) for _ in range(rnd.randint(1, 9))]
            for _ in range(rnd.randint(1, 4))
        ]
        whole, parts = Ledger(sums=sums), Ledger(sums=sums)
        for g, inputs in enumerate(groups):
            rec = f"r{g}"
            whole.revise(rec, inputs)
            cuts = sorted({*rnd.sample(range(1, len(inputs)), rnd.randint(0, len(inputs) - 1))})
            for start, end in zip([0, *cuts], [*cuts, len(inputs)], strict=True):
                parts.revise(rec, inputs[start:end])
        assert parts.rows == whole.rows, seed
        assert all(r["rec_from"] != r["rec_to"] for r in whole.rows), seed
        assert all(r["previous"] != r["result"] for r in whole.rows), seed  # changes only
