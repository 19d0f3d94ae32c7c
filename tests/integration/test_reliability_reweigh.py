"""Learned reliability on the live path: real redis-server, SQLite and service processes.

`claimledger reweigh` learns scores from the stored claims and appends one
SourceReliabilityLearned event; the reconciler applies it, so versions move with that
event as their cause, and replaying the log rebuilds the same projections."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claimledger.client import ClaimledgerError, Client
from services.infra.db import make_engine
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.settings import CommonSettings
from tests.conftest import Cluster, system, wait_for
from tests.factories import claim, report


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with system(tmp_path_factory.mktemp("reweigh"), "ingest", "reconcile", "query") as c:
        yield c


def _history() -> list[dict[str, Any]]:
    """'census' is always right on 40 towns; 'rumours' is right one time in four. On
    'contested-town' the two disagree one against one."""
    census, rumours = [], []
    for i in range(40):
        truth = 1000 + 10 * i
        census.append(claim(f"town-{i}", "population", value=truth))
        rumours.append(claim(f"town-{i}", "population", value=truth if i % 4 == 0 else truth * 2))
    census.append(claim("contested-town", "population", value=700))
    rumours.append(claim("contested-town", "population", value=600))
    return [
        report(*census, source="census", published_at="2024-01-01"),
        report(*rumours, source="rumours", published_at="2024-01-01"),
        *(
            report(
                claim(f"town-{i}", "population", value=1000 + 10 * i),
                source=f"witness-{i}",
                published_at="2024-01-01",
            )
            for i in range(40)
        ),
    ]


def _reweigh(cluster: Cluster) -> str:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "reweigh"],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_reweighing_moves_the_estimate_with_the_learning_event_as_cause(live: Cluster) -> None:
    with Client(live.url("ingest"), live.url("query")) as client:
        results = client.post_reports(_history())
        token = max(int(r["token"]) for r in results)
        before = client.consensus("contested-town", "population", min_token=token)
        assert before["best"] == 600  # equal weights: the lower of two

        out = _reweigh(live)
        event_id = re.search(r"appended (\S+) \(token (\d+)\)", out)
        assert event_id is not None, out
        after = client.consensus("contested-town", "population", min_token=event_id.group(2))
        assert after["best"] == 700
        history = list(client.history("contested-town", "population"))
        latest = max(history, key=lambda v: v["version"])
        assert latest["cause"]["event_id"] == event_id.group(1)
        assert latest["diff"]["best"] == [600, 700]

        # nothing moved since: a second run appends nothing
        assert "appended" not in _reweigh(live)


def test_replay_after_reweighing_rebuilds_identical_projections(
    live: Cluster, tmp_path: Path
) -> None:
    source = make_engine(live.env["CLAIMLEDGER_DATABASE_URL"])
    target = make_engine(f"sqlite:///{tmp_path / 'replayed.db'}")
    registry = AttributeRegistry.load(CommonSettings().attributes_file)
    replay(source, target, Reconciler(registry))
    assert projection_hash(target) == projection_hash(source)


def test_the_periodic_reweighing_moves_the_estimate_by_itself(tmp_path: Path) -> None:
    with (
        system(tmp_path, "ingest", "reconcile", "query", CLAIMLEDGER_REWEIGH_EVERY_S="1") as c,
        Client(c.url("ingest"), c.url("query")) as client,
    ):
        client.post_reports(_history())

        def learned() -> bool:
            try:
                return client.consensus("contested-town", "population")["best"] == 700
            except ClaimledgerError:  # not applied yet
                return False

        wait_for(learned, timeout_s=60, interval_s=0.5)
        latest = max(client.history("contested-town", "population"), key=lambda v: v["version"])
        assert latest["cause"]["report_id"] is None  # caused by the re-weighting, not a report
