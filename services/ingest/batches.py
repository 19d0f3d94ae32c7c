"""`POST /v1/reports:batch` on more than one core (issue #21).

A batch of 1,000 claims is ~50 ms of CPU: parsing, validating, normalising and encoding its
events, then one outbox transaction. In one process those run on one core whatever the
number of connections, because they hold the GIL; and ingest's worker processes do not
share the load of a few long-lived connections either (a worker accepts every connection
that is waiting when it wakes: two clients arriving together often land on the same one). So a
worker runs one batch at a time in a thread, as before, and hands a batch that arrives while
one is running to a batch process of its own, which does the same work (`api.accept_batch`,
the same code, its own engine) and sends back the answer's bytes.

What holds, as in the thread: the answer follows the commit of the batch's outbox rows (the
batch process answers after it commits); bad input gets the same per-item and whole-request
problems (a Problem is sent back as its fields and raised again here); a lock wait is the
same 503. The serving process counts and logs the accepted reports and kicks the relay.
A batch process dies with its worker (PR_SET_PDEATHSIG); if one dies with a batch in hand,
the batch is run again in the thread: its reports are stored once (a report id is stored
with its events, so a report already committed answers as an identical retry, 200).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.infra.http import Problem, database_busy
from services.ingest import api, outbox

log = logging.getLogger("claimledger.ingest")


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """What a batch process needs to build its IngestContext (the request's key was checked
    by the serving process)."""

    database_url: str
    sqlite_busy_timeout_ms: int | None
    attributes_file: str | None
    partitions: int
    tolerance: float
    future_tolerance_s: float


class BatchLanes:
    """Where this process runs :batch requests: a thread while none is running there, else
    one of `processes` batch processes (0: always the thread)."""

    def __init__(self, config: BatchConfig, processes: int = 1) -> None:
        self.config, self.processes = config, processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._ready = False
        self._starting: asyncio.Task[None] | None = None
        self._in_thread = 0
        self.in_processes = 0  # batches the processes answered (tests, metrics)

    async def start(self) -> None:
        """Starts the batch processes and waits until they answer (a second or two: each
        imports ingest; until then, or if they fail to start, batches run in the thread).
        Call from the event loop's thread: the processes' PR_SET_PDEATHSIG follows the
        thread that started them."""
        self._start_soon()
        if self._starting is not None:
            await asyncio.shield(self._starting)

    def _start_soon(self) -> None:
        if self.processes > 0 and self._starting is None and self._pool is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        try:
            pool = concurrent.futures.ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded loop
                initializer=_start_process,
                initargs=(self.config, os.getpid()),
            )
            self._pool = pool
            # one warm-up per process: the pool starts a process per task while none idles
            warm = [pool.submit(_warm) for _ in range(self.processes)]
            await asyncio.gather(*(asyncio.wrap_future(f) for f in warm))
        except Exception as exc:  # the thread serves: slower, not wrong
            log.warning("batch processes did not start, batches run in a thread: %s", exc)
            self._shutdown()
        else:
            self._ready = True
        finally:
            self._starting = None

    async def stop(self) -> None:
        """Stops the batch processes and waits for them (else multiprocessing's resource
        tracker warns of leaked semaphores on stderr at exit, a line that is not a log)."""
        self._ready = False
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _shutdown(self) -> None:
        self._ready = False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def accept(self, body: bytes, ctx: api.IngestContext, trace: str) -> api.BatchDone:
        if self._in_thread == 0 or not self._ready or self._pool is None:
            return await self._in_this_process(body, ctx, trace)
        try:
            outcome = await asyncio.wrap_future(self._pool.submit(_accept_there, body, trace))
        except BrokenProcessPool:
            # a batch process died (killed?) with this batch: whatever it committed is
            # stored, so doing it again here answers those reports as retries
            log.warning("a batch process died; its batch runs again in this process")
            self._shutdown()
            self._start_soon()  # new processes for the next batches
            return await self._in_this_process(body, ctx, trace)
        self.in_processes += 1
        done = _unwrap(outcome)
        await asyncio.to_thread(api.record_accepted, done)
        return done

    async def _in_this_process(
        self, body: bytes, ctx: api.IngestContext, trace: str
    ) -> api.BatchDone:
        self._in_thread += 1
        try:
            return await asyncio.to_thread(api.accept_batch, body, ctx, trace)
        finally:
            self._in_thread -= 1


# --- in a batch process

_context: api.IngestContext | None = None


def _start_process(config: BatchConfig, worker: int) -> None:
    global _context
    from services.infra.db import make_engine
    from services.infra.keys import KeyChecker
    from services.infra.logs import configure_logging
    from services.infra.processes import tune_gc_for_throughput
    from services.ingest.children import die_with_worker
    from shared.attributes import AttributeRegistry
    from shared.settings import CommonSettings

    die_with_worker(worker)  # SIGTERM when the worker goes, even by SIGKILL
    # its log lines (an unexpected error) as the worker's: JSON on the same stderr
    settings = CommonSettings()
    configure_logging("ingest", level=settings.log_level.lower(), fmt=settings.log_format)
    engine = make_engine(config.database_url, sqlite_busy_timeout_ms=config.sqlite_busy_timeout_ms)
    outbox.leave_checkpoints_to_checkpointer(engine)  # the serving worker checkpoints
    _context = api.IngestContext(
        engine=engine,
        relay=None,
        registry=AttributeRegistry.load(config.attributes_file),
        keys=KeyChecker(engine),
        partitions=config.partitions,
        tolerance=config.tolerance,
        future_tolerance_s=config.future_tolerance_s,
    )
    tune_gc_for_throughput()


def _warm() -> bool:
    return _context is not None


def _accept_there(body: bytes, trace: str) -> tuple[str, Any]:
    """api.accept_batch, its outcome as plain data: ("done", BatchDone), ("problem", its
    fields), ("busy", None) for a lock wait, ("error", text) for anything else."""
    assert _context is not None
    try:
        return "done", api.accept_batch(body, _context, trace, record=False)
    except Problem as exc:
        fields = (exc.status, exc.title, exc.detail, exc.errors, exc.headers, exc.extra)
        return "problem", fields
    except Exception as exc:
        if database_busy(exc):
            return "busy", None
        log.exception("batch failed in a batch process")
        return "error", f"{type(exc).__name__}: {exc}"


def _unwrap(outcome: tuple[str, Any]) -> api.BatchDone:
    kind, value = outcome
    if kind == "done":
        done: api.BatchDone = value
        return done
    if kind == "problem":
        status, title, detail, errors, headers, extra = value
        raise Problem(status, title, detail, errors=errors, headers=headers, **extra)
    if kind == "busy":
        # answered as any lock wait (services.infra.http.busy_answer): 503, Retry-After
        raise PoolTimeout("the database was busy for a batch process")
    raise RuntimeError(f"batch process: {value}")
