"""The query service's shared min_token poller (services/query/watermark.py).

No wall-clock windows: the poll interval is long enough never to come during a test, so
every read is caused by a first waiter or a nudge, and counts are exact. Tests wait for a
condition (`_until`), never for a duration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from services.query.watermark import MAX_PENDING, Pending, Watermark


class Outbox:
    """Stands in for views.watermark: counts reads, answers the current mark."""

    def __init__(self) -> None:
        self.mark, self.reads = 0, 0

    def read(self) -> int:
        self.reads += 1
        return self.mark


async def _until(condition: Callable[[], bool]) -> None:
    """Yields to the loop (and the read thread) until `condition` holds."""
    while not condition():
        await asyncio.sleep(0.001)


async def _settle() -> None:
    """Lets every ready task run (no time passes that a poll could use: the interval is 60 s)."""
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_hundred_waiters_share_one_poll_and_all_wake_when_their_write_lands() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        waits = [asyncio.create_task(watermark.wait_for(5, 30.0)) for _ in range(100)]
        await _until(lambda: outbox.reads == 1)
        await _settle()
        assert not any(w.done() for w in waits)
        outbox.mark = 7
        watermark.nudge()
        assert await asyncio.gather(*waits) == [7] * 100
        assert outbox.reads == 2  # one read for all hundred, then one for the nudge
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_write_already_visible_answers_without_waiting() -> None:
    outbox = Outbox()
    outbox.mark = 3
    watermark = Watermark(outbox.read)
    watermark.start()
    try:
        assert await watermark.current() == 3
        reads = outbox.reads
        assert await watermark.wait_for(2, 1.0) == 3
        assert outbox.reads == reads
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_write_never_applied_times_out_and_nothing_polls_for_it_after() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        with pytest.raises(TimeoutError):
            await watermark.wait_for(1, 0.05)  # the caller's bound, not a speed threshold
        assert outbox.reads == 1
        watermark.nudge()  # a commit announced after the waiter left
        await _settle()
        assert outbox.reads == 1
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_an_announced_commit_wakes_waiters_without_waiting_for_the_next_poll() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)  # the poll alone would never come
    watermark.start()
    try:
        wait = asyncio.create_task(watermark.wait_for(5, 30.0))
        await _until(lambda: outbox.reads == 1)  # the poller has read once and sleeps
        outbox.mark = 5
        watermark.nudge()
        assert await asyncio.wait_for(wait, 10.0) == 5
        assert outbox.reads == 2
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_nudge_with_nobody_waiting_reads_nothing() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        for _ in range(10):
            watermark.nudge()
        await _settle()
        assert outbox.reads == 0
    finally:
        await watermark.stop()


# -- reads about one subject are not held by an event stuck on another (#24 item 2) ---------


class Stuck:
    """Stands in for pending_events: the outbox's unapplied events (the global mark is 0)."""

    def __init__(self, *events: Pending) -> None:
        self.events = list(events)

    def pending(self, after: int, up_to: int, limit: int) -> list[Pending] | None:
        found = [e for e in self.events if after < e.seq <= up_to]
        return None if len(found) > limit else found


def _keyed(stuck: Stuck) -> Watermark:
    return Watermark(Outbox().read, interval_s=0.005, pending=stuck.pending, stall_s=0.0)


@pytest.mark.asyncio
async def test_an_event_stuck_on_one_subject_does_not_hold_reads_of_another() -> None:
    watermark = _keyed(Stuck(Pending(1, "ClaimAsserted", "broken")))
    watermark.start()
    try:
        assert await watermark.wait_for(3, 30.0, subject="other") == 3
        with pytest.raises(TimeoutError):  # its own subject's reads still wait for it
            await watermark.wait_for(3, 0.2, subject="broken")
        with pytest.raises(TimeoutError):  # and so do reads of everything
            await watermark.wait_for(3, 0.2)
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_pending_rating_holds_reads_of_every_subject() -> None:
    watermark = _keyed(Stuck(Pending(2, "SourceRated", "some-source")))
    watermark.start()
    try:
        with pytest.raises(TimeoutError):
            await watermark.wait_for(3, 0.2, subject="other")
        assert await watermark.wait_for(1, 30.0, subject="other") == 1  # the rating is later
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_backlog_too_long_to_inspect_waits_for_the_global_mark() -> None:
    many = [Pending(i, "ClaimAsserted", "busy") for i in range(1, MAX_PENDING + 2)]
    watermark = _keyed(Stuck(*many))
    watermark.start()
    try:
        with pytest.raises(TimeoutError):
            await watermark.wait_for(MAX_PENDING + 5, 0.2, subject="other")
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_the_mark_never_goes_back_when_a_read_answers_less() -> None:
    outbox = Outbox()
    outbox.mark = 9
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        assert await watermark.current() == 9
        outbox.mark = 4  # e.g. a read from a lagging replica
        await watermark.current()
        assert watermark.value == 9
        assert await watermark.wait_for(8, 1.0) == 9
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_token_equal_to_the_mark_is_answered_at_once() -> None:
    outbox = Outbox()
    outbox.mark = 3
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        await watermark.current()
        reads = outbox.reads
        assert await watermark.wait_for(3, 1.0) == 3
        assert outbox.reads == reads
    finally:
        await watermark.stop()


@pytest.mark.asyncio
async def test_a_stopped_poller_reads_nothing_more() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    await watermark.stop()  # stopping what never started is harmless
    watermark.start()
    await watermark.stop()
    with pytest.raises(TimeoutError):
        await watermark.wait_for(1, 0.05)
    await _settle()
    assert outbox.reads == 0


@pytest.mark.asyncio
async def test_stop_ends_the_poller_even_when_a_nudge_lands_with_the_cancel() -> None:
    """Python 3.11's asyncio.wait_for returns the awaited result, dropping a cancel that
    arrives as it completes: a stop right after a nudge left the poller running and stop()
    waiting for it for ever (the ingest relay hung in CI that way)."""
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    waiting = asyncio.create_task(watermark.wait_for(5, 30.0))
    await _until(lambda: outbox.reads == 1)  # the poller read once and waits for a nudge
    await _settle()
    watermark.nudge()
    # the cancel lands before the nudge's wake-up has reached the poller (not a timeout
    # around stop(): stop() swallows the CancelledError a timeout would raise)
    stopping = asyncio.create_task(watermark.stop())
    finished, _ = await asyncio.wait({stopping}, timeout=5)
    assert finished, "stop() is still waiting for the poller"
    reads = outbox.reads
    await _settle()
    assert outbox.reads == reads
    waiting.cancel()


@pytest.mark.asyncio
async def test_a_waiter_that_gives_up_leaves_the_others_waiting() -> None:
    outbox = Outbox()
    watermark = Watermark(outbox.read, interval_s=60.0)
    watermark.start()
    try:
        patient = asyncio.create_task(watermark.wait_for(5, 30.0))
        with pytest.raises(TimeoutError):
            await watermark.wait_for(9, 0.05)
        outbox.mark = 5
        watermark.nudge()
        assert await asyncio.wait_for(patient, 10.0) == 5
    finally:
        await watermark.stop()


class FlakyOutbox(Outbox):
    """The database is away for the first read."""

    def read(self) -> int:
        self.reads += 1
        if self.reads == 1:
            raise ConnectionError("database away")
        return self.mark


@pytest.mark.asyncio
async def test_polling_outlives_a_failed_read() -> None:
    outbox = FlakyOutbox()
    outbox.mark = 5
    watermark = Watermark(outbox.read, interval_s=0.01)  # the retry comes at the next poll
    watermark.start()
    try:
        assert await watermark.wait_for(5, 10.0) == 5
        assert outbox.reads == 2
    finally:
        await watermark.stop()
