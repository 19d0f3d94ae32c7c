"""Categorical and state values: one weighted vote per independence cluster.

Spellings are merged through the attribute's value aliases (case- and
space-insensitive). The winner has the largest total weight (ties: more
clusters, then alphabetical). The result is contested when the runner-up has at
least half the winner's weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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


def vote(items: Sequence[Item]) -> Vote:
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
    if len(groups) == 1:
        out.status = "single_source"
    else:
        out.status = "contested" if contested else "settled"
    return out
