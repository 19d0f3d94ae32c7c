"""What the SQL store promises on every backend (SQLite and PostgreSQL): order, no gaps under
concurrent writers, exactly-once application, keys as posted, bytewise text order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, text

from services.infra.db import create_schema, make_engine
from services.ingest import outbox
from services.query import views
from services.reconcile.store import Reconciler, versions_t
from shared.attributes import AttributeRegistry
from shared.timeaxes import MAX_TIME, MIN_TIME
from tests.conftest import BACKENDS, wait_for
from tests.factories import claim, report
from tests.ledger import gapless, numbers, prepare
from tests.postgres import advisory_waiters

REGISTRY = AttributeRegistry.load()
pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)


def _prepared(engine: Any, body: dict[str, Any]) -> outbox.Pending:
    return prepare(engine, body, partitions=2)


def _events(engine: Any, body: dict[str, Any]) -> list[Any]:
    return _prepared(engine, body).events


def _visible_seqs(engine: Any) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox.outbox.c.seq).order_by("seq")).scalars())


def test_a_later_outbox_write_waits_for_an_uncommitted_earlier_one(
    db_url: str, postgres_url: str
) -> None:
    """PostgreSQL draws seqs before commit; writers take turns, so seq order is commit order
    and a reader never sees seq N+1 while N may still appear (SQLite: one writer anyway)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; the waiting is observed via pg_locks")
    engine = make_engine(postgres_url)
    create_schema(engine)
    first, second = (_prepared(engine, report(claim(value=v))) for v in (1, 2))
    with engine.begin() as holding:
        outbox._accept(holding, [first])  # seq drawn, not committed
        done = threading.Event()
        later = threading.Thread(target=lambda: (outbox.accept_report(engine, second), done.set()))
        later.start()
        wait_for(lambda: advisory_waiters(engine) == 1)  # the later writer waits its turn
        assert _visible_seqs(engine) == []
        assert views.watermark(engine) == 0
    later.join(10)
    assert done.is_set()
    seqs = _visible_seqs(engine)
    assert seqs == list(range(1, len(seqs) + 1))  # the earlier write holds the lower seqs
    with engine.connect() as conn:
        last_of_first = conn.execute(
            select(outbox.outbox.c.seq).where(outbox.outbox.c.event_id == first.events[-1].event_id)
        ).scalar_one()
    assert last_of_first == len(first.events)


def test_outbox_seqs_and_the_watermark_have_no_gaps_under_concurrent_ingest_writers(
    engine: Any,
) -> None:
    bodies = [report(claim(subject=f"w{i}", value=i + 1)) for i in range(24)]
    pending = [_prepared(engine, b) for b in bodies]
    marks: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # the watermark read while writers commit never goes backwards
        while not stop.is_set():
            marks.append(views.watermark(engine))

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda p: outbox.accept_report(engine, p), pending))
    stop.set()
    watcher.join()
    seqs = _visible_seqs(engine)
    assert seqs == list(range(1, sum(len(p.events) for p in pending) + 1))
    assert marks == sorted(marks)


def test_version_numbers_have_no_gaps_under_two_concurrent_reconcilers(engine: Any) -> None:
    batches = [
        [
            e
            for i in range(side, 20, 2)
            for e in _events(
                engine,
                report(claim(subject=f"k{i}", value=i + 1), claim(subject=f"k{i}", value=i + 5)),
            )
        ]
        for side in (0, 1)
    ]
    barrier = threading.Barrier(2)

    def run(events: list[Any]) -> list[int]:
        reconciler = Reconciler(REGISTRY)  # one per "process": no shared cache
        barrier.wait()
        ids: list[int] = []
        for i in range(0, len(events), 6):
            written, _ = reconciler.apply(engine, events[i : i + 6])
            ids += [w.id for w in written]
        return ids

    with ThreadPoolExecutor(2) as pool:
        announced = [i for ids in pool.map(run, batches) for i in ids]
    with engine.connect() as conn:
        stored = list(conn.execute(select(versions_t.c.id).order_by(versions_t.c.id)).scalars())
    assert gapless(stored) and len(numbers(stored)) > 1  # both partitions: 1, 2, 3 ...
    assert sorted(announced) == stored


def test_one_reconciler_numbers_versions_in_a_second_database_from_its_start(
    engine: Any, tmp_path: Any
) -> None:
    """The partitions' rows are made by the migration and once per process; a database that
    lacks them anyway (replaced under a running reconciler, its rows deleted while empty)
    gets them on its first batch."""
    reconciler = Reconciler(REGISTRY)
    events = _events(engine, report(claim(value=12000)))
    reconciler.apply(engine, events)
    second = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
    create_schema(second)
    with second.begin() as conn:
        conn.execute(text("DELETE FROM partition_fences"))
    reconciler.apply(second, events)
    with second.connect() as conn:
        stored = list(conn.execute(select(versions_t.c.id)).scalars())
    assert stored and gapless(stored)


def test_the_same_events_given_to_two_reconcilers_at_once_apply_once(engine: Any) -> None:
    events = _events(engine, report(claim(value=12000), claim(value=9000, attributed_to="b")))
    barrier = threading.Barrier(2)

    def run(_: int) -> int:
        reconciler = Reconciler(REGISTRY)
        barrier.wait()
        return reconciler.apply(engine, events)[1]

    with ThreadPoolExecutor(2) as pool:
        applied = sorted(pool.map(run, range(2)))
    assert applied == [0, len(events)]
    history = views.history(engine, "dprk-troops-kursk", "personnel_deployed", 0, 100)
    # one report, one recorded time: its two claims make one version (the first claim alone
    # was never what a reader at any recorded time saw)
    assert [v["version"] for v in history] == [1]


def test_long_unicode_keys_are_stored_and_found_exactly_as_posted(engine: Any) -> None:
    subject = ("Ünïcødé-ключ-鍵-🔑-" * 40)[:512]
    body = report(claim(subject=subject, value=7), report_id="r-" + "ж" * 200)
    Reconciler(REGISTRY).apply(engine, _events(engine, body))
    found = views.consensus(engine, subject, "personnel_deployed", None, None)
    assert found is not None and found["subject"] == subject and found["best"] == 7
    assert views.snapshot(engine, None, None, None, 10)[0]["subject"] == subject


def test_keys_page_in_bytewise_order_as_on_sqlite(engine: Any) -> None:
    """A linguistic collation would put 'a' before 'B' and '_' before '0'; cursors and the
    claim order behind consensus must not depend on the database's locale."""
    subjects = ["a_b", "a0", "B", "a", "a-b", "Z", "é", "z", "ab"]
    for i, s in enumerate(subjects):
        Reconciler(REGISTRY).apply(
            engine, _events(engine, report(claim(subject=s, value=i + 1), report_id=f"order-{i}"))
        )
    seen: list[str] = []
    after = None
    while page := views.snapshot(engine, None, None, after, 2):
        seen += [p["subject"] for p in page]
        after = (page[-1]["subject"], page[-1]["attribute"])
    assert seen == sorted(subjects)


def test_iso_times_and_their_sentinels_compare_in_time_order(engine: Any) -> None:
    times = [
        "2025-01-10T00:00:00.000000Z",
        MAX_TIME,
        "2024-12-31T23:59:59.999999Z",
        MIN_TIME,
        "2025-01-09T23:00:00.500000Z",
    ]
    with engine.begin() as conn:
        conn.execute(
            outbox.outbox.insert(),
            [
                {"event_id": f"t{i}", "stream": "s", "body": "{}", "created_at": t}
                for i, t in enumerate(times)
            ],
        )
        ordered = list(
            conn.execute(
                select(outbox.outbox.c.created_at).order_by(outbox.outbox.c.created_at)
            ).scalars()
        )
        between = list(
            conn.execute(
                select(outbox.outbox.c.created_at).where(
                    outbox.outbox.c.created_at > "2025-01-01T00:00:00.000000Z",
                    outbox.outbox.c.created_at < MAX_TIME,
                )
            ).scalars()
        )
    assert ordered == sorted(times)
    assert sorted(between) == ["2025-01-09T23:00:00.500000Z", "2025-01-10T00:00:00.000000Z"]


def test_a_replay_into_the_other_backend_rebuilds_identical_projections(
    engine: Any, tmp_path: Any, postgres_url: str
) -> None:
    from services.cli import demo_reports
    from services.reconcile.replay import projection_hash, replay

    reconciler = Reconciler(REGISTRY)
    for body in demo_reports():
        reconciler.apply(engine, _events(engine, body))
    other = (
        f"sqlite:///{tmp_path / 'other.db'}"
        if engine.dialect.name == "postgresql"
        else postgres_url
    )
    target = make_engine(other)
    replay(engine, target, Reconciler(REGISTRY))
    assert projection_hash(target) == projection_hash(engine)
    target.dispose()


def test_a_batch_stores_each_new_report_once_and_answers_repeats_and_conflicts(
    engine: Any,
) -> None:
    a, b, stored = (report(claim(value=v)) for v in (1, 2, 3))
    outbox.accept_report(engine, _prepared(engine, stored))
    changed = {**a, "claims": [claim(value=99)]}
    items = [_prepared(engine, body) for body in (a, a, changed, b, stored)]
    first, repeat, conflict, other, earlier = outbox.accept_reports(engine, items)
    assert isinstance(first, outbox.Accepted) and first.created
    assert isinstance(repeat, outbox.Accepted) and not repeat.created
    assert repeat.response == first.response
    assert isinstance(conflict, outbox.ReportConflict)
    assert isinstance(other, outbox.Accepted) and other.created
    assert isinstance(earlier, outbox.Accepted) and not earlier.created
    assert int(first.response["token"]) < int(other.response["token"])
    assert _visible_seqs(engine) == list(range(1, 1 + sum(len(items[i].events) for i in (0, 3, 4))))


async def test_the_relay_sends_a_row_that_committed_while_it_was_reading(
    db_url: str, redis_server: Any
) -> None:
    """The relay reads new rows above the highest seq it sent: a writer holding a lower seq
    open while a later one commits must not be stepped over."""
    import asyncio

    from redis.asyncio import Redis

    from services.ingest.relay import Relay

    engine = make_engine(db_url)
    await asyncio.to_thread(create_schema, engine)
    redis = Redis.from_url(redis_server.url)
    relay = Relay(engine, redis)
    first, second = (_prepared(engine, report(claim(value=v))) for v in (1, 2))
    await asyncio.to_thread(outbox.accept_report, engine, _prepared(engine, report()))
    assert await relay.publish_once() > 0  # the relay's high-water mark is now set
    holding = engine.connect()
    transaction = holding.begin()
    later = None
    try:
        await asyncio.to_thread(outbox._accept, holding, [first])  # a seq drawn, uncommitted
        later = asyncio.create_task(asyncio.to_thread(outbox.accept_report, engine, second))
        if engine.dialect.name == "postgresql":
            await asyncio.to_thread(wait_for, lambda: advisory_waiters(engine) == 1)
        await relay.publish_once()
    finally:
        await asyncio.to_thread(transaction.commit)
        holding.close()
    if later is not None:
        await later
    while await relay.publish_once():
        pass
    await relay.flush_marks()  # published_at is recorded in batches, after the XADDs
    with engine.connect() as conn:
        unsent = conn.execute(
            select(outbox.outbox.c.seq).where(outbox.outbox.c.published_at.is_(None))
        ).all()
    assert unsent == []
    await redis.aclose()
    engine.dispose()
