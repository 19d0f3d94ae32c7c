"""Ingest as several worker processes behind one port (CLAIMLEDGER_INGEST_WORKERS, issue #21):
every acknowledged report is applied, /metrics counts every worker's requests whichever
worker answers the scrape, and the deployment runs one learner, not one per worker."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.loadgen import encode_posts, post_all
from bench.run import report_body
from services.infra.db import make_engine
from tests.conftest import system, wait_for

REPORTS = 240


def _accepted(url: str) -> float:
    # a new connection per scrape: the kernel hands them to either worker
    text = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "claimledger_reports_accepted_total":
                return sample.value
    raise AssertionError("no claimledger_reports_accepted_total")


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    out: list[int] = []
    for task in tasks.iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_two_workers_apply_everything_count_everything_and_learn_once(tmp_path: Path) -> None:
    with system(
        tmp_path,
        "ingest",
        "reconcile",
        CLAIMLEDGER_INGEST_WORKERS="2",
        CLAIMLEDGER_REWEIGH_EVERY_S="0.5",
        # a worker's only spawned child is then its learner (batch processes:
        # tests/e2e/test_ingest_batch_processes.py)
        CLAIMLEDGER_BATCH_PROCESSES="0",
    ) as cluster:
        url = cluster.url("ingest")
        supervisor = cluster.services["ingest"].process.pid
        workers = [p for p in _children(supervisor) if "spawn_main" in _cmdline(p)]
        assert len(workers) == 2

        rnd = random.Random(3)
        bodies = [report_body(i, 50, 1, rnd) for i in range(REPORTS)]
        posted = asyncio.run(
            post_all(url, encode_posts(url, "/v1/reports", bodies), 32, keep_bodies=True)
        )
        assert posted.statuses == {202: REPORTS}
        tokens = [int(json.loads(body)["token"]) for body in posted.bodies]
        assert len(set(tokens)) == REPORTS  # one outbox, one seq order for both workers

        # every scrape, whichever worker answers it, counts both workers' reports
        for _ in range(8):
            assert _accepted(url) == REPORTS

        engine = make_engine(cluster.db_url)
        try:

            def applied() -> bool:
                with engine.connect() as conn:
                    done = conn.exec_driver_sql(
                        "SELECT count(*) FROM events WHERE type = 'ClaimAsserted'"
                    ).scalar_one()
                return int(done) == REPORTS

            wait_for(applied, timeout_s=60, interval_s=0.2)
        finally:
            engine.dispose()

        # the claims changed: the learner runs, in one worker only (its process pool child)
        def learners() -> list[int]:
            return [
                child
                for worker in workers
                for child in _children(worker)
                if "spawn_main" in _cmdline(child)
            ]

        wait_for(learners, timeout_s=30, interval_s=0.2)
        for _ in range(10):  # and stays alone: the other worker's ticks pass too
            assert len(learners()) == 1
            asyncio.run(asyncio.sleep(0.3))

        # its worker killed (-9), the learning process goes too (the supervisor starts
        # another worker; a new learner, if any, is another process)
        (learner,) = learners()
        owner = next(w for w in workers if learner in _children(w))
        os.kill(owner, signal.SIGKILL)
        wait_for(lambda: not _alive(learner), timeout_s=10, interval_s=0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
