"""Live consensus updates for SSE subscribers: one shared fan-out per query process.

One task (`Fanout.run`) follows the reconciler's updates stream. The stream is only a
nudge: entries are written after the reconciler's commit, and the fan-out then reads
the new version rows from SQL, ONCE for all subscribers, renders each row's SSE
frame ONCE, and appends that same bytes object to the bounded buffer of every
subscriber whose filter matches (found through an index, not by scanning everyone).
Each partition numbers its versions 1, 2, 3 in commit order with no gap
(shared.positions, services/reconcile/store.py), so the last number published of each
partition (a `Cursor`) is a complete place in the feed: a lost announcement, a Redis
outage or a restart is repaired by reading SQL from it (a cheap probe of the
partitions' last numbers runs whenever the stream is quiet or unreachable). A frame's
`id:` is the fan-out's cursor just after it, as a token: resuming from it misses
nothing in any partition.

A subscriber (`feed`) registers first, at the fan-out's current position (its
"anchor"); live frames above the anchor collect in its buffer while it reads the
stored versions between its resume cursor and the anchor from SQL, partition by
partition, in pages. Then it drains the buffer. History and live never overlap, and
nothing between them is missed. A subscriber whose buffer overflows while live is told
`event: resync` with the id to resume from, and its stream ends; the fan-out never waits for anyone.
Buffers are bounded in bytes as well as frames, and a subscriber hands at most 64 KiB to
one write: one that stops reading holds one write plus its bounded buffer, never its own
copy of everything it was sent. With `snapshot`, a subscriber first gets the current
version of each matching key as of its anchor (without ids), then continues as above.

Why hand-written: sse-starlette renders and sends one response; sharing rendered
frames among many responses with per-subscriber bounds is this module's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sse_starlette.event import ServerSentEvent

from services.query import views
from shared.events import UPDATES_STREAM
from shared.positions import Cursor, position_of, seq_of, version_id
from shared.timeaxes import public_time

log = logging.getLogger("claimledger.query.stream")

SEP = "\r\n"  # sse-starlette's default separator
OVERFLOWS = Counter(
    "claimledger_sse_overflows_total",
    "Subscriber buffers that overflowed (live: told to resync; catching up: kept reading SQL)",
)
SQL_CATCHUPS = Counter(
    "claimledger_sse_sql_catchups_total",
    "Versions the fan-out found in SQL before any announcement (lost updates, outages)",
)

_encode = msgspec.json.encode
DATA_FIELD = b"__data__"  # the field the reconciler writes its update entries under


class Frame(NamedTuple):
    """A version as sent: its row id (its partition and number there) and the rendered SSE
    bytes (whose `id:` is the token of the cursor just after it)."""

    id: int
    subject: str
    attribute: str
    data: bytes


def _frame(row_id: int, subject: str, attribute: str, data: bytes, token: str | None) -> Frame:
    if b"\n" in data or b"\r" in data:  # never from msgspec; sse-starlette splits lines
        text = ServerSentEvent(data=data.decode(), event="consensus", id=token, sep=SEP).encode()
    elif token is not None:
        text = b"id: %b\r\nevent: consensus\r\ndata: %b\r\n\r\n" % (token.encode(), data)
    else:
        text = b"event: consensus\r\ndata: %b\r\n\r\n" % data
    return Frame(row_id, subject, attribute, text)


_NULL, _LIST, _OBJECT = msgspec.Raw(b"null"), msgspec.Raw(b"[]"), msgspec.Raw(b"{}")


class _StoredResult(msgspec.Struct):
    """The stored result's fields a frame carries, kept as raw JSON: the frame re-emits
    them unchanged, and decoding then re-encoding them was a quarter of the fan-out's
    CPU. The frame's data equals `json.dumps(views.version_view(row))` as JSON."""

    low: msgspec.Raw = _NULL
    best: msgspec.Raw = _NULL
    high: msgspec.Raw = _NULL
    conservative: msgspec.Raw = _NULL
    value_text: msgspec.Raw = _NULL
    unit: msgspec.Raw = _NULL
    kind: msgspec.Raw = _NULL
    status: msgspec.Raw = _NULL
    support: msgspec.Raw = _LIST
    dissent: msgspec.Raw = _LIST
    excluded: msgspec.Raw = _LIST
    exclusions: msgspec.Raw = _OBJECT
    notes: msgspec.Raw = _OBJECT
    explanation: msgspec.Raw = _NULL
    newest_support_at: msgspec.Raw = _NULL
    segments: msgspec.Raw = _LIST
    clusters: msgspec.Raw = _LIST
    weights: msgspec.Raw = _OBJECT
    constraints: msgspec.Raw = _LIST
    method: msgspec.Raw = _NULL
    method_version: msgspec.Raw = _NULL


_decode_result = msgspec.json.Decoder(_StoredResult).decode


def render_row(row: Any, token: str | None) -> Frame:
    """The SSE frame of one stored version row, without parsing its stored result; `token`:
    its `id:` (the cursor just after it), None for snapshot frames: they are not a place
    to resume from."""
    r = _decode_result(row.result)
    item = {
        "subject": row.subject,
        "attribute": row.attribute,
        "subject_label": None,
        "version": row.version,
        "low": r.low,
        "best": r.best,
        "high": r.high,
        "conservative": r.conservative,
        "value": r.value_text,
        "unit": r.unit,
        "kind": r.kind,
        "status": r.status,
        "support": r.support,
        "dissent": r.dissent,
        "excluded": r.excluded,
        "exclusions": r.exclusions,
        "notes": r.notes,
        "explanation": r.explanation,
        "newest_support_at": r.newest_support_at,
        "segments": r.segments,
        "clusters": r.clusters,
        "weights": r.weights,
        "constraints": r.constraints,
        "method": {"name": r.method, "version": r.method_version},
        "published_from": public_time(row.pub_from),
        "published_to": public_time(row.pub_to),
        "recorded_from": public_time(row.rec_from),
        "recorded_to": public_time(row.rec_to),
        "cause": {"event_id": row.cause_event_id, "report_id": row.cause_report_id},
        "diff": msgspec.Raw(row.diff.encode() if isinstance(row.diff, str) else row.diff),
        "position": position_of(row.id),
    }
    return _frame(int(row.id), row.subject, row.attribute, _encode(item), token)


def resync_frame(resume_from: Cursor) -> bytes:
    token = resume_from.token()
    body = {"resume_from": token, "reason": "subscriber fell behind"}
    return ServerSentEvent(data=json.dumps(body), event="resync", id=token, sep=SEP).encode()


# -- pure parts ------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamFilter:
    """subject IN subjects AND attribute IN attributes; an empty set matches anything."""

    subjects: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()

    def matches(self, subject: str, attribute: str) -> bool:
        return (not self.subjects or subject in self.subjects) and (
            not self.attributes or attribute in self.attributes
        )


PAIR_INDEX_LIMIT = 64  # subject x attribute pairs beyond this index by subject alone


class SubscriberIndex:
    """Subscribers by what they asked for, so a version meets only those that match.

    Each subscriber sits under exactly one kind of key (pair, subject, attribute or
    everything), and a version has one subject and one attribute, so `match` never
    returns a subscriber twice and costs O(candidates), not O(all subscribers).
    """

    def __init__(self) -> None:
        self.by_pair: dict[tuple[str, str], set[Any]] = {}
        self.by_subject: dict[str, set[Any]] = {}
        self.by_attribute: dict[str, set[Any]] = {}
        self.everything: set[Any] = set()

    @staticmethod
    def _slots(flt: StreamFilter) -> list[tuple[str, Any]]:
        if flt.subjects and flt.attributes:
            if len(flt.subjects) * len(flt.attributes) <= PAIR_INDEX_LIMIT:
                return [("pair", (s, a)) for s in flt.subjects for a in flt.attributes]
            return [("subject", s) for s in flt.subjects]
        if flt.subjects:
            return [("subject", s) for s in flt.subjects]
        if flt.attributes:
            return [("attribute", a) for a in flt.attributes]
        return [("everything", None)]

    def _table(self, kind: str) -> dict[Any, set[Any]]:
        tables: dict[str, dict[Any, set[Any]]] = {
            "pair": self.by_pair,
            "subject": self.by_subject,
            "attribute": self.by_attribute,
        }
        return tables[kind]

    def add(self, flt: StreamFilter, member: Any) -> None:
        for kind, key in self._slots(flt):
            if kind == "everything":
                self.everything.add(member)
            else:
                self._table(kind).setdefault(key, set()).add(member)

    def remove(self, flt: StreamFilter, member: Any) -> None:
        for kind, key in self._slots(flt):
            if kind == "everything":
                self.everything.discard(member)
                continue
            table = self._table(kind)
            members = table.get(key)
            if members is not None:
                members.discard(member)
                if not members:
                    del table[key]

    def match(self, subject: str, attribute: str, filter_of: Any = None) -> list[Any]:
        """Members whose filter matches; `filter_of(member)` re-checks subject-indexed
        members that also filter attributes (too many pairs to index)."""
        found: list[Any] = list(self.everything)
        found.extend(self.by_pair.get((subject, attribute), ()))
        found.extend(self.by_attribute.get(attribute, ()))
        for member in self.by_subject.get(subject, ()):
            if filter_of is None or filter_of(member).matches(subject, attribute):
                found.append(member)
        return found

    def __len__(self) -> int:
        members = set(self.everything)
        for table in (self.by_pair, self.by_subject, self.by_attribute):
            for group in table.values():
                members |= group
        return len(members)


def contiguous(last: int, seqs: Sequence[int]) -> int:
    """How many of a partition's version numbers `seqs` (ascending) continue `last` without
    a hole: numbers are gapless, so a hole means a row not visible yet; the fan-out stops
    there and looks again."""
    n = 0
    for expected, got in enumerate(seqs, start=last + 1):
        if got != expected:
            break
        n += 1
    return n


def announced_ids(entries: Iterable[tuple[Any, dict[Any, Any]]]) -> list[int]:
    """The version ids named by updates-stream entries (none if none is readable)."""
    ids = []
    for _entry_id, fields in entries:
        raw = fields.get(DATA_FIELD) or fields.get(DATA_FIELD.decode())
        try:
            ids.append(int(json.loads(raw or b"")["id"]))
        except (TypeError, ValueError, KeyError):
            continue  # not ours or malformed: the SQL probe still finds the versions
    return ids


def fresh(frames: Iterable[Frame], delivered: Cursor) -> tuple[list[Frame], Cursor]:
    """Frames past `delivered` (in their partitions), in order, and the cursor after them:
    merges history with live without duplicates, whatever overlap the two have."""
    out = [frame for frame in frames if not delivered.sent(frame.id)]
    return out, delivered.advanced(f.id for f in out)


# -- subscriptions and the fan-out -----------------------------------------------------


CHUNK_BYTES = 64 * 1024  # at most this much is handed to one write: a client that stops
# reading blocks with one chunk in flight, and the rest stays in its (bounded) buffer


@dataclass(eq=False)
class Subscription:
    """One subscriber's buffer of frames above its anchor, bounded in frames and in bytes.

    Bytes, because frames differ in size by orders of magnitude (a key with many claims
    renders a large version): a bound in frames alone let one slow reader hold tens of MB.
    """

    filter: StreamFilter
    limit: int
    limit_bytes: int = 2 * 2**20
    # the fan-out's position when (re)registered: live frames are above it
    anchor: Cursor = field(default_factory=Cursor)
    buffer: deque[Frame] = field(default_factory=deque)
    size: int = 0  # bytes of the frames in `buffer`
    overflowed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, frame: Frame) -> bool:
        """Buffers the frame; True when this push overflowed the buffer."""
        if self.overflowed:
            return False
        self.wake.set()
        if len(self.buffer) >= self.limit or self.size + len(frame.data) > self.limit_bytes:
            self.overflowed = True
            self.clear()  # what it held is in SQL; the subscriber resumes from there
            return True
        self.buffer.append(frame)
        self.size += len(frame.data)
        return False

    def take(self, max_bytes: int = CHUNK_BYTES) -> list[Frame]:
        """Frames from the front, up to `max_bytes` (at least one): the rest stays
        buffered, and counted, while these are written."""
        items: list[Frame] = []
        taken = 0
        while self.buffer and (not items or taken + len(self.buffer[0].data) <= max_bytes):
            frame = self.buffer.popleft()
            taken += len(frame.data)
            items.append(frame)
        self.size -= taken
        return items

    def clear(self) -> None:
        self.buffer.clear()
        self.size = 0


def chunks(frames: Sequence[Frame], max_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The frames' bytes joined into writes of at most `max_bytes` (or one frame)."""
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        if batch and size + len(frame.data) > max_bytes:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(frame.data)
        size += len(frame.data)
    if batch:
        yield b"".join(batch)


def _load(
    engine: Engine,
    part: int,
    cursor: Cursor,
    upto: int | None,
    flt: StreamFilter,
    limit: int,
) -> list[Frame]:
    """A page of partition `part`'s feed after `cursor` (up to number `upto`), each frame's
    `id:` the cursor just after it."""
    rows = views.version_rows_after(
        engine,
        part,
        version_id(part, cursor[part]),
        sorted(flt.subjects),
        sorted(flt.attributes),
        limit,
        upto=None if upto is None else version_id(part, upto),
    )
    frames = []
    for row in rows:
        cursor = cursor.advanced([row.id])
        # a placeholder keeping a dropped version's id (version -id, services/reconcile/
        # store.py) is a position with nothing to send: numbers stay gapless, no frame
        frames.append(
            render_row(row, cursor.token()) if row.version > 0 else Frame(row.id, "", "", b"")
        )
    return frames


def _load_current(
    engine: Engine, upto: Cursor, flt: StreamFilter, after: tuple[str, str] | None, limit: int
) -> list[Frame]:
    rows = views.current_rows_upto(
        engine, upto, sorted(flt.subjects), sorted(flt.attributes), after, limit
    )
    return [render_row(row, None) for row in rows]


HISTORY_PAGE = 64  # rows a subscriber reads from SQL at once: what it holds while blocked


class Fanout:
    """Reads each committed version once and hands its frame to matching subscribers."""

    def __init__(
        self,
        engine: Engine,
        redis: Redis,
        *,
        buffer: int = 4096,
        buffer_bytes: int = 2 * 2**20,
        page: int = 500,
        probe_s: float = 1.0,
        on_announce: Callable[[], None] | None = None,
    ) -> None:
        self.engine, self.redis = engine, redis
        self.on_announce = on_announce  # told of every announcement read (min_token waits)
        self.buffer, self.page, self.probe_s = buffer, page, probe_s
        self.buffer_bytes = buffer_bytes
        self.position = Cursor()  # the last number handed to subscribers, per partition
        self.index = SubscriberIndex()
        self.redis_ok = False
        self._catching_up = asyncio.Lock()

    async def start(self) -> None:
        """New subscribers start at the versions committed before this process."""
        self.position = await asyncio.to_thread(views.partition_heads, self.engine)

    def subscribe(self, flt: StreamFilter) -> Subscription:
        sub = Subscription(flt, self.buffer, self.buffer_bytes, anchor=self.position)
        self.index.add(flt, sub)
        return sub

    def reanchor(self, sub: Subscription) -> None:
        """Drop what it buffered (still in SQL) and anchor it at the present again."""
        sub.clear()
        sub.overflowed = False
        sub.anchor = self.position

    def unsubscribe(self, sub: Subscription) -> None:
        self.index.remove(sub.filter, sub)

    def publish(self, frames: Sequence[Frame]) -> None:
        """Synchronous on purpose: position and buffers change together, with no await
        between, so a subscriber registering at `position` misses nothing and gets
        nothing twice."""
        for frame in frames:
            for sub in self.index.match(frame.subject, frame.attribute, _filter_of):
                if sub.push(frame):
                    OVERFLOWS.inc()
        self.position = self.position.advanced(f.id for f in frames)

    async def catch_up(self) -> None:
        """Reads every committed version above `position` from SQL, partition by
        partition, in pages."""
        async with self._catching_up:
            heads = await asyncio.to_thread(views.partition_heads, self.engine)
            for part, head in heads.items():
                if head > self.position[part]:
                    await self._catch_up_part(part)

    async def _catch_up_part(self, part: int) -> None:
        holes = 0
        while True:
            frames = await asyncio.to_thread(
                _load, self.engine, part, self.position, None, StreamFilter(), self.page
            )
            ok = contiguous(self.position[part], [seq_of(f.id) for f in frames])
            for i in range(0, ok, PUBLISH_SLICE):
                self.publish(frames[i : min(ok, i + PUBLISH_SLICE)])
                await asyncio.sleep(0)  # let subscribers drain: buffers are bounded
            if ok < len(frames):  # a hole: a row not visible yet (should not happen)
                holes += 1
                if holes > 50:
                    skipped = version_id(part, self.position[part] + 1)
                    log.warning("version %d never became visible; skipping it", skipped)
                    self.position = self.position.advanced([skipped])
                    holes = 0
                await asyncio.sleep(0.01)
                continue
            if len(frames) < self.page:
                return

    async def probe(self) -> None:
        """Catches up from SQL if versions were committed without reaching us."""
        heads = await asyncio.to_thread(views.partition_heads, self.engine)
        behind = sum(max(0, head - self.position[part]) for part, head in heads.items())
        if behind:
            SQL_CATCHUPS.inc(behind)  # found by the probe
            await self.catch_up()

    async def run(self) -> None:
        entry: Any = "$"
        while True:
            try:
                reply: Any = await self.redis.xread(
                    {UPDATES_STREAM: entry}, block=int(self.probe_s * 1000), count=1000
                )
                self.redis_ok = True
                if reply:
                    if self.on_announce is not None:
                        self.on_announce()
                    entries = reply[0][1]
                    entry = entries[-1][0]
                    ids = announced_ids(entries)
                    if not ids or not all(self.position.sent(i) for i in ids):
                        await self.catch_up()
                else:
                    await self.probe()
            except (RedisError, OSError) as exc:
                if self.redis_ok:
                    log.warning("updates stream unreachable (%s); reading SQL meanwhile", exc)
                self.redis_ok = False
                entry = "$"  # a Redis that came back empty restarts its ids
                try:
                    await self.probe()
                except Exception:  # the database may be down too; keep trying
                    log.exception("SQL catch-up failed")
                await asyncio.sleep(self.probe_s)
            except Exception:  # never let the one fan-out task die
                log.exception("fan-out step failed; retrying")
                await asyncio.sleep(self.probe_s)


PUBLISH_SLICE = 64  # frames published between chances for subscribers to write


def _filter_of(sub: Subscription) -> StreamFilter:
    return sub.filter


async def feed(
    fanout: Fanout,
    start: Cursor,
    flt: StreamFilter,
    *,
    announce: bool = False,
    snapshot: bool = False,
) -> AsyncGenerator[Any, None]:
    """One subscriber's SSE body: stored versions after `start`, then live ones; with
    `snapshot`, first the current version of each matching key (as of the anchor), and
    the stream starts at the anchor instead of `start`."""
    sub = fanout.subscribe(flt)
    delivered = start
    try:
        if snapshot:
            delivered = sub.anchor  # the snapshot holds every matching key up to here
            async for chunk in _snapshot(fanout, flt, delivered):
                yield chunk
            if sub.overflowed:  # live versions came faster than it read: fill from SQL
                fanout.reanchor(sub)
        if announce:  # tell a fresh subscriber where it starts, so it can resume from there
            yield {"id": delivered.token(), "comment": "start"}
        # history: up to the anchor from SQL, partition by partition; live frames above the
        # anchor wait in the buffer
        while not delivered.covers(sub.anchor):
            for part, upto in sub.anchor.items():
                while delivered[part] < upto:
                    page = await asyncio.to_thread(
                        _load, fanout.engine, part, delivered, upto, flt, HISTORY_PAGE
                    )
                    sendable = [f for f in page if f.data]
                    for chunk in chunks(sendable):
                        yield chunk
                    # every matching version up to here has been sent
                    last = page[-1].id if len(page) == HISTORY_PAGE else version_id(part, upto)
                    delivered = delivered.advanced([last])
            if sub.overflowed:  # fell behind while reading history: keep reading SQL
                fanout.reanchor(sub)
        while True:
            if sub.overflowed:
                yield resync_frame(delivered)
                return
            if not sub.buffer:
                sub.wake.clear()
                await sub.wake.wait()
                continue
            frames, delivered = fresh(sub.take(), delivered)
            if frames:
                yield b"".join(f.data for f in frames)
    finally:
        fanout.unsubscribe(sub)


async def _snapshot(fanout: Fanout, flt: StreamFilter, upto: Cursor) -> AsyncIterator[bytes]:
    """The current version (among those up to `upto`) of each key the filter matches, by
    key."""
    after: tuple[str, str] | None = None
    while True:
        page = await asyncio.to_thread(_load_current, fanout.engine, upto, flt, after, HISTORY_PAGE)
        for chunk in chunks(page):
            yield chunk
        if len(page) < HISTORY_PAGE:
            return
        after = (page[-1].subject, page[-1].attribute)
