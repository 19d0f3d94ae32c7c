"""Independence: claims that trace to one origin form one cluster and vote once.

Two claims share a cluster when they have the same origin (`attributed_to`,
case/space-insensitive), when one cites the other's origin (`cites`, transitively),
or when one is a detected copy of the other: the same *specific* claimed value
and a near-identical quote (token Jaccard >= 0.8). A copy is necessarily
published no earlier than its original, so the test is symmetric; the direction
only matters for naming the cluster (the earliest member names it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.consensus._admit import Item, norm_text

COPY_JACCARD = 0.8
_WORD = re.compile(r"\w+")


class _UnionFind:
    """Union-find over origin keys; the root is always the smallest key, so the
    result does not depend on the order of unions."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        parent = self.parent.setdefault(key, key)
        if parent == key:
            return key
        root = self.find(parent)
        self.parent[key] = root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def assign_clusters(items: Sequence[Item]) -> dict[str, str]:
    """Set `item.group` for every item; return display labels per group."""
    uf = _UnionFind()
    for item in items:
        uf.find(item.origin)
        for cited in item.claim.cites:
            key = norm_text(cited)
            if key:
                uf.union(item.origin, key)
    _join_copies(items, uf)
    _join_learned_copies(items, uf)
    for item in items:
        item.group = uf.find(item.origin)
    return _labels(items, uf)


def _copy_signature(item: Item) -> tuple[object, ...] | None:
    """What two copies must share exactly, or None if copying cannot be told apart
    from coincidence (no quote, or only round numbers like 3,000 or 12,000)."""
    if not item.claim.quote:
        return None
    if item.key is not None:
        return ("text", item.key)
    best = None if item.derived else item.best
    # The number as stated: a point's tolerance bounds (10,800 for "about 12,000")
    # are ours, not the source's, so they say nothing about copying.
    stated = [best] if best is not None else [x for x in (item.low, item.high) if x is not None]
    if not any(_is_specific(x) for x in stated):
        return None
    return ("num", item.low, best, item.high)


def _is_specific(x: float) -> bool:
    """47, 125, 11,500, 12,345 are specific; 3, 120, 3,000, 12,000 are round."""
    if not float(x).is_integer():
        return True
    n = abs(int(x))
    if n < 10:
        return False
    digits = str(n).rstrip("0")
    return len(digits) >= 3 or (len(digits) == 2 and n % 10 != 0)


def _join_copies(items: Sequence[Item], uf: _UnionFind) -> None:
    # Only claims with the same signature are compared, so the pairwise work is
    # confined to claims that already repeat one specific number.
    buckets: dict[tuple[object, ...], list[Item]] = {}
    for item in items:
        signature = _copy_signature(item)
        if signature is not None:
            buckets.setdefault(signature, []).append(item)
    for bucket in buckets.values():
        if len(bucket) < 2:
            continue
        for item in bucket:
            if not item.tokens:
                item.tokens = frozenset(_WORD.findall((item.claim.quote or "").casefold()))
        for i, a in enumerate(bucket):
            for b in bucket[i + 1 :]:
                if uf.find(a.origin) != uf.find(b.origin) and _similar(a.tokens, b.tokens):
                    uf.union(a.origin, b.origin)


def _join_learned_copies(items: Sequence[Item], uf: _UnionFind) -> None:
    """A claim whose source was found copying another source (learned from the claims,
    shared.consensus.dependence) is one voice with that source's claim of the same
    value: the copy adds no evidence. Where it says something else it speaks for itself."""
    by_answer: dict[tuple[str, object], list[Item]] = {}
    for item in items:
        by_answer.setdefault((item.claim.source_id, _answer(item)), []).append(item)
    for item in items:
        original = item.claim.copies_source
        if original is None:
            continue
        for other in by_answer.get((original, _answer(item)), ()):
            uf.union(item.origin, other.origin)


def _answer(item: Item) -> object:
    return ("text", item.key) if item.key is not None else ("num", item.low, item.best, item.high)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return False
    return len(a & b) >= COPY_JACCARD * len(a | b)


def _labels(items: Sequence[Item], uf: _UnionFind) -> dict[str, str]:
    """Name each cluster after its primary origin: the key cited by the most
    distinct origins inside it, else the origin of its earliest claim."""
    display: dict[str, str] = {}
    citers: dict[str, set[str]] = {}
    for item in items:  # items are in claim-id order, so the first spelling wins stably
        display.setdefault(item.origin, item.claim.attributed_to.strip() or item.claim.source_id)
    for item in items:
        for cited in item.claim.cites:
            key = norm_text(cited)
            if key and key != item.origin:
                display.setdefault(key, cited.strip())
                citers.setdefault(key, set()).add(item.origin)
    labels: dict[str, str] = {}
    for key in sorted(citers, key=lambda k: (-len(citers[k]), k)):
        labels.setdefault(uf.find(key), display[key])
    for item in sorted(items, key=lambda it: (it.published, it.cid)):
        labels.setdefault(item.group, display[item.origin])
    return labels


@dataclass(slots=True)
class Group:
    """The members of one independence cluster within one scope (all claims, or a
    valid-time segment) and the member that speaks for it."""

    root: str
    members: list[Item]
    rep: Item
    weight: float


def rank(item: Item) -> tuple[float, float, float, str]:
    """Who speaks for a cluster (see Item.rank)."""
    return item.rank


def make_groups(items: Iterable[Item]) -> list[Group]:
    by_root: dict[str, list[Item]] = {}
    for item in items:
        by_root.setdefault(item.group, []).append(item)
    groups = []
    for root in sorted(by_root):
        members = by_root[root]
        rep = min(members, key=rank)
        groups.append(Group(root, members, rep, max(m.weight for m in members)))
    return groups
