"""Supervised background tasks: a long-running loop that fails is logged at once and restarted.

Every service runs its background loops (the outbox relay, the SSE fan-out, partition
leases, samplers...) through `supervise`, so no error of a dependency ends one silently:
an SQLite lock held past the busy timeout, a PostgreSQL restart or a bug in one step is
logged with the task's name the moment it happens, the loop starts again after an
exponential back-off (capped), and `claimledger_task_restarts_total{task}` counts it. A
loop that ran for a while before failing starts again from the shortest delay.
Cancellation (shutdown) is never caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("claimledger.tasks")

TASK_RESTARTS = Counter(
    "claimledger_task_restarts_total",
    "Background tasks restarted after an error (or after returning), by task",
    ["task"],
)

Loop = Callable[[], Coroutine[Any, Any, object]]


def backoff_delays(first_s: float, cap_s: float) -> Callable[[float], float]:
    """The delay before each restart: doubles from `first_s` up to `cap_s`; starts over at
    `first_s` after a run that lasted longer than `cap_s` (it was healthy meanwhile)."""
    current = first_s / 2

    def next_delay(ran_s: float) -> float:
        nonlocal current
        current = first_s if ran_s > cap_s else min(cap_s, current * 2)
        return current

    return next_delay


async def supervise(
    name: str, loop: Loop, *, first_delay_s: float = 0.1, max_delay_s: float = 5.0
) -> None:
    """Runs `loop()` for ever: whenever it raises (or returns), logs it and starts it again."""
    next_delay = backoff_delays(first_delay_s, max_delay_s)
    while True:
        started = time.monotonic()
        try:
            await loop()
            failure = "returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any dependency's error: log now, retry later
            failure = f"failed: {type(exc).__name__}: {exc}"
            delay = next_delay(time.monotonic() - started)
            log.exception(
                "background task %s %s; restarting in %.1f s",
                name,
                failure,
                delay,
                extra={"task": name},
            )
        else:
            delay = next_delay(time.monotonic() - started)
            log.error("background task %s %s; restarting in %.1f s", name, failure, delay)
        TASK_RESTARTS.labels(name).inc()
        await asyncio.sleep(delay)


def start(
    name: str, loop: Loop, *, first_delay_s: float = 0.1, max_delay_s: float = 5.0
) -> asyncio.Task[None]:
    """`supervise` in a task of the same name (cancel it to stop the loop)."""
    return asyncio.create_task(
        supervise(name, loop, first_delay_s=first_delay_s, max_delay_s=max_delay_s), name=name
    )


async def cancel(tasks: Iterable[asyncio.Task[Any]], *, errors_too: bool = False) -> None:
    """Cancels `tasks`, then waits for each to end. An error a task ends with propagates
    unless `errors_too` (a service's teardown that must go on whatever the tasks did)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    quiet: tuple[type[BaseException], ...] = (asyncio.CancelledError,)
    if errors_too:
        quiet = (asyncio.CancelledError, Exception)
    for task in tasks:
        with contextlib.suppress(*quiet):
            await task
