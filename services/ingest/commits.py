"""Group commit for single-report posts: concurrent requests share one SQL transaction.

Each request still answers 202 only after the transaction holding its report has committed;
what changes is that 64 concurrent posts cost a few commits instead of 64 (and, on SQLite,
no longer queue on the database write lock with its sleeping busy handler). One writer task
takes whatever has queued up while the previous transaction ran (up to `max_batch`) and
stores it with `outbox.accept_reports`, which gives each report its own outcome and falls
back to one transaction per report if the batch as a whole fails on a race.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.engine import Engine

from services.infra import tasks as supervised
from services.ingest import outbox


class GroupCommit:
    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self.engine, self.max_batch = engine, max_batch
        self._queue: asyncio.Queue[
            tuple[outbox.Pending, asyncio.Future[outbox.Accepted | outbox.ReportConflict]]
        ] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = supervised.start("group-commit", self._run)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def accept(self, item: outbox.Pending) -> outbox.Accepted:
        """Stores the report (in some shared transaction); returns once committed."""
        done: asyncio.Future[outbox.Accepted | outbox.ReportConflict] = (
            asyncio.get_running_loop().create_future()
        )
        await self._queue.put((item, done))
        outcome = await done
        if isinstance(outcome, outbox.ReportConflict):
            raise outcome
        return outcome

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, done) for item, done in batch if not done.cancelled()]
            if not live:
                continue
            try:
                outcomes = await asyncio.to_thread(
                    outbox.accept_reports, self.engine, [item for item, _ in live]
                )
            except Exception as exc:  # the requests answer with it; the writer goes on
                for _, done in live:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), outcome in zip(live, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)
