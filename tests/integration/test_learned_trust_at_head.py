"""A re-weighting run revises each key's current answer; it adds no step of its own (issue #19).

A learned score used to take effect at the run's recorded time: after every claim's
publication time, so each run added a publication-time step to every key it reached, and
every later claim published before it evaluated and versioned each such step again (after k
runs a claim cost k + 1 consensus evaluations and versions). Now a run's scores take effect
on each key from its head, the latest publication time among its claims recorded before the
run: one evaluation of the head step, one version if the answer changed, caused by the run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.infra.db import create_schema, make_engine
from services.query import views
from services.reconcile import store
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, claims_t, versions_t
from shared.attributes import AttributeRegistry
from shared.events import SCHEMA_VERSION, SOURCE_RELIABILITY_LEARNED, Event
from tests.factories import claim, report
from tests.ledger import prepare

REGISTRY = AttributeRegistry.load()
KEY = ("learned-head-town", "population")
T0, T1, T2, T3 = "2024-12-01", "2025-01-01", "2025-02-01", "2025-03-01"
LEARNED_AT = "2026-01-02T00:00:00.000000Z"


def _claim(engine: Any, value: int, source: str, day: str, recorded: str) -> list[Event]:
    body = report(claim(*KEY, value=value), source=source, published_at=day)
    return [replace(e, recorded_at=recorded) for e in prepare(engine, body).events]


def _learned(event_id: str, at: str, scores: dict[str, float]) -> Event:
    payload = {"scores": scores, "copies": {}, "run_id": event_id, "effective_at": at}
    return Event(event_id, SOURCE_RELIABILITY_LEARNED, SCHEMA_VERSION, at, None, payload,
                 subject="__all__")  # fmt: skip


def _versions(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(versions_t.c.version, versions_t.c.pub_from, versions_t.c.cause_event_id)
                .where(versions_t.c.subject == KEY[0], versions_t.c.attribute == KEY[1])
                .order_by(versions_t.c.version)
            ).all()
        )


def _answer(engine: Any, as_of: str | None = None) -> dict[str, Any]:
    answer = views.consensus(engine, *KEY, as_of, None)
    assert answer is not None
    return answer


def _weight_of(engine: Any, answer: dict[str, Any], source: str) -> float:
    with engine.connect() as conn:
        ids = set(
            conn.execute(select(claims_t.c.claim_id).where(claims_t.c.source_id == source))
            .scalars()
            .all()
        )
    return max(w for c, w in answer["weights"].items() if c in ids)


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many consensus evaluations the reconciler made (one list entry each)."""
    counted: list[int] = []
    real = store.compute_consensus

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "compute_consensus", counting)
    return counted


def test_a_learned_run_revises_the_head_and_later_claims_cost_one_evaluation(
    engine: Any, evaluations: list[int], tmp_path: Path
) -> None:
    reconciler = Reconciler(REGISTRY)
    log: list[Event] = []

    def apply(events: list[Event]) -> int:
        """Applies the events; how many evaluations that cost."""
        before = len(evaluations)
        log.extend(events)
        reconciler.apply(engine, events)
        return len(evaluations) - before

    apply(_claim(engine, 1_000, "rumours", T1, "2026-01-01T00:00:00.000000Z"))
    apply(_claim(engine, 3_000, "census", T2, "2026-01-01T00:01:00.000000Z"))
    assert _answer(engine)["best"] != 3_000  # equal trust: not the census's figure
    versions = len(_versions(engine))

    run = _learned("e_learned_head", LEARNED_AT, {"rumours": 0.05, "census": 0.95})
    assert apply([run]) == 1  # the head step, once
    after_run = _versions(engine)
    assert len(after_run) == versions + 1  # one new version, caused by the run, at the head
    newest = after_run[-1]
    assert (newest.pub_from[:10], newest.cause_event_id) == (T2, run.event_id)
    assert all(v.pub_from < LEARNED_AT for v in after_run)  # no step at the run's time
    assert _answer(engine)["best"] == 3_000
    assert _answer(engine, as_of=T1 + "T12:00:00Z")["best"] == 1_000  # the past stays

    # a claim published after the head: one evaluation, weighed with the learned scores
    assert apply(_claim(engine, 1_100, "rumours", T3, "2026-01-03T00:00:00.000000Z")) == 1
    answer = _answer(engine)
    assert answer["best"] == 3_000
    assert _weight_of(engine, answer, "rumours") < _weight_of(engine, answer, "census")

    # a claim published before every other: the steps from its time on, and no more
    assert apply(_claim(engine, 2_900, "witness", T0, "2026-01-04T00:00:00.000000Z")) == 4
    stored = _versions(engine)
    assert all(v.pub_from < LEARNED_AT for v in stored)
    assert sum(v.cause_event_id == run.event_id for v in stored) == 1

    # the same rows from a replay (one batch, a cold cache) and from one batch live
    for name, rebuild in (
        ("replayed", lambda target: replay(engine, target, Reconciler(REGISTRY))),
        ("one-batch", lambda target: Reconciler(REGISTRY).apply(target, log)),
    ):
        target = make_engine(f"sqlite:///{tmp_path / name}.db")
        create_schema(target)
        rebuild(target)
        assert projection_hash(target) == projection_hash(engine), name
        target.dispose()


def test_where_a_learned_score_takes_effect_does_not_depend_on_batches_or_the_cache(
    engine: Any, tmp_path: Path
) -> None:
    """A log not in recorded order: a run applied before claims recorded before it (a key it
    did not reach yet). Each claim moves where the run's score takes effect on the key, the
    same whether the key state is cached, read back from SQL, or the log is one batch."""
    run = _learned("e_learned_early", LEARNED_AT, {"census": 0.95, "rumours": 0.05})
    log = [
        run,
        *_claim(engine, 1_000, "rumours", T1, "2026-01-01T00:00:00.000000Z"),
        *_claim(engine, 3_000, "census", T2, "2026-01-01T00:01:00.000000Z"),
        *_claim(engine, 1_100, "rumours", T3, "2026-01-01T00:02:00.000000Z"),
        *_claim(engine, 2_000, "witness", T0, "2026-01-03T00:00:00.000000Z"),
    ]
    for event in log:  # one event per batch, each by a reconciler with a cold cache
        Reconciler(REGISTRY).apply(engine, [event])
    for name, batches in (("one-batch", [log]), ("cached", [[e] for e in log])):
        warm = Reconciler(REGISTRY)  # one reconciler: its cache holds the key between batches
        target = make_engine(f"sqlite:///{tmp_path / name}.db")
        create_schema(target)
        for batch in batches:
            warm.apply(target, batch)
        assert projection_hash(target) == projection_hash(engine), name
        target.dispose()
    assert all(v.pub_from < LEARNED_AT for v in _versions(engine))
