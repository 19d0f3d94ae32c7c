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
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
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
    one of `processes` batch processes (0: always the thread).

    Each batch process is a lane of its own: a spawned process and a pipe of which this
    process holds one end and the batch process the other, one batch at a time. Not a
    `concurrent.futures.ProcessPoolExecutor`: its parent keeps both ends of the queue that
    answers come back on, so a batch process killed while it writes an answer leaves a
    partial message that the pool's reader waits on for ever, and the request with it (seen:
    a fresh-clone CI run hung in test_a_killed_batch_process_loses_nothing; reproduced with
    a pool alone, killing its process while it sends a large result). Here a dead batch
    process closes the only other end: the read ends at once (EOFError), whatever it was
    doing."""

    def __init__(self, config: BatchConfig, processes: int = 1) -> None:
        self.config, self.processes = config, processes
        self._free: asyncio.Queue[_Lane] | None = None
        self._lanes: list[_Lane] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._in_thread = 0
        self.in_processes = 0  # batches the processes answered (tests, metrics)

    async def start(self) -> None:
        """Starts the batch processes and waits until they answer (a second or two: each
        imports ingest; until then, or if they fail to start, batches run in the thread).
        Call from the event loop's thread: the processes' PR_SET_PDEATHSIG follows the
        thread that started them."""
        self._free = asyncio.Queue()
        for _ in range(self.processes):
            self._start_one()
        if self._starting:
            await asyncio.gather(*map(asyncio.shield, list(self._starting)))

    def _start_one(self) -> None:
        task = asyncio.get_running_loop().create_task(self._start_lane())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_lane(self) -> None:
        lane = _Lane.spawn(self.config)  # here, in the loop's thread (PR_SET_PDEATHSIG)
        try:
            await asyncio.to_thread(lane.wait_ready)
        except Exception as exc:  # the thread serves: slower, not wrong
            log.warning("a batch process did not start, batches run in a thread: %s", exc)
            await asyncio.to_thread(lane.close)
            return
        if self._stopped or self._free is None:
            await asyncio.to_thread(lane.close)
            return
        self._lanes.append(lane)
        self._free.put_nowait(lane)

    async def stop(self) -> None:
        """Stops the batch processes and waits for them (each sees its pipe close and ends)."""
        self._stopped = True
        for task in list(self._starting):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lanes, self._lanes = self._lanes, []
        for lane in lanes:
            await asyncio.to_thread(lane.close)

    async def accept(self, body: bytes, ctx: api.IngestContext, trace: str) -> api.BatchDone:
        if self._in_thread == 0 or self._free is None or self._free.empty():
            # the thread is free, or every batch process is busy (or none started, or one
            # is being replaced): never a wait on a process that may not come
            return await self._in_this_process(body, ctx, trace)
        lane = self._free.get_nowait()
        try:
            outcome = await asyncio.to_thread(lane.call, body, trace)
        except (EOFError, OSError):
            # the batch process died (killed?) with this batch: whatever it committed is
            # stored, so doing it again here answers those reports as retries
            log.warning("a batch process died; its batch runs again in this process")
            self._replace(lane)
            return await self._in_this_process(body, ctx, trace)
        self._free.put_nowait(lane)
        self.in_processes += 1
        done = _unwrap(outcome)
        await asyncio.to_thread(api.record_accepted, done)
        return done

    def _replace(self, lane: _Lane) -> None:
        with contextlib.suppress(ValueError):
            self._lanes.remove(lane)
        lane.reap()
        if not self._stopped:
            self._start_one()  # a new process for the next batches

    async def _in_this_process(
        self, body: bytes, ctx: api.IngestContext, trace: str
    ) -> api.BatchDone:
        self._in_thread += 1
        try:
            return await asyncio.to_thread(api.accept_batch, body, ctx, trace)
        finally:
            self._in_thread -= 1


class _Lane:
    """One batch process and this process's end of its pipe. `call` and `wait_ready` block:
    run them in a thread, one at a time."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn

    @classmethod
    def spawn(cls, config: BatchConfig, serve: Callable[..., None] | None = None) -> _Lane:
        """`serve`: the batch process's loop (`_serve`; tests give their own)."""
        context = multiprocessing.get_context("spawn")  # no fork of a threaded event loop
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve or _serve, args=(theirs, config, os.getpid()), name="claimledger-batch"
        )
        process.daemon = True  # never outlives this process's normal exit
        process.start()
        theirs.close()  # the batch process holds the only other end: its death ends our reads
        return cls(process, ours)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        if not self.conn.poll(timeout_s):
            raise TimeoutError(f"no answer from the batch process in {timeout_s:.0f} s")
        if self.conn.recv() != "ready":
            raise RuntimeError("the batch process answered something else than ready")

    def call(self, body: bytes, trace: str) -> tuple[str, Any]:
        self.conn.send((body, trace))
        outcome: tuple[str, Any] = self.conn.recv()
        return outcome

    def close(self) -> None:
        """Its pipe closed, the batch process ends (it reads EOF); waited for, then forced."""
        self.conn.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def reap(self) -> None:
        """A lane whose process died: close our end, and collect the process in the
        background (no zombie, no wait on the event loop)."""
        self.conn.close()
        threading.Thread(target=self.process.join, args=(10,), daemon=True).start()


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


def _serve(conn: Connection, config: BatchConfig, worker: int) -> None:
    """A batch process's life: start, say ready, then answer batches until the pipe ends
    (the worker closed it, or died)."""
    _start_process(config, worker)
    conn.send("ready")
    while True:
        try:
            body, trace = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_accept_there(body, trace))


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
