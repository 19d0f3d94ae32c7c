"""Shared by the fault suite and the benchmarks (bench/chaos.py, bench/scale.py): a load
generator that keeps posting through faults, and counting what the database holds (read
straight from the SQLite file)."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.infra.db import make_engine
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import stream_for

ATTRIBUTES = ("personnel_deployed", "killed", "commander")
COMMANDERS = ("Kim Yong-bok", "Ri Chang-ho", "Sin Kum-chol")


def make_reports(
    prefix: str, reports: int, claims_per_report: int = 10, *, keys: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """Reports in the public input shape. Claims spread over `keys` subject/attribute keys
    (numeric and categorical), publication dates out of order so later reports backfill."""
    rnd = random.Random(seed)
    subjects = max(1, keys // len(ATTRIBUTES))
    out = []
    for r in range(reports):
        claims = []
        for c in range(claims_per_report):
            n = r * claims_per_report + c
            attribute = ATTRIBUTES[n % len(ATTRIBUTES)]
            value: Any = (
                rnd.choice(COMMANDERS) if attribute == "commander" else rnd.randint(500, 15_000)
            )
            claims.append(
                {
                    "subject": f"{prefix}-subject-{(n // len(ATTRIBUTES)) % subjects}",
                    "attribute": attribute,
                    "value": value,
                    "attributed_to": f"official-{rnd.randint(1, 5)}",
                }
            )
        out.append(
            {
                "report_id": f"{prefix}-report-{r}",
                "source": {"id": f"outlet-{rnd.randint(1, 12)}", "kind": "news"},
                "published_at": f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                "claims": claims,
            }
        )
    return out


def batches(items: list[dict[str, Any]], size: int = 200) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class Acked:
    """What ingest acknowledged (202, or 200 for an identical retry)."""

    reports: dict[str, list[str]] = field(default_factory=dict)  # report_id -> claim_ids
    sent_claims: int = 0
    failed_posts: int = 0  # connection errors / 5xx: the batch is retried, never counted acked

    @property
    def claims(self) -> int:
        return sum(len(c) for c in self.reports.values())

    @property
    def events(self) -> int:
        return len(self.reports) + self.claims  # ReportReceived + one ClaimAsserted per claim


def post_batch(client: httpx.Client, url: str, batch: list[dict[str, Any]], acked: Acked) -> None:
    """Posts one batch; records every item answered 202/200. Raises on transport errors/5xx."""
    answer = client.post(f"{url}/v1/reports:batch", json=batch)
    answer.raise_for_status()
    for item in answer.json()["results"]:
        if item["status"] in (200, 202):
            acked.reports[item["report_id"]] = item["claim_ids"]
        else:
            raise AssertionError(f"report refused: {item}")


class Loader(threading.Thread):
    """Posts batches in the background and keeps retrying a batch until it is acknowledged,
    so it rides through ingest restarts. `url()` gives the current ingest URL or None."""

    def __init__(
        self,
        url: Callable[[], str | None],
        reports: list[dict[str, Any]],
        *,
        batch_size: int = 200,
        pause_s: float = 0.0,
    ) -> None:
        super().__init__(daemon=True, name="fault-loader")
        self.url, self.reports = url, reports
        self.batch_size, self.pause_s = batch_size, pause_s
        self.acked = Acked()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                for batch in batches(self.reports, self.batch_size):
                    self.acked.sent_claims += sum(len(r["claims"]) for r in batch)
                    while not self._halt.is_set():
                        url = self.url()
                        if url is None:
                            time.sleep(0.1)
                            continue
                        try:
                            post_batch(client, url, batch, self.acked)
                            break
                        except (httpx.TransportError, httpx.HTTPStatusError):
                            self.acked.failed_posts += 1
                            time.sleep(0.2)
                    if self._halt.is_set():
                        return
                    if self.pause_s:
                        time.sleep(self.pause_s)
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def finish(self, timeout_s: float = 120.0) -> Acked:
        self.join(timeout_s)
        if self.is_alive():
            self._halt.set()
            raise AssertionError("load did not finish in time")
        if self.error is not None:
            raise self.error
        return self.acked


@functools.cache
def _engine(db_url: str) -> Engine:
    """One engine per database for the polling reads (SQLite file or PostgreSQL)."""
    return make_engine(db_url)


def _one(db_url: str, sql: str) -> Any:
    with _engine(db_url).connect() as conn:
        return conn.execute(text(sql)).one()


def counts(db_url: str) -> dict[str, int]:
    """Event log and outbox figures, read from the database."""
    events, distinct = _one(db_url, "SELECT count(*), count(DISTINCT event_id) FROM events")
    reports = _one(db_url, "SELECT count(*) FROM events WHERE type = 'ReportReceived'")[0]
    claim_events = _one(db_url, "SELECT count(*) FROM events WHERE type = 'ClaimAsserted'")[0]
    claims = _one(db_url, "SELECT count(*) FROM claims")[0]
    pending, dead = _one(
        db_url,
        "SELECT coalesce(sum(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0) FROM outbox",
    )
    return {
        "events": events,
        "distinct_event_ids": distinct,
        "report_events": reports,
        "claim_events": claim_events,
        "claims": claims,
        "outbox_pending": pending,
        "outbox_dead": dead,
    }


def applied_events(db_url: str) -> int:
    return int(_one(db_url, "SELECT count(*) FROM events")[0])


def version_counts(db_url: str) -> dict[tuple[str, str], int]:
    with _engine(db_url).connect() as conn:
        rows = conn.execute(
            # placeholders (version < 0) hold dropped rows' positions, which batching moves
            text(
                "SELECT subject, attribute, count(*) FROM versions WHERE version > 0"
                " GROUP BY subject, attribute"
            )
        ).all()
    return {(s, a): n for s, a, n in rows}


def claim_ids(db_url: str) -> set[str]:
    with _engine(db_url).connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT claim_id FROM claims"))}


@dataclass(frozen=True)
class Replayed:
    live_hash: str
    replay_hash: str
    live_versions: dict[tuple[str, str], int]
    replay_versions: dict[tuple[str, str], int]
    events: int


def clean_replay(db_url: str, directory: Path) -> Replayed:
    """Replays the live event log into a fresh SQLite file and hashes both projections."""
    directory.mkdir(parents=True, exist_ok=True)
    target_url = f"sqlite:///{directory / 'replayed.db'}"
    source, target = make_engine(db_url), make_engine(target_url)
    try:
        n = replay(source, target, Reconciler(AttributeRegistry.load()))
        return Replayed(
            projection_hash(source),
            projection_hash(target),
            version_counts(db_url),
            version_counts(target_url),
            n,
        )
    finally:
        source.dispose()
        target.dispose()


def pending_entries(redis_url: str, partitions: int = 4) -> int:
    """Entries delivered to the consumer group and not yet acknowledged, over all partitions."""
    with closing(Redis.from_url(redis_url, socket_timeout=5)) as client:
        total = 0
        for p in range(partitions):
            try:
                total += int(client.xpending(stream_for(p), "reconcile")["pending"])
            except ResponseError:  # no stream/group yet
                continue
        return total


def redis_ok(redis_url: str) -> bool:
    try:
        with closing(Redis.from_url(redis_url, socket_timeout=1)) as client:
            return bool(client.ping())
    except (RedisError, OSError):
        return False


def converged(db_url: str, redis_url: str, expected_events: int) -> bool:
    """Every acknowledged event applied, the outbox confirmed, nothing left pending."""
    try:
        if applied_events(db_url) < expected_events:
            return False
        c = counts(db_url)
        return c["outbox_pending"] == 0 and pending_entries(redis_url) == 0
    except (RedisError, OSError, DBAPIError):  # e.g. tables not there yet
        return False


def readiness(url: str) -> tuple[int, dict[str, Any]]:
    try:
        answer = httpx.get(f"{url}/readyz", timeout=3)
    except httpx.HTTPError:
        return 0, {}
    return answer.status_code, answer.json()


def wait_ready(cluster: Any, name: str, timeout_s: float = 20.0) -> None:
    """The service answers /readyz 200 within timeout_s; otherwise fails naming the
    dependency it reports unavailable and the end of its log."""
    service = cluster.services[name]
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = readiness(service.url)
        if status == 200:
            return
        if time.monotonic() >= deadline:
            tail = service.log.read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(f"{name} not ready: {status} {body}\n" + "\n".join(tail))
        time.sleep(0.1)
