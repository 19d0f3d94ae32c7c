"""POST /v1/reports with extract=true on a real ingest router and SQLite outbox.

The extraction rules run off the event loop (issue #24: 19 s of a blocked loop) and a report
that asks for extraction without a subject is refused naming /subject (issue #20: its claims
were stored under "unknown"), with nothing written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

import shared.extract
from services.infra.db import create_schema, make_engine
from services.infra.http import install_error_handlers
from services.infra.keys import KeyChecker
from services.infra.tables import OutboxRow
from services.ingest import api
from shared.attributes import AttributeRegistry

TEXT = "About 1,200 soldiers were killed in January, the ministry said."


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(engine)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(api.router)
    app.state.ingest = api.IngestContext(
        engine=engine,
        relay=None,
        registry=AttributeRegistry.load(),
        keys=KeyChecker(engine),
        partitions=4,
        tolerance=0.10,
    )
    with TestClient(app) as client:
        yield client, engine
    engine.dispose()


@pytest.fixture
def loop_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each extraction: was an event loop running in the thread that did it?"""
    seen: list[bool] = []
    real = shared.extract.extract_claims

    def spy(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(shared.extract, "extract_claims", spy)
    return seen


def _report(**extra: Any) -> dict[str, Any]:
    return {
        "source": {"id": "wire"},
        "published_at": "2025-02-17",
        "text": TEXT,
        "extract": True,
        **extra,
    }


def _asserted_subjects(engine: Any) -> list[str]:
    """Subjects of the claim.asserted events waiting in the outbox."""
    with engine.connect() as conn:
        bodies = conn.execute(select(OutboxRow.body)).scalars().all()  # type: ignore[arg-type]
    events = [json.loads(b) for b in bodies]
    return [e["subject"] for e in events if e.get("subject")]


def test_extraction_runs_off_the_event_loop(ingest, loop_seen) -> None:
    client, _ = ingest
    r = client.post("/v1/reports", json=_report(subject="ukraine-war"))
    assert r.status_code == 202 and len(r.json()["claim_ids"]) == 1
    r = client.post("/v1/reports:batch", json=[_report(subject="ukraine-war", report_id="b1")])
    assert r.json()["results"][0]["status"] == 202
    assert loop_seen == [False, False]


def test_extraction_without_a_subject_is_a_problem_naming_subject(ingest) -> None:
    client, engine = ingest
    r = client.post("/v1/reports", json=_report())
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in r.json()["errors"]] == ["/subject"]
    r = client.post("/v1/reports:batch", json=[_report()])
    assert r.json()["results"][0]["status"] == 422
    assert _asserted_subjects(engine) == []


def test_extracted_claims_are_stored_under_the_given_subject(ingest) -> None:
    client, engine = ingest
    r = client.post("/v1/reports", json=_report(subject="ukraine-war"))
    assert r.status_code == 202
    assert _asserted_subjects(engine) == ["ukraine-war"]
