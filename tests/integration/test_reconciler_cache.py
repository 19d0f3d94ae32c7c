"""The reconciler's in-memory key states are bounded: RSS must not grow with the log."""

from __future__ import annotations

from pathlib import Path

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.ingest.api import IngestContext, prepare_report
from services.reconcile.replay import projection_hash
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.reports import ReportIn

REGISTRY = AttributeRegistry.load()


def _events(engine, n_reports: int, keys: int):  # type: ignore[no-untyped-def]
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), 4, 0.1)
    events = []
    for i in range(n_reports):
        body = {
            "report_id": f"r{i}",
            "source": {"id": f"s{i % 7}", "kind": "news"},
            "published_at": f"2025-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "claims": [
                {
                    "subject": f"k{(i + j) % keys}",
                    "attribute": "personnel_deployed",
                    "value": 1000 + (i * 7 + j) % 50,
                    "attributed_to": f"o{j}",
                }
                for j in range(3)
            ],
        }
        events += prepare_report(ReportIn.model_validate(body), ctx, None).events
    return events


def test_cached_key_states_stay_within_the_claim_budget_as_keys_grow(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    create_schema(engine)
    events = _events(engine, 120, keys=12)
    small = Reconciler(REGISTRY, cache_claims=40)
    for i in range(0, len(events), 25):
        small.apply(engine, events[i : i + 25])
        # states grow in place between batches: the count must follow them
        held = sum(len(state.claims) for state in small._cache.values())
        assert held == small.cached_claims
        assert held <= 40 or len(small._cache) == 1
    reference = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    create_schema(reference)
    big = Reconciler(REGISTRY)
    for i in range(0, len(events), 25):
        big.apply(reference, events[i : i + 25])
    assert big.cached_claims == 360
    # evicted keys read back from SQL give the same versions as keys kept in memory
    assert projection_hash(engine) == projection_hash(reference)
