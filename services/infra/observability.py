"""Operational gauges, sampled off the request path and exposed on /metrics.

Each service starts a `Sampler` in its lifespan: a background task refreshes a
snapshot every `interval_s` (SQL and Redis work happens there, in a thread for
SQL), and a custom collector registered with the default registry answers
/metrics from that snapshot, so a slow database or Redis never slows a scrape.

    ingest     claimledger_outbox_depth, claimledger_outbox_oldest_age_seconds,
               claimledger_reports_stored (sampled by services/ingest/metrics.py)
    reconcile  claimledger_stream_pending{stream,group}, claimledger_stream_lag{stream,group}
               (every consumer group of the partition streams and the updates stream,
               from XINFO GROUPS), claimledger_dead_letters
    query      claimledger_sse_subscribers

`REPORTS_ACCEPTED`/`CLAIMS_ACCEPTED` are counters for ingest's API to increment
on first acceptance (not wired here). Ingest's sampler lives in services/ingest/metrics.py:
it reads the outbox, which is ingest's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from services.infra import tasks as supervised
from shared.events import CONSUMER_GROUP, DEAD_LETTER_STREAM, UPDATES_STREAM

log = logging.getLogger("claimledger.observability")

REPORTS_ACCEPTED = Counter("claimledger_reports_accepted_total", "Reports accepted (first time)")
CLAIMS_ACCEPTED = Counter("claimledger_claims_accepted_total", "Claims accepted (first time)")

LAG_CAP = 10_000  # Redis < 7 has no `lag` field: count at most this many undelivered entries

# name -> (help, label names); a sample is (label values, value)
Snapshot = dict[str, list[tuple[tuple[str, ...], float]]]
_HELP: dict[str, tuple[str, tuple[str, ...]]] = {
    "claimledger_outbox_depth": ("Outbox events not yet confirmed applied", ()),
    "claimledger_outbox_oldest_age_seconds": (
        "Age of the oldest outbox event not yet applied (0 when none)",
        (),
    ),
    "claimledger_reports_stored": ("Reports stored by ingest", ()),
    "claimledger_stream_pending": (
        "Entries delivered to the consumer group but not acknowledged",
        ("stream", "group"),
    ),
    "claimledger_stream_lag": (
        f"Entries not yet delivered to the consumer group (capped at {LAG_CAP} on Redis < 7)",
        ("stream", "group"),
    ),
    "claimledger_dead_letters": ("Entries in the dead-letter stream", ()),
    "claimledger_sse_subscribers": ("Open SSE subscriptions", ()),
}

SAMPLED_NAMES = tuple(_HELP)  # what samplers expose (summed apart from the counters: http.py)


class Sampler(Collector):
    """Refreshes a snapshot in the background; the collector reads only the snapshot."""

    def __init__(
        self, sample: Callable[[], Awaitable[Snapshot]], names: Iterable[str], interval_s: float
    ) -> None:
        self.sample, self.names, self.interval_s = sample, list(names), interval_s
        self.snapshot: Snapshot = {}
        self.sampled = False
        self.sampled_at: float | None = None  # monotonic time of the last good sample
        self.registered = False
        self.task: asyncio.Task[None] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name in self.names:
            help_text, labels = _HELP[name]
            family = GaugeMetricFamily(name, help_text, labels=list(labels))
            for values, value in self.snapshot.get(name, []):
                family.add_metric(list(values), value)
            yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self.collect()  # fixed names; lets the registry reject duplicates up front

    async def refresh(self) -> None:
        self.snapshot = await self.sample()
        self.sampled = True
        self.sampled_at = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.registered:
            REGISTRY.unregister(self)
            self.registered = False

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep the last snapshot; never crash the service
                log.debug("metrics sample failed: %s", exc)
            await asyncio.sleep(self.interval_s)


def start_sampler(
    sample: Callable[[], Awaitable[Snapshot]], names: Iterable[str], interval_s: float = 2.0
) -> Sampler:
    """Registers a sampler's collector and starts it; call `await sampler.stop()` at shutdown."""
    sampler = Sampler(sample, names, interval_s)
    try:
        REGISTRY.register(sampler)
        sampler.registered = True
    except ValueError:  # another app in this process already exposes these names
        pass
    sampler.task = supervised.start("metrics-sampler", sampler.run)
    return sampler


# ---- reconcile -------------------------------------------------------------------------


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def group_backlogs(redis: Redis, stream: str) -> list[tuple[str, int, int]]:
    """(group, pending, lag) of every consumer group of a stream (XINFO GROUPS).

    Uses XINFO GROUPS' `lag` on Redis 7+ (when Redis can tell it), else counts entries
    after the group's last-delivered id with an exclusive XRANGE (Redis 6.2+), capped
    at LAG_CAP.
    """
    groups: list[dict[Any, Any]] = await redis.xinfo_groups(stream)
    out = []
    for info in groups:
        pending = int(info.get("pending") or 0)
        lag = info.get("lag")
        if lag is None:
            last = _s(info.get("last-delivered-id") or "0-0")
            lag = len(await redis.xrange(stream, min=f"({last}", max="+", count=LAG_CAP) or [])
        out.append((_s(info.get("name")), pending, int(lag)))
    return out


async def stream_backlog(redis: Redis, stream: str, group: str = CONSUMER_GROUP) -> tuple[int, int]:
    """(pending, lag) of one consumer group on a stream; (0, 0) when the group is missing."""
    for name, pending, lag in await group_backlogs(redis, stream):
        if name == group:
            return pending, lag
    return 0, 0


def reconcile_sampler(redis: Redis, streams: list[str]) -> Callable[[], Awaitable[Snapshot]]:
    """Backlog of every group on `streams` and on the updates stream, and the DLQ size."""

    async def sample() -> Snapshot:
        pending: list[tuple[tuple[str, ...], float]] = []
        lags: list[tuple[tuple[str, ...], float]] = []
        for stream in [*streams, UPDATES_STREAM]:
            try:
                backlogs = await group_backlogs(redis, stream)
            except Exception as exc:
                if "no such key" not in str(exc).lower():
                    raise
                backlogs = []
            if not backlogs and stream != UPDATES_STREAM:
                backlogs = [(CONSUMER_GROUP, 0, 0)]  # not created yet: nothing is waiting
            for group, p, lag in backlogs:
                pending.append(((stream, group), float(p)))
                lags.append(((stream, group), float(lag)))
        dead = await redis.xlen(DEAD_LETTER_STREAM)
        return {
            "claimledger_stream_pending": pending,
            "claimledger_stream_lag": lags,
            "claimledger_dead_letters": [((), float(dead))],
        }

    return sample


RECONCILE_METRICS = (
    "claimledger_stream_pending",
    "claimledger_stream_lag",
    "claimledger_dead_letters",
)


# ---- query -----------------------------------------------------------------------------


def query_sampler(ctx: Any) -> Callable[[], Awaitable[Snapshot]]:
    """`ctx` is the QueryContext (has `subscribers`); cheap, so sampled like the rest."""

    async def sample() -> Snapshot:
        return {"claimledger_sse_subscribers": [((), float(ctx.subscribers))]}

    return sample


QUERY_METRICS = ("claimledger_sse_subscribers",)
