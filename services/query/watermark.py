"""One watermark poller for every read that waits on a `min_token`.

A read with `min_token` waits until the write it names is applied. Each waiting request
polling SQL on its own (every 10 ms, in a thread) made waiting itself the load: under a
backlog, hundreds of waiters polled the outbox hundreds of times a second and took the
CPU the reconciler needed to catch up. Here one task polls while anybody waits, and
wakes each waiter as soon as the watermark passes its token. The SSE fan-out, which
reads the reconciler's announcements anyway, nudges it (`nudge`) so a commit is seen at
once rather than at the next poll; the poll (20 ms) stays for writes that change no
version and for announcements lost with Redis.

The watermark is global: one event the reconciler cannot apply holds it until the event is
dead-lettered (minutes), and every `min_token` read would wait for it. A read about one
subject therefore also asks (`pending`) which events below its token are still unapplied:
when none of them concerns the subject (nor is a rating or learned reliability, which reach
every key), the write it waits for is visible to it, whatever the global mark says.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.infra import tasks as supervised
from services.infra.tables import OutboxRow
from shared.events import SOURCE_RATED, SOURCE_RELIABILITY_LEARNED

# events that change keys other than their own subject's
CROSS_KEY = frozenset({SOURCE_RATED, SOURCE_RELIABILITY_LEARNED})
MAX_PENDING = 100  # more unapplied events than this below a token is a backlog, not a stall

outbox_t = OutboxRow.__table__  # type: ignore[attr-defined]


class _Envelope(msgspec.Struct):
    type: str
    subject: str | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode  # skips the payload


@dataclass(frozen=True, slots=True)
class Pending:
    """An event not yet applied (nor dead-lettered): its seq, type and partition subject."""

    seq: int
    type: str
    subject: str | None


def pending_events(engine: Engine, after: int, up_to: int, limit: int) -> list[Pending] | None:
    """Unapplied events with `after < seq <= up_to`, or None when there are more than `limit`.

    Counted on the (state, seq) index first, so a backlog costs no event bodies."""
    where = (outbox_t.c.state == 0, outbox_t.c.seq > after, outbox_t.c.seq <= up_to)
    with engine.connect() as conn:
        seqs = conn.execute(select(outbox_t.c.seq).where(*where).limit(limit + 1)).all()
        if len(seqs) > limit:
            return None
        rows = conn.execute(
            select(outbox_t.c.seq, outbox_t.c.body).where(*where).order_by(outbox_t.c.seq)
        ).all()
    out = []
    for row in rows:
        try:
            envelope = _decode_envelope(row.body)
        except msgspec.DecodeError:  # unreadable: it may concern anybody
            envelope = _Envelope(type=SOURCE_RATED)
        out.append(Pending(int(row.seq), envelope.type, envelope.subject))
    return out


def blocks(event: Pending, subject: str, wanted: int) -> bool:
    """Whether `event` may change a key of `subject` at or before token `wanted`."""
    return event.seq <= wanted and (event.type in CROSS_KEY or event.subject == subject)


@dataclass(eq=False)
class _Waiter:
    wanted: int
    done: asyncio.Future[int]
    subject: str | None
    since: float = field(default_factory=time.monotonic)


class Watermark:
    def __init__(
        self,
        read: Callable[[], int],
        *,
        interval_s: float = 0.02,
        pending: Callable[[int, int, int], Sequence[Pending] | None] | None = None,
        stall_s: float = 0.2,
        key_interval_s: float = 0.1,
    ) -> None:
        """`pending(after, up_to, limit)`: see `pending_events`; without it, reads about a
        subject wait for the global mark like any other. Subject reads are checked once they
        have waited `stall_s` and the global mark has not moved for as long, at most every
        `key_interval_s` (a query or two each time)."""
        self._read, self.interval_s = read, interval_s
        self._pending, self.stall_s, self.key_interval_s = pending, stall_s, key_interval_s
        self.value = 0  # highest watermark seen; only ever grows
        self._waiters: list[_Waiter] = []
        self._someone_waits = asyncio.Event()
        self._nudged = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keys_checked = -float("inf")
        self._moved_at = time.monotonic()  # when the global mark last rose

    def start(self) -> None:
        # supervised: a database error in one reading is logged and the loop goes on
        self._task = supervised.start("watermark", self._run)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def nudge(self) -> None:
        """Something was committed: read now if anybody waits (else nothing to do)."""
        if self._waiters:
            self._nudged.set()

    async def current(self) -> int:
        """A fresh reading (one query), for reads without a token."""
        mark = await asyncio.to_thread(self._read)
        self._publish(mark)
        return mark

    async def wait_for(self, wanted: int, timeout_s: float, subject: str | None = None) -> int:
        """The watermark once it is >= `wanted`; TimeoutError after `timeout_s`.

        With `subject`, also `wanted` itself once no unapplied event up to it concerns the
        subject (the write is visible to reads of the subject's keys).
        """
        if self.value >= wanted:
            return self.value
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(wanted, done, subject)
        self._waiters.append(waiter)
        self._someone_waits.set()
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancel that lands as
            # the awaited future completes (the request would run on after its client left)
            async with asyncio.timeout(timeout_s):
                return await done
        finally:
            self._waiters = [w for w in self._waiters if w is not waiter]

    def _publish(self, mark: int) -> int:
        if mark > self.value:
            self._moved_at = time.monotonic()
        self.value = max(self.value, mark)
        if self._waiters:
            still = []
            for waiter in self._waiters:
                if waiter.wanted <= self.value:
                    if not waiter.done.done():
                        waiter.done.set_result(self.value)
                else:
                    still.append(waiter)
            self._waiters = still
        return self.value

    async def _check_subjects(self) -> None:
        """Releases subject reads that no unapplied event concerns. Only while the global
        mark stands still: when it moves, the reconciler is catching up and the mark will
        release them (no extra queries while a backlog drains)."""
        now = time.monotonic()
        if self._pending is None or now - self._keys_checked < self.key_interval_s:
            return
        if now - self._moved_at < self.stall_s:
            return
        stalled = [
            w for w in self._waiters if w.subject is not None and now - w.since >= self.stall_s
        ]
        if not stalled:
            return
        self._keys_checked = now
        up_to = max(w.wanted for w in stalled)
        events = await asyncio.to_thread(self._pending, self.value, up_to, MAX_PENDING)
        if events is None:
            return  # a backlog: the global mark is on its way
        for waiter in stalled:
            subject = waiter.subject or ""
            free = not any(blocks(e, subject, waiter.wanted) for e in events)
            if free and not waiter.done.done():
                waiter.done.set_result(waiter.wanted)
        self._waiters = [w for w in self._waiters if not w.done.done()]

    async def _run(self) -> None:
        while True:
            await self._someone_waits.wait()
            try:
                self._publish(await asyncio.to_thread(self._read))
                await self._check_subjects()
            except Exception:  # the database is away: waiters time out, polling goes on
                await asyncio.sleep(0.1)
            if not self._waiters:
                self._someone_waits.clear()
            else:
                # not wait_for: it would drop a stop()'s cancel arriving with a nudge, and
                # the poller would run on (tests/unit/test_watermark.py)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._nudged.wait()
            self._nudged.clear()
