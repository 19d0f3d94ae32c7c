"""The reconciler's SQL: apply events exactly once, with their projection changes, in ONE
transaction (the event log row is the applied marker, as in the `eventsourcing` library).

For each event it records the input (claim, retraction, assessment, rating); each
affected key's publication-time timeline is then recomputed ONCE per recorded time
(a request's events share one) from the earliest effective time its inputs affect
(shared.timeaxes.revise), and a version is stored only where what a reader sees
changes, bitemporally. The recorded time of a change is the events' `recorded_at`
(kept monotonic per key). A version opened and superseded at one recorded time is never
stored, also when the request's events reach several transactions (see "recomputation"
below), so replaying the log in batches of any size rebuilds identical versions.

A version row holds a delta against the key's previous version (shared.codec), or a
whole result as a snapshot when the chain's deltas outgrow one (or MAX_CHAIN), so
storage grows with what changed, not with the key's claims times its versions; the key
state keeps the head version's whole result as the next delta's base.

Throughput comes from doing the I/O per batch, not per event: one read of the
touched keys' state (served from an in-process cache when the stored head version
still matches), then executemany writes.

Version ids are positions in the update feed (shared.positions): `seq * 1024 + partition`,
where `partition` is the subject's and `seq` numbers that partition's versions 1, 2, 3 in
commit order. The last number is kept in the partition's row of `partition_fences` (the row
that also holds its lease's fencing epoch), and a batch locks the rows of the partitions it
writes, in partition order, from before it takes its numbers until it commits: numbers follow
commit order within a partition with no gap, and no lock is shared by all partitions
(issue 26).

On PostgreSQL a batch of claims, retractions and assessments is first folded holding no lock
- a partition's keys are written only by its fenced lease holder, so reconcilers of different
partitions fold and write at once - with provisional ids, and writes its events, claims and
modifiers (in a savepoint; rows to drop are taken out of what it will write or deleted later,
never written and deleted). Then it locks its partitions' rows, checks its lease epochs and
that nothing it read has changed (the keys rows of its subjects, the count of cross-partition
modifier commits), gets its real ids from each partition's last number, in fold order, and
writes its versions, keys and numbers. If something changed (a rating of a source whose claims
it folded, another writer of its subjects, a duplicate delivery), the savepoint is rolled
back, the cached states it touched are forgotten and the batch is folded again under the
writer lock, as a batch of ratings or learned reliabilities always is (they reach keys of
every partition): one such batch at a time (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
transaction advisory lock), holding every partition's row.
"""

from __future__ import annotations

import hashlib
import sys
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Text, any_, bindparam, case, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from services.infra.tables import (
    ClaimRow,
    EventRow,
    KeyRow,
    ModifierRow,
    OutboxRow,
    PartitionFence,
    VersionRow,
)
from shared.attributes import AttributeRegistry
from shared.codec import (
    apply_result_delta,
    claim_from_dict,
    encode_fields,
    fields_delta,
    join_fields,
    result_fields,
)
from shared.consensus import claim_note, compute_consensus
from shared.events import (
    CLAIM_ASSERTED,
    CLAIM_ASSESSED,
    CLAIM_RETRACTED,
    SOURCE_RATED,
    SOURCE_RELIABILITY_LEARNED,
    Event,
    partition_of,
    stable_id,
)
from shared.eventtypes import ClaimAsserted, Correction, SourceRated, SourceReliabilityLearned
from shared.model import ClaimFacts, ConsensusResult, Estimate
from shared.positions import SLOTS, part_of, seq_of, version_id
from shared.timeaxes import MAX_TIME, MIN_TIME, Revision, Step, answer_at, revise

events_t = EventRow.__table__  # type: ignore[attr-defined]
claims_t = ClaimRow.__table__  # type: ignore[attr-defined]
mods_t = ModifierRow.__table__  # type: ignore[attr-defined]
keys_t = KeyRow.__table__  # type: ignore[attr-defined]
versions_t = VersionRow.__table__  # type: ignore[attr-defined]
outbox_t = OutboxRow.__table__  # type: ignore[attr-defined]
fences_t = PartitionFence.__table__  # type: ignore[attr-defined]

_json = msgspec.json.Encoder(order="sorted")
_decode = msgspec.json.decode
Key = tuple[str, str]
# effective (a learned score's: on the key holding it, _placed), recorded, id, kind, target, data
Modifier = tuple[str, str, str, str, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class VersionWritten:
    """A new version row, announced on the updates stream after commit."""

    id: int
    subject: str
    attribute: str
    version: int
    current: bool  # answers for the latest publication time
    # the event that caused it, for the logs (not stored with the version: a retried report
    # may come with another trace id, and replay must rebuild identical rows)
    cause_event_id: str | None = None
    cause_report_id: str | None = None
    trace_id: str | None = None


class Summary(NamedTuple):
    """What a step keeps of its result for the next diff and for relative claims: a tuple,
    not a dict, because a key keeps one per step (about one per claim) in the cache."""

    low: Any
    best: Any
    high: Any
    conservative: Any
    status: Any
    value_text: Any


DIFF_FIELDS = Summary._fields  # what a version's diff compares with the version before
COUNTED = ("support", "dissent", "excluded")  # a diff gives their sizes
# the other fields of a result: a diff names those that changed (compared by hash)
PART_FIELDS = (
    "clusters",
    "constraints",
    "dissent",
    "excluded",
    "exclusions",
    "explanation",
    "kind",
    "method",
    "method_version",
    "segments",
    "support",
    "unit",
    "weights",
)
# a delta chain is cut by a snapshot when its deltas outgrow a whole result (storage stays
# linear in what changed) or when it is this long (a read applies a bounded chain). Not
# much lower: a snapshot every N versions costs result/N per version, which grows with the
# key's claims (bench/storage.py: 128 would add about 1 GB to the 160k-claim batch)
MAX_CHAIN = 1000


@dataclass(frozen=True, slots=True)
class Computed:
    """A consensus result as stored: compared by content digest only. `counts` are the
    sizes of COUNTED, `parts` a short hash per PART_FIELDS (for the diff); `fields`, the
    whole result as JSON per top-level field (shared.codec.encode_fields), only on a
    freshly computed one (stored steps keep the rest)."""

    digest: str
    summary: Summary = field(compare=False)
    counts: tuple[int, int, int] = field(default=(0, 0, 0), compare=False)
    parts: str = field(default="", compare=False)
    fields: dict[str, bytes] | None = field(default=None, compare=False, repr=False)

    def bare(self) -> Computed:
        return Computed(self.digest, self.summary, self.counts, self.parts)

    def stored_summary(self) -> str:
        return _json.encode(
            {"v": list(self.summary), "n": list(self.counts), "p": self.parts}
        ).decode()


@dataclass
class KeyState:
    """Everything needed to recompute one key, kept between batches."""

    subject: str
    attribute: str
    head: int = 0
    last_rec: str = ""
    label: str | None = None
    claims: dict[str, ClaimFacts] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    recorded: dict[str, str] = field(default_factory=dict)  # claim id -> its recorded time
    modifiers: list[Modifier] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # current (recorded-time open) steps
    step_ids: dict[int, int] = field(default_factory=dict)  # version -> row id
    # the recorded-time group at `last_rec`: versions it opened (still open), and the steps
    # it closed with their row ids (shared.timeaxes.revise: `fresh`, `closed_now`)
    fresh: set[int] = field(default_factory=set)
    closed_now: list[Step] = field(default_factory=list)
    closed_ids: dict[int, int] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    # sources whose ratings and learned scores are among `modifiers` (every source with a
    # claim here): a claim from another source brings that source's in
    rated: set[str] = field(default_factory=set)
    in_db: bool = False
    # the whole result of version `head` (the base of the next delta) as its encode_fields
    # (the JSON of each field: a third of the memory of the decoded result), and the chain
    # it ends; None when the next version is a snapshot
    head_fields: dict[str, bytes] | None = field(default=None, repr=False)
    chain_base: int = 0  # snapshot version the head's delta chain starts from
    chain_bytes: int = 0  # delta bytes since that snapshot
    # per-claim admissions kept between recomputations (compute_consensus memo)
    admitted: dict[str, Any] = field(default_factory=dict, repr=False)
    # `modifiers` by target, built for the list it is of (_ModifierIndex.of)
    mod_index: _ModifierIndex | None = field(default=None, repr=False)
    # the latest recorded time of a learned score among `modifiers` (_place_learned): a
    # claim recorded before it moves where that score takes effect on this key
    learned_rec: str = ""

    @property
    def key(self) -> Key:
        return (self.subject, self.attribute)

    def times(self) -> list[str]:
        """Where the key's answer may change: its claims' publication times and its
        modifiers' effective times. Not a learned score's: it takes effect at a claim's
        publication time, or before every claim (_place_learned)."""
        published = set(self.published.values())
        return sorted(published | {m[0] for m in self.modifiers if m[3] != "learned"})

    def effective_at(self, t: str) -> list[ClaimFacts]:
        """Claims published by t, with the retractions, assessments and ratings made by t."""
        return self.inputs_at(t)[0]

    def inputs_at(self, t: str) -> tuple[list[ClaimFacts], dict[str, Any]]:
        """`effective_at(t)` and the admissions memo for it (compute_consensus `memo`).
        A claim's modifiers are found by target (its own, and its source's latest rating
        and learned score made by t: an earlier one of those sets the same fields and is
        overwritten), not by applying every modifier of the key to every claim."""
        published = self.published
        if not self.modifiers or self.modifiers[0][0] > t:
            plain = [claim for cid, claim in self.claims.items() if published[cid] <= t]
            return plain, self.admitted
        index = _ModifierIndex.of(self)
        out = []
        for cid, claim in self.claims.items():
            if published[cid] > t:
                continue
            source = claim.source_id
            if source == cid:  # one target list for both: the plain way
                out.append(_modified(claim, [m for m in self.modifiers if m[0] <= t]))
                continue
            rating, learned = index.latest(source, t)
            own = index.made_by(cid, t)
            if rating is None and learned is None and not own:
                out.append(claim)
            else:
                mods = sorted([*(m for m in (rating, learned) if m is not None), *own])
                out.append(_modified(claim, mods))
        return out, self.admitted

    def trim(self) -> None:
        """What a key keeps in the cache between batches: not its modifier index (built
        again when used)."""
        self.mod_index = None


class _ModifierIndex:
    """A key's modifiers by target, each target's in the key's (effective-time) order, so
    those made by a time are a prefix; for a source's, the latest rating and learned score
    of each prefix."""

    __slots__ = ("built_from", "size", "targets")

    def __init__(self, modifiers: list[Modifier]) -> None:
        self.built_from, self.size = modifiers, len(modifiers)
        grouped: dict[str, list[Modifier]] = {}
        for m in modifiers:
            grouped.setdefault(m[4], []).append(m)
        # target -> (effective times, modifiers, latest rating and learned of each prefix)
        self.targets: dict[str, tuple[list[str], list[Modifier], list[tuple[Any, Any]]]] = {}
        for target, mods in grouped.items():
            latest: list[tuple[Any, Any]] = [(None, None)]
            for m in mods:
                rating, learned = latest[-1]
                if m[3] == "rating":
                    rating = m
                elif m[3] == "learned":
                    learned = m
                latest.append((rating, learned))
            self.targets[target] = ([m[0] for m in mods], mods, latest)

    @staticmethod
    def of(state: KeyState) -> _ModifierIndex:
        index = state.mod_index
        mods = state.modifiers
        if index is None or index.built_from is not mods or index.size != len(mods):
            index = state.mod_index = _ModifierIndex(mods)
        return index

    def latest(self, target: str, t: str) -> tuple[Any, Any]:
        found = self.targets.get(target)
        if found is None:
            return None, None
        return found[2][bisect_right(found[0], t)]

    def made_by(self, target: str, t: str) -> tuple[Modifier, ...]:
        found = self.targets.get(target)
        if found is None:
            return ()
        return tuple(found[1][: bisect_right(found[0], t)])


# events whose fold reaches keys of other partitions (every key with a claim of the source):
# folded under the writer lock, and each commit of theirs bumps GENERATION's count, which
# an unlocked fold checks before it writes
CROSS_PARTITION = (SOURCE_RATED, SOURCE_RELIABILITY_LEARNED)
GENERATION = -1  # the partition_fences row counting those commits (no partition has it)
# an unlocked fold numbers its new rows from here in each partition until it holds the
# partition's row (shared.positions: id = seq * SLOTS + partition)
PROVISIONAL_SEQ = 1 << 40
PROVISIONAL = PROVISIONAL_SEQ * SLOTS
# keys a learned run revises and writes before it loads the next ones (`_settle`)
LEARNED_CHUNK_KEYS = 1000


@dataclass
class ApplyTiming:
    """Seconds of one apply: waiting for the writer lock, holding it, in all."""

    wait_s: float = 0.0
    held_s: float = 0.0
    total_s: float = 0.0
    refolded: bool = False  # the unlocked fold was out of date: folded again under the lock


class Reconciler:
    def __init__(
        self, registry: AttributeRegistry, *, cache_claims: int = 100_000, partitions: int = 4
    ) -> None:
        """`cache_claims`: how many claims' key states stay in memory between batches
        (about 2 KB each with their admissions and stored steps); the least recently
        used keys go first and are read back from SQL when touched again.
        `partitions`: CLAIMLEDGER_PARTITIONS (its default is 4): a version is numbered in
        its subject's partition (shared.positions)."""
        if not 0 < partitions <= SLOTS:
            raise ValueError(f"partitions must be 1..{SLOTS}")
        self.registry = registry
        self.cache_claims = cache_claims
        self.partitions = partitions
        self._parts_ready = False  # the partitions' rows exist (_ensure_parts)
        self._cache: OrderedDict[Key, KeyState] = OrderedDict()
        self._sizes: dict[Key, int] = {}  # claims counted for each cached key
        self._cached_claims = 0
        self.timing = ApplyTiming()  # of the last apply
        self._locked_at = 0.0

    def apply(
        self, engine: Engine, events: list[Event], fences: Mapping[int, int] | None = None
    ) -> tuple[list[VersionWritten], int]:
        """Applies the not-yet-applied events; returns new versions and how many applied.

        `fences`: partition -> lease epoch this process holds for the partitions the events
        come from; the transaction commits only if each is still the partition's current
        epoch (else StaleLease: another reconciler took the partition over).

        Afterwards `timing` holds the batch's seconds: waiting for the writer lock, holding
        it (until commit), and in all (bench/scale.py reports the shares)."""
        started = time.perf_counter()
        self.timing, self._locked_at = ApplyTiming(), 0.0
        if not self._parts_ready:
            _ensure_parts(engine, range(self.partitions))
            self._parts_ready = True
        try:
            with engine.begin() as conn:
                written, applied = self._apply(conn, events, fences or {})
        except BaseException:
            self._forget()  # in-memory state may hold the rolled-back changes
            raise
        ended = time.perf_counter()
        self.timing.held_s = ended - self._locked_at
        self.timing.total_s = ended - started
        return written, applied

    def _apply(
        self, conn: Connection, events: list[Event], fences: Mapping[int, int]
    ) -> tuple[list[VersionWritten], int]:
        if conn.dialect.name == "postgresql" and not any(e.type in CROSS_PARTITION for e in events):
            done = self._apply_unlocked(conn, events, fences)
            if done is not None:
                return done
            # the fold changed cached states in place, from reads now out of date
            self._forget()
            self.timing.refolded = True
        # (again after an unlocked attempt: its savepoint's rollback may have released it)
        self._lock(conn)
        batch = _Batch(self, conn, locked=True)
        # every partition's row, in order, before the fold: it may reach keys of any
        batch.seqs = self._lock_parts(conn, [*range(self.partitions), *fences])
        _check_fences(conn, fences)
        batch.fold(events)
        return batch.write()

    def _apply_unlocked(
        self, conn: Connection, events: list[Event], fences: Mapping[int, int]
    ) -> tuple[list[VersionWritten], int] | None:
        """Folds the batch and writes its inputs holding no lock, then takes the rows of
        the partitions it writes (no lock shared by all partitions) and writes its versions;
        None (nothing written) if it must be folded under the writer lock."""
        batch = _Batch(self, conn, locked=False)
        inputs = conn.begin_nested()  # undone if the fold turns out stale
        try:
            batch.fold(events)
            batch.write_inputs()
        except IntegrityError:  # another apply of these events committed since the fold
            inputs.rollback()
            return None
        batch.seqs = self._lock_parts(conn, [*batch.parts(), *fences])
        _check_fences(conn, fences)
        if not batch.still_valid():
            inputs.rollback()
            return None
        inputs.commit()
        return batch.write()

    def _lock(self, conn: Connection) -> None:
        asked = time.perf_counter()
        _lock_writers(conn)
        locked = time.perf_counter()
        self._locked_at = self._locked_at or locked  # held from the first time
        self.timing.wait_s += locked - asked

    def _lock_parts(self, conn: Connection, parts: Iterable[int]) -> dict[int, int]:
        """Locks these partitions' rows (the lock this batch waits for, if any), and
        returns the last version number of each."""
        asked = time.perf_counter()
        seqs = _lock_part_rows(conn, parts)
        locked = time.perf_counter()
        self._locked_at = self._locked_at or locked
        self.timing.wait_s += locked - asked
        return seqs

    def _forget(self) -> None:
        self._cache.clear()
        self._sizes.clear()
        self._cached_claims = 0

    # -- cache -------------------------------------------------------------------------

    def cached(
        self, key: Key, head: int | None, head_id: int | None, updated_at: str | None
    ) -> KeyState | None:
        """The cached state of `key` if it is what SQL holds: the same head version, open
        in the same row, and the same latest recorded time. The version number alone is
        not enough: another writer (the partition's owner while we had lost it; ourselves
        through a cross-partition event while another owned it) can drop the key's last
        versions and open them again at the same recorded time with the same numbers, as
        new rows; or take an input that changed no version but the key's recorded time."""
        state = self._cache.get(key)
        if (
            state is None
            or head is None
            or state.head != head
            or state.step_ids.get(state.head) != head_id
            or state.last_rec != updated_at
            or not state.in_db
        ):
            return None
        self._cache.move_to_end(key)
        return state

    def remember(self, state: KeyState) -> None:
        # sizes are kept per key: a cached state grows in place, so its old size cannot
        # be read off the object when it is remembered again
        self._cached_claims -= self._sizes.pop(state.key, 0)
        self._cache.pop(state.key, None)
        state.trim()
        self._cache[state.key] = state
        self._sizes[state.key] = len(state.claims)
        self._cached_claims += len(state.claims)
        while self._cached_claims > self.cache_claims and len(self._cache) > 1:
            key, _ = self._cache.popitem(last=False)
            self._cached_claims -= self._sizes.pop(key, 0)

    @property
    def cached_claims(self) -> int:
        return self._cached_claims


class _Batch:
    """One transaction: loads touched keys, applies events in order, writes in bulk."""

    def __init__(self, owner: Reconciler, conn: Connection, *, locked: bool) -> None:
        self.owner, self.conn, self.registry = owner, conn, owner.registry
        self.locked = locked  # folded under the writer lock (else: ids are provisional)
        self.states: dict[Key, KeyState] = {}
        self.heads: dict[Key, int] = {}  # stored head versions of keys that exist
        self.head_ids: dict[Key, int | None] = {}  # their row ids, None when closed
        # ratings and learned scores of the sources this batch's claims come from: stored,
        # and made by this batch (rows not written yet)
        self.source_mods: dict[str, list[Modifier]] = {}
        self.subject_keys: dict[str, set[str]] = {}
        self.dependents: dict[Key, list[str]] = {}
        self.claim_keys: dict[str, Key] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {
            "events": [],
            "claims": [],
            "mods": [],
            "versions": [],
            "closes": [],
            "drops": [],
            "reopens": [],
            "retimes": [],
        }
        self.written: list[VersionWritten] = []
        # per partition: the last version number stored (read holding the partition's row),
        # and the next number this batch gives (provisional in an unlocked fold)
        self.seqs: dict[int, int] = {}
        self.next_seq: dict[int, int] = {}
        self.part_of_subject: dict[str, int] = {}
        # keys with inputs waiting for their one revision per recorded-time group
        self.pending: dict[Key, _Group] = {}
        # per partition: ids of dropped rows, given to the next new rows there
        self.free_ids: dict[int, list[int]] = {}
        # (key state, version) of rows given new ids (provisional in an unlocked fold)
        self.numbered: list[tuple[KeyState, int]] = []
        self.traces: dict[str, str | None] = {}  # event id -> trace id (for the logs)
        # what the fold read that another writer could change, checked again under the lock
        # by an unlocked fold: keys rows (head, updated_at) of the subjects it asked for, the
        # cross-partition generation
        self.seen_keys: dict[Key, tuple[int, str]] = {}
        self.asked: set[str] = set()
        self.events: list[Event] = []
        self.fresh: list[Event] = []
        self.generation = 0

    def fold(self, events: list[Event]) -> None:
        """Applies the events to the key states in memory; nothing is written yet."""
        self.events = events
        if not self.locked:  # first: a cross-partition commit after this read is seen
            self.generation = _generation(self.conn)
        seen = _known(self.conn, [e.event_id for e in events])
        for event in events:
            if event.event_id not in seen:
                seen.add(event.event_id)
                self.fresh.append(event)
        if not self.fresh:
            return
        self._prefetch(self.fresh)
        for event in self.fresh:
            self._apply(event)
        while self.pending:  # revise each touched key once for its group
            self._revise_group(next(iter(self.pending)))

    def still_valid(self) -> bool:
        """Under the writer lock, after an unlocked fold and its inputs' writes: nothing it
        read has changed since (so folding now would give the same rows). The events it
        applies need no second look: their rows are written (unique event ids), so another
        apply of them either committed before that write (which then failed) or fails."""
        if _generation(self.conn) != self.generation:
            return False
        return _keys_rows(self.conn, sorted(self.asked)) == self.seen_keys

    def write_inputs(self) -> None:
        """The rows that need no version id (events, claims, modifiers, the outbox's
        confirmation), written before an unlocked fold takes the writer lock."""
        self._flush_inputs()
        self._confirm()

    def write(self) -> tuple[list[VersionWritten], int]:
        """Writes what the fold produced (under the writer lock): new rows get their ids now,
        so id order is commit order."""
        if self.locked:
            self._flush_inputs()
        if self.fresh:
            if not self.locked:
                self._assign_ids()
            self._flush_outputs()
            _save_seqs(self.conn, self._last_seqs())
            if any(e.type in CROSS_PARTITION for e in self.fresh):
                _bump_generation(self.conn)
            for state in self.states.values():
                state.in_db = True
                self.owner.remember(state)
        if self.locked:
            self._confirm()
        return self.written, len(self.fresh)

    def _confirm(self) -> None:
        """The outbox rows of the batch's events (applied now or before) are done."""
        confirmed = [e.event_id for e in self.events]
        for i in range(0, len(confirmed), 500):
            self.conn.execute(
                update(outbox_t)
                .where(
                    _one_of(self.conn, outbox_t.c.event_id, confirmed[i : i + 500]),
                    outbox_t.c.state == 0,
                )
                .values(state=1)
            )

    def parts(self) -> set[int]:
        """The partitions whose versions this batch writes."""
        return {self._part(state.subject) for state in self.states.values()}

    def _part(self, subject: str) -> int:
        part = self.part_of_subject.get(subject)
        if part is None:
            part = self.part_of_subject[subject] = partition_of(subject, self.owner.partitions)
        return part

    def _new_id(self, part: int) -> int:
        seq = self.next_seq.get(part)
        if seq is None:
            seq = self.seqs[part] + 1 if self.locked else PROVISIONAL_SEQ
        self.next_seq[part] = seq + 1
        return version_id(part, seq)

    def _last_seqs(self) -> dict[int, int]:
        """The last version number of each partition this batch numbered in."""
        if self.locked:
            return {part: seq - 1 for part, seq in self.next_seq.items()}
        return {
            part: self.seqs[part] + seq - PROVISIONAL_SEQ for part, seq in self.next_seq.items()
        }

    def _assign_ids(self) -> None:
        """Provisional ids -> real ones after each partition's last stored number, in the
        order the fold gave them (the ids a fold under the lock would have given)."""
        seqs = self.seqs

        def real(row_id: int) -> int:
            if row_id < PROVISIONAL:
                return row_id
            part = part_of(row_id)
            return version_id(part, seqs[part] + 1 + seq_of(row_id) - PROVISIONAL_SEQ)

        for row in self.rows["versions"]:
            row["id"] = real(row["id"])
        for name in ("closes", "reopens", "retimes"):
            for row in self.rows[name]:
                row["row_id"] = real(row["row_id"])
        self.free_ids = {p: [real(i) for i in ids] for p, ids in self.free_ids.items()}
        for row in self.rows["drops"]:
            row["row_id"] = real(row["row_id"])
        for state, version in self.numbered:  # its id is the step's, or the closed step's
            for ids in (state.step_ids, state.closed_ids):
                if version in ids:
                    ids[version] = real(ids[version])
        self.written = [replace(w, id=real(w.id)) for w in self.written]

    # -- loading -------------------------------------------------------------------------

    def _prefetch(self, events: list[Event]) -> None:
        self._know_subjects(
            sorted({e.subject for e in events if e.subject and e.type != SOURCE_RATED})
        )
        wanted = [
            (e.subject, e.attribute)
            for e in events
            if e.type == CLAIM_ASSERTED and e.subject and e.attribute is not None
        ]
        self._load([k for k in dict.fromkeys(wanted) if k in self.heads])
        sources = {
            e.payload.claim["source_id"] for e in events if isinstance(e.payload, ClaimAsserted)
        }
        self.source_mods = _source_modifiers(self.conn, sorted(sources))

    def _know_key(self, subject: str, attribute: str, head: int, depends_on: list[str]) -> None:
        self.heads[(subject, attribute)] = head
        self.subject_keys.setdefault(subject, set()).add(attribute)
        for target in depends_on:
            self.dependents.setdefault((subject, target), []).append(attribute)

    def _load(self, keys: list[Key]) -> None:
        """Key states for stored keys: from the cache when still current, else from SQL."""
        missing = []
        for key in keys:
            if key in self.states:
                continue
            stored = self.seen_keys.get(key)
            state = self.owner.cached(
                key, self.heads.get(key), self.head_ids.get(key), stored and stored[1]
            )
            if state is not None:
                self._adopt(state)
            else:
                missing.append(key)
        for i in range(0, len(missing), 200):
            for state in _load_states(self.conn, missing[i : i + 200], self.heads):
                self._adopt(state)

    def _adopt(self, state: KeyState) -> None:
        key = state.key  # a property: read once, not per claim
        self.states[key] = state
        self.claim_keys.update(dict.fromkeys(state.claims, key))

    def _state(self, subject: str, attribute: str) -> KeyState | None:
        key = (subject, attribute)
        if key not in self.states and key in self.heads:
            self._load([key])
        return self.states.get(key)

    # -- applying ------------------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        self.traces[event.event_id] = event.trace_id
        self.rows["events"].append(
            {
                "event_id": event.event_id,
                "type": event.type,
                "report_id": event.report_id,
                "subject": event.subject,
                "attribute": event.attribute,
                "recorded_at": event.recorded_at,
                "body": event.to_json(),
            }
        )
        if event.type == CLAIM_ASSERTED:
            self._claim_asserted(event)
        elif event.type in (CLAIM_RETRACTED, CLAIM_ASSESSED):
            self._claim_modified(event)
        elif event.type == SOURCE_RATED:
            self._source_rated(event)
        elif event.type == SOURCE_RELIABILITY_LEARNED:
            self._reliability_learned(event)

    def _claim_asserted(self, event: Event) -> None:
        payload = event.payload
        assert isinstance(payload, ClaimAsserted)
        data = payload.claim
        claim = claim_from_dict(data)
        key = (claim.subject, claim.attribute)
        state = self._state(*key)
        if state is None:
            state = KeyState(claim.subject, claim.attribute)
            self.states[key] = state
            self.subject_keys.setdefault(claim.subject, set()).add(claim.attribute)
        rec = self._begin(state, event.recorded_at)
        since = data["published_at"]
        if claim.claim_id not in state.claims:
            if _makes_names(claim, state.claims.values()):
                # the key's kind is decided by all its claims, not its first: its first
                # name turns the numbers already stored into names, at every time
                since = min(state.times())
            state.claims[claim.claim_id] = claim
            state.published[claim.claim_id] = data["published_at"]
            state.recorded[claim.claim_id] = rec
            if rec < state.learned_rec:
                # recorded before a learned run applied here (the log is not in recorded
                # order): that run's scores now take effect from this claim's time if later
                moved = _place_learned(state)
                if moved is not None:
                    since = min(since, moved)
            if claim.source_id not in state.rated:
                self._bring_ratings(state, claim.source_id)
            self.claim_keys[claim.claim_id] = key
            self.rows["claims"].append(
                {
                    "claim_id": claim.claim_id,
                    "report_id": claim.report_id,
                    "subject": claim.subject,
                    "attribute": claim.attribute,
                    "source_id": claim.source_id,
                    "published_at": data["published_at"],
                    "recorded_at": rec,
                    "facts": _json.encode(data).decode(),
                }
            )
            self._note_dependencies(state, claim)
        if payload.subject_label:
            state.label = payload.subject_label
        self._touch(state, since, event, rec)

    def _bring_ratings(self, state: KeyState, source_id: str) -> None:
        """The first claim of a source on a key: the source's ratings and learned scores
        apply to it too (as they do when the key is read back from SQL: replay, restarts),
        a learned score from the key's head when it was learned (_place_learned). They were
        made before it, so they reach no key they are not attached to."""
        state.rated.add(source_id)
        have = {m[2] for m in state.modifiers if m[4] == source_id}
        new = [m for m in self.source_mods.get(source_id, ()) if m[2] not in have]
        if new:
            state.modifiers = sorted([*state.modifiers, *_placed(state, new)])

    def _note_dependencies(self, state: KeyState, claim: ClaimFacts) -> None:
        spec = self.registry.get(state.attribute)
        wanted = set(spec.composite_of if spec else ()) | (
            {claim.value.relative_to} if claim.value.relative_to else set()
        )
        for target in sorted(wanted - set(state.depends_on)):
            state.depends_on = sorted({*state.depends_on, target})
            self.dependents.setdefault((state.subject, target), []).append(state.attribute)

    def _claim_modified(self, event: Event) -> None:
        payload = event.payload
        assert isinstance(payload, Correction) and not isinstance(payload, SourceRated)
        kind = "retraction" if event.type == CLAIM_RETRACTED else "assessment"
        modifier = self._modifier(event, kind, payload.claim_id)
        key = self.claim_keys.get(payload.claim_id) or _claim_key(self.conn, payload.claim_id)
        if key is None:  # claim unknown here: the stored modifier waits for it
            return
        if key not in self.heads and key not in self.states:
            self._prefetch_subject(key[0])
        state = self._state(*key)
        if state is None:
            return
        rec = self._begin(state, event.recorded_at)
        state.modifiers = sorted([*state.modifiers, modifier])
        self._touch(state, payload.effective_at, event, rec)

    def _source_rated(self, event: Event) -> None:
        payload = event.payload
        assert isinstance(payload, SourceRated)
        source_id = payload.source_id
        modifier = self._modifier(event, "rating", source_id)
        self.source_mods.setdefault(source_id, []).append(modifier)
        stored = self.conn.execute(
            select(claims_t.c.subject, claims_t.c.attribute)
            .where(claims_t.c.source_id == source_id)
            .distinct()
        ).all()
        pending = {
            (r["subject"], r["attribute"])
            for r in self.rows["claims"]
            if r["source_id"] == source_id
        }
        for key in sorted({(r.subject, r.attribute) for r in stored} | pending):
            if key not in self.heads and key not in self.states:
                self._prefetch_subject(key[0])
            state = self._state(*key)
            if state is not None:
                rec = self._begin(state, event.recorded_at)
                state.modifiers = sorted([*state.modifiers, modifier])
                self._touch(state, payload.effective_at, event, rec)

    def _reliability_learned(self, event: Event) -> None:
        """A re-weighting run: one modifier row per scored source (row id = event id #
        source, so a source's rows are found by target like a rating's), then every key
        those sources have claims on is recomputed once, with this event as the cause.
        On each key the scores take effect from its head, the latest publication time among
        its claims recorded before the run (_place_learned), not from the run's own time
        (`effective_at`, kept in the row): the run revises the key's current answer and
        adds no step of its own, which every later claim published before it would have
        to evaluate again (issue #19)."""
        payload = event.payload
        assert isinstance(payload, SourceReliabilityLearned)
        effective, run_id = payload.effective_at, payload.run_id or None
        scores: dict[str, float] = payload.scores
        copies: dict[str, str] = {
            s: finding.original for s, finding in (payload.copies or {}).items()
        }
        touched: dict[Key, list[Modifier]] = {}
        sources = sorted(scores)
        keys_of = self._keys_of_sources(sources)
        for source_id in sources:
            data = {"score": scores[source_id], "run_id": run_id, "effective_at": effective}
            copy_of = copies.get(source_id)
            if copy_of is not None:
                data["copy_of"] = copy_of
            row_id = f"{event.event_id}#{source_id}"
            self.rows["mods"].append(
                {
                    "event_id": row_id,
                    "kind": "learned",
                    "target": source_id,
                    "effective_at": effective,
                    "recorded_at": event.recorded_at,
                    "data": _json.encode(data).decode(),
                }
            )
            modifier = (effective, event.recorded_at, row_id, "learned", source_id, data)
            self.source_mods.setdefault(source_id, []).append(modifier)
            for key in keys_of.get(source_id, ()):
                touched.setdefault(key, []).append(modifier)
        keys = sorted(touched)
        # a run reaches every key of its sources: loaded, revised and written a chunk at a
        # time, then left to the cache, so memory holds one chunk and the cache, not every
        # key of the database at once (one run at 200k claims held 600 MB more)
        for i in range(0, len(keys), LEARNED_CHUNK_KEYS):
            chunk = keys[i : i + LEARNED_CHUNK_KEYS]
            self._prefetch_subjects_of(chunk)
            for key in chunk:
                state = self._state(*key)
                if state is not None:
                    rec = self._begin(state, event.recorded_at)
                    placed = _placed(state, touched[key])
                    state.modifiers = sorted([*state.modifiers, *placed])
                    self._touch(state, min(m[0] for m in placed), event, rec)
            if len(keys) > LEARNED_CHUNK_KEYS and self.locked:  # (cross-partition: always)
                self._settle(event)

    def _settle(self, event: Event) -> None:
        """Revises the keys `event` touched (and the dependents they reached), writes them
        in this transaction and hands their states to the cache: the batch forgets them. A
        later event of the batch touching one again takes it from the cache, or reads back
        what was written here."""
        while True:
            mine = [k for k, group in self.pending.items() if group.trigger is event]
            if not mine:
                break
            for key in mine:
                if key in self.pending:
                    self._revise_group(key)
        done = [s for k, s in self.states.items() if k not in self.pending and k in self.heads]
        if not done:
            return
        # the claims, events and modifiers of the batch so far first: a state read back
        # from SQL later in the batch must find its claims there
        self._flush_inputs()
        for name in ("events", "claims", "mods"):
            self.rows[name] = []
        self._flush_versions()
        self._write_keys(done)
        for state in done:
            key = state.key
            del self.states[key]
            self.heads[key] = state.head
            self.head_ids[key] = state.step_ids.get(state.head)
            self.seen_keys[key] = (state.head, state.last_rec)
            state.in_db = True
            self.owner.remember(state)

    def _keys_of_sources(self, sources: list[str]) -> dict[str, set[Key]]:
        out: dict[str, set[Key]] = {}
        for i in range(0, len(sources), 500):
            for r in self.conn.execute(
                select(claims_t.c.source_id, claims_t.c.subject, claims_t.c.attribute)
                .where(claims_t.c.source_id.in_(sources[i : i + 500]))
                .distinct()
            ):
                out.setdefault(r.source_id, set()).add((r.subject, r.attribute))
        wanted = set(sources)
        for row in self.rows["claims"]:  # claims of this batch, not stored yet
            if row["source_id"] in wanted:
                out.setdefault(row["source_id"], set()).add((row["subject"], row["attribute"]))
        return out

    def _prefetch_subjects_of(self, keys: list[Key]) -> None:
        unknown = sorted({k[0] for k in keys if k not in self.heads and k not in self.states})
        if unknown:
            self._know_subjects(unknown)
        wanted = [k for k in keys if k in self.heads and k not in self.states]
        if wanted:
            self._load(wanted)

    def _prefetch_subject(self, subject: str) -> None:
        self._know_subjects([subject])

    def _know_subjects(self, subjects: list[str]) -> None:
        """Stored keys of these subjects: head versions and what they depend on."""
        # each subject once: a second read could see keys the first did not, which the
        # check under the lock (against the first) would then miss
        subjects = [s for s in subjects if s not in self.asked]
        self.asked.update(subjects)
        for i in range(0, len(subjects), 400):
            # with the row id of the head version when it is open: rewritten rows get new
            # ids, so a cached state is known current by it (`Reconciler.cached`)
            head_row = (
                (versions_t.c.subject == keys_t.c.subject)
                & (versions_t.c.attribute == keys_t.c.attribute)
                & (versions_t.c.version == keys_t.c.head_version)
                & (versions_t.c.rec_to == MAX_TIME)
            )
            rows = self.conn.execute(
                select(
                    keys_t.c.subject,
                    keys_t.c.attribute,
                    keys_t.c.head_version,
                    keys_t.c.depends_on,
                    keys_t.c.updated_at,
                    versions_t.c.id.label("head_id"),
                )
                .select_from(keys_t.outerjoin(versions_t, head_row))
                .where(_one_of(self.conn, keys_t.c.subject, subjects[i : i + 400]))
            ).all()
            for r in rows:
                key = (r.subject, r.attribute)
                self.seen_keys.setdefault(key, (r.head_version, r.updated_at))
                if key not in self.heads:
                    self.head_ids[key] = r.head_id
                    self._know_key(r.subject, r.attribute, r.head_version, _decode(r.depends_on))

    def _modifier(self, event: Event, kind: str, target: str) -> Modifier:
        payload = event.payload
        assert isinstance(payload, Correction)
        data: dict[str, Any] = msgspec.to_builtins(payload)  # the payload's dict, as stored
        self.rows["mods"].append(
            {
                "event_id": event.event_id,
                "kind": kind,
                "target": target,
                "effective_at": payload.effective_at,
                "recorded_at": event.recorded_at,
                "data": _json.encode(data).decode(),
            }
        )
        return (payload.effective_at, event.recorded_at, event.event_id, kind, target, data)

    # -- recomputation -------------------------------------------------------------------
    #
    # Supersession is decided per recorded time, not per event or transaction: the events
    # of one key that share a recorded time (one ingest request) are a group, and the key's
    # timeline is revised once for the group, from the earliest publication time it
    # affects. A version opened and superseded at the same recorded time would have an
    # empty recorded interval (no reader at any recorded time can see it): it is never
    # stored. Within a batch the group's events are folded before the one revision; a group
    # that spans transactions revises again and drops (deletes) the rows its earlier part
    # wrote from `since` on (shared.timeaxes.revise: `fresh`), so whatever the chunking,
    # the stored rows are those of one revision of the whole group.

    def _begin(self, state: KeyState, recorded_at: str) -> str:
        """The recorded time of an input to `state` (its own, or the key's latest if that
        is later: kept monotonic per key). A pending group of an earlier recorded time is
        revised first: it must not see this input."""
        group = self.pending.get(state.key)
        rec = max(recorded_at, group.rec if group else state.last_rec)
        if group is not None and group.rec != rec:
            self._revise_group(state.key)
        return rec

    def _touch(
        self, state: KeyState, since: str, event: Event, rec: str, *, follow: bool = True
    ) -> None:
        group = self.pending.get(state.key)
        if group is None:
            self.pending[state.key] = _Group(rec, since, follow, event)
        else:
            group.since, group.follow = min(group.since, since), group.follow or follow
            group.trigger = event

    def _revise_group(self, key: Key) -> None:
        group = self.pending.pop(key)
        state = self.states.get(key)
        if state is not None:
            self._recompute(state, group)

    def _recompute(self, state: KeyState, group: _Group) -> None:
        if not state.claims:
            return
        if group.rec != state.last_rec:  # a new recorded time: nothing of it is stored yet
            state.fresh, state.closed_now, state.closed_ids = set(), [], {}
        numeric = all(c.value.is_numeric for c in state.claims.values())
        spec = self.registry.spec_for(state.attribute, numeric=numeric)
        related = {
            name: other.steps
            for name in state.depends_on
            if (other := self._state(state.subject, name)) is not None
        }

        def evaluate(t: str) -> Computed:
            estimates = {n: e for n, steps in related.items() if (e := _estimate_at(steps, t))}
            claims, memo = state.inputs_at(t)
            result = compute_consensus(claims, spec, related=estimates, memo=memo)
            return _computed_result(result)

        times = state.times()
        # nothing answers before the key's first input (a dependency's change there reaches
        # a key whose own claims came later in the same group)
        since = max(group.since, times[0])
        revision = revise(
            state.steps, times, since, evaluate, fresh=state.fresh, closed_now=state.closed_now
        )
        if not _is_tail(state, revision.dropped):
            # rows of this recorded time not numbered in publication order (written before
            # recorded times were grouped): closed as before, never renumbered
            state.fresh, state.closed_now, state.closed_ids = set(), [], {}
            revision = revise(state.steps, times, since, evaluate)
        if not any(
            (
                revision.closed,
                revision.opened,
                revision.dropped,
                revision.reopened,
                revision.retimed,
            )
        ):
            # the input was recorded all the same: a later input recorded earlier takes
            # this time (as it would in the same batch, where the group was still open), so
            # the stored rows do not depend on where the stream was cut into batches
            state.last_rec = group.rec
            return
        current_changed = self._write(state, revision, group)
        if group.follow and current_changed:
            for attribute in sorted(set(self.dependents.get(state.key, ()))):
                other = self._state(state.subject, attribute)
                if other is not None and other is not state:
                    rec = self._begin(other, group.rec)
                    self._touch(other, group.since, group.trigger, rec, follow=False)

    def _write(self, state: KeyState, revision: Revision, group: _Group) -> bool:
        rec_at = group.rec
        old_top = _top(state.steps)
        gone = {s.version for s in revision.closed} | {s.version for s in revision.dropped}
        if revision.dropped:
            self._drop(state, revision.dropped)
        for step in revision.closed:
            row_id = state.step_ids.pop(step.version)  # type: ignore[arg-type]
            self.rows["closes"].append({"row_id": row_id, "rec_to": rec_at})
            state.closed_now.append(step)
            state.closed_ids[step.version] = row_id  # type: ignore[index]
        steps = [s for s in state.steps if s.version not in gone]
        for step in revision.reopened:  # closed earlier at this recorded time: open again
            row_id = state.closed_ids.pop(step.version)  # type: ignore[arg-type]
            state.closed_now = [s for s in state.closed_now if s.version != step.version]
            self.rows["reopens"].append({"row_id": row_id})
            state.step_ids[step.version] = row_id  # type: ignore[index]
            steps.append(step)
        for step in revision.retimed:
            row_id = state.step_ids[step.version]  # type: ignore[index]
            self.rows["retimes"].append({"row_id": row_id, "pub_to": step.pub_to})
            steps = [step if s.version == step.version else s for s in steps]
        top = _top([*steps, *revision.opened])  # the step answering for the latest time
        current_changed = old_top is None or top is None or old_top.version != top.version
        causes = _Causes(state, rec_at, group.trigger)
        part = self._part(state.subject)
        for step in revision.opened:
            state.head += 1
            # a dropped row's id goes to a new row of the past, never to the current one:
            # the live stream announces ids above those it has sent (services/query/stream)
            free = self.free_ids.get(part)
            if free and step is not top:
                row_id = free.pop(0)
            else:
                row_id = self._new_id(part)
                if not self.locked:  # provisional: renumbered by _assign_ids
                    self.numbered.append((state, state.head))
            result: Computed = step.result
            current = step is top
            current_changed |= current
            whole, delta, base = _stored_result(state, result)
            event_id, report_id = causes.of(step.pub_from)
            row = {
                "id": row_id,
                "part": part,
                "subject": state.subject,
                "attribute": state.attribute,
                "version": state.head,
                "pub_from": step.pub_from,
                "pub_to": step.pub_to,
                "rec_from": rec_at,
                "rec_to": MAX_TIME,
                "status": result.summary.status,
                "cause_event_id": event_id,
                "cause_report_id": report_id,
                "result": whole,
                "delta": delta,
                "base": base,
                "digest": result.digest,
                "summary": result.stored_summary(),
                "diff": _json.encode(_diff(step.previous, result)).decode(),
            }
            self.rows["versions"].append(row)
            steps.append(Step(step.pub_from, step.pub_to, result.bare(), version=state.head))
            state.step_ids[state.head] = row_id
            state.fresh.add(state.head)
            self.written.append(
                VersionWritten(
                    row_id,
                    state.subject,
                    state.attribute,
                    state.head,
                    current,
                    event_id,
                    report_id,
                    self.traces.get(event_id),
                )
            )
        state.steps = sorted(steps, key=lambda s: s.pub_from)
        state.last_rec = rec_at
        return current_changed

    def _drop(self, state: KeyState, dropped: tuple[Step, ...]) -> None:
        """Removes rows opened earlier at this recorded time and superseded at it. They are
        the key's last versions (versions at one recorded time follow publication order,
        and the dropped ones are all from `since` on), so the version count rewinds and
        the next versions take their numbers and chain from the last row that stays."""
        versions = sorted(s.version for s in dropped)  # type: ignore[type-var]
        if self.locked:
            self._flush_versions()  # the rows to delete and the chain to rebuild are in SQL
        ids = sorted(state.step_ids.pop(v) for v in versions)  # type: ignore[arg-type]
        if self.locked:
            self.rows["drops"] += [{"row_id": i} for i in ids]
        else:
            self._unwrite(set(ids))
        for row_id in ids:
            self.free_ids.setdefault(part_of(row_id), []).append(row_id)
        for free in self.free_ids.values():
            free.sort()
        state.fresh -= set(versions)  # type: ignore[arg-type]
        state.head = versions[0] - 1  # type: ignore[operator]
        if self.locked:
            _load_head(self.conn, state)
        else:
            _load_head(self.conn, state, self._unwritten(state))

    def _unwrite(self, ids: set[int]) -> None:
        """An unlocked fold writes nothing before the lock: the rows to drop that this batch
        made are taken out of what it will write, the others deleted then (before the
        inserts that may reuse their ids); updates of either are moot. Same rows as the
        locked fold's write-then-delete."""
        rows = self.rows
        mine = {r["id"] for r in rows["versions"] if r["id"] in ids}
        rows["versions"] = [r for r in rows["versions"] if r["id"] not in mine]
        for name in ("closes", "reopens", "retimes"):
            rows[name] = [r for r in rows[name] if r["row_id"] not in ids]
        rows["drops"] += [{"row_id": i} for i in sorted(ids - mine)]

    def _unwritten(self, state: KeyState) -> dict[int, dict[str, Any]]:
        """The key's version rows this batch will write, by version."""
        return {
            r["version"]: r
            for r in self.rows["versions"]
            if r["subject"] == state.subject and r["attribute"] == state.attribute
        }

    # -- writing -------------------------------------------------------------------------

    def _tombstones(self) -> None:
        """Ids of dropped rows that no new row took: the update stream's ids stay gapless
        (services/query/stream.py reads by id), so each keeps a row no reader sees: an
        empty recorded interval, no payload, version -id (history lists versions > 0)."""
        for row_id in sorted(i for ids in self.free_ids.values() for i in ids):
            self.rows["versions"].append(
                {
                    "id": row_id,
                    "part": part_of(row_id),
                    "subject": "",
                    "attribute": "",
                    "version": -row_id,
                    "pub_from": MIN_TIME,
                    "pub_to": MIN_TIME,
                    "rec_from": MIN_TIME,
                    "rec_to": MIN_TIME,
                    "status": "",
                    "cause_event_id": "",
                    "cause_report_id": None,
                    "result": "{}",
                    "delta": None,
                    "base": None,
                    "digest": None,
                    "summary": None,
                    "diff": "{}",
                }
            )
        self.free_ids = {}

    def _flush_versions(self) -> None:
        """Version rows written so far, in an order that keeps each statement valid:
        deletes before the inserts that reuse their ids and version numbers; closes,
        reopens and new ends after the inserts (a version may open and close in one batch)."""
        conn, rows = self.conn, self.rows
        _update_many(conn, "DELETE FROM versions WHERE id = ?", ["row_id"], rows["drops"])
        if rows["versions"]:
            _insert_many(conn, versions_t, rows["versions"])
        _update_many(
            conn,
            "UPDATE versions SET rec_to = ? WHERE id = ?",
            ["rec_to", "row_id"],
            rows["closes"],
        )
        _update_many(
            conn,
            f"UPDATE versions SET rec_to = '{MAX_TIME}' WHERE id = ?",
            ["row_id"],
            rows["reopens"],
        )
        _update_many(
            conn,
            "UPDATE versions SET pub_to = ? WHERE id = ?",
            ["pub_to", "row_id"],
            rows["retimes"],
        )
        for name in ("drops", "versions", "closes", "reopens", "retimes"):
            rows[name] = []

    def _flush_inputs(self) -> None:
        conn, rows = self.conn, self.rows
        if rows["events"]:
            _insert_many(conn, events_t, rows["events"])
        if rows["claims"]:
            _insert_many(conn, claims_t, rows["claims"])
        if rows["mods"]:
            _insert_many(conn, mods_t, rows["mods"])

    def _flush_outputs(self) -> None:
        self._tombstones()
        self._flush_versions()
        self._write_keys(list(self.states.values()))

    def _write_keys(self, states: list[KeyState]) -> None:
        """The keys rows of these states: inserted for new keys, else updated."""
        conn = self.conn
        new = [s for s in states if s.key not in self.heads]
        if new:
            conn.execute(insert(keys_t), [_key_row(s) for s in new])
        touched = [s for s in states if s.key in self.heads]
        if touched and conn.dialect.name == "postgresql":
            _update_keys_pg(conn, [_key_row(s) for s in touched])
        elif touched:
            conn.execute(
                update(keys_t)
                .where(
                    keys_t.c.subject == bindparam("k_subject"),
                    keys_t.c.attribute == bindparam("k_attribute"),
                )
                .values(
                    head_version=bindparam("head_version"),
                    updated_at=bindparam("updated_at"),
                    subject_label=bindparam("subject_label"),
                    depends_on=bindparam("depends_on"),
                ),
                [
                    {**_key_row(s), "k_subject": s.subject, "k_attribute": s.attribute}
                    for s in touched
                ],
            )


def _update_keys_pg(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The keys rows as one UPDATE joined to arrays of the new values: one statement, where
    an executemany ran one per key under the writer lock (issue 26)."""
    columns = ("subject", "attribute", "head_version", "updated_at", "subject_label", "depends_on")
    conn.exec_driver_sql(
        "UPDATE keys AS k SET head_version = v.head_version, updated_at = v.updated_at,"
        " subject_label = v.subject_label, depends_on = v.depends_on"
        " FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[])"
        " AS v(subject, attribute, head_version, updated_at, subject_label, depends_on)"
        ' WHERE k.subject = v.subject COLLATE "C" AND k.attribute = v.attribute COLLATE "C"',
        tuple([r[c] for r in rows] for c in columns),
    )


def _insert_many(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert. On SQLite straight to the driver's executemany with tuples: SQLAlchemy's
    per-row parameter processing cost as much as the inserts themselves (bench/RESULTS.md).
    On PostgreSQL a COPY in the transaction: the version rows are written under the writer
    lock, and COPY took a third of the time of Core's batched INSERTs (issue 26)."""
    names = list(rows[0])
    if conn.dialect.name == "postgresql":
        import psycopg  # the PostgreSQL driver: an optional dependency (pyproject: postgres)

        sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(sql) as copy:
                for r in rows:
                    copy.write_row(tuple(r[n] for n in names))
        except psycopg.IntegrityError as exc:  # as SQLAlchemy raises it for its statements
            raise IntegrityError(sql, None, exc) from exc
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.exec_driver_sql(sql, _tuples(rows, names))


def _update_many(conn: Connection, sql: str, names: list[str], rows: list[dict[str, Any]]) -> None:
    """One statement run for many rows (`?` parameters, in `names` order)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, _tuples(rows, names))


def _tuples(rows: list[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    """Each row's values in `names` order, by one C call per row (itemgetter of one name
    returns the bare value, so that case is wrapped)."""
    if len(names) == 1:
        (name,) = names
        return [(r[name],) for r in rows]
    return list(map(itemgetter(*names), rows))


@dataclass
class _Group:
    """A key's inputs of one recorded time waiting for their revision."""

    rec: str
    since: str  # the earliest publication time they affect
    follow: bool  # revise dependent keys when the current answer changes
    trigger: Event  # the last event (the cause when none of the group's inputs is the key's)


class _Causes:
    """The cause of a changed step: the event of the key's recorded-time group that affects
    it most recently in publication time (the greatest effective time at or before the
    step's `pub_from`, ties by event id), so an as-of answer never names an input published
    after it; a step before all of them (a first name turning earlier numbers into names)
    names the group's earliest. Derived from the key's stored inputs (claims and modifiers
    recorded at that time), so it does not depend on how the group was split into batches.
    A key with no input of its own in the group (a dependent revised because its
    dependency changed) names the event that triggered it."""

    def __init__(self, state: KeyState, rec: str, trigger: Event) -> None:
        found: list[tuple[str, str, str | None]] = [
            (
                state.published[cid],
                stable_id("e_", cid, CLAIM_ASSERTED),
                state.claims[cid].report_id,
            )
            for cid, recorded in state.recorded.items()
            if recorded == rec
        ]
        for effective, recorded, row_id, kind, target, _ in state.modifiers:
            if recorded == rec:
                claim = state.claims.get(target)
                report = claim.report_id if claim is not None and kind in _CLAIM_MODS else None
                found.append((effective, row_id.split("#", 1)[0], report))
        found.sort()
        self.found, self.trigger = found, trigger

    def of(self, t: str) -> tuple[str, str | None]:
        if not self.found:
            return self.trigger.event_id, self.trigger.report_id
        i = bisect_right(self.found, t, key=lambda f: f[0])
        _, event_id, report_id = self.found[max(i - 1, 0)]
        return event_id, report_id


_CLAIM_MODS = ("retraction", "assessment")


def _key_row(state: KeyState) -> dict[str, Any]:
    return {
        "subject": state.subject,
        "attribute": state.attribute,
        "subject_label": state.label,
        "head_version": state.head,
        "updated_at": state.last_rec,
        "depends_on": _json.encode(state.depends_on).decode(),
    }


def _computed(result: dict[str, Any]) -> Computed:
    """A result given as a dict (shared.codec.result_to_dict, or a stored whole result)."""
    return _assemble(encode_fields(result), result.get)


def _computed_result(result: ConsensusResult) -> Computed:
    """A freshly computed result, encoded straight from the dataclass (no dict between):
    the same bytes as `_computed(result_to_dict(result))`."""
    return _assemble(result_fields(result), lambda name: getattr(result, name, None))


def _assemble(encoded: dict[str, bytes], get: Callable[[str], Any]) -> Computed:
    # each field encoded once: the digest's body, the parts' hashes, the stored text and
    # the delta's comparisons all read these bytes
    body = join_fields(encoded)
    status = get("status")
    summary = Summary(
        get("low"),
        get("best"),
        get("high"),
        get("conservative"),
        sys.intern(status) if isinstance(status, str) else status,
        get("value_text"),
    )
    counts = (
        len(get("support") or ()),
        len(get("dissent") or ()),
        len(get("excluded") or ()),
    )
    parts = "".join([_part_hash(encoded.get(name, b"null")) for name in PART_FIELDS])
    return Computed(
        hashlib.blake2b(body, digest_size=16).hexdigest(), summary, counts, parts, encoded
    )


# short parts repeat across versions and keys (kind, method, unit, empty lists): their
# hashes are kept instead of rehashed (a blake2b costs about 1 us, 13 per version)
_PART_HASHES: dict[bytes, str] = {}
_SHORT_PART = 64


def _part_hash(encoded: bytes) -> str:
    known = _PART_HASHES.get(encoded)
    if known is not None:
        return known
    digest = hashlib.blake2b(encoded, digest_size=4).hexdigest()
    if len(encoded) <= _SHORT_PART:
        if len(_PART_HASHES) >= 4096:  # bounded: distinct short parts (e.g. one-claim
            _PART_HASHES.clear()  # support lists) would otherwise pile up
        _PART_HASHES[encoded] = digest
    return digest


def _stored(digest: str | None, summary: str | None, result: str | None) -> Computed:
    """A stored version's Computed, without its whole result when it has a digest."""
    if digest is None or summary is None:  # written before revision 0003: a whole result
        return _computed(_decode(result or "{}")).bare()
    data = _decode(summary)
    low, best, high, conservative, status, value_text = data["v"]
    if isinstance(status, str):
        status = sys.intern(status)
    summary_ = Summary(low, best, high, conservative, status, value_text)
    counts = (int(data["n"][0]), int(data["n"][1]), int(data["n"][2]))
    return Computed(digest, summary_, counts, data["p"])


def _stored_result(state: KeyState, result: Computed) -> tuple[str | None, str | None, int]:
    """(result, delta, base) of the key's next version (state.head): a delta against the
    previous version while the chain stays short, else a snapshot."""
    assert result.fields is not None  # a freshly computed result
    whole = join_fields(result.fields)
    if (
        state.head_fields is not None
        and state.chain_base
        and state.head - state.chain_base <= MAX_CHAIN
    ):
        # compared as stored (the changed fields decoded from their JSON: tuples read back
        # as lists), so a head rebuilt from SQL gives the same deltas as one kept in
        # memory, and replay the same rows
        delta = _json.encode(fields_delta(state.head_fields, result.fields))
        if state.chain_bytes + len(delta) <= len(whole):
            state.chain_bytes += len(delta)
            state.head_fields = result.fields
            return None, delta.decode(), state.chain_base
    state.chain_base, state.chain_bytes = state.head, 0
    state.head_fields = result.fields
    return whole.decode(), None, state.head


def _is_tail(state: KeyState, dropped: tuple[Step, ...]) -> bool:
    """Whether the rows to drop are the key's last versions (so numbering can rewind)."""
    versions = sorted(s.version for s in dropped)  # type: ignore[type-var]
    return versions == list(range(state.head - len(versions) + 1, state.head + 1))


def _top(steps: list[Step]) -> Step | None:
    """The step answering for the latest publication time."""
    open_ended = [s for s in steps if s.pub_to == MAX_TIME]
    return max(open_ended, key=lambda s: s.pub_from) if open_ended else None


class StaleLease(Exception):
    """A partition's lease was taken over since this process took it: its batch is dropped
    (left pending for the new owner), never committed. `partitions`: those whose epoch in
    SQL moved past ours (empty when the lease itself is not held)."""

    def __init__(self, message: str, partitions: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.partitions = list(partitions)


def _check_fences(conn: Connection, fences: Mapping[int, int]) -> None:
    """Inside the apply transaction, after the writer lock: each partition's epoch is still
    ours. Written, not only read (PostgreSQL: the row stays locked until commit), so a
    takeover's bump (take_fence) orders after this commit or makes it fail."""
    stale = []
    for partition, epoch in sorted(fences.items()):
        done = conn.execute(
            update(fences_t)
            .where(fences_t.c.partition == partition, fences_t.c.epoch == epoch)
            .values(epoch=epoch)
        )
        if done.rowcount != 1:
            stale.append(partition)
    if stale:
        raise StaleLease(f"lease of partition(s) {stale} taken over", stale)


def take_fence(engine: Engine, partition: int, owner: str) -> int:
    """A new lease epoch for `partition` (called on taking its lease): every batch applied
    under an older epoch fails from now on. The bump waits for the partition's row, which
    a batch of the previous owner holds from its check to its commit, so that batch either
    committed before or fails its check."""
    _ensure_parts(engine, [partition])
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        epoch = conn.execute(
            update(fences_t)
            .where(fences_t.c.partition == partition)
            .values(epoch=fences_t.c.epoch + 1, owner=owner)
            .returning(fences_t.c.epoch)
        ).scalar_one()
        return int(epoch)


def _ensure_parts(engine: Engine, parts: Iterable[int]) -> None:
    """The partitions' rows exist (made in a transaction of their own: an apply then only
    locks rows, in partition order, and never waits for another's insert)."""
    wanted = list(parts)
    if wanted:
        with engine.begin() as conn:
            conn.execute(_insert_ignore(conn, wanted))


def _lock_part_rows(conn: Connection, parts: Iterable[int]) -> dict[int, int]:
    """Locks the partitions' rows in partition order (so two batches never wait for each
    other in a circle) until commit, and returns each one's last version number. On SQLite
    the transaction already holds the database's write lock."""
    wanted = sorted(set(parts))
    if not wanted:
        return {}
    query = (
        select(fences_t.c.partition, fences_t.c.seq)
        .where(fences_t.c.partition.in_(wanted))
        .order_by(fences_t.c.partition)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    seqs = {int(r.partition): int(r.seq) for r in conn.execute(query)}
    missing = [p for p in wanted if p not in seqs]
    if missing:  # _ensure_parts made them, unless the database was replaced since
        conn.execute(_insert_ignore(conn, missing))
        seqs = {int(r.partition): int(r.seq) for r in conn.execute(query)}
    return seqs


def _insert_ignore(conn: Connection, parts: list[int]) -> Any:
    """The partitions' rows, where missing (epoch 0: no lease taken yet; no version yet)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [{"partition": p, "epoch": 0, "owner": "", "seq": 0} for p in sorted(set(parts))]
    return (
        dialect.insert(fences_t).values(rows).on_conflict_do_nothing(index_elements=["partition"])
    )


def _save_seqs(conn: Connection, seqs: Mapping[int, int]) -> None:
    """Each partition's last version number, in its row (held since _lock_part_rows)."""
    if seqs:
        conn.execute(
            update(fences_t)
            .where(fences_t.c.partition == bindparam("p"))
            .values(seq=bindparam("s")),
            [{"p": p, "s": seq} for p, seq in sorted(seqs.items())],
        )


def _generation(conn: Connection) -> int:
    """How many batches with cross-partition events have committed (their modifiers may
    reach any key, also one whose stored head they did not move)."""
    found = conn.execute(
        select(fences_t.c.epoch).where(fences_t.c.partition == GENERATION)
    ).scalar()
    return int(found or 0)


def _bump_generation(conn: Connection) -> None:
    done = conn.execute(
        update(fences_t)
        .where(fences_t.c.partition == GENERATION)
        .values(epoch=fences_t.c.epoch + 1)
    )
    if done.rowcount != 1:  # the first such batch (under the writer lock: no race)
        conn.execute(
            insert(fences_t).values(partition=GENERATION, epoch=1, owner="cross-partition")
        )


def _keys_rows(conn: Connection, subjects: list[str]) -> dict[Key, tuple[int, str]]:
    """(head version, updated_at) of every stored key of these subjects."""
    out: dict[Key, tuple[int, str]] = {}
    for i in range(0, len(subjects), 400):
        for r in conn.execute(
            select(
                keys_t.c.subject, keys_t.c.attribute, keys_t.c.head_version, keys_t.c.updated_at
            ).where(_one_of(conn, keys_t.c.subject, subjects[i : i + 400]))
        ):
            out[(r.subject, r.attribute)] = (r.head_version, r.updated_at)
    return out


def _lock_writers(conn: Connection) -> None:
    """One batch folded under the lock at a time (cross-partition batches and refolds;
    SQLite: every batch, which takes the database's one write lock anyway)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7261450)")


def _makes_names(claim: ClaimFacts, held: Iterable[ClaimFacts]) -> bool:
    """The first name (text value) among numbers: an unregistered key becomes categorical."""
    if claim.value.is_numeric:
        return False
    seen = False
    for other in held:
        if not other.value.is_numeric:
            return False
        seen = True
    return seen


def _heads_before(state: KeyState) -> Callable[[str], str]:
    """recorded time -> the key's head then: the latest publication time among its claims
    recorded before it (MIN_TIME if none)."""
    pairs = sorted((state.recorded[cid], state.published[cid]) for cid in state.claims)
    recorded = [r for r, _ in pairs]
    heads: list[str] = []
    latest = MIN_TIME
    for _, published in pairs:
        latest = max(latest, published)
        heads.append(latest)

    def head(at: str) -> str:
        i = bisect_left(recorded, at)
        return heads[i - 1] if i else MIN_TIME

    return head


def _placed(state: KeyState, mods: Iterable[Modifier]) -> list[Modifier]:
    """These modifiers as they apply to this key: a learned score takes effect from the
    key's head when it was recorded (its row's recorded time), so the run that learned it
    revises the key's current answer and adds no step; on a key with no claim recorded
    before it, from the key's first claim on (MIN_TIME). Derived from the key's claims
    (their stored recorded times), so live apply, any batching and replay place it alike.
    Ratings and the modifiers of claims keep their own effective time."""
    head: Callable[[str], str] | None = None
    out = []
    for m in mods:
        if m[3] == "learned":
            head = head or _heads_before(state)
            m = (head(m[1]), m[1], m[2], m[3], m[4], m[5])
            state.learned_rec = max(state.learned_rec, m[1])
        out.append(m)
    return out


def _place_learned(state: KeyState) -> str | None:
    """Places the key's learned scores again (_placed) after a claim recorded before one of
    them arrived; the earliest publication time whose answer that changes, None if none."""
    head = _heads_before(state)
    moved: list[str] = []
    out = []
    for m in state.modifiers:
        if m[3] == "learned" and (at := head(m[1])) != m[0]:
            moved += [at, m[0]]
            m = (at, m[1], m[2], m[3], m[4], m[5])
        out.append(m)
    if moved:
        state.modifiers = sorted(out)
    return min(moved) if moved else None


def _modified(claim: ClaimFacts, mods: Iterable[Modifier]) -> ClaimFacts:
    for _, _, _, kind, target, data in mods:  # in effective-time order: later ones win
        if kind == "rating" and target == claim.source_id:
            claim = replace(claim, source_reliability=data["reliability"])
        elif kind == "learned" and target == claim.source_id:
            claim = replace(claim, source_score=data["score"], copies_source=data.get("copy_of"))
        elif target != claim.claim_id:
            continue
        elif kind == "retraction":
            claim = replace(claim, retracted=True, notes=(*claim.notes, claim_note(kind, data)))
        elif kind == "assessment":
            claim = replace(claim, notes=(*claim.notes, claim_note(kind, data)))
            if data.get("rank"):
                claim = replace(claim, rank=data["rank"])
            if data.get("credibility"):
                claim = replace(claim, credibility=data["credibility"])
    return claim


def _among(table: Any, keys: list[Key]) -> tuple[Any, Any]:
    """subject IN (...) AND attribute IN (...): a superset of the pairs, filtered by the
    caller. Not a row-value IN: SQLite answers `(subject, attribute) IN (VALUES ...)` with a
    scan of the whole table (EXPLAIN QUERY PLAN), which made every cache miss cost a pass
    over all claims; the two lists search the (subject, attribute, ...) indexes."""
    return (
        table.c.subject.in_(sorted({k[0] for k in keys})),
        table.c.attribute.in_(sorted({k[1] for k in keys})),
    )


# What a stored step is read back from (_step_of): the open steps (_load_states) and those the
# latest recorded time closed (_load_closed_now). The whole result only where there is no
# digest: a row written before revision 0003.
_STEP_COLUMNS = (
    versions_t.c.id,
    versions_t.c.subject,
    versions_t.c.attribute,
    versions_t.c.version,
    versions_t.c.pub_from,
    versions_t.c.pub_to,
    versions_t.c.digest,
    versions_t.c.summary,
    case((versions_t.c.digest.is_(None), versions_t.c.result), else_=None).label("result"),
)


def _step_of(row: Any) -> Step:
    """The step of a row selected with _STEP_COLUMNS."""
    stored = _stored(row.digest, row.summary, row.result)
    return Step(row.pub_from, row.pub_to, stored, version=row.version)


def _load_states(conn: Connection, keys: list[Key], heads: dict[Key, int]) -> list[KeyState]:
    states = {k: KeyState(k[0], k[1], head=heads.get(k, 0), in_db=True) for k in keys}
    opened_at: dict[tuple[str, str, int], str] = {}
    for r in conn.execute(
        select(
            claims_t.c.subject,
            claims_t.c.attribute,
            claims_t.c.claim_id,
            claims_t.c.published_at,
            claims_t.c.recorded_at,
            claims_t.c.facts,
        )
        .where(*_among(claims_t, keys))
        .order_by(claims_t.c.claim_id)
    ):
        state = states.get((r.subject, r.attribute))
        if state is None:  # same subject and attribute lists, another pair
            continue
        claim = claim_from_dict(_decode(r.facts))
        state.claims[r.claim_id] = claim
        state.published[r.claim_id] = r.published_at
        state.recorded[r.claim_id] = r.recorded_at
    for v in conn.execute(
        select(*_STEP_COLUMNS, versions_t.c.rec_from)
        .where(*_among(versions_t, keys), versions_t.c.rec_to == MAX_TIME)
        .order_by(versions_t.c.pub_from)
    ):
        state = states.get((v.subject, v.attribute))
        if state is None:
            continue
        state.steps.append(_step_of(v))
        state.step_ids[v.version] = v.id
        opened_at[(v.subject, v.attribute, v.version)] = v.rec_from
    _load_heads(conn, states)
    for kr in conn.execute(
        select(
            keys_t.c.subject,
            keys_t.c.attribute,
            keys_t.c.subject_label,
            keys_t.c.depends_on,
            keys_t.c.updated_at,
        ).where(*_among(keys_t, keys))
    ):
        state = states.get((kr.subject, kr.attribute))
        if state is None:
            continue
        state.label, state.depends_on = kr.subject_label, _decode(kr.depends_on)
        state.last_rec = kr.updated_at
    for state in states.values():
        state.fresh = {
            s.version  # type: ignore[misc]
            for s in state.steps
            if opened_at[(state.subject, state.attribute, s.version)] == state.last_rec  # type: ignore[index]
        }
    _load_closed_now(conn, states)
    _load_modifiers(conn, list(states.values()))
    return list(states.values())


def _load_closed_now(conn: Connection, states: dict[Key, KeyState]) -> None:
    """The steps each key's latest recorded time closed (their close may be undone)."""
    for row in conn.execute(
        select(*_STEP_COLUMNS)
        .select_from(
            versions_t.join(
                keys_t,
                (keys_t.c.subject == versions_t.c.subject)
                & (keys_t.c.attribute == versions_t.c.attribute)
                & (keys_t.c.updated_at == versions_t.c.rec_to),
            )
        )
        # not a row opened and closed at one recorded time (stored before they were grouped)
        .where(*_among(versions_t, list(states)), versions_t.c.rec_from < versions_t.c.rec_to)
    ):
        state = states.get((row.subject, row.attribute))
        if state is None:
            continue
        state.closed_now.append(_step_of(row))
        state.closed_ids[row.version] = row.id


def _load_head(
    conn: Connection, state: KeyState, unwritten: Mapping[int, Mapping[str, Any]] | None = None
) -> None:
    """The whole result of the key's head version, rebuilt from its delta chain: the base
    of the next version's delta. `unwritten`: rows of the key not in SQL yet, by version
    (they stand for any stored row of the same version, which is to be deleted)."""
    if state.head == 0:  # no version (or every one dropped): the next is a snapshot
        state.head_fields, state.chain_base, state.chain_bytes = None, 0, 0
        return
    unwritten = unwritten or {}
    key = (versions_t.c.subject == state.subject, versions_t.c.attribute == state.attribute)
    if state.head in unwritten:
        base = unwritten[state.head]["base"]
    else:
        base = conn.execute(
            select(versions_t.c.base).where(*key, versions_t.c.version == state.head)
        ).scalar()
    first = base or state.head
    chain: dict[int, tuple[str | None, str | None]] = {
        row.version: (row.result, row.delta)
        for row in conn.execute(
            select(versions_t.c.version, versions_t.c.result, versions_t.c.delta).where(
                *key, versions_t.c.version >= first, versions_t.c.version <= state.head
            )
        )
    }
    for version, row in unwritten.items():
        if first <= version <= state.head:
            chain[version] = (row["result"], row["delta"])
    _set_head(state, base, chain)


def _set_head(
    state: KeyState, base: int | None, chain: Mapping[int, tuple[str | None, str | None]]
) -> None:
    """The head's whole result from its chain's rows (version -> (result, delta))."""
    data: dict[str, Any] | None = None
    state.chain_bytes = 0
    for version in sorted(chain):
        result, delta = chain[version]
        if delta is None:
            data = _decode(result or "{}")
        else:
            assert data is not None, "a delta chain starts at a snapshot"
            data = apply_result_delta(data, _decode(delta))
            state.chain_bytes += len(delta.encode())
    state.chain_base = base or 0
    state.head_fields = None if data is None else encode_fields(data)


def _load_heads(conn: Connection, states: Mapping[Key, KeyState]) -> None:
    """_load_head of many stored keys in one statement (a cache miss used to cost two per
    key): each key's head row (keys.head_version) gives where its chain starts, and the
    chain's rows come joined to it. A key whose head is not the keys row's (an unlocked
    fold that read them apart) is read alone."""
    wanted = {}
    for key, state in states.items():
        if state.head:
            wanted[key] = state
        else:  # no version: the next is a snapshot
            state.head_fields, state.chain_base, state.chain_bytes = None, 0, 0
    if not wanted:
        return
    top = versions_t.alias("top")
    heads = (
        select(
            top.c.subject,
            top.c.attribute,
            top.c.version.label("head"),
            top.c.base,
            # `base or head`: a row stored before revision 0003 has no base
            case((top.c.base.is_(None) | (top.c.base == 0), top.c.version), else_=top.c.base).label(
                "first"
            ),
        )
        .select_from(
            keys_t.join(
                top,
                (top.c.subject == keys_t.c.subject)
                & (top.c.attribute == keys_t.c.attribute)
                & (top.c.version == keys_t.c.head_version),
            )
        )
        .where(*_among(keys_t, list(wanted)))
        .cte("heads")
    )
    v = versions_t.c
    found: dict[Key, tuple[int, int | None, dict[int, tuple[str | None, str | None]]]] = {}
    for row in conn.execute(
        select(
            heads.c.subject,
            heads.c.attribute,
            heads.c.head,
            heads.c.base,
            v.version,
            v.result,
            v.delta,
        ).select_from(
            heads.join(
                versions_t,
                (v.subject == heads.c.subject)
                & (v.attribute == heads.c.attribute)
                & (v.version >= heads.c.first)
                & (v.version <= heads.c.head),
            )
        )
    ):
        key = (row.subject, row.attribute)
        if key in wanted:
            chain = found.setdefault(key, (row.head, row.base, {}))[2]
            chain[row.version] = (row.result, row.delta)
    for key, state in wanted.items():
        got = found.get(key)
        if got is None or got[0] != state.head:
            _load_head(conn, state)
        else:
            _set_head(state, got[1], got[2])


def _select_modifiers() -> Select[Any]:
    c = mods_t.c
    return select(c.effective_at, c.recorded_at, c.event_id, c.kind, c.target, c.data)


def _modifier_of(row: Any) -> Modifier:
    data = _decode(row.data)
    return (row.effective_at, row.recorded_at, row.event_id, row.kind, row.target, data)


def _source_modifiers(conn: Connection, sources: list[str]) -> dict[str, list[Modifier]]:
    """The stored ratings and learned scores of these sources."""
    out: dict[str, list[Modifier]] = {}
    for i in range(0, len(sources), 500):
        for m in conn.execute(
            _select_modifiers().where(
                mods_t.c.target.in_(sources[i : i + 500]),
                mods_t.c.kind.in_(("rating", "learned")),
            )
        ):
            out.setdefault(m.target, []).append(_modifier_of(m))
    return out


def _load_modifiers(conn: Connection, states: list[KeyState]) -> None:
    """Each key's stored modifiers: those of its claims and of its claims' sources. A row
    is decoded once, its modifier shared by the keys it reaches (nobody changes one); a
    learned score is placed on each key (_placed: its time there is the key's own)."""
    by_claim: dict[str, list[KeyState]] = {}
    by_source: dict[str, list[KeyState]] = {}
    for state in states:
        sources = {c.source_id for c in state.claims.values()}
        state.rated.update(sources)
        for cid in state.claims:
            by_claim.setdefault(cid, []).append(state)
        for source in sorted(sources):
            by_source.setdefault(source, []).append(state)
    targets = sorted({*by_claim, *by_source})
    for i in range(0, len(targets), 500):
        for m in conn.execute(_select_modifiers().where(mods_t.c.target.in_(targets[i : i + 500]))):
            # a rating or learned score targets a source; the others a claim
            owners = by_source if m.kind in ("rating", "learned") else by_claim
            modifier = _modifier_of(m)
            for state in owners.get(m.target, ()):
                state.modifiers.append(modifier)
    for state in states:
        state.modifiers = sorted(_placed(state, state.modifiers))


def _claim_key(conn: Connection, claim_id: str) -> Key | None:
    row = conn.execute(
        select(claims_t.c.subject, claims_t.c.attribute).where(claims_t.c.claim_id == claim_id)
    ).first()
    return (row.subject, row.attribute) if row else None


def _estimate_at(steps: list[Step], t: str) -> Estimate | None:
    step = answer_at(steps, t)
    if step is None:
        return None
    r = step.result.summary
    if r.best is None and r.low is None and r.high is None:
        return None
    return Estimate(r.low, r.best, r.high)


def _diff(previous: Computed | None, result: Computed) -> dict[str, Any]:
    """What a reader sees change: [old, new] of the figures and of the sizes of support,
    dissent and excluded; "changed" for the other fields that differ."""
    if previous is None:
        pairs = zip(DIFF_FIELDS, result.summary, strict=True)
        return {f: [None, new] for f, new in pairs if new is not None}
    out: dict[str, Any] = {
        f: [old, new]
        for f, old, new in zip(DIFF_FIELDS, previous.summary, result.summary, strict=True)
        if old != new
    }
    for name, old, new in zip(COUNTED, previous.counts, result.counts, strict=True):
        if old != new:
            out[name] = [old, new]
    if len(previous.parts) == len(result.parts) == 8 * len(PART_FIELDS):
        for i, name in enumerate(PART_FIELDS):
            part = slice(8 * i, 8 * i + 8)
            if name not in out and previous.parts[part] != result.parts[part]:
                out[name] = "changed"
    if not out and previous.digest != result.digest:
        out["result"] = "changed"
    return out


def _known(conn: Connection, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i : i + 500]
        found.update(
            conn.execute(
                select(events_t.c.event_id).where(_one_of(conn, events_t.c.event_id, chunk))
            )
            .scalars()
            .all()
        )
    return found


def _one_of(conn: Connection, column: Any, values: list[str]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`: one parameter, where
    binding and planning 500 (the batch's event ids) took longer than the lookups."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(values, type_=PG_ARRAY(Text)))
    return column.in_(values)
