"""How many ingest worker processes `claimledger serve ingest` starts (ingest/workers.py)."""

from __future__ import annotations

import pytest

from services.ingest.workers import DEFAULT_WORKERS, WorkerSettings


def test_the_default_is_the_measured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMLEDGER_INGEST_WORKERS", raising=False)
    monkeypatch.delenv("CLAIMLEDGER_RATE_LIMIT_PER_MIN", raising=False)
    assert WorkerSettings().count() == DEFAULT_WORKERS == 2


def test_a_rate_limit_keeps_one_worker_so_the_limit_holds_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLAIMLEDGER_INGEST_WORKERS", raising=False)
    monkeypatch.setenv("CLAIMLEDGER_RATE_LIMIT_PER_MIN", "60")
    assert WorkerSettings().count() == 1


def test_an_explicit_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMLEDGER_RATE_LIMIT_PER_MIN", "60")
    monkeypatch.setenv("CLAIMLEDGER_INGEST_WORKERS", "3")
    assert WorkerSettings().count() == 3
    monkeypatch.setenv("CLAIMLEDGER_INGEST_WORKERS", "0")
    assert WorkerSettings().count() == 1
