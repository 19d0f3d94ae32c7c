"""One sentence a reader would accept, built only from the result's own numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from shared.consensus._admit import Item, fmt
from shared.consensus._cluster import Group
from shared.consensus._numeric import Fusion, overlaps
from shared.consensus._vote import Vote

_MAX_LISTED = 3
_HEDGE_WORD = {"approximately": "approximately ", "nearly": "nearly "}


def item_phrase(item: Item) -> str:
    """How a claimed value reads: 'up to 3,000', 'approximately 12,000', '10,000–12,000'."""
    if item.best is not None and not item.derived:
        return _HEDGE_WORD.get(item.hedge, "") + fmt(item.best)
    if item.low is not None and item.high is not None:
        return fmt(item.low) if item.low == item.high else f"{fmt(item.low)}–{fmt(item.high)}"
    if item.low is not None:
        return ("over " if item.low_x or item.hedge == "over" else "at least ") + fmt(item.low)
    return ("under " if item.high_x or item.hedge == "under" else "up to ") + fmt(item.high)


def _band_phrase(f: Fusion) -> str:
    lo, hi = f.band.lo, f.band.hi
    if f.best is not None:
        text = f"Best estimate {fmt(f.best)}"
        if lo is not None and hi is not None and not lo == hi == f.best:
            text += f" (range {fmt(lo)}–{fmt(hi)})"
        return text
    if lo is not None and hi is not None:
        return f"Exactly {fmt(lo)}" if lo == hi else f"Between {fmt(lo)} and {fmt(hi)}"
    if lo is not None:
        return ("Over " if f.band.lo_x else "At least ") + fmt(lo)
    return ("Under " if f.band.hi_x else "Up to ") + fmt(hi)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _listing(entries: Sequence[str]) -> str:
    shown = "; ".join(entries[:_MAX_LISTED])
    if len(entries) > _MAX_LISTED:
        shown += f"; {len(entries) - _MAX_LISTED} more"
    return shown


def _no_data(n_excluded: int) -> str:
    if n_excluded:
        return f"No usable claims ({_plural(n_excluded, 'claim')} excluded)."
    return "No claims."


def _stale(stale_since: date | None) -> str:
    return f"; stale: newest claim published {stale_since.isoformat()}" if stale_since else ""


def explain_numeric(
    f: Fusion, labels: Mapping[str, str], n_excluded: int, stale_since: date | None
) -> str:
    if f.status == "no_data":
        return _no_data(n_excluded)
    if len(f.groups) == 1:
        g = f.groups[0]
        text = f"Single origin ({labels[g.root]}): {item_phrase(g.rep)}"
    else:
        text = f"{_band_phrase(f)} from {len(f.groups)} independent origins"
    return text + _copies(f.groups) + _numeric_dissent(f, labels) + _stale(stale_since) + "."


def _copies(groups: Sequence[Group]) -> str:
    """Names the learned copying the clusters absorbed: '; 4 sources found copying
    others count once with them'."""
    copiers = set()
    for g in groups:
        sources = {m.claim.source_id for m in g.members}
        for m in g.members:
            if m.claim.copies_source is not None and m.claim.copies_source in sources:
                copiers.add(m.claim.source_id)
    if not copiers:
        return ""
    n = len(copiers)
    named = ", ".join(sorted(copiers)[:_MAX_LISTED]) + (", …" if n > _MAX_LISTED else "")
    if n == 1:
        return f"; 1 source found copying another counts once with it ({named})"
    return f"; {n} sources found copying others count once with them ({named})"


def _numeric_dissent(f: Fusion, labels: Mapping[str, str]) -> str:
    # One entry per distinct (value, origin): ten copies of one outlier read as one.
    weight = {g.root: g.weight for g in f.groups}
    ordered = sorted(f.dissent_items, key=lambda it: (-weight[it.group], it.group, it.rank))
    entries = list(dict.fromkeys(f"{item_phrase(it)}, {labels[it.group]}" for it in ordered))
    if not entries:
        return ""
    outside = not any(overlaps(it.band, f.band) for it in f.dissent_items)
    n = len(entries)
    if outside:
        verb = "lies outside the range" if n == 1 else "lie outside the range"
    else:
        verb = "contradicts the best estimate" if n == 1 else "contradict the best estimate"
    return f"; {_plural(n, 'dissenting claim')} ({_listing(entries)}) {verb}"


def explain_vote(
    v: Vote,
    labels: Mapping[str, str],
    n_excluded: int,
    stale_since: date | None,
    *,
    since: date | None = None,
    earlier: str | None = None,
) -> str:
    if v.status == "no_data":
        return _no_data(n_excluded)
    value = f"'{v.text}'" + (f" since {since.isoformat()}" if since else "")
    if len(v.groups) == 1:
        text = f"Single origin ({labels[v.groups[0].root]}): {value}"
    else:
        text = f"{value} by weighted vote of {len(v.groups)} origins"
    text += _copies(v.groups) + _vote_dissent(v, labels)
    if earlier:
        text += f"; earlier {earlier}"
    return text + _stale(stale_since) + "."


def _vote_dissent(v: Vote, labels: Mapping[str, str]) -> str:
    if not v.dissent_groups:
        return ""
    groups: list[Group] = sorted(v.dissent_groups, key=lambda g: (-g.weight, g.root))
    entries = [f"'{g.rep.text}', {labels[g.root]}" for g in groups]
    if v.status == "contested":
        return f"; contested ({_listing(entries)})"
    return f"; {_plural(len(groups), 'dissenting origin')} ({_listing(entries)})"
