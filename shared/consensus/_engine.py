"""compute_consensus: claims of one (subject, attribute) -> ConsensusResult."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from types import MappingProxyType

from shared.consensus._admit import (
    CATEGORICAL_KINDS,
    Admission,
    Admitted,
    Item,
    admit,
    fmt,
    snap,
)
from shared.consensus._cluster import Group, assign_clusters, make_groups
from shared.consensus._explain import explain_numeric, explain_vote, period_phrase
from shared.consensus._numeric import Fusion, fuse
from shared.consensus._segments import Piece, timeline
from shared.consensus._vote import Vote, vote
from shared.model import AttributeSpec, ClaimFacts, Cluster, ConsensusResult, Estimate, Segment

METHOD = "weighted-median-log"
METHOD_VERSION = 1

_NO_ESTIMATES: Mapping[str, Estimate] = MappingProxyType({})
_NO_SCORES: Mapping[str, float] = MappingProxyType({})


def compute_consensus(
    claims: Sequence[ClaimFacts],
    spec: AttributeSpec,
    *,
    related: Mapping[str, Estimate] = _NO_ESTIMATES,
    source_scores: Mapping[str, float] = _NO_SCORES,
    memo: dict[str, Admitted] | None = None,
) -> ConsensusResult:
    """Consensus of every claim of one (subject, attribute). Pure and deterministic:
    the same claims in any order give an equal result. `memo`: a cache of per-claim
    admissions the caller keeps between calls over the same claims (see admit).

    Staleness is not decided here: a stored result cannot know when it will be read.
    The result carries `newest_support_at`; shared.staleness judges it at read time."""
    ordered = _in_id_order(claims)
    admission = admit(ordered, spec, related, source_scores, memo)
    labels = assign_clusters(admission.items)
    pieces = timeline(admission.items, spec.kind)
    if spec.kind in CATEGORICAL_KINDS:
        result = _categorical(spec, admission, labels, pieces)
    else:
        result = _numeric(spec, admission, labels, pieces, related)
    notes = _notes(ordered)
    return dataclasses.replace(result, notes=notes) if notes else result


def _in_id_order(claims: Sequence[ClaimFacts]) -> list[ClaimFacts]:
    ordered = sorted(claims, key=lambda c: c.claim_id)
    if len({c.claim_id for c in ordered}) == len(ordered):
        return ordered
    # The same id twice: keep one, chosen by content so input order cannot matter.
    unique: dict[str, ClaimFacts] = {}
    for claim in sorted(ordered, key=lambda c: (c.claim_id, repr(c))):
        unique.setdefault(claim.claim_id, claim)
    return list(unique.values())


def newest_support(items: Sequence[Item], support: Collection[str]) -> str | None:
    """ISO publication time (UTC) of the newest supporting claim, None without support."""
    times = [it.published for it in items if it.cid in support]
    if not times:
        return None
    # isoformat, not strftime("%Y"): glibc writes year 999 as "999", which sorts after
    # 2025 and does not parse back
    moment = datetime.fromtimestamp(max(times), UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def _notes(claims: Sequence[ClaimFacts]) -> tuple[tuple[str, str], ...]:
    """claim_id -> what analysts said about it, for every claim (included or not)."""
    return tuple((c.claim_id, "; ".join(c.notes)) for c in claims if c.notes)


def _numeric(
    spec: AttributeSpec,
    adm: Admission,
    labels: Mapping[str, str],
    pieces: Sequence[Piece],
    related: Mapping[str, Estimate],
) -> ConsensusResult:
    floor, floor_note = _composite_floor(spec, related)
    floors = [floor] if floor is not None else []
    top_over_all = not (spec.kind == "cumulative" and pieces)
    top = fuse(adm.items, floors) if top_over_all else _running_total(adm.items, pieces, floors)
    constraints = list(adm.constraints)
    if floor_note:
        applied = floor in top.applied_floors
        constraints.append(floor_note + ("" if applied or not adm.items else "; not applied"))
    segments = [_numeric_segment(piece, labels) for piece in pieces]
    return ConsensusResult(
        method=METHOD,
        method_version=METHOD_VERSION,
        kind=spec.kind,
        unit=spec.unit,
        low=top.low,
        best=top.best,
        high=top.high,
        conservative=top.conservative,
        status=top.status,
        support=tuple(top.support),
        dissent=tuple(top.dissent),
        excluded=tuple(cid for cid, _ in adm.exclusions),
        explanation=explain_numeric(top, labels, adm.exclusions),
        # the top fusion of a non-cumulative key already grouped exactly these items
        clusters=_clusters(
            top.groups if top_over_all else make_groups(adm.items), labels, numeric=True
        ),
        weights=tuple((it.cid, it.weight) for it in adm.items),
        exclusions=tuple(adm.exclusions),
        constraints=tuple(sorted(constraints)),
        segments=tuple(segments),
        newest_support_at=newest_support(adm.items, set(top.support)),
    )


def _numeric_segment(piece: Piece, labels: Mapping[str, str]) -> Segment:
    f = fuse(piece.items)
    period = period_phrase(piece.valid_from, piece.valid_to)
    return Segment(
        valid_from=piece.valid_from,
        valid_to=piece.valid_to,
        low=f.low,
        best=f.best,
        high=f.high,
        conservative=f.conservative,
        status=f.status,
        support=tuple(f.support),
        dissent=tuple(f.dissent),
        explanation=f"{period}: {explain_numeric(f, labels, ())}",
        newest_support_at=newest_support(piece.items, set(f.support)),
    )


def _running_total(
    items: Sequence[Item], pieces: Sequence[Piece], floors: Sequence[float]
) -> Fusion:
    """Top level of a cumulative attribute: the latest timed statement of the running
    total with the older ones as floors (as in the last segment), plus the untimed
    claims. An older upper bound ("up to 500 by December") says nothing about the
    current total: it stays listed in support, as history, but does not vote."""
    timed = {it.cid for piece in pieces for it in piece.items}
    latest = pieces[-1].items
    current = {it.cid for it in latest}
    untimed = [it for it in items if it.cid not in timed]
    top = fuse(sorted([*latest, *untimed], key=lambda it: it.cid), floors)
    top.support = sorted([*top.support, *(timed - current)])
    return top


def _composite_floor(
    spec: AttributeSpec, related: Mapping[str, Estimate]
) -> tuple[float | None, str | None]:
    """ACLED-style: a composite (killed or wounded) is at least the sum of its
    components' conservative lows; a missing component counts as zero."""
    parts: list[tuple[str, float]] = []
    for name in spec.composite_of:
        low = related[name].low if name != spec.name and name in related else None
        if low is not None:
            parts.append((name, low))
    if not parts:
        return None, None
    total = parts[0][1] if len(parts) == 1 else snap(math.fsum(low for _, low in parts))
    listed = " + ".join(f"{name} {fmt(low)}" for name, low in parts)
    return total, f"{spec.name} at least {fmt(total)} = {listed} (composite)"


def _categorical(
    spec: AttributeSpec,
    adm: Admission,
    labels: Mapping[str, str],
    pieces: Sequence[Piece],
) -> ConsensusResult:
    votes = [vote(piece.items, (piece.valid_from, piece.valid_to)) for piece in pieces]
    segments = [_vote_segment(p, v, labels) for p, v in zip(pieces, votes, strict=True)]
    if pieces:
        # State timeline: the current value is the latest segment's.
        top = votes[-1]
        support, dissent = _timeline_support(adm.items, votes, top)
        since, earlier = _current_run(pieces, votes)
        current = set(top.support)
    else:
        top = vote(adm.items)
        support, dissent = top.support, top.dissent
        since, earlier = None, None
        current = set(support)
    return ConsensusResult(
        method=METHOD,
        method_version=METHOD_VERSION,
        kind=spec.kind,
        unit=spec.unit,
        low=None,
        best=None,
        high=None,
        conservative=None,
        status=top.status,
        support=tuple(support),
        dissent=tuple(dissent),
        excluded=tuple(cid for cid, _ in adm.exclusions),
        explanation=explain_vote(
            top,
            labels,
            adm.exclusions,
            since=since,
            until=pieces[-1].valid_to if pieces else None,
            earlier=earlier,
        ),
        value_text=top.text,
        clusters=_clusters(make_groups(adm.items), labels, numeric=False),
        weights=tuple((it.cid, it.weight) for it in adm.items),
        exclusions=tuple(adm.exclusions),
        constraints=tuple(sorted(adm.constraints)),
        segments=tuple(segments),
        # the current value's own support: history agreeing with its period is not news
        newest_support_at=newest_support(adm.items, current),
    )


def _timeline_support(
    items: Sequence[Item], votes: Sequence[Vote], current: Vote
) -> tuple[list[str], list[str]]:
    """A timed claim supports the timeline if it agrees with some segment it is in
    ("withdrawn in January" is history, not dissent against "deployed since
    February"); an untimed claim is judged against the current value."""
    agreeing = {cid for v in votes for cid in v.support}
    placed = agreeing | {cid for v in votes for cid in v.dissent}
    support: list[str] = []
    dissent: list[str] = []
    for item in items:
        ok = item.cid in agreeing if item.cid in placed else item.key == current.key
        (support if ok else dissent).append(item.cid)
    return support, dissent


def _current_run(pieces: Sequence[Piece], votes: Sequence[Vote]) -> tuple[date | None, str | None]:
    """Since when the current value has held without a break, and what held before."""
    i = len(pieces) - 1
    while (
        i > 0
        and votes[i - 1].key == votes[i].key
        and pieces[i - 1].valid_to == pieces[i].valid_from
    ):
        i -= 1
    if i == 0:
        return pieces[0].valid_from, None
    p, v = pieces[i - 1], votes[i - 1]
    start = p.valid_from.isoformat() if p.valid_from else "…"
    end = p.valid_to.isoformat() if p.valid_to else "…"
    return pieces[i].valid_from, f"'{v.text}' ({start} to {end})"


def _vote_segment(piece: Piece, v: Vote, labels: Mapping[str, str]) -> Segment:
    period = period_phrase(piece.valid_from, piece.valid_to)
    return Segment(
        valid_from=piece.valid_from,
        valid_to=piece.valid_to,
        low=None,
        best=None,
        high=None,
        conservative=None,
        status=v.status,
        support=tuple(v.support),
        dissent=tuple(v.dissent),
        text=v.text,
        explanation=f"{period}: {explain_vote(v, labels, ())}",
        newest_support_at=newest_support(piece.items, set(v.support)),
    )


def _clusters(
    groups: Sequence[Group], labels: Mapping[str, str], *, numeric: bool
) -> tuple[Cluster, ...]:
    out = [
        Cluster(
            origin=labels[g.root],
            claim_ids=tuple([m.claim.claim_id for m in g.members]),
            weight=g.weight,
            low=g.rep.low if numeric else None,
            best=g.rep.best if numeric else None,
            high=g.rep.high if numeric else None,
            text=None if numeric else g.rep.text,
        )
        for g in groups
    ]
    return tuple(sorted(out, key=lambda c: (-c.weight, c.origin, c.claim_ids)))
