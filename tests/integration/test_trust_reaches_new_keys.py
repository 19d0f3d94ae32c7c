"""A source's rating or learned score applies to its claims on keys that did not exist
when it was given, the moment they arrive, not only once the key is read back from SQL.

The reconciler used to attach a source's ratings and learned scores to a key's state only
when loading the key from the database, so a claim on a new key (or the first claim of that
source on a key kept in memory) was weighed as if the source were unrated, until a restart or
a replay weighed it differently: what the live system showed was not what replay rebuilds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.infra.db import create_schema, make_engine
from services.ingest.api import CorrectionTarget, correction_event
from services.query import views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, claims_t
from shared.attributes import AttributeRegistry
from shared.events import SCHEMA_VERSION, SOURCE_RATED, SOURCE_RELIABILITY_LEARNED, Event
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import prepare

REGISTRY = AttributeRegistry.load()
pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
KEY = ("new-key-troops", "personnel_deployed")


def _reports(engine: Any) -> list[Event]:
    bodies = [
        report(claim(*KEY, value=1_000), source="tabloid", published_at="2025-02-17"),
        report(claim(*KEY, value=3_000), source="wire", published_at="2025-02-17"),
    ]
    return [e for b in bodies for e in prepare(engine, b).events]


def _rating() -> Event:
    target = CorrectionTarget("tabloid", "tabloid", None, None)
    data = {"reliability": "E", "rationale": "fabricated quotes"}
    event, _ = correction_event(SOURCE_RATED, target, data, "2025-01-01T00:00:00Z", partitions=4)
    return event


def _learned() -> Event:
    at = "2025-01-01T00:00:00.000000Z"
    payload = {"scores": {"tabloid": 0.05, "wire": 0.95}, "copies": {}, "run_id": "r1",
               "effective_at": at}  # fmt: skip
    return Event("e_learned_1", SOURCE_RELIABILITY_LEARNED, SCHEMA_VERSION, at, None, payload,
                 subject="__all__")  # fmt: skip


def _weights(engine: Any) -> dict[str, float]:
    answer = views.consensus(engine, *KEY, None, None)
    assert answer is not None
    by_claim = answer["weights"]
    sources = {c: s for s in ("tabloid", "wire") for c in _claims_of(engine, s)}
    return {sources[c]: w for c, w in by_claim.items()}


def _claims_of(engine: Any, source: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(claims_t.c.claim_id).where(claims_t.c.source_id == source))
            .scalars()
            .all()
        )


@pytest.mark.parametrize("trust", [_rating, _learned], ids=["rating", "learned"])
def test_trust_given_before_a_key_existed_weighs_its_claims(
    engine: Any, trust: Any, tmp_path: Path
) -> None:
    reconciler = Reconciler(REGISTRY)
    reconciler.apply(engine, [trust()])  # given before the key existed
    reconciler.apply(engine, _reports(engine))
    weights = _weights(engine)
    assert weights["tabloid"] < weights["wire"]
    answer = views.consensus(engine, *KEY, None, None)
    assert answer is not None and answer["best"] == 3_000  # the trusted source's figure
    rebuilt = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    create_schema(rebuilt)
    replay(engine, rebuilt, Reconciler(REGISTRY))
    assert projection_hash(rebuilt) == projection_hash(engine)
    rebuilt.dispose()
