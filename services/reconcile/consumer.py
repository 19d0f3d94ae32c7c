"""Stream entries -> events -> one SQL transaction -> XACK; poison -> dead-letter stream.

FastStream delivers new entries in batches (see main.py). It adds no retry cap,
reclaiming or dead-lettering (docs/operating.md), so this module supplies them: a
reclaimer takes over entries left pending by dead consumers (XAUTOCLAIM, Redis
6.2+), counts deliveries, and dead-letters an entry that keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from services.infra.db import restart_wal
from services.reconcile.store import Reconciler, StaleLease, VersionWritten, outbox_t
from shared.events import (
    CONSUMER_GROUP,
    DEAD_LETTER_STREAM,
    UPDATES_STREAM,
    Event,
    EventProblem,
    event_from_json,
)
from shared.timeaxes import now_iso

log = logging.getLogger("claimledger.reconcile")

DATA_FIELD = b"__data__"
APPLIED = Counter("claimledger_events_applied_total", "Events applied (first time)")
REDELIVERED = Counter("claimledger_events_redelivered_total", "Events seen again, changed nothing")
DEAD = Counter("claimledger_events_dead_lettered_total", "Entries moved to the dead-letter stream")
APPLY_SECONDS = Histogram("claimledger_apply_seconds", "Time to apply one batch in SQL")
# the writer lock (store._lock_writers) of the apply transactions: what it costs scale-out is
# the share of apply time spent waiting for it (bench/scale.py reads these)
APPLY_TOTAL_SECONDS = Counter("claimledger_apply_transaction_seconds", "Apply transactions, in all")
LOCK_WAIT_SECONDS = Counter("claimledger_apply_lock_wait_seconds", "Waiting for the writer lock")
LOCK_HELD_SECONDS = Counter("claimledger_apply_lock_held_seconds", "Holding the writer lock")
REFOLDED = Counter("claimledger_apply_refolded", "Batches folded again under the writer lock")

Entry = tuple[bytes, dict[bytes, bytes]]
Held = tuple[int, int] | None  # (partition, lease epoch) a batch was read under


class EntryProcessor:
    def __init__(
        self,
        engine: Engine,
        redis: Redis,
        reconciler: Reconciler,
        *,
        serialize_writes: bool,
        updates_maxlen: int = 100_000,
        max_group: int = 2000,
        linger_s: float = 0.002,
        wal_restart_every_s: float = 5.0,
        fence_of: Callable[[str], tuple[int, int] | None] | None = None,
        consumer: str | None = None,
        max_deliveries: int = 10,
        on_stale: Callable[[list[int]], None] | None = None,
    ) -> None:
        """`on_stale(partitions)`: told when a commit found our epoch of those partitions
        superseded in SQL although the lease may still be ours (PartitionLeases.refence).
        `fence_of(stream)`: (partition, epoch) of the lease held on the stream's
        partition, None if not held (PartitionLeases); batches commit only under it.
        `consumer`: our name in the group; given, a batch first takes over the earlier
        entries other consumers still hold (see `_earlier`)."""
        self.engine, self.redis, self.reconciler = engine, redis, reconciler
        self.fence_of, self.consumer = fence_of, consumer
        self.max_deliveries = max_deliveries
        self.on_stale = on_stale
        # failed applies per entry, counted here: Redis's delivery count also grows with
        # every lease takeover and reclaim, which is no fault of the event (a loaded machine
        # churns leases), so it must not decide what is dead-lettered
        self.failures: dict[bytes, int] = {}
        self.updates_maxlen = updates_maxlen
        # SQLite has one writer: queueing here beats busy-waiting in the driver
        self._write_lock = asyncio.Lock() if serialize_writes else None
        self.max_group, self.linger_s = max_group, linger_s
        self.wal_restart_every_s = wal_restart_every_s
        self._wal_restarted = time.monotonic()
        self._queue: (
            asyncio.Queue[tuple[str, Sequence[Entry], asyncio.Future[list[bytes]], Held]] | None
        ) = None
        self._applier: asyncio.Task[None] | None = None

    # -- applying entries of every partition together ------------------------------------

    def start(self) -> None:
        """Entries then go through one applier task: the batches the partitions' subscribers
        hand over while a transaction runs are applied together in the next one."""
        self._queue = asyncio.Queue()
        self._applier = asyncio.create_task(self._apply_together(), name="group-apply")

    async def stop(self) -> None:
        """Finishes what was handed over, then stops the applier (later calls apply alone)."""
        applier, self._applier = self._applier, None
        if applier is None:
            return
        while not applier.done() and self._queue is not None and not self._queue.empty():
            await asyncio.sleep(0.01)
        applier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await applier

    async def process(self, stream: str, entries: Sequence[Entry]) -> list[bytes]:
        """Applies a batch; returns the entry ids that failed (left pending for retry)."""
        # the lease this batch was read under: it commits only if that is still current,
        # not merely if the lease is ours again by then (taken back after another owner)
        held = self.fence_of(stream) if self.fence_of is not None else None
        owner = self.fence_of is None or held is not None
        if self.consumer is not None and entries and owner:
            entries = [*await self._earlier(stream, entries[0][0], self.consumer), *entries]
        if self._applier is None or self._applier.done() or self._queue is None:
            return (await self._process_many([(stream, entries, held)]))[0]
        done: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        await self._queue.put((stream, entries, done, held))
        return await done

    async def _earlier(self, stream: str, first: bytes, consumer: str) -> list[Entry]:
        """Entries before `first` still pending (delivered, unapplied), claimed to apply
        first. A reconciler paused past its lease may have read entries before it
        noticed; its commit fails (fencing), and they must not wait for the idle reclaimer
        while later ones are applied: per-subject order is stream order."""
        summary: Any = await self.redis.xpending(stream, CONSUMER_GROUP)
        if (
            not summary
            or not summary.get("pending")
            or _entry_id(summary["min"]) >= _entry_id(first)
        ):
            return []
        rows = await self.redis.xpending_range(
            stream, CONSUMER_GROUP, min="-", max=f"({_s(first)}", count=10_000
        )
        # every earlier entry, ours included, except those that failed here too often (the
        # Reclaimer dead-letters them; retrying a poison event before every batch would stall
        # the partition). Ours are pending because our lease lapsed mid-batch, the database
        # failed, or the batch failed: a later entry must not be applied before them, and
        # the idle reclaimer would take them only after later ones (per-subject order)
        earlier: list[Any] = [
            r["message_id"] for r in rows if not self.failing(_bytes(r["message_id"]))
        ]
        if not earlier:
            return []
        claimed: Any = await self.redis.xclaim(stream, CONSUMER_GROUP, consumer, 0, earlier)
        entries = [e for e in claimed if e and e[1] is not None]
        if entries:
            log.warning("took over %d earlier pending entries of %s", len(entries), stream)
        return sorted(entries, key=lambda e: _entry_id(e[0]))

    async def _apply_together(self) -> None:
        assert self._queue is not None
        while True:
            group = [await self._queue.get()]
            # one XADD pipeline from ingest wakes several partitions' subscribers, whose
            # reads return over a millisecond or two: let them hand over before the
            # transaction starts (fewer, larger transactions: faster and sooner visible)
            await asyncio.sleep(self.linger_s)
            size = len(group[0][1])
            while not self._queue.empty() and size < self.max_group:
                group.append(self._queue.get_nowait())
                size += len(group[-1][1])
            try:
                results = await self._process_many([(s, e, h) for s, e, _, h in group])
            except BaseException as exc:
                for _, _, done, _ in group:
                    if not done.done():
                        done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, _, done, _), failed in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(failed)

    async def _process_many(
        self, batches: list[tuple[str, Sequence[Entry], Held]]
    ) -> list[list[bytes]]:
        """One transaction for the batches of several streams (each in stream order); if it
        fails, each stream's batch alone, and within that event by event."""
        decoded: list[tuple[str, list[tuple[bytes, Event]], list[bytes]]] = []
        held_by: dict[str, Held] = {}
        for stream, _, held in batches:  # read under two leases: the older one is stale
            held_by[stream] = held if held_by.get(stream, held) == held else None
        for stream, entries, _ in batches:
            good: list[tuple[bytes, Event]] = []
            done: list[bytes] = []
            for entry_id, fields in entries:
                try:
                    good.append((entry_id, _decode(fields)))
                except EventProblem as exc:
                    await self.dead_letter(stream, entry_id, fields, f"poison: {exc}")
                    done.append(entry_id)
            decoded.append((stream, good, done))
        events = [e for _, good, _ in decoded for _, e in good]
        if events:
            started = time.perf_counter()
            try:
                written = await self._apply(events, held_by)
            except StaleLease as exc:
                return await self._drop(decoded, exc)
            except Exception as exc:
                if _environmental(exc):  # nothing wrong with the events: keep their place
                    return await self._drop(decoded, exc)
                if len(decoded) == 1:
                    return [await self._one_by_one(*decoded[0], exc, held_by)]
                log.warning(
                    "group of %d batches failed (%s); applying each alone", len(decoded), exc
                )
                return [
                    await self._alone(stream, good, done, held_by) for stream, good, done in decoded
                ]
            streams = ",".join(sorted({s for s, _, _ in decoded}))
            _log_applied(streams, len(events), written, time.perf_counter() - started)
            await self._announce(written)
        pipe = self.redis.pipeline(transaction=False)
        for stream, good, done in decoded:
            ids = done + [i for i, _ in good]
            if ids:
                pipe.xack(stream, CONSUMER_GROUP, *ids)
        if any(done or good for _, good, done in decoded):
            await pipe.execute()
        return [[] for _ in decoded]

    async def _drop(
        self, decoded: list[tuple[str, list[tuple[bytes, Event]], list[bytes]]], exc: Exception
    ) -> list[list[bytes]]:
        """Nothing of these batches was committed, through no fault of their events: the
        lease is another reconciler's now (its takeover re-applies them in order), or the
        database or Redis failed (locked past the busy timeout, gone). They stay pending,
        and our next batch of the stream applies them before its own entries (`_earlier`):
        per-subject order holds, and they do not wait for the idle reclaimer."""
        log.warning("dropped a batch of %d events: %s", sum(len(g) for _, g, _ in decoded), exc)
        if isinstance(exc, StaleLease):
            self._stale(exc)
        for stream, _, done in decoded:
            if done:  # dead-lettered already
                await self.redis.xack(stream, CONSUMER_GROUP, *done)
        return [[i for i, _ in good] for _, good, _ in decoded]

    async def _alone(
        self,
        stream: str,
        good: list[tuple[bytes, Event]],
        done: list[bytes],
        held_by: dict[str, Held],
    ) -> list[bytes]:
        """One stream's batch in its own transaction; if that fails, event by event."""
        if good:
            started = time.perf_counter()
            try:
                written = await self._apply([e for _, e in good], {stream: held_by[stream]})
            except StaleLease as exc:
                return (await self._drop([(stream, good, done)], exc))[0]
            except Exception as exc:
                if _environmental(exc):
                    return (await self._drop([(stream, good, done)], exc))[0]
                return await self._one_by_one(stream, good, done, exc, held_by)
            _log_applied(stream, len(good), written, time.perf_counter() - started)
            await self._announce(written)
        ids = done + [i for i, _ in good]
        if ids:
            await self.redis.xack(stream, CONSUMER_GROUP, *ids)
        return []

    async def _one_by_one(
        self,
        stream: str,
        good: list[tuple[bytes, Event]],
        done: list[bytes],
        exc: Exception,
        held_by: dict[str, Held],
    ) -> list[bytes]:
        """Isolates the failing event(s) of one stream's batch; they stay pending."""
        log.warning("batch failed (%s); applying one by one", exc)
        started = time.perf_counter()
        written: list[VersionWritten] = []
        failed: list[bytes] = []
        for n, (entry_id, event) in enumerate(good):
            try:
                written += await self._apply([event], {stream: held_by[stream]})
                done.append(entry_id)
            except Exception as one_exc:
                if isinstance(one_exc, StaleLease) or _environmental(one_exc):
                    # not this event's fault: it and the rest keep their place in the
                    # subject's order (applied first by the next batch, `_earlier`)
                    log.warning("dropped %d events: %s", len(good) - n, one_exc)
                    if isinstance(one_exc, StaleLease):
                        self._stale(one_exc)
                    failed += [i for i, _ in good[n:]]
                    break
                log.error("event %s failed: %r", event.event_id, one_exc)
                failed.append(entry_id)
                self._count_failure(entry_id)
        _log_applied(stream, len(good) - len(failed), written, time.perf_counter() - started)
        await self._announce(written)
        if done:
            await self.redis.xack(stream, CONSUMER_GROUP, *done)
        return failed

    def _stale(self, exc: StaleLease) -> None:
        if self.on_stale is not None and exc.partitions:
            self.on_stale(exc.partitions)

    def failing(self, entry_id: bytes) -> bool:
        """Has this entry failed to apply `max_deliveries` times here (a poison event)?"""
        return self.failures.get(entry_id, 0) >= self.max_deliveries

    def _count_failure(self, entry_id: bytes) -> None:
        if len(self.failures) > 100_000:  # entries dead-lettered or applied elsewhere since
            self.failures.clear()
        self.failures[entry_id] = self.failures.get(entry_id, 0) + 1

    def _fences(self, held_by: dict[str, Held]) -> dict[int, int]:
        if self.fence_of is None:
            return {}
        fences = {}
        for stream, held in held_by.items():
            if held is None:
                raise StaleLease(f"the lease of {stream} is not ours")
            fences[held[0]] = held[1]
        return fences

    async def _apply(self, events: list[Event], held_by: dict[str, Held]) -> list[VersionWritten]:
        start = time.perf_counter()
        fences = self._fences(held_by)
        if self._write_lock is None:
            written, applied = await asyncio.to_thread(
                self.reconciler.apply, self.engine, events, fences
            )
        else:
            async with self._write_lock:
                written, applied = await asyncio.to_thread(
                    self.reconciler.apply, self.engine, events, fences
                )
        APPLY_SECONDS.observe(time.perf_counter() - start)
        timing = self.reconciler.timing
        APPLY_TOTAL_SECONDS.inc(timing.total_s)
        LOCK_WAIT_SECONDS.inc(timing.wait_s)
        LOCK_HELD_SECONDS.inc(timing.held_s)
        REFOLDED.inc(timing.refolded)
        APPLIED.inc(applied)
        REDELIVERED.inc(len(events) - applied)
        await self._restart_wal()
        return written

    async def _restart_wal(self) -> None:
        """SQLite: now and then start the write-ahead log over (services.infra.db.restart_wal),
        which SQLite's own checkpoints never do while reads overlap."""
        if self._write_lock is None:
            return  # PostgreSQL
        if time.monotonic() - self._wal_restarted < self.wal_restart_every_s:
            return
        self._wal_restarted = time.monotonic()
        try:
            async with self._write_lock:
                await asyncio.to_thread(restart_wal, self.engine, 100)
        except Exception as exc:  # an optimisation: never fail an applied batch over it
            log.warning("could not restart the write-ahead log: %s", exc)

    async def _announce(self, written: list[VersionWritten]) -> None:
        """Tell the query services after commit; they catch up from SQL if this is lost."""
        if not written:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for w in written:
                body = {
                    "id": w.id,
                    "subject": w.subject,
                    "attribute": w.attribute,
                    "version": w.version,
                    "current": w.current,
                }
                pipe.xadd(
                    UPDATES_STREAM,
                    {DATA_FIELD: json.dumps(body)},
                    maxlen=self.updates_maxlen,
                    approximate=True,
                )
            await pipe.execute()
        except RedisError as exc:
            log.warning("could not announce %d versions: %s", len(written), exc)

    async def dead_letter(
        self, stream: str, entry_id: bytes, fields: dict[bytes, bytes], error: str
    ) -> None:
        data = fields.get(
            DATA_FIELD,
            json.dumps(
                {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
            ).encode(),
        )
        await self.redis.xadd(
            DEAD_LETTER_STREAM,
            {
                "stream": stream,
                "entry_id": entry_id,
                "error": error[:2000],
                "failed_at": now_iso(),
                "data": data,
            },
        )
        DEAD.inc()
        try:
            event_id = json.loads(data).get("event_id")
        except (ValueError, AttributeError):
            event_id = None
        if event_id:
            await asyncio.to_thread(_mark_dead, self.engine, str(event_id))


def _log_applied(stream: str, events: int, written: list[VersionWritten], seconds: float) -> None:
    """One line per batch, one per version with the trace id of the request that caused it."""
    if not log.isEnabledFor(logging.INFO):
        return  # skip building the records on the hot path when nobody reads them
    log.info(
        "batch applied",
        extra={
            "stream": stream,
            "events": events,
            "versions": len(written),
            "duration_ms": round(seconds * 1000, 3),
        },
    )
    for w in written:
        log.info(
            "version written",
            extra={
                "subject": w.subject,
                "attribute": w.attribute,
                "version": w.version,
                "current": w.current,
                "event_id": w.cause_event_id,
                "report_id": w.cause_report_id,
                "trace_id": w.trace_id,
            },
        )


def _mark_dead(engine: Engine, event_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(outbox_t).where(outbox_t.c.event_id == event_id).values(state=2))


def _entry_id(value: Any) -> tuple[int, int]:
    """A stream entry id in stream order (ids do not sort as strings)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _environmental(exc: Exception) -> bool:
    """A failure of the database or Redis (locked, gone, deadlock), not of the event: the
    entry is retried, never counted toward the dead-letter stream."""
    return isinstance(exc, OperationalError | InterfaceError | RedisError | OSError)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(fields: dict[bytes, bytes]) -> Event:
    data = fields.get(DATA_FIELD)
    if data is None:
        raise EventProblem("entry has no __data__ field")
    return event_from_json(data)


class Reclaimer:
    """Takes over entries idle in any consumer's pending list; dead-letters repeat failures."""

    def __init__(
        self,
        processor: EntryProcessor,
        redis: Redis,
        streams: list[str],
        consumer: str,
        *,
        min_idle_ms: int = 30_000,
        max_deliveries: int = 5,
    ) -> None:
        self.processor, self.redis, self.streams = processor, redis, streams
        self.consumer, self.min_idle_ms = consumer, min_idle_ms
        self.max_deliveries = max_deliveries

    async def reclaim(self, stream: str, *, min_idle_ms: int | None = None) -> int:
        """Claims and re-applies entries idle in any consumer's pending list, in stream
        order; `min_idle_ms=0` takes all of them (a partition just taken over)."""
        idle = self.min_idle_ms if min_idle_ms is None else min_idle_ms
        start, total = "0-0", 0
        while True:
            reply: Any = await self.redis.xautoclaim(
                stream, CONSUMER_GROUP, self.consumer, idle, start, count=100
            )
            start, entries = reply[0], reply[1]  # Redis 7 adds a third element
            entries = [e for e in entries if e and e[1] is not None]
            if entries:
                total += len(entries)
                await self._retry(stream, entries)
            if start in (b"0-0", "0-0") or not entries:
                return total

    async def _retry(self, stream: str, entries: list[Entry]) -> None:
        """Dead-letters the entries that failed to apply `max_deliveries` times in this
        process (not merely delivered that often: takeovers redeliver without a failure);
        retries the others."""
        retry = []
        for entry_id, fields in entries:
            entry = _bytes(entry_id)
            if self.processor.failing(entry):
                failures = self.processor.failures.pop(entry, 0)
                await self.processor.dead_letter(
                    stream, entry_id, fields, f"failed to apply {failures} times"
                )
                await self.redis.xack(stream, CONSUMER_GROUP, entry_id)
            else:
                retry.append((entry_id, fields))
        if retry:
            await self.processor.process(stream, retry)
