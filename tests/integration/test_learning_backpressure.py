"""The learner waits for the reconciler: no new learning step while its last one is unapplied
(found by the full chaos run: a step re-derives every key of the sources it moves, and with
one appended every few minutes while the reconcilers were behind, they never caught up).

Real SQLite, the learner's own loop and worker process; no reconciler runs for the learning
events here, so the first one stays unapplied until the test applies it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.infra.tables import OutboxRow
from services.ingest.learning import reweigh_periodically
from shared.events import SOURCE_RELIABILITY_LEARNED, event_from_json
from tests.factories import claim, report
from tests.ledger import Ledger

outbox_t = OutboxRow.__table__  # type: ignore[attr-defined]


def _history(round_: int) -> list[dict[str, Any]]:
    """'census' agrees with the witnesses, 'rumours' doubles three towns in four."""
    census, rumours, witnesses = [], [], []
    for i in range(20):
        town, truth = f"town-{round_}-{i}", 1000 + 10 * i
        census.append(claim(town, "population", value=truth))
        rumours.append(claim(town, "population", value=truth if i % 4 == 0 else truth * 2))
        witnesses.append(
            report(claim(town, "population", value=truth), source=f"witness-{round_}-{i}")
        )
    return [
        report(*census, source="census", published_at="2024-01-01"),
        report(*rumours, source="rumours", published_at="2024-01-01"),
        *witnesses,
    ]


def _learning_events(ledger: Ledger) -> list[Any]:
    with ledger.engine.connect() as conn:
        bodies = conn.execute(select(outbox_t.c.body).order_by(outbox_t.c.seq)).scalars()
        events = [event_from_json(b) for b in bodies]
    return [e for e in events if e.type == SOURCE_RELIABILITY_LEARNED]


async def _until(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_no_new_learning_step_while_the_last_one_is_unapplied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'claimledger.db'}"
    ledger = Ledger.open(url)
    for body in _history(0):
        ledger.post(body)
    learner = asyncio.create_task(
        reweigh_periodically(ledger.engine, url, 2, every_s=0.2, appended=lambda: None)
    )
    try:
        await _until(lambda: len(_learning_events(ledger)) == 1, timeout_s=120)
        for body in _history(1):  # more claims: the learner's inputs changed
            ledger.post(body)
        await asyncio.sleep(3)  # many ticks, time for a second run had it started one
        assert len(_learning_events(ledger)) == 1

        (first,) = _learning_events(ledger)
        ledger.reconciler.apply(ledger.engine, [first])  # the reconciler catches up
        await _until(lambda: len(_learning_events(ledger)) == 2, timeout_s=120)
    finally:
        learner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await learner
        ledger.close()
