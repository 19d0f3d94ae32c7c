"""Learning by itself, as a user meets it: the services at their defaults (no command, no
setting), real processes over HTTP. Posted gates where four sources that copy a feed
outvote four independent ones; within a minute the learned copying turns the answer,
the explanation says why, and replaying the log rebuilds the same projections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claimledger.client import Client
from services.infra.db import make_engine
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from tests.conftest import Cluster, system, wait_for

pytestmark = pytest.mark.e2e

INDEPENDENT = ("alpha", "beta", "gamma", "delta")
MIRRORS = ("mirror-0", "mirror-1", "mirror-2", "mirror-3")


def _reports() -> list[dict[str, Any]]:
    """30 flights. Each independent source is wrong on a different fifth of them; the
    feed is wrong on every third, and its mirrors repeat it an hour later."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for i in range(30):
        truth = f"B{i}"
        for n, source in enumerate(INDEPENDENT):
            gate = f"X{n}-{i}" if i % 5 == n else truth
            by_source.setdefault(source, []).append(_gate(i, gate))
        feed = f"C{i}" if i % 3 == 0 else truth
        for source in ("feed", *MIRRORS):
            by_source.setdefault(source, []).append(_gate(i, feed))
    return [
        {
            "report_id": f"gates-{source}",
            "source": {"id": source, "kind": "news"},
            "published_at": "2026-11-02T07:00:00Z"
            if source.startswith("mirror")
            else "2026-11-02T06:00:00Z",
            "claims": claims,
        }
        for source, claims in by_source.items()
    ]


def _gate(i: int, value: str) -> dict[str, Any]:
    return {"subject": f"flight-{i}", "attribute": "departure gate", "value": value}


@pytest.fixture
def at_defaults(tmp_path: Path) -> Iterator[Cluster]:
    """The three services configured as a user runs them: the suite's switch that turns
    learning off (tests/conftest.py) is removed from their environment."""
    with system(tmp_path) as cluster:
        cluster.env.pop("CLAIMLEDGER_REWEIGH_EVERY_S", None)
        for name in ("ingest", "reconcile", "query"):
            cluster.start(name)
        yield cluster


def test_learned_copying_turns_a_consensus_without_any_command(
    at_defaults: Cluster, tmp_path: Path
) -> None:
    with Client(at_defaults.url("ingest"), at_defaults.url("query"), timeout=60) as client:
        written = client.post_reports(_reports())
        token = max(int(r["token"]) for r in written)
        first = client.consensus("flight-3", "departure gate", min_token=token)
        assert first["value"] == "C3"  # five voices for the feed's error against four

        def learned() -> dict[str, Any] | None:
            answer = client.consensus("flight-3", "departure gate")
            return answer if answer["value"] == "B3" else None

        answer = wait_for(learned, timeout_s=90, interval_s=1.0)
        assert "4 sources found copying others count once with them" in answer["explanation"]
        assert answer["cause"]["report_id"] is None  # caused by the learning event
        wrong = [
            i
            for i in range(30)
            if client.consensus(f"flight-{i}", "departure gate")["value"] != f"B{i}"
        ]
        assert wrong == []

    registry = AttributeRegistry.load()
    source = make_engine(at_defaults.env["CLAIMLEDGER_DATABASE_URL"])
    target = make_engine(f"sqlite:///{tmp_path / 'replayed.db'}")
    replay(source, target, Reconciler(registry))
    assert projection_hash(target) == projection_hash(source)
