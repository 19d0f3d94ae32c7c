"""Ingest's gauges: the outbox depth and age and the reports stored, sampled.

The sampler is started in ingest's lifespan through services.infra.observability.start_sampler
(see that module for how sampling stays off the request path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from services.infra.observability import Snapshot
from services.infra.tables import ReportRow
from services.ingest.outbox import depth
from shared.timeaxes import parse_iso


def _ingest_counts(engine: Engine) -> tuple[int, str | None, int]:
    pending, oldest = depth(engine)
    with engine.connect() as conn:
        table = ReportRow.__table__  # type: ignore[attr-defined]
        reports = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    return pending, oldest, reports


def ingest_sampler(engine: Engine) -> Callable[[], Awaitable[Snapshot]]:
    async def sample() -> Snapshot:
        pending, oldest, reports = await asyncio.to_thread(_ingest_counts, engine)
        age = 0.0
        if pending and oldest:
            age = max(0.0, (datetime.now(UTC) - parse_iso(oldest)).total_seconds())
        return {
            "claimledger_outbox_depth": [((), float(pending))],
            "claimledger_outbox_oldest_age_seconds": [((), age)],
            "claimledger_reports_stored": [((), float(reports))],
        }

    return sample


INGEST_METRICS = (
    "claimledger_outbox_depth",
    "claimledger_outbox_oldest_age_seconds",
    "claimledger_reports_stored",
)
