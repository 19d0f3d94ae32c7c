"""Categorical and state values: one weighted vote per independence cluster.

Spellings are merged through the attribute's value aliases (case- and
space-insensitive). The winner has the largest total weight (ties: more
clusters, then alphabetical). The result is contested when the runner-up has at
least half the winner's weight.

Within a valid-time segment, agreement means agreement about that period: an
origin confirms the segment's value only when its claim is mostly about the
segment (the segment covers at least half of the claim's own span, or the claim
is open-ended: "from February on"). A claim spanning May to January agrees with
a December claim but is not a second witness of December: with fewer than two
confirming origins the segment is not `settled` but `single_source`, and the
explanation names the broader claims as consistent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from shared.consensus._admit import Item
from shared.consensus._cluster import Group, make_groups, rank

CONTESTED_RATIO = 0.5


@dataclass(slots=True)
class Vote:
    key: str | None = None
    text: str | None = None
    status: str = "no_data"
    support: list[str] = field(default_factory=list)
    dissent: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    dissent_groups: list[Group] = field(default_factory=list)
    runner_up: str | None = None
    # agreeing clusters whose claims are about a wider span than the segment
    broad: list[Group] = field(default_factory=list)


def about(item: Item, start: date | None, end: date | None) -> bool:
    """The claim is mostly about [start, end): the period covers at least half of the
    claim's own valid-time span (an open-ended claim is about every period it covers)."""
    vt = item.claim.valid_time
    if vt is None or vt.start is None or vt.end is None:
        return True
    lo = vt.start if start is None else max(vt.start, start)
    hi = vt.end if end is None else min(vt.end, end)
    return (hi - lo).days * 2 >= (vt.end - vt.start).days


def vote(items: Sequence[Item], period: tuple[date | None, date | None] | None = None) -> Vote:
    """`period`: the segment voted on, if any (see the module docstring)."""
    groups = make_groups(items)
    if not groups:
        return Vote()
    ballots: dict[str, list[float]] = {}
    for g in groups:
        ballots.setdefault(g.rep.key or "", []).append(g.weight)
    ranked = sorted(
        ((math.fsum(sorted(ws)), len(ws), key) for key, ws in ballots.items()),
        key=lambda t: (-t[0], -t[1], t[2]),
    )
    winner_weight, _, winner = ranked[0]
    out = Vote(key=winner, groups=groups)
    out.text = min((g.rep for g in groups if g.rep.key == winner), key=rank).text
    for item in items:
        (out.support if item.key == winner else out.dissent).append(item.cid)
    out.dissent_groups = [g for g in groups if g.rep.key != winner]
    if len(ranked) > 1:
        runner_weight, _, runner = ranked[1]
        out.runner_up = next(g.rep.text for g in groups if g.rep.key == runner)
        contested = runner_weight >= CONTESTED_RATIO * winner_weight
    else:
        contested = False
    if period is not None:
        agreeing = [g for g in groups if g.rep.key == winner]
        out.broad = [g for g in agreeing if not any(about(m, *period) for m in g.members)]
        confirmed = len(agreeing) - len(out.broad)
    else:
        confirmed = len(groups)
    if len(groups) == 1:
        out.status = "single_source"
    elif contested:
        out.status = "contested"
    else:
        out.status = "settled" if confirmed >= 2 else "single_source"
    return out
