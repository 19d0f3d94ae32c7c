"""services.infra.tasks: a background loop that fails is logged at once, counted and restarted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.infra import tasks


def _restarts(name: str) -> float:
    return tasks.TASK_RESTARTS.labels(name)._value.get()


def test_a_failing_loop_is_logged_with_its_name_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("database is locked")
        done.set()
        await asyncio.Event().wait()  # healthy from now on

    async def scenario() -> None:
        task = tasks.start("flaky-loop", flaky, first_delay_s=0.0, max_delay_s=0.0)
        await asyncio.wait_for(done.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    before = _restarts("flaky-loop")
    with caplog.at_level(logging.ERROR, logger="claimledger.tasks"):
        asyncio.run(scenario())
    assert len(calls) == 3
    assert _restarts("flaky-loop") - before == 2
    failures = [r for r in caplog.records if "flaky-loop" in r.getMessage()]
    assert len(failures) == 2
    assert "database is locked" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # the traceback is logged


def test_a_loop_that_returns_is_started_again() -> None:
    runs: list[int] = []
    again = asyncio.Event()

    async def ends() -> None:
        runs.append(1)
        if len(runs) == 2:
            again.set()
            await asyncio.Event().wait()

    async def scenario() -> None:
        task = tasks.start("ends", ends, first_delay_s=0.0, max_delay_s=0.0)
        await asyncio.wait_for(again.wait(), 10)
        task.cancel()

    asyncio.run(scenario())
    assert len(runs) == 2


def test_delays_double_up_to_the_cap_and_start_over_after_a_long_healthy_run() -> None:
    delay = tasks.backoff_delays(0.1, 1.0)
    assert [delay(0.0) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert delay(5.0) == 0.1  # it ran longer than the cap: healthy meanwhile
    assert delay(0.0) == 0.2
