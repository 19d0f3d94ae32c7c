"""A :batch request that arrives while the worker runs one goes to the worker's batch process
(services/ingest/batches.py, issue #21): the two run on two cores. Every report is acknowledged
after its commit and applied exactly once, with one seq order; the batch process does the
work (its CPU time grows); it dies with its worker; and when it is killed with batches in
hand, the worker answers them itself and every report is still stored and applied once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

from bench.loadgen import encode_posts, post_all
from bench.run import report_body
from services.infra.db import make_engine
from tests.conftest import system, wait_for

BATCHES, PER_BATCH, CLAIMS = 16, 100, 5


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _spawned(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _assert_applied_once(db_url: str, claims: int) -> None:
    """Every claim sent is applied, each exactly once."""
    engine = make_engine(db_url)
    try:

        def applied() -> int:
            with engine.connect() as conn:
                return int(
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM events WHERE type = 'ClaimAsserted'"
                    ).scalar_one()
                )

        wait_for(lambda: applied() >= claims, timeout_s=60)
        assert applied() == claims  # each exactly once
    finally:
        engine.dispose()


def test_concurrent_batches_use_the_batch_process_and_apply_once(tmp_path: Path) -> None:
    with system(
        tmp_path,
        "ingest",
        "reconcile",
        CLAIMLEDGER_INGEST_WORKERS="1",
        CLAIMLEDGER_BATCH_PROCESSES="1",
        CLAIMLEDGER_REWEIGH_EVERY_S="0",  # no learner: the one spawned child is the batch one
    ) as cluster:
        url = cluster.url("ingest")
        ingest = cluster.services["ingest"].process.pid
        (batcher,) = _spawned(ingest)  # started and answering before the service is ready
        before = _cpu_s(batcher)

        rnd = random.Random(5)
        batches = [
            [report_body(b * PER_BATCH + i, 40, CLAIMS, rnd) for i in range(PER_BATCH)]
            for b in range(BATCHES)
        ]
        posted = asyncio.run(
            post_all(url, encode_posts(url, "/v1/reports:batch", batches), 2, keep_bodies=True)
        )
        assert posted.statuses == {200: BATCHES}
        results = [r for body in posted.bodies for r in json.loads(body)["results"]]
        assert [r["status"] for r in results] == [202] * (BATCHES * PER_BATCH)
        tokens = {int(r["token"]) for r in results}
        assert len(tokens) == BATCHES * PER_BATCH  # one outbox, one seq order
        # the second connection's batches ran there: 500 claims a batch are ~20 ms of CPU
        assert _cpu_s(batcher) - before > 0.05

        _assert_applied_once(cluster.db_url, BATCHES * PER_BATCH * CLAIMS)

        os.kill(ingest, signal.SIGKILL)
        wait_for(lambda: not _alive(batcher), timeout_s=10, interval_s=0.1)


def test_a_killed_batch_process_loses_nothing(tmp_path: Path) -> None:
    with system(
        tmp_path,
        "ingest",
        "reconcile",
        CLAIMLEDGER_INGEST_WORKERS="1",
        CLAIMLEDGER_BATCH_PROCESSES="1",
        CLAIMLEDGER_REWEIGH_EVERY_S="0",
    ) as cluster:
        url = cluster.url("ingest")
        ingest = cluster.services["ingest"].process.pid
        (batcher,) = _spawned(ingest)
        idle = _cpu_s(batcher)

        def kill_when_busy() -> None:  # -9 while it holds a batch (its CPU moves)
            deadline = time.monotonic() + 30
            while _cpu_s(batcher) - idle < 0.03 and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(batcher, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        rnd = random.Random(9)
        batches = [
            [report_body(b * PER_BATCH + i, 40, CLAIMS, rnd) for i in range(PER_BATCH)]
            for b in range(24)
        ]
        posted = asyncio.run(
            post_all(url, encode_posts(url, "/v1/reports:batch", batches), 2, keep_bodies=True)
        )
        killer.join()
        assert not _alive(batcher)
        log = cluster.services["ingest"].log.read_text()
        assert "a batch process died; its batch runs again in this process" in log
        assert posted.statuses == {200: len(batches)}
        results = [r for body in posted.bodies for r in json.loads(body)["results"]]
        assert len(results) == len(batches) * PER_BATCH
        assert {r["status"] for r in results} <= {200, 202}  # stored; a redone one is a retry
        wait_for(lambda: len(_spawned(ingest)) == 1, timeout_s=30)  # a new batch process

        _assert_applied_once(cluster.db_url, len(batches) * PER_BATCH * CLAIMS)
