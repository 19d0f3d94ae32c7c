"""A reconciler's cached key states after another reconciler applied to the same keys (a
lease taken over and back): the cache must not hide what the other one wrote.

A cached key state used to be reused while the key's head version number and recorded time
matched. Another owner can rewrite that very head: the rest of one ingest request (one
recorded time) re-opens the key's last version with the same number at the same recorded
time. The chaos runs saw it as an IntegrityError on versions(subject, attribute, version), and
as a delta stored against a head that was no longer in SQL (a chain that no longer applies);
it also dropped a claim from the answer silently. A cached state is now used only while the
key's open head row is the one it wrote (rewritten rows get new ids).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.infra.db import create_schema, make_engine
from services.query import views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import CLAIM_ASSERTED, SCHEMA_VERSION, SOURCE_RELIABILITY_LEARNED, Event
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import prepare

REGISTRY = AttributeRegistry.load()
pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
KEY = ("dprk-troops-kursk", "personnel_deployed")


def _events(engine: Any, body: dict[str, Any]) -> list[Event]:
    return prepare(engine, body).events


def _origins(engine: Any) -> str:
    answer = views.consensus(engine, *KEY, None, None)
    assert answer is not None
    return str(answer["explanation"])


def test_a_retaken_partition_is_folded_from_what_the_other_owner_wrote(
    engine: Any, tmp_path: Path
) -> None:
    first = report(
        claim(value=10_000, attributed_to="a"),
        claim(value=11_000, attributed_to="b"),
        published_at="2025-01-01",
    )
    events = _events(engine, first)
    second_claim = [e for e in events if e.type == CLAIM_ASSERTED][1]
    ours, theirs = Reconciler(REGISTRY), Reconciler(REGISTRY)
    ours.apply(engine, [e for e in events if e is not second_claim])  # then our lease lapsed
    theirs.apply(engine, [second_claim])  # the new owner applied the rest of the request
    assert "2 independent origins" in _origins(engine)

    # we take the partition back (or touch the key through a cross-partition event)
    later = report(claim(value=12_000), published_at="2025-01-02", source="other-outlet")
    ours.apply(engine, _events(engine, later))
    assert "3 independent origins" in _origins(engine)
    # what it stored is what a replay of the events derives
    rebuilt = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    create_schema(rebuilt)
    replay(engine, rebuilt, Reconciler(REGISTRY))
    assert projection_hash(rebuilt) == projection_hash(engine)
    rebuilt.dispose()


def test_a_step_that_changed_no_version_still_moves_the_keys_recorded_time(
    engine: Any, tmp_path: Path
) -> None:
    """Another reconciler applies a learning step that changes nothing on the key: the
    key's latest recorded time moves all the same, and a report recorded earlier that we
    apply next takes that time (as a replay, in one batch, does), not our cached one."""
    at = "2026-01-01T00:00:00.000000Z"

    def learned(n: int, when: str) -> Event:
        payload = {"scores": {"same": 0.1}, "copies": {}, "run_id": f"r{n}", "effective_at": when}
        return Event(f"e_learned_{n}", SOURCE_RELIABILITY_LEARNED, SCHEMA_VERSION, when, None,
                     payload, subject="__all__")  # fmt: skip

    def reported(value: int, day: str) -> list[Event]:
        body = report(claim(value=value), source="same", published_at=day)
        return [replace(e, recorded_at=at) for e in _events(engine, body)]

    ours, theirs = Reconciler(REGISTRY), Reconciler(REGISTRY)
    ours.apply(engine, [learned(1, "2026-01-01T00:10:00.000000Z"), *reported(1_000, "2025-01-10")])
    theirs.apply(engine, [learned(2, "2026-01-01T00:20:00.000000Z")])  # the same score again
    ours.apply(engine, reported(3_000, "2025-02-10"))
    rebuilt = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    create_schema(rebuilt)
    replay(engine, rebuilt, Reconciler(REGISTRY))
    assert projection_hash(rebuilt) == projection_hash(engine)
    rebuilt.dispose()
