"""The three time axes on the seed articles: as_of, recorded_as_of, valid_at, and history."""

from __future__ import annotations

from typing import Any

import pytest

from services.cli import demo_reports
from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.ingest.api import IngestContext, prepare_report
from services.query import views
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.reports import ReportIn
from shared.timeaxes import segment_at
from tests.conftest import BACKENDS
from tests.factories import claim, report

REGISTRY = AttributeRegistry.load()
pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)  # the contract layer
KEY = ("dprk-troops-kursk", "personnel_deployed")
END_OF = {  # a day as a query instant: the whole day is included
    "2025-03-01": "2025-03-01T23:59:59.999999Z",
    "2025-04-01": "2025-04-01T23:59:59.999999Z",
}


@pytest.fixture
def engine(db_url: str) -> Any:
    eng = make_engine(db_url)
    create_schema(eng)
    return eng


def _post(engine: Any, body: dict[str, Any]) -> str:
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=4, tolerance=0.1)
    events = prepare_report(ReportIn.model_validate(body), ctx, None).events
    Reconciler(REGISTRY).apply(engine, events)
    return events[0].recorded_at


def _seed(name: str) -> dict[str, Any]:
    return next(r for r in demo_reports() if name in r["report_id"])


@pytest.fixture
def backfilled(engine: Any) -> tuple[Any, str, str]:
    """The later article is posted first; the earlier-published one is backfilled after."""
    shown_before = _post(engine, _seed("cost"))  # published 2025-03-25
    backfill_at = _post(engine, _seed("return"))  # published 2025-02-17, recorded later
    return engine, shown_before, backfill_at


def test_backfill_changes_as_of_answers_for_the_past(backfilled: tuple[Any, str, str]) -> None:
    engine, _, _ = backfilled
    march = views.consensus(engine, *KEY, END_OF["2025-03-01"], None)
    assert march is not None
    assert march["best"] == 12000 and march["status"] == "single_source"  # only the Feb article
    april = views.consensus(engine, *KEY, END_OF["2025-04-01"], None)
    assert april is not None and len(april["support"]) + len(april["dissent"]) == 2


def test_recorded_as_of_shows_what_was_answered_before_the_backfill(
    backfilled: tuple[Any, str, str],
) -> None:
    engine, shown_before, _ = backfilled
    assert views.consensus(engine, *KEY, END_OF["2025-03-01"], shown_before) is None
    then = views.consensus(engine, *KEY, END_OF["2025-04-01"], shown_before)
    assert then is not None and (then["low"], then["best"], then["high"]) == (10000, 11000, 12000)
    assert then["recorded_to"] is not None  # superseded by the backfill


def test_history_lists_the_original_and_the_corrected_versions(
    backfilled: tuple[Any, str, str],
) -> None:
    engine, _, backfill_at = backfilled
    items = views.history(engine, *KEY, 0, 100)
    assert [v["version"] for v in items] == [1, 2, 3]
    original, corrected_past, corrected_now = items
    assert original["recorded_to"] == backfill_at
    assert corrected_past["published_from"].startswith("2025-02-17")
    assert corrected_past["published_to"].startswith("2025-03-25")
    assert corrected_now["published_to"] is None and corrected_now["recorded_to"] is None
    assert corrected_now["cause"]["report_id"] == "seed-kursk-return-2025-02"
    assert set(corrected_now["diff"]) >= {"best"}


def test_valid_at_reads_the_state_timeline(backfilled: tuple[Any, str, str]) -> None:
    engine, _, _ = backfilled
    status = views.consensus(engine, "dprk-troops-kursk", "deployment_status", None, None)
    assert status is not None
    from datetime import date

    january = segment_at(status["segments"], date(2025, 1, 15))
    march = segment_at(status["segments"], date(2025, 3, 1))
    assert january is not None and january["text"] == "withdrawn"
    assert march is not None and march["text"] == "deployed"


def test_retraction_is_ignored_before_it_and_excluded_after(engine: Any) -> None:
    _post(engine, report(claim(value=12000, attributed_to="A"), published_at="2025-01-10"))
    cid = views.list_claims(engine, *KEY, None, None, 10)[0]["claim_id"]
    from shared.events import CLAIM_RETRACTED, SCHEMA_VERSION, Event
    from shared.timeaxes import now_iso

    retraction = Event(
        "e_retract_1",
        CLAIM_RETRACTED,
        SCHEMA_VERSION,
        now_iso(),
        None,
        {"claim_id": cid, "reason": "misquoted", "effective_at": "2025-02-01T00:00:00.000000Z"},
        subject=KEY[0],
        attribute=KEY[1],
    )
    Reconciler(REGISTRY).apply(engine, [retraction])
    before = views.consensus(engine, *KEY, "2025-01-31T00:00:00.000000Z", None)
    after = views.consensus(engine, *KEY, None, None)
    assert before is not None and before["support"] == [cid]
    assert after is not None and after["excluded"] == [cid] and after["support"] == []


def test_snapshot_pages_through_every_key_with_a_stable_cursor(engine: Any) -> None:
    for i in range(7):
        _post(engine, report(claim(subject=f"s{i}", value=i + 1), published_at="2025-01-01"))
    seen, after = [], None
    while True:
        page = views.snapshot(engine, None, None, after, 3)
        if not page:
            break
        seen += [(p["subject"], p["attribute"]) for p in page]
        after = (page[-1]["subject"], page[-1]["attribute"])
    assert seen == sorted(seen) and len(seen) == 7
