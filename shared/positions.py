"""Positions in the update feed: per partition, gapless, in commit order (issue 26).

A version row's id encodes where it stands in its partition's feed: `seq * SLOTS + part`.
Each partition numbers its versions 1, 2, 3 ... in the order its apply transactions commit
(the partition's row in `partition_fences` holds the last number and is locked by the
transaction that takes the next ones), so no lock is shared by all partitions, and the
order a reader can rely on is per partition, which is where per-subject order lives.

A reader's place in the feed is therefore a `Cursor`: the last number it has seen of each
partition. Its token (an SSE `id:`, `since`, a version's `position`) is text:
`p` followed by `part.seq` pairs joined by `_`, e.g. `p0.12_1.40_3.7` (partition 2: nothing
yet). A partition a token does not name is read from its start, so a version's own
position (`p2.513`: after that version, in its partition) resumes a subscriber that follows
its subject exactly, and never loses a version of any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SLOTS = 1024  # partitions an id can name: CLAIMLEDGER_PARTITIONS is at most this
PREFIX = "p"
MAX_TOKEN = 64 * 1024  # characters: a token names each partition once
_NUMBER = re.compile(r"[0-9]{1,15}")


def version_id(part: int, seq: int) -> int:
    return seq * SLOTS + part


def part_of(row_id: int) -> int:
    return row_id % SLOTS


def seq_of(row_id: int) -> int:
    return row_id // SLOTS


class Cursor:
    """The last seq seen of each partition (0: none). Immutable; `advanced` makes a new one."""

    __slots__ = ("_seqs",)

    def __init__(self, seqs: Mapping[int, int] | None = None) -> None:
        self._seqs = {p: s for p, s in (seqs or {}).items() if s > 0}

    def __getitem__(self, part: int) -> int:
        return self._seqs.get(part, 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cursor) and self._seqs == other._seqs

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._seqs.items())))

    def __repr__(self) -> str:
        return f"Cursor({self.token()})"

    def parts(self) -> list[int]:
        return sorted(self._seqs)

    def items(self) -> list[tuple[int, int]]:
        return sorted(self._seqs.items())

    def sent(self, row_id: int) -> bool:
        """Whether the version with this id is at or below the cursor."""
        return seq_of(row_id) <= self[part_of(row_id)]

    def advanced(self, row_ids: Iterable[int]) -> Cursor:
        seqs = dict(self._seqs)
        for row_id in row_ids:
            part, seq = part_of(row_id), seq_of(row_id)
            if seq > seqs.get(part, 0):
                seqs[part] = seq
        return Cursor(seqs)

    def covers(self, other: Cursor) -> bool:
        """Every partition at least as far as in `other`."""
        return all(self[p] >= s for p, s in other.items())

    def token(self) -> str:
        return PREFIX + "_".join(f"{p}.{s}" for p, s in self.items())


def position_of(row_id: int) -> str:
    """A version's own position: the token that resumes after it (in its partition)."""
    return Cursor({part_of(row_id): seq_of(row_id)}).token()


class BadToken(ValueError):
    pass


def parse_token(text: str) -> Cursor:
    """A token back to its cursor. `0` (the start of the feed) is accepted as well; any
    other bare number is a position from before positions were per partition."""
    text = text.strip()
    if text == "0":
        return Cursor()
    if _NUMBER.fullmatch(text):
        raise BadToken(
            "a position from before positions were per partition (0004): "
            "reconnect without it, or with 0 to read from the start"
        )
    if not text.startswith(PREFIX) or len(text) > MAX_TOKEN:
        raise BadToken("not a position")
    seqs: dict[int, int] = {}
    body = text[len(PREFIX) :]
    for pair in body.split("_") if body else ():
        part_text, dot, seq_text = pair.partition(".")
        if not (dot and _NUMBER.fullmatch(part_text) and _NUMBER.fullmatch(seq_text)):
            raise BadToken("not a position")
        part, seq = int(part_text), int(seq_text)
        if part >= SLOTS or part in seqs:
            raise BadToken("not a position")
        seqs[part] = seq
    return Cursor(seqs)
