"""Stream -> reconciler -> SQL on a real redis-server, on SQLite and PostgreSQL (in-process
services)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.infra.localredis import LocalRedis
from services.ingest import outbox
from services.ingest.api import IngestContext, prepare_report
from services.ingest.relay import Relay
from services.query import views
from services.reconcile.consumer import EntryProcessor, Reclaimer
from services.reconcile.main import ConsumerGroup, ReconcileSettings
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, events_t, take_fence
from shared.attributes import AttributeRegistry
from shared.events import CONSUMER_GROUP, DEAD_LETTER_STREAM, stream_for
from shared.reports import ReportIn
from tests.conftest import BACKENDS
from tests.factories import claim, report

REGISTRY = AttributeRegistry.load()
pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)  # the contract layer


def _ctx(engine: Any) -> IngestContext:
    return IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=2, tolerance=0.1)


def _accept(engine: Any, body: dict[str, Any]) -> outbox.Accepted:
    return outbox.accept_report(
        engine, prepare_report(ReportIn.model_validate(body), _ctx(engine), None)
    )


def _events(engine: Any, body: dict[str, Any]) -> list[Any]:
    return prepare_report(ReportIn.model_validate(body), _ctx(engine), None).events


@pytest.fixture
def engine(db_url: str) -> Any:
    eng = make_engine(db_url)
    create_schema(eng)
    return eng


async def _run_group(redis_url: str, engine: Any, until: Any, timeout_s: float = 10) -> None:
    redis = Redis.from_url(redis_url)
    settings = ReconcileSettings(redis_url=redis_url, partitions=2, poll_ms=50)
    processor = EntryProcessor(engine, redis, Reconciler(REGISTRY), serialize_writes=True)
    group = ConsumerGroup(settings, processor, redis, [stream_for(p) for p in range(2)], "t-1")
    task = asyncio.create_task(group.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not await asyncio.to_thread(until):
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()


def _event_count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events_t)).scalar_one())


async def test_entries_published_before_the_reconciler_started_are_applied(
    redis_server: LocalRedis, engine: Any
) -> None:
    _accept(engine, report(claim(value=12000), claim(attribute="killed", raw="over 3,000")))
    redis = Redis.from_url(redis_server.url)
    await Relay(engine, redis).publish_once()  # the stream exists before any group does
    await redis.aclose()
    await _run_group(redis_server.url, engine, lambda: _event_count(engine) == 3)
    assert views.watermark(engine) == 3


async def test_poison_entry_goes_to_the_dead_letter_stream_and_the_rest_flow(
    redis_server: LocalRedis, engine: Any
) -> None:
    redis = Redis.from_url(redis_server.url)
    await redis.xadd(stream_for(0), {"__data__": b"\xff not json"})
    await redis.xadd(stream_for(0), {"__data__": json.dumps({"type": "Nope"})})
    _accept(engine, report(claim(value=5)))
    await Relay(engine, redis).publish_once()
    await _run_group(redis_server.url, engine, lambda: _event_count(engine) == 2)
    dead = await redis.xrange(DEAD_LETTER_STREAM)
    assert len(dead) == 2
    assert all(b"poison" in fields[b"error"] for _, fields in dead)
    for p in range(2):
        pending = await redis.xpending(stream_for(p), "reconcile")
        assert pending["pending"] == 0
    await redis.aclose()


async def test_a_claim_asserted_with_a_wrongly_typed_payload_field_is_poison(
    redis_server: LocalRedis, engine: Any
) -> None:
    """Its payload is decoded by its type's Struct: dead-lettered at once, with the field."""
    good = _events(engine, report(claim(value=5)))[1]
    body = json.loads(good.to_json())
    body["event_id"] = "e_wrongly_typed"
    body["payload"]["subject_label"] = 5
    redis = Redis.from_url(redis_server.url)
    await redis.xadd(stream_for(0), {"__data__": json.dumps(body)})
    _accept(engine, report(claim(value=6)))
    await Relay(engine, redis).publish_once()
    await _run_group(redis_server.url, engine, lambda: _event_count(engine) == 2)
    dead = await redis.xrange(DEAD_LETTER_STREAM)
    assert [fields[b"error"] for _, fields in dead] == [
        b"poison: malformed ClaimAsserted payload: Expected `str | null`, got `int`"
        b" - at `$.subject_label`"
    ]
    await redis.aclose()


def test_redelivered_events_change_nothing(engine: Any) -> None:
    events = _events(engine, report(claim(value=12000), claim(value=10000, attributed_to="x")))
    reconciler = Reconciler(REGISTRY)
    _first, applied_first = reconciler.apply(engine, events)
    before = projection_hash(engine)
    again, applied_again = reconciler.apply(engine, events)
    assert applied_first == 3 and applied_again == 0 and again == []
    assert projection_hash(engine) == before


def test_replay_rebuilds_identical_projections(engine: Any, tmp_path: Path) -> None:
    from services.cli import demo_reports

    reconciler = Reconciler(REGISTRY)
    for body in demo_reports():
        reconciler.apply(engine, _events(engine, body))
    reconciler.apply(
        engine,
        _events(
            engine,
            report(
                claim(value=11000, attributed_to="South Korean intelligence", valid_time="2024-12"),
                published_at="2025-01-10",
            ),
        ),
    )  # a backfill before the demo's reports
    target = make_engine(f"sqlite:///{tmp_path / 'replayed.db'}")
    replay(engine, target, Reconciler(REGISTRY))
    assert projection_hash(target) == projection_hash(engine)


def test_backfill_corrects_as_of_while_recorded_as_of_keeps_what_was_shown(engine: Any) -> None:
    reconciler = Reconciler(REGISTRY)
    late = _events(
        engine,
        report(claim(value=12000, attributed_to="Ukrainian forces"), published_at="2025-02-17"),
    )
    reconciler.apply(engine, late)
    shown_at = late[0].recorded_at
    early = _events(
        engine, report(claim(value=10000, attributed_to="NIS"), published_at="2025-01-10")
    )
    reconciler.apply(engine, early)
    key = ("dprk-troops-kursk", "personnel_deployed")
    feb = "2025-02-01T23:59:59.999999Z"
    corrected = views.consensus(engine, *key, feb, None)
    assert corrected is not None and corrected["best"] == 10000  # only NIS was published by then
    assert views.consensus(engine, *key, feb, shown_at) is None  # before the backfill: nothing
    now = views.consensus(engine, *key, None, None)
    assert now is not None and len(now["support"]) + len(now["dissent"]) == 2
    assert [v["version"] for v in views.history(engine, *key, 0, 100)] == [1, 2, 3]


async def test_entries_redelivered_by_takeovers_are_applied_not_dead_lettered(
    redis_server: LocalRedis, engine: Any
) -> None:
    """Redis counts a delivery at every takeover (a loaded machine churns leases); only
    failures to apply may send an acknowledged report to the dead-letter stream."""
    redis = Redis.from_url(redis_server.url)
    accepted = _accept(engine, report(claim(value=7)))
    await Relay(engine, redis).publish_once()
    streams = [stream_for(0), stream_for(1)]
    for s in streams:
        await redis.xgroup_create(s, CONSUMER_GROUP, id="0", mkstream=True)
    read = await redis.xreadgroup(CONSUMER_GROUP, "gone-1", {s: ">" for s in streams})
    held = {s.decode(): [i for i, _ in entries] for s, entries in read if entries}
    assert accepted.created and held
    for n in range(8):  # eight takeovers that each died before applying
        for stream, ids in held.items():
            await redis.xclaim(stream, CONSUMER_GROUP, f"gone-{n + 2}", 0, ids)
    processor = EntryProcessor(
        engine, redis, Reconciler(REGISTRY), serialize_writes=True, max_deliveries=3
    )
    reclaimer = Reclaimer(processor, redis, streams, "t-1", max_deliveries=3)
    for stream in held:
        await reclaimer.reclaim(stream, min_idle_ms=0)
    assert await redis.xrange(DEAD_LETTER_STREAM) == []
    assert _event_count(engine) == sum(len(ids) for ids in held.values())
    for stream in streams:
        assert (await redis.xpending(stream, CONSUMER_GROUP))["pending"] == 0
    await redis.aclose()


async def test_a_commit_under_a_superseded_epoch_is_dropped_and_reported(
    redis_server: LocalRedis, engine: Any
) -> None:
    """The apply transaction refuses an epoch that a later take of the fence superseded, and
    says which partition, so the lease holder takes a new epoch instead of failing for ever."""
    redis = Redis.from_url(redis_server.url)
    _accept(engine, report(claim(value=9)))
    await Relay(engine, redis).publish_once()
    streams = [stream_for(0), stream_for(1)]
    for s in streams:
        await redis.xgroup_create(s, CONSUMER_GROUP, id="0", mkstream=True)
    read = await redis.xreadgroup(CONSUMER_GROUP, "t-1", {s: ">" for s in streams})
    held = [(s.decode(), e) for s, e in read if e]
    stream, entries = held[0]
    partition = streams.index(stream)
    take_fence(engine, partition, "t-1")  # epoch 1: ours
    take_fence(engine, partition, "late")  # epoch 2: a delayed takeover's bump
    told: list[list[int]] = []
    processor = EntryProcessor(
        engine,
        redis,
        Reconciler(REGISTRY),
        serialize_writes=True,
        fence_of=lambda s: (streams.index(s), 1),
        on_stale=told.append,
    )
    failed = await processor.process(stream, entries)
    assert failed == [e[0] for e in entries]
    assert told == [[partition]]
    assert _event_count(engine) == 0
    await redis.aclose()
