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
        if f.split is not None:
            a, b = f.split
            text += f" (the weight splits evenly between {fmt(a)} and {fmt(b)}: the lower is taken)"
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


Exclusions = Sequence[tuple[str, str]]  # (claim_id, reason)


def _excluded(exclusions: Exclusions) -> str:
    """How many claims were left out and why: an analyst's reason reads in full."""
    if not exclusions:
        return ""
    reasons = list(dict.fromkeys(reason for _, reason in exclusions))
    return f"{_plural(len(exclusions), 'claim')} excluded ({_listing(reasons)})"


def _no_data(exclusions: Exclusions) -> str:
    if exclusions:
        return f"No usable claims: {_excluded(exclusions)}."
    return "No claims."


def period_phrase(start: date | None, end: date | None) -> str:
    """A segment's stretch of world time: 'From 2024-12-01 to 2025-01-01' (end excluded)."""
    if start is None and end is None:
        return "At any time"
    if start is None:
        return f"Until {end.isoformat()}" if end else "At any time"
    if end is None:
        return f"From {start.isoformat()} on"
    return f"From {start.isoformat()} to {end.isoformat()}"


def explain_numeric(f: Fusion, labels: Mapping[str, str], exclusions: Exclusions) -> str:
    if f.status == "no_data":
        return _no_data(exclusions)
    if len(f.groups) == 1:
        g = f.groups[0]
        text = f"Single origin ({labels[g.root]}): {item_phrase(g.rep)}"
    else:
        text = f"{_band_phrase(f)} from {len(f.groups)} independent origins"
    excluded = _excluded(exclusions)
    return (
        text
        + _copies(f.groups)
        + _numeric_dissent(f, labels)
        + (f"; {excluded}" if excluded else "")
        + "."
    )


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
    exclusions: Exclusions,
    *,
    since: date | None = None,
    until: date | None = None,
    earlier: str | None = None,
) -> str:
    if v.status == "no_data":
        return _no_data(exclusions)
    value = f"'{v.text}'"
    if since and until:  # the latest period has an end: nothing is said after it
        value += f" from {since.isoformat()} to {until.isoformat()}"
    elif since:
        value += f" since {since.isoformat()}"
    if len(v.groups) == 1:
        text = f"Single origin ({labels[v.groups[0].root]}): {value}"
    elif v.status == "single_source" and v.broad:
        # one origin about this period; the others agree over a wider span
        wider = {g.root for g in v.broad}
        own = [g for g in v.groups if g.rep.key == v.key and g.root not in wider]
        who = f"Single origin about this period ({labels[own[0].root]})" if own else "No origin"
        wide = "; ".join(f"{labels[g.root]}{_span(g.rep)}" for g in v.broad)
        text = f"{who}: {value}; consistent over a wider span: {wide}"
    else:
        text = f"{value} by weighted vote of {len(v.groups)} origins"
    text += _copies(v.groups) + _vote_dissent(v, labels)
    if earlier:
        text += f"; earlier {earlier}"
    excluded = _excluded(exclusions)
    return text + (f"; {excluded}" if excluded else "") + "."


def _span(item: Item) -> str:
    vt = item.claim.valid_time
    if vt is None or vt.start is None or vt.end is None:
        return ""
    return f" ({vt.start.isoformat()} to {vt.end.isoformat()})"


def _vote_dissent(v: Vote, labels: Mapping[str, str]) -> str:
    if not v.dissent_groups:
        return ""
    groups: list[Group] = sorted(v.dissent_groups, key=lambda g: (-g.weight, g.root))
    entries = [f"'{g.rep.text}', {labels[g.root]}" for g in groups]
    if v.status == "contested":
        return f"; contested ({_listing(entries)})"
    return f"; {_plural(len(groups), 'dissenting origin')} ({_listing(entries)})"
