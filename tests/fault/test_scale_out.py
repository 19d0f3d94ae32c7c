"""Scale-out: 4 partitions, 3 reconciler processes sharing the consumer group on PostgreSQL,
one killed (-9) mid-load, a replacement added later and another removed gracefully — and
still every claim applied once, per-subject order kept, and projections equal to a
single-process replay of the log into a fresh database."""

from __future__ import annotations

import itertools
import signal
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.infra.db import make_engine
from services.infra.localredis import LocalRedis
from services.reconcile.partitions import MEMBERS_KEY, lease_key
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import CONSUMER_GROUP, partition_of, stream_for
from tests.conftest import Cluster, wait_for
from tests.fault import helpers
from tests.postgres import PostgresServer

pytestmark = pytest.mark.fault

PARTITIONS = 4
SCALE_ENV = {
    "CLAIMLEDGER_PARTITIONS": str(PARTITIONS),
    "CLAIMLEDGER_REPUBLISH_AFTER_S": "5",
    "CLAIMLEDGER_CLAIM_IDLE_MS": "2000",
    "CLAIMLEDGER_LEASE_MS": "3000",  # a dead reconciler's partitions move after 3 s
    "CLAIMLEDGER_FORGET_CONSUMER_AFTER_MS": "2000",
    "CLAIMLEDGER_BATCH_SIZE": "200",
}

# ---- databases: each run gets fresh ones on the suite's PostgreSQL server -----------------


class Databases:
    """Uniquely named databases on the session's PostgreSQL server (tests/postgres.py)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def create(self, label: str) -> str:
        return self.server.create_database()


@pytest.fixture
def databases(postgres_server: PostgresServer) -> Databases:
    # PostgreSQL only: SQLite takes the same code path with one writer (tests/fault's kill
    # tests cover it), and this test is the suite's longest
    return Databases(postgres_server)


# ---- reading what the system did -------------------------------------------------------------


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def _pending(redis: Redis, partitions: int = PARTITIONS) -> dict[str, int]:
    """Pending entries per consumer, over every partition."""
    out: dict[str, int] = defaultdict(int)
    for p in range(partitions):
        try:
            for c in redis.xinfo_consumers(stream_for(p), CONSUMER_GROUP):
                out[_s(c["name"])] += int(c["pending"])
        except ResponseError:
            continue
    return out


def _consumers(redis: Redis) -> set[str]:
    names = set()
    for p in range(PARTITIONS):
        names |= {_s(c["name"]) for c in redis.xinfo_consumers(stream_for(p), CONSUMER_GROUP)}
    return names


def _pending_event_ids(redis: Redis, consumer: str) -> set[str]:
    """The events a consumer holds delivered but unacknowledged."""
    ids = set()
    for p in range(PARTITIONS):
        stream = stream_for(p)
        for row in redis.xpending_range(
            stream, CONSUMER_GROUP, "-", "+", 100_000, consumername=consumer
        ):
            entry = redis.xrange(stream, row["message_id"], row["message_id"])
            if entry:
                ids.add(_event_id(entry[0][1]))
    return ids


def _stream_positions(redis: Redis, partitions: int = PARTITIONS) -> dict[str, tuple[int, int]]:
    """event_id -> (partition, index of its first entry in that partition's stream)."""
    first: dict[str, tuple[int, int]] = {}
    for p in range(partitions):
        for i, (_, fields) in enumerate(redis.xrange(stream_for(p))):
            first.setdefault(_event_id(fields), (p, i))
    return first


def _event_id(fields: dict[bytes, bytes]) -> str:
    import json

    return str(json.loads(fields[b"__data__"])["event_id"])


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _converged(
    engine: Engine, redis_url: str, expected_events: int, partitions: int = PARTITIONS
) -> bool:
    try:
        events = _rows(engine, "SELECT count(*) FROM events")[0][0]
        unconfirmed = _rows(engine, "SELECT count(*) FROM outbox WHERE state = 0")[0][0]
        with closing(Redis.from_url(redis_url, socket_timeout=5)) as redis:
            pending = sum(_pending(redis, partitions).values())
        return events >= expected_events and unconfirmed == 0 and pending == 0
    except (RedisError, OSError, OperationalError):
        return False


def _start_reconciler(cluster: Cluster, consumer: str) -> None:
    cluster.start("reconcile", CLAIMLEDGER_CONSUMER_NAME=consumer, PYTHONFAULTHANDLER="1")
    cluster.services[consumer] = cluster.services.pop("reconcile")


# ---- the test ----------------------------------------------------------------------------------


@pytest.mark.timeout(900)  # a few seconds of load; the margin is for a shared, loaded machine
def test_four_partitions_three_reconcilers_one_killed_apply_every_claim_once_in_order(
    tmp_path: Path, redis_server: LocalRedis, databases: Databases
) -> None:
    db_url = databases.create("live")
    engine = make_engine(db_url)
    redis = Redis.from_url(redis_server.url, socket_timeout=10)
    cluster = Cluster(tmp_path, redis_server.url, db_url, **SCALE_ENV)
    try:
        cluster.start("ingest")
        for name in ("rec-a", "rec-b", "rec-c"):
            _start_reconciler(cluster, name)
        # the three reconcilers have joined and hold the four partitions' leases between them
        wait_for(
            lambda: (
                {_s(m) for m in redis.zrange(MEMBERS_KEY, 0, -1)} == {"rec-a", "rec-b", "rec-c"}
                and all(redis.exists(lease_key(p)) for p in range(PARTITIONS))
            ),
            timeout_s=30,
        )

        reports = helpers.make_reports("scale", 400, 10, keys=150, seed=12)  # 4,000 claims
        loader = helpers.Loader(lambda: cluster.url("ingest"), reports, batch_size=25, pause_s=0.3)
        loader.start()
        t0 = time.monotonic()

        # kill -9 one reconciler while it holds delivered, unacknowledged entries
        wait_for(
            lambda: _rows(engine, "SELECT count(*) FROM events")[0][0] > 600,
            timeout_s=60,
            interval_s=0.05,
        )
        rec_a = cluster.services["rec-a"].process

        def frozen_holding_entries() -> bool:
            # frozen first, then asked: a running rec-a could ack them between the two
            rec_a.send_signal(signal.SIGSTOP)
            if _pending(redis).get("rec-a", 0) > 0:
                return True
            rec_a.send_signal(signal.SIGCONT)
            return False

        wait_for(frozen_holding_entries, timeout_s=60, interval_s=0.005)
        orphaned = _pending_event_ids(redis, "rec-a")
        cluster.stop("rec-a", kill=True)
        print(f"killed rec-a at {time.monotonic() - t0:.1f}s")
        applied_at_kill = _rows(engine, "SELECT count(*) FROM events")[0][0]

        # adding a reconciler is just starting one; removing one gracefully is SIGTERM
        _start_reconciler(cluster, "rec-d")
        wait_for(
            lambda: _rows(engine, "SELECT count(*) FROM events")[0][0] > applied_at_kill + 600,
            timeout_s=60,
        )
        print(f"rec-d applying at {time.monotonic() - t0:.1f}s")
        cluster.stop("rec-b")
        print(f"stopped rec-b at {time.monotonic() - t0:.1f}s")

        acked = loader.finish(timeout_s=180)
        assert acked.claims == 4000
        assert applied_at_kill < acked.events  # the kill hit a moving load
        try:
            wait_for(
                lambda: _converged(engine, redis_server.url, acked.events),
                timeout_s=300,
                interval_s=0.5,
            )
        except AssertionError:
            report = _diagnosis(engine, redis, acked)
            for name, service in list(cluster.services.items()):
                if name.startswith("rec-"):
                    service.process.send_signal(signal.SIGABRT)  # faulthandler: thread stacks
                    service.process.wait(10)
                    report += f"\n== {name}\n" + service.log.read_text()[-6000:]
            raise AssertionError(report) from None

        # the killed consumer's pending entries were reclaimed and applied
        applied_ids = {r[0] for r in _rows(engine, "SELECT event_id FROM events")}
        assert orphaned and orphaned <= applied_ids, (len(orphaned), len(orphaned - applied_ids))
        # and the dead consumer, holding nothing any more, is forgotten by the group
        print(f"converged at {time.monotonic() - t0:.1f}s")
        wait_for(lambda: "rec-a" not in _consumers(redis), timeout_s=30, interval_s=0.5)

        _assert_applied_once(engine, acked)
        _assert_per_subject_order(engine, redis)
        _assert_versions_numbered_in_order(engine)

        # projections equal a single-process replay of the log into a fresh database
        fresh = make_engine(databases.create("replay"))
        try:
            assert replay(engine, fresh, Reconciler(AttributeRegistry.load())) == acked.events
            assert projection_hash(engine) == projection_hash(fresh)
        finally:
            fresh.dispose()
        for name in list(cluster.services):
            assert "Traceback" not in cluster.services[name].log.read_text(), name
    finally:
        cluster.stop_all()
        redis.close()
        engine.dispose()


def _assert_applied_once(engine: Engine, acked: helpers.Acked) -> None:
    ((events, distinct),) = _rows(engine, "SELECT count(*), count(DISTINCT event_id) FROM events")
    assert events == distinct == acked.events
    claim_events = _rows(engine, "SELECT count(*) FROM events WHERE type = 'ClaimAsserted'")[0][0]
    claims = {r[0] for r in _rows(engine, "SELECT claim_id FROM claims")}
    assert claim_events == len(claims) == acked.claims
    assert claims == {cid for ids in acked.reports.values() for cid in ids}
    states = dict(_rows(engine, "SELECT state, count(*) FROM outbox GROUP BY state"))
    assert states == {1: acked.events}, states  # all confirmed applied, none dead-lettered


def _assert_per_subject_order(
    engine: Engine, redis: Redis, partitions: int = PARTITIONS, *, subjects: int = 50
) -> None:
    """For every subject, the claims were applied (event log position = commit order) in
    the order of their entries in the subject's partition stream."""
    in_stream = _stream_positions(redis, partitions)
    applied: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for position, event_id, subject in _rows(
        engine,
        "SELECT position, event_id, subject FROM events WHERE type = 'ClaimAsserted' "
        "ORDER BY position",
    ):
        partition, index = in_stream[event_id]
        assert partition == partition_of(subject, partitions), (subject, partition)
        applied[subject].append((index, position))
    assert len(applied) == subjects
    for subject, order in applied.items():
        indexes = [index for index, _ in order]
        assert indexes == sorted(indexes), f"{subject} applied out of stream order"


def _assert_versions_numbered_in_order(engine: Engine) -> None:
    """Per key: versions 1..n without gaps, recorded time never going back, and the versions
    of each recorded time caused by events applied after the causes of the recorded time
    before it. (Within one recorded time a key's events are one revision, whose versions
    name the event that moved each publication step: docs/architecture.md, so their causes
    follow publication time, not log order.)"""
    rows = _rows(
        engine,
        "SELECT v.subject, v.attribute, v.version, v.rec_from, e.position "
        "FROM versions v JOIN events e ON e.event_id = v.cause_event_id "
        "ORDER BY v.subject, v.attribute, v.version, v.id",
    )
    by_key: dict[tuple[str, str], list[tuple[int, str, int]]] = defaultdict(list)
    for subject, attribute, version, rec_from, position in rows:
        by_key[(subject, attribute)].append((version, rec_from, position))
    assert len(by_key) == 150
    for key, versions in by_key.items():
        numbers = sorted({v for v, _, _ in versions})
        assert numbers == list(range(1, len(numbers) + 1)), key
        recs = [r for _, r, _ in versions]
        assert recs == sorted(recs), key
        causes: dict[str, list[int]] = defaultdict(list)  # rec_from -> cause positions
        for _, rec, position in versions:
            causes[rec].append(position)
        groups = [causes[rec] for rec in sorted(causes)]
        for before, after in itertools.pairwise(groups):
            assert max(before) < min(after), key


def _diagnosis(
    engine: Engine, redis: Redis, acked: helpers.Acked, partitions: int = PARTITIONS
) -> str:
    """What a failed convergence looked like, for the assertion message."""
    lines = [f"acked events {acked.events}"]
    lines.append(f"applied {_rows(engine, 'SELECT count(*) FROM events')[0][0]}")
    outbox = dict(_rows(engine, "SELECT state, count(*) FROM outbox GROUP BY state"))
    lines.append(f"outbox {outbox}")
    for p in range(partitions):
        stream = stream_for(p)
        consumers = {
            _s(c["name"]): (int(c["pending"]), int(c["idle"]))
            for c in redis.xinfo_consumers(stream, CONSUMER_GROUP)
        }
        group = [g for g in redis.xinfo_groups(stream)]
        lines.append(
            f"{stream} len={redis.xlen(stream)} lease={redis.get(lease_key(p))!r} "
            f"consumers={consumers} group={group}"
        )
    lines.append(f"members {redis.zrange(MEMBERS_KEY, 0, -1, withscores=True)}")
    if engine.dialect.name != "postgresql":
        return "\n".join(lines)
    for row in _rows(
        engine,
        "SELECT pid, state, wait_event_type, wait_event, "
        "now() - xact_start, left(query, 80) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ):
        lines.append(f"pg {tuple(row)}")
    return "\n".join(lines)


PAUSE_ENV = {
    **SCALE_ENV,
    "CLAIMLEDGER_PARTITIONS": "2",
    "CLAIMLEDGER_LEASE_MS": "1500",  # the setting: paused 3.3 s, the lease expires
    "CLAIMLEDGER_BATCH_SIZE": "50",
}


@pytest.mark.timeout(900)
def test_a_reconciler_paused_past_its_lease_cannot_commit_after_the_takeover(
    tmp_path: Path, redis_server: LocalRedis, databases: Databases
) -> None:
    """Issue #24 item 11: SIGSTOP a reconciler holding delivered entries for longer than
    its lease; the other takes its partitions over and applies later entries; on SIGCONT
    the paused one's commit must fail (fencing epoch), so per-subject order is kept."""
    db_url = databases.create("paused")
    engine = make_engine(db_url)
    redis = Redis.from_url(redis_server.url, socket_timeout=10)
    cluster = Cluster(tmp_path, redis_server.url, db_url, **PAUSE_ENV)
    try:
        cluster.start("ingest")
        for name in ("rec-a", "rec-b"):
            _start_reconciler(cluster, name)
        wait_for(lambda: all(redis.exists(lease_key(p)) for p in range(2)), timeout_s=30)
        reports = helpers.make_reports("pause", 240, 5, keys=16, seed=7)  # 1,200 claims
        loader = helpers.Loader(lambda: cluster.url("ingest"), reports, batch_size=6, pause_s=0.1)
        loader.start()
        for round_ in range(4):
            # pause whichever holds delivered, unapplied entries: its batch is in flight
            wait_for(lambda: any(_pending(redis, 2).values()), timeout_s=60, interval_s=0.002)
            holder = max(_pending(redis, 2).items(), key=lambda kv: kv[1])[0]
            process = cluster.services[holder].process
            process.send_signal(signal.SIGSTOP)
            time.sleep(3.3)  # the pause under test, not a wait for a condition
            process.send_signal(signal.SIGCONT)
            print(f"round {round_}: paused {holder} for 3.3 s")
        acked = loader.finish(timeout_s=300)
        try:
            wait_for(
                lambda: _converged(engine, redis_server.url, acked.events, 2),
                timeout_s=120,
                interval_s=0.5,
            )
        except AssertionError:
            report = _diagnosis(engine, redis, acked, 2)
            for name, service in list(cluster.services.items()):
                if name.startswith("rec-"):
                    service.process.send_signal(signal.SIGABRT)  # faulthandler: thread stacks
                    service.process.wait(10)
                    report += f"\n== {name}\n" + service.log.read_text()[-8000:]
            raise AssertionError(report) from None
        _assert_applied_once(engine, acked)
        _assert_per_subject_order(engine, redis, 2, subjects=5)
        for name in list(cluster.services):
            assert "Traceback" not in cluster.services[name].log.read_text(), name
    finally:
        cluster.stop_all()
        redis.close()
        engine.dispose()
