"""However the stream is cut into batches and whichever reconcilers apply them, what is
stored is what a replay of the events rebuilds, and every stored delta chain applies.

Real streams are cut at random (consumer batches, lease takeovers, restarts with cold
caches), events of one request (one recorded time) span batches, learning steps land in
between, and entries re-published after Redis lost its data arrive after events recorded
later. This property found two bugs: a source's learned score missing from its claims on
keys that were new or kept in memory, and a cached key state reused after another writer
had re-opened its last version at the same recorded time (a delta stored against a head
no longer in SQL).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.infra.db import create_schema, make_engine
from services.query import views
from services.reconcile import store
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import SCHEMA_VERSION, SOURCE_RELIABILITY_LEARNED, Event
from tests.factories import claim, report
from tests.ledger import prepare

REGISTRY = AttributeRegistry.load()
SUBJECTS = ("kursk", "pokrovsk")
DAYS = ("2025-01-10", "2025-02-10", "2025-03-10", "2025-04-10")
RECORDED = ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:05:00.000000Z",
            "2026-01-01T00:30:00.000000Z")  # fmt: skip

a_report = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(DAYS),
    st.sampled_from((1_000, 1_500, 3_000, 12_000)),
    st.integers(0, 4),  # source
    st.integers(0, 2),  # recorded time: most share the first (one large request)
)
a_step = st.tuples(st.just("learned"), st.lists(st.floats(0.05, 0.95), min_size=5, max_size=5))
a_batch = st.tuples(st.integers(1, 4), st.sampled_from(("a", "b", "cold")))


def _events(engine: Any, items: list[Any]) -> list[Event]:
    out: list[Event] = []
    steps = 0
    for item in items:
        if item[0] == "learned":
            steps += 1
            at = f"2026-01-01T00:{10 * steps:02d}:00.000000Z"  # between the reports' times
            scores = {f"src{i}": round(s, 3) for i, s in enumerate(item[1])}
            payload = {"scores": scores, "copies": {}, "run_id": f"r{steps}", "effective_at": at}
            event_id = f"e_learned_{steps}"
            out.append(
                Event(
                    event_id,
                    SOURCE_RELIABILITY_LEARNED,
                    SCHEMA_VERSION,
                    at,
                    None,
                    payload,
                    subject="__all__",
                )
            )
            continue
        subject, day, value, source, recorded = item
        body = report(claim(subject, value=value), source=f"src{source}", published_at=day)
        out += [replace(e, recorded_at=RECORDED[recorded]) for e in prepare(engine, body).events]
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.one_of(a_report, a_report, a_report, a_step), min_size=3, max_size=14),
    batches=st.lists(a_batch, min_size=1, max_size=12),
)
def test_any_batching_stores_what_replay_rebuilds(items: list[Any], batches: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'live.db'}")
        create_schema(engine)
        events = _events(engine, items)
        appliers = {"a": Reconciler(REGISTRY), "b": Reconciler(REGISTRY)}
        at = 0
        for size, who in [*batches, (len(events), "a")]:
            applier = appliers.get(who) or Reconciler(REGISTRY)  # "cold": a restart
            applier.apply(engine, events[at : at + size])
            at += size
            for subject in SUBJECTS:  # every chain applies (a bad delta raises here)
                views.history(engine, subject, "personnel_deployed", 0, 1_000)
        rebuilt = make_engine(f"sqlite:///{Path(tmp) / 'rebuilt.db'}")
        create_schema(rebuilt)
        replay(engine, rebuilt, Reconciler(REGISTRY))
        assert projection_hash(rebuilt) == projection_hash(engine)
        engine.dispose()
        rebuilt.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.one_of(a_report, a_report, a_step), min_size=3, max_size=14),
    batches=st.lists(a_batch, min_size=1, max_size=8),
)
def test_a_learned_run_written_key_by_key_stores_what_one_piece_does(
    items: list[Any], batches: list[Any]
) -> None:
    """A learned run reaches every key of its sources; it loads, revises and writes them a
    chunk at a time (so memory holds a chunk, not the database). Chunks of one key store
    the rows a replay that takes every key at once rebuilds."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'live.db'}")
        create_schema(engine)
        events = _events(engine, items)
        appliers = {"a": Reconciler(REGISTRY, cache_claims=1), "b": Reconciler(REGISTRY)}
        at = 0
        with patch.object(store, "LEARNED_CHUNK_KEYS", 1):
            for size, who in [*batches, (len(events), "a")]:
                applier = appliers.get(who) or Reconciler(REGISTRY)
                applier.apply(engine, events[at : at + size])
                at += size
        for subject in SUBJECTS:
            views.history(engine, subject, "personnel_deployed", 0, 1_000)
        rebuilt = make_engine(f"sqlite:///{Path(tmp) / 'rebuilt.db'}")
        create_schema(rebuilt)
        with patch.object(store, "LEARNED_CHUNK_KEYS", 1_000_000):
            replay(engine, rebuilt, Reconciler(REGISTRY))
        assert projection_hash(rebuilt) == projection_hash(engine)
        engine.dispose()
        rebuilt.dispose()
