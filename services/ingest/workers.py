"""Ingest as several worker processes behind one port (CLAIMLEDGER_INGEST_WORKERS, issue #21).

One ingest process is bound by the GIL to one core: past ~1,400 single reports/s on the
bench machine its CPU is spent, half of it in the HTTP stack (bench/RESULTS.md). uvicorn's
supervisor binds the port once and starts N worker processes that accept on it; each is a
whole ingest (its own lifespan, group commit, relay and key cache) as a replica is, so what
holds for replicas holds for workers:

- a 202 still follows the commit of the report's outbox rows (each worker's own group commit;
  SQLite serialises their transactions, PostgreSQL's `serialize_seqs` keeps seq order);
- one relay publishes (services/ingest/leader.py elects it over the database), and the
  others' commits wake it through Redis (Relay.kick), so no report waits for a poll;
- the learner runs in the publishing worker only (learning.reweigh_periodically's `leading`);
- request ids and logs are per request, as before; /metrics sums every worker's counters
  and histograms (prometheus_client's multiprocess mode over a directory made here);
- a worker's rate-limit buckets are its own, as a replica's are: with a rate limit set, the
  default is one worker, so the limit holds per key (WorkerSettings.count).

The supervisor restarts a worker that dies; a worker dies with the supervisor (SIGKILL, as
if the service had been killed: the fault tests kill ingest with -9).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict

FACTORY = "services.ingest.main:create_app"
WORKER_FACTORY = "services.ingest.workers:create_worker_app"
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported


# Measured on the 2-core bench machine (bench/RESULTS.md, "Ingest workers"): 2 workers served
# 2-2.5x the single reports of 1, and more :batch claims.
DEFAULT_WORKERS = 2


class WorkerSettings(BaseSettings):
    """Read by the supervisor, which imports none of the service (its workers do)."""

    model_config = SettingsConfigDict(env_prefix="CLAIMLEDGER_", extra="ignore")
    ingest_workers: int | None = None
    rate_limit_per_min: float = 0

    def count(self) -> int:
        """CLAIMLEDGER_INGEST_WORKERS, else DEFAULT_WORKERS, else 1 under a rate limit: a
        worker's buckets are its own, so N workers would let a key through N times the
        limit (an explicit N says the operator accepts a per-worker limit)."""
        if self.ingest_workers is not None:
            return max(1, self.ingest_workers)
        return 1 if self.rate_limit_per_min > 0 else DEFAULT_WORKERS


@contextlib.contextmanager
def ingest_processes(log_level: str) -> Iterator[tuple[str, int]]:
    """(app factory, worker count) for `claimledger serve ingest`; with more than one worker,
    the environment the workers inherit (metrics directory, log level) is set for the
    duration, and the metrics directory removed after it."""
    workers = WorkerSettings().count()
    if workers == 1:
        yield FACTORY, 1
        return
    # a fresh directory per run: files left by an earlier run would be summed in
    metrics = tempfile.mkdtemp(prefix="claimledger-ingest-metrics-")
    saved = {k: os.environ.get(k) for k in (METRICS_DIR, "CLAIMLEDGER_LOG_LEVEL")}
    os.environ[METRICS_DIR] = metrics
    os.environ["CLAIMLEDGER_LOG_LEVEL"] = log_level  # `serve --log-level`, for the workers
    try:
        yield WORKER_FACTORY, workers
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(metrics, ignore_errors=True)


def create_worker_app() -> FastAPI:
    """The app in a worker process (a fresh interpreter: logging is configured again)."""
    from services.infra.logs import configure_logging
    from services.ingest.main import create_app
    from shared.settings import CommonSettings

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    settings = CommonSettings()
    configure_logging("ingest", level=settings.log_level.lower(), fmt=settings.log_format)
    return create_app()
