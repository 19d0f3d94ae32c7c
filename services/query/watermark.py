"""One watermark poller for every read that waits on a `min_token`.

A read with `min_token` waits until the write it names is applied. Each waiting request
polling SQL on its own (every 10 ms, in a thread) made waiting itself the load: under a
backlog, hundreds of waiters polled the outbox hundreds of times a second and took the
CPU the reconciler needed to catch up. Here one task polls while anybody waits, and
wakes each waiter as soon as the watermark passes its token. The SSE fan-out, which
reads the reconciler's announcements anyway, nudges it (`nudge`) so a commit is seen at
once rather than at the next poll; the poll (20 ms) stays for writes that change no
version and for announcements lost with Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Watermark:
    def __init__(self, read: Callable[[], int], *, interval_s: float = 0.02) -> None:
        self._read, self.interval_s = read, interval_s
        self.value = 0  # highest watermark seen; only ever grows
        self._waiters: list[tuple[int, asyncio.Future[int]]] = []
        self._someone_waits = asyncio.Event()
        self._nudged = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watermark")

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

    async def wait_for(self, wanted: int, timeout_s: float) -> int:
        """The watermark once it is >= `wanted`; TimeoutError after `timeout_s`."""
        if self.value >= wanted:
            return self.value
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((wanted, done))
        self._someone_waits.set()
        try:
            return await asyncio.wait_for(done, timeout_s)
        finally:
            self._waiters = [(w, f) for w, f in self._waiters if f is not done]

    def _publish(self, mark: int) -> int:
        self.value = max(self.value, mark)
        if self._waiters:
            still = []
            for wanted, done in self._waiters:
                if wanted <= self.value:
                    if not done.done():
                        done.set_result(self.value)
                else:
                    still.append((wanted, done))
            self._waiters = still
        return self.value

    async def _run(self) -> None:
        while True:
            await self._someone_waits.wait()
            try:
                self._publish(await asyncio.to_thread(self._read))
            except Exception:  # the database is away: waiters time out, polling goes on
                await asyncio.sleep(0.1)
            if not self._waiters:
                self._someone_waits.clear()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.interval_s)
            self._nudged.clear()
