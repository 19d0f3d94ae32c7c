"""Valid-time segments: which claims speak about which stretch of world time.

Each timed claim covers a half-open span [start, end) of valid time:
- stock, delta, state, categorical: its own [start, end); an open end means
  "from start on, until something newer is said" (see supersession below);
- cumulative (running totals): [start, +inf), because a total reached stays reached;
  a claim with only an end ("by December") is anchored at that end.
The distinct starts and ends cut the time line; each piece gets the claims that
cover it, with one rule on top:
- supersession: an open-ended claim is dropped from a piece where a claim with a
  later start also applies (the newer statement about the world wins; a claim
  with an explicit end is kept for its whole span);
- cumulative: only the claims with the latest start in a piece vote; older ones
  still covering it become floors ("at least their low"), which can raise the low
  but never pull the best estimate.
Adjacent pieces with the same claims merge into one segment; empty pieces are
gaps. Claims without a valid time are never placed in segments (their world time
is unknown, not their publication date).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.consensus._admit import Item

_MIN, _MAX = date.min, date.max


@dataclass(slots=True)
class _Span:
    start: date
    end: date
    item: Item


@dataclass(slots=True)
class Piece:
    valid_from: date | None
    valid_to: date | None
    items: list[Item]
    signature: tuple[tuple[str, bool], ...]


def timeline(items: Sequence[Item], kind: str) -> list[Piece]:
    cumulative = kind == "cumulative"
    spans = [s for item in items if (s := _span(item, cumulative)) is not None]
    if not spans:
        return []
    cuts = sorted({s.start for s in spans} | {s.end for s in spans})
    pending = sorted(spans, key=lambda s: (s.start, s.item.cid))
    active: dict[str, _Span] = {}
    pieces: list[Piece] = []
    nxt = 0
    for a, b in itertools.pairwise(cuts):
        while nxt < len(pending) and pending[nxt].start <= a:
            active[pending[nxt].item.cid] = pending[nxt]
            nxt += 1
        for cid in [cid for cid, s in active.items() if s.end <= a]:
            del active[cid]
        if not active:
            continue
        members, floors = _select(list(active.values()), cumulative)
        signature = tuple((m.cid, m.cid in floors) for m in members)
        _extend_or_add(pieces, a, b, members, signature)
    return pieces


def _extend_or_add(
    pieces: list[Piece],
    a: date,
    b: date,
    members: list[Item],
    signature: tuple[tuple[str, bool], ...],
) -> None:
    valid_from = None if a == _MIN else a
    valid_to = None if b == _MAX else b
    last = pieces[-1] if pieces else None
    if last is not None and last.valid_to == valid_from and last.signature == signature:
        last.valid_to = valid_to
        return
    pieces.append(Piece(valid_from, valid_to, members, signature))


def _day(x: date) -> date:
    return x.date() if isinstance(x, datetime) else x


def _span(item: Item, cumulative: bool) -> _Span | None:
    vt = item.claim.valid_time
    if vt is None or (vt.start is None and vt.end is None):
        return None
    start = _day(vt.start) if vt.start is not None else None
    end = _day(vt.end) if vt.end is not None else None
    if cumulative:
        anchor = start if start is not None else end
        assert anchor is not None
        return _Span(anchor, _MAX, item)
    lo = start if start is not None else _MIN
    hi = end if end is not None else _MAX
    if hi <= lo:  # a malformed or zero-length span still covers its first day
        hi = lo + timedelta(days=1) if lo < _MAX else _MAX
    return _Span(lo, hi, item)


def _select(spans: list[_Span], cumulative: bool) -> tuple[list[Item], set[str]]:
    """The claims that speak for one piece, and which of them act only as floors."""
    latest = max(s.start for s in spans)
    chosen: list[Item] = []
    floors: set[str] = set()
    for s in spans:
        if s.start == latest:
            chosen.append(s.item)
        elif cumulative:
            floor = _as_floor(s.item)
            if floor is not None:
                chosen.append(floor)
                floors.add(floor.cid)
        elif s.end != _MAX:
            chosen.append(s.item)
    chosen.sort(key=lambda it: it.cid)
    return chosen, floors


def _as_floor(item: Item) -> Item | None:
    """An older running total, read as "at least its low" for a later time."""
    if item.low is None:
        return None
    floor = dataclasses.replace(
        item, best=None, high=None, high_x=False, derived=False, hedge="at_least"
    )
    return floor.finish()
