"""One recorded time, one revision: what is stored does not depend on how the reconciler's
batches cut the log (issue #24 item 5, issue #19).

A request's events share one recorded time; a version opened and superseded at that same
recorded time is never stored (no reader at any recorded time could see it). The
reconciler reads the log in chunks of any size, so a request's events may be applied in
one transaction or spread over many: the rows, and everything a reader sees, must be the
same, and the same as a replay's.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.infra.db import create_schema, make_engine
from services.infra.http import install_error_handlers
from services.infra.keys import KeyChecker
from services.ingest import api as ingest_api
from services.ingest.api import CorrectionTarget, IngestContext, correction_event, prepare_report
from services.query import stream, views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, versions_t
from shared.events import CLAIM_RETRACTED, Event
from shared.positions import Cursor
from shared.reports import ReportIn
from shared.timeaxes import MAX_TIME
from tests.conftest import BACKENDS
from tests.ledger import REGISTRY, gapless, numbers

R1, R2, R3 = (
    "2026-01-10T09:00:00.000000Z",
    "2026-01-11T09:00:00.000000Z",
    "2026-01-12T09:00:00.000000Z",
)
R1_LATE = "2026-01-10T10:00:00.000000Z"
KEYS = [("group-a", "personnel_deployed"), ("group-a", "killed"), ("group-b", "killed")]


def _bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """Single-claim reports on three keys, publication dates shuffled (some shared)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        subject, attribute = KEYS[i % len(KEYS)]
        out.append(
            {
                "report_id": f"group-{seed}-{i}",
                "source": {"id": f"outlet-{rnd.randint(1, 6)}", "kind": "news"},
                "published_at": f"2025-{rnd.randint(1, 9):02d}-{rnd.randint(1, 28):02d}",
                "claims": [
                    {
                        "subject": subject,
                        "attribute": attribute,
                        "value": rnd.randint(900, 1400),
                    }
                ],
            }
        )
    rnd.shuffle(out)
    return out


def _log(engine: Any) -> list[Event]:
    """Two requests (recorded R1 and R2), a retraction recorded with the second and one
    alone (R3): the events as the reconciler reads them, in log order."""
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=4, tolerance=0.1)
    first = [prepare_report(ReportIn.model_validate(b), ctx, None, R1) for b in _bodies(45, 1)]
    second = [prepare_report(ReportIn.model_validate(b), ctx, None, R2) for b in _bodies(20, 2)]
    events = [e for p in first for e in p.events]
    retracted = [e for p in first[:2] for e in p.events if e.type == "ClaimAsserted"]
    for claim_event, effective, recorded in zip(
        retracted,
        ("2025-05-15T00:00:00.000000Z", "2025-03-02T00:00:00.000000Z"),
        (R2, R3),
        strict=True,
    ):
        claim = claim_event.payload.claim
        target = CorrectionTarget(
            claim["claim_id"], claim["subject"], claim["attribute"], claim_event.report_id
        )
        event, _ = correction_event(
            CLAIM_RETRACTED, target, {"reason": "wrong"}, effective, partitions=4, recorded=recorded
        )
        if recorded == R2:
            events += [e for p in second[:10] for e in p.events] + [event]
            events += [e for p in second[10:] for e in p.events]
            # a request stamped before the second but logged after it (two ingest threads):
            # its events join each key's later recorded time
            late = [
                prepare_report(ReportIn.model_validate(b), ctx, None, R1_LATE)
                for b in _bodies(12, 4)
            ]
            events += [e for p in late for e in p.events]
        else:
            events.append(event)
    return events


def _apply(url: str, events: list[Event], chunk: int, cache_claims: int = 100_000) -> Any:
    engine = make_engine(url)
    create_schema(engine)
    reconciler = Reconciler(REGISTRY, cache_claims=cache_claims)
    for i in range(0, len(events), chunk):
        reconciler.apply(engine, events[i : i + chunk])
    return engine


def _seen(engine: Any) -> dict[str, Any]:
    """What readers see: each key's history, and its answer at every publication day of
    the scenario at each recorded time."""
    out: dict[str, Any] = {}
    days = [f"2025-{m:02d}-{d:02d}T23:59:59.999999Z" for m in range(1, 10) for d in (1, 14, 28)]
    for subject, attribute in KEYS:
        history = views.history(engine, subject, attribute, 0, 10_000)
        for item in history:
            item.pop("position", None)
            item["cause"].pop("trace_id", None)
        out[f"{subject}/{attribute}/history"] = history
        for recorded in (R1, R2, R3, None):
            answers = []
            for day in [*days, None]:
                view = views.consensus(engine, subject, attribute, day, recorded)
                if view is not None:
                    view.pop("position", None)
                answers.append(view)
            out[f"{subject}/{attribute}/{recorded}"] = answers
    return out


def _rows(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(versions_t).where(versions_t.c.version > 0)).all()


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_any_chunking_stores_the_same_rows_and_answers_as_one_transaction(
    db_url: str, tmp_path: Path
) -> None:
    scratch = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(scratch)
    events = _log(scratch)
    whole = _apply(f"sqlite:///{tmp_path / 'whole.db'}", events, 10_000)
    expected_hash, expected_seen = projection_hash(whole), _seen(whole)
    rows = _rows(whole)
    assert all(r.rec_from < r.rec_to for r in rows)  # no empty recorded interval
    assert all(r.diff != "{}" for r in rows)  # versions are changes
    # one request stores its final timeline only: each R1 row is still what readers of R1 see
    at_r1 = [r for r in rows if r.rec_from == R1]
    assert at_r1 and len(at_r1) < 45

    runs = [
        ("one", f"sqlite:///{tmp_path / 'one.db'}", 1, 100_000),
        ("seven on this backend, read back from SQL", db_url, 7, 0),
        ("500", f"sqlite:///{tmp_path / '500.db'}", 500, 100_000),
    ]
    for name, url, chunk, cache in runs:
        engine = _apply(url, events, chunk, cache)
        assert projection_hash(engine) == expected_hash, name
        assert _seen(engine) == expected_seen, name
        replayed = make_engine(f"sqlite:///{tmp_path / f'replay-{chunk}.db'}")
        replay(engine, replayed, Reconciler(REGISTRY))
        assert projection_hash(replayed) == expected_hash, name
        engine.dispose()


def test_a_request_spread_over_transactions_leaves_no_version_nobody_saw(tmp_path: Path) -> None:
    scratch = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(scratch)
    events = _log(scratch)
    engine = _apply(f"sqlite:///{tmp_path / 'one.db'}", events, 1)
    rows = _rows(engine)
    assert all(r.rec_from < r.rec_to for r in rows)
    with engine.connect() as conn:
        stored = conn.execute(select(versions_t.c.id, versions_t.c.version)).all()
    ids = sorted(r.id for r in stored)
    assert gapless(ids)  # each partition's numbers in the update stream stay gapless
    # what an SSE client resuming from the start gets: every position, and a frame for each
    # stored version only (a dropped row's id is kept by a placeholder that sends nothing)
    frames = [
        f
        for part in numbers(ids)
        for f in stream._load(engine, part, Cursor(), None, stream.StreamFilter(), 10_000)
    ]
    assert sorted(f.id for f in frames) == ids
    assert sum(1 for f in frames if f.data) == len(rows) < len(ids)
    current = [r for r in rows if r.rec_to == MAX_TIME]
    assert {(r.subject, r.attribute) for r in current} == set(KEYS)


def test_a_batch_request_is_recorded_at_one_time(tmp_path: Path) -> None:
    """Ingest stamps every report of one :batch with one recorded time (a retry keeps it)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(engine)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(ingest_api.router)
    app.state.ingest = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    bodies = _bodies(30, 3)
    with TestClient(app) as client:
        first = client.post("/v1/reports:batch", json=bodies[:20]).json()["results"]
        second = client.post("/v1/reports:batch", json=bodies[10:]).json()["results"]
    engine.dispose()
    assert [r["status"] for r in first] == [202] * 20
    assert len({r["recorded_at"] for r in first}) == 1
    assert [r["recorded_at"] for r in second[:10]] == [r["recorded_at"] for r in first[10:]]
    assert len({r["recorded_at"] for r in second[10:]}) == 1
    assert second[10]["recorded_at"] > first[0]["recorded_at"]


def test_a_first_version_rewritten_in_a_later_transaction_is_a_snapshot_again(
    tmp_path: Path,
) -> None:
    """A key's only rows of its first recorded time dropped: the rewritten first version
    starts a chain of its own (not a delta against the rows that are gone)."""
    scratch = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(scratch)
    ctx = IngestContext(scratch, None, REGISTRY, KeyChecker(scratch), 4, 0.1)
    bodies = [
        {
            "report_id": f"first-{i}",
            "source": {"id": f"outlet-{i}", "kind": "news"},
            "published_at": published,
            "claims": [{"subject": "first", "attribute": "killed", "value": value}],
        }
        for i, (published, value) in enumerate([("2025-05-01", 1000), ("2025-01-01", 1001)])
    ]
    events = [
        e for b in bodies for e in prepare_report(ReportIn.model_validate(b), ctx, None, R1).events
    ]
    whole = _apply(f"sqlite:///{tmp_path / 'whole.db'}", events, 100)
    split = _apply(f"sqlite:///{tmp_path / 'split.db'}", events, 2)  # the back-dated one alone
    assert projection_hash(split) == projection_hash(whole)
    with split.connect() as conn:
        first = conn.execute(select(versions_t).where(versions_t.c.version == 1)).one()
    assert first.result is not None and first.delta is None and first.base == 1
