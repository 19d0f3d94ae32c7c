"""Replay is correct, not only deterministic (issue #25, item 6).

A replay runs the reconciler's code over the stored log; comparing it with the live
projection only shows the same code agrees with itself. Here the rebuilt projection is
compared with the pure engine's answer recomputed from the claims, at every publication
instant, and the `claimledger replay` command is run as an operator runs it: identical
projections exit 0, a projection that the log does not explain exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from services.cli import app, demo_reports
from services.infra.db import make_engine
from services.query import views
from services.reconcile.replay import projection_hash, replay
from services.reconcile.store import Reconciler, versions_t
from shared.codec import claim_from_dict, result_to_dict
from shared.consensus import compute_consensus
from shared.model import ClaimFacts
from shared.timeaxes import iso
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import REGISTRY, Ledger

FIELDS = ("low", "best", "high", "conservative", "status", "support", "dissent", "excluded")
MORE = ("weights", "clusters", "value", "explanation", "segments")

# Published out of order, hedged, timed in the world, and of several kinds.
SCENARIO = [
    report(
        claim("replay-a", value=12000, raw="about 12,000"),
        claim("replay-a", "deployment_status", value="deployed", valid_time="2024-11"),
        source="src-a",
        published_at="2025-02-17T08:00:00Z",
    ),
    report(
        claim("replay-a", value=11000, raw="up to 11,000", attributed_to="nis"),
        claim("replay-b", "killed", value=300, raw="at least 300"),
        source="src-b",
        published_at="2025-03-25T12:00:00Z",
    ),
    report(
        claim("replay-a", value=10000, raw="between 10,000 and 12,000", valid_time="2024-12"),
        claim("replay-a", "deployment_status", value="withdrawn", valid_time="2025-02"),
        claim("replay-b", "killed", value=400, raw="over 400"),
        source="src-c",
        published_at="2025-01-05",
    ),
    report(
        claim("replay-a", value=12000, raw="12,000", attributed_to="nis", cites=["src-a"]),
        source="src-d",
        published_at="2025-02-17T08:00:00Z",  # the same instant as the first
    ),
]


@pytest.fixture
def live(db_url: str) -> Iterator[Ledger]:
    ledger = Ledger.open(db_url)
    for body in [*SCENARIO, *demo_reports()]:
        ledger.post(body)
    yield ledger
    ledger.close()


def _recomputable(claims: list[ClaimFacts]) -> bool:
    """Keys the pure engine can recompute alone (no other key's consensus feeds them)."""
    spec = REGISTRY.spec_for(claims[0].attribute, numeric=claims[0].value.is_numeric)
    return not spec.composite_of and not any(c.value.relative_to for c in claims)


def _expected(claims: list[ClaimFacts], as_of: str) -> dict[str, Any] | None:
    known = [c for c in claims if iso(c.published_at) <= as_of]
    if not known:
        return None
    spec = REGISTRY.spec_for(known[0].attribute, numeric=all(c.value.is_numeric for c in known))
    result = result_to_dict(compute_consensus(known, spec))
    result["value"] = result.pop("value_text")
    return json.loads(json.dumps({k: result[k] for k in FIELDS + MORE}))


def _answer(view: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if view is None else {k: view[k] for k in FIELDS + MORE}


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_replayed_projection_equals_the_consensus_recomputed_from_the_claims(
    live: Ledger, tmp_path: Path
) -> None:
    target = make_engine(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        assert replay(live.engine, target, Reconciler(REGISTRY)) > 0
        assert projection_hash(target) == projection_hash(live.engine)
        by_key: dict[tuple[str, str], list[ClaimFacts]] = {}
        for row in views.list_claims(live.engine, None, None, None, None, 1000):
            c = claim_from_dict(row)
            by_key.setdefault((c.subject, c.attribute), []).append(c)
        checked = 0
        for (subject, attribute), claims in sorted(by_key.items()):
            if not _recomputable(claims):
                continue
            instants = sorted({iso(c.published_at) for c in claims})
            for as_of in [*instants, "2026-01-01T00:00:00.000000Z"]:
                view = views.consensus(target, subject, attribute, as_of, None)
                assert _answer(view) == _expected(claims, as_of), (subject, attribute, as_of)
                checked += 1
        assert checked >= 10
    finally:
        target.dispose()


def test_the_replay_command_says_identical_and_exits_0(
    live: Ledger, db_url: str, tmp_path: Path
) -> None:
    into = f"sqlite:///{tmp_path / 'replayed.db'}"
    result = CliRunner().invoke(
        app, ["replay", "--into", into], env={"CLAIMLEDGER_DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert "identical" in result.output
    assert f"replayed {_event_count(live)} events" in result.output


def test_the_replay_command_exits_1_when_the_projection_is_not_what_the_log_says(
    live: Ledger, db_url: str, tmp_path: Path
) -> None:
    with live.engine.begin() as conn:  # a projection damaged behind the log's back
        conn.execute(delete(versions_t).where(versions_t.c.subject == "replay-b"))
    result = CliRunner().invoke(
        app,
        ["replay", "--into", f"sqlite:///{tmp_path / 'replayed.db'}"],
        env={"CLAIMLEDGER_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1, result.output
    assert "projections differ" in result.output


def _event_count(ledger: Ledger) -> int:
    from services.reconcile.replay import stored_events

    return sum(len(batch) for batch in stored_events(ledger.engine))
