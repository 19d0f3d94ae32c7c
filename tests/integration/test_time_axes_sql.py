"""The time axes as a reader sees them, pinned at their edges (issue #25, items 5 and the
`as_of` slicing and incremental-apply properties).

Reports are posted out of publication order (backfills), so that no ordering of storage
rows can stand in for the interval tests; every answer is compared with the consensus
recomputed from scratch by the pure engine over the claims published by then.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.infra.localredis import LocalRedis
from services.query import views
from services.query.main import QuerySettings, create_app
from shared.codec import claim_from_dict, result_to_dict
from shared.consensus import compute_consensus
from shared.model import ClaimFacts
from shared.timeaxes import iso, parse_iso
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import REGISTRY, Ledger

SUBJECT, ATTRIBUTE = "axes-dprk-troops", "personnel_deployed"
SPEC = REGISTRY.spec_for(ATTRIBUTE, numeric=True)
FIELDS = ("low", "best", "high", "conservative", "status", "support", "dissent", "excluded")
MORE = ("weights", "clusters", "explanation")
US = timedelta(microseconds=1)


def _post(ledger: Ledger, published: str, value: int, source: str, **fields: Any) -> None:
    ledger.post(
        report(claim(subject=SUBJECT, value=value, **fields), source=source, published_at=published)
    )


def _claims(ledger: Ledger, subject: str = SUBJECT) -> list[ClaimFacts]:
    rows = views.list_claims(ledger.engine, subject, ATTRIBUTE, None, None, 1000)
    return [claim_from_dict(r) for r in rows]


def _answer(view: dict[str, Any] | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {k: view[k] for k in FIELDS + MORE}


def _recomputed(claims: list[ClaimFacts], as_of: str) -> dict[str, Any] | None:
    """The consensus from scratch over the claims published at or before `as_of`."""
    known = [c for c in claims if iso(c.published_at) <= as_of]
    if not known:
        return None
    result = json.loads(json.dumps(result_to_dict(compute_consensus(known, SPEC))))
    return {k: result[k] for k in FIELDS + MORE}


def _probes(claims: list[ClaimFacts]) -> list[str]:
    """Each publication instant, the microsecond before it, and a day after the last."""
    times = sorted({c.published_at for c in claims})
    return [iso(t) for p in times for t in (p - US, p)] + [iso(times[-1] + timedelta(days=1))]


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    ledger = Ledger.open(db_url)
    yield ledger
    ledger.close()


P1, P2, P3 = "2025-01-10T12:00:00Z", "2025-02-10T12:00:00Z", "2025-03-10T12:00:00Z"


@pytest.fixture
def backfilled(ledger: Ledger) -> Ledger:
    """Published P1 < P2 < P3, posted P2, P3, then P1."""
    _post(ledger, P2, 2000, "src-b")
    _post(ledger, P3, 3000, "src-c")
    _post(ledger, P1, 1000, "src-a")
    return ledger


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_as_of_includes_a_claim_from_its_publication_instant_on(backfilled: Ledger) -> None:
    claims = _claims(backfilled)
    values = {c.published_at: c.value.best for c in claims}
    for as_of in _probes(claims):
        view = views.consensus(backfilled.engine, SUBJECT, ATTRIBUTE, as_of, None)
        assert _answer(view) == _recomputed(claims, as_of), as_of
        if view is not None:  # the answer holds from its own step on, up to (not incl.) its end
            assert view["published_from"] <= as_of
            assert view["published_to"] is None or as_of < view["published_to"]
    at_p2 = views.consensus(backfilled.engine, SUBJECT, ATTRIBUTE, iso(parse_iso(P2)), None)
    assert at_p2 is not None
    assert sorted(values[c.published_at] for c in claims if c.claim_id in _ids(at_p2)) == [
        1000,
        2000,
    ]


def _ids(view: dict[str, Any]) -> set[str]:
    return set(view["support"]) | set(view["dissent"])


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_snapshot_answers_each_key_once_at_every_publication_time(backfilled: Ledger) -> None:
    other = "axes-other-subject"
    backfilled.post(report(claim(subject=other, value=7), source="src-d", published_at=P1))
    claims = _claims(backfilled)
    for as_of in _probes(claims):
        rows = views.snapshot(backfilled.engine, as_of, None, None, 100)
        keys = [(r["subject"], r["attribute"]) for r in rows]
        assert len(keys) == len(set(keys)), f"a key answered twice at {as_of}"
        mine = [r for r in rows if r["subject"] == SUBJECT]
        assert [_answer(r) for r in mine] == [
            a for a in [_recomputed(claims, as_of)] if a is not None
        ], as_of


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_recorded_as_of_shows_each_write_from_its_recording_instant_on(ledger: Ledger) -> None:
    first = ledger.post(report(claim(subject=SUBJECT, value=2000), source="src-b", published_at=P2))
    second = ledger.post(
        report(claim(subject=SUBJECT, value=1000), source="src-a", published_at=P1)
    )
    later = iso(parse_iso(P3))
    r1, r2 = (w.pending.events[0].recorded_at for w in (first, second))
    before = iso(parse_iso(r2) - US)
    then = views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, later, before)
    now = views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, later, r2)
    assert then is not None and then["best"] == 2000 and len(_ids(then)) == 1
    assert now is not None and len(_ids(now)) == 2
    assert (
        views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, later, iso(parse_iso(r1) - US)) is None
    )
    [snap] = views.snapshot(ledger.engine, later, before, None, 100)  # a snapshot, the same
    assert snap["best"] == 2000 and len(_ids(snap)) == 1
    # from the backfill's recording instant on, only what replaced the first answer shows
    [snap] = views.snapshot(ledger.engine, later, r2, None, 100)
    assert len(_ids(snap)) == 2
    # the backfill's past: before it was recorded, nothing was known at P1
    assert views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, iso(parse_iso(P1)), before) is None
    assert views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, iso(parse_iso(P1)), r2) is not None


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_snapshot_pages_in_key_order_and_each_answer_is_its_own_keys(ledger: Ledger) -> None:
    for subject, label in (("page-a", "Alpha"), ("page-b", "Beta")):
        for attribute, value in (("personnel_deployed", 100), ("killed", 5)):
            body = claim(subject=subject, attribute=attribute, value=value, subject_label=label)
            ledger.post(report(body, source=f"src-{subject}", published_at=P1))
    full = views.snapshot(ledger.engine, None, None, None, 100)
    keys = [(r["subject"], r["attribute"]) for r in full]
    assert keys == sorted(keys) and len(keys) == 4
    paged: list[dict[str, Any]] = []
    after = None
    for _ in range(len(full) + 1):  # bounded: a cursor that does not advance must not hang
        page = views.snapshot(ledger.engine, None, None, after, 1)
        if not page:
            break
        assert len(page) == 1  # the page size asked for
        paged += page
        after = (page[-1]["subject"], page[-1]["attribute"])
    assert paged == full
    for subject, label in (("page-a", "Alpha"), ("page-b", "Beta")):
        view = views.consensus(ledger.engine, subject, "killed", None, None)
        assert view is not None
        assert (view["subject"], view["subject_label"], view["best"]) == (subject, label, 5)


# --- the property: incremental apply in any order == batch == recomputation from scratch ------

DAY0 = datetime(2025, 1, 1, tzinfo=UTC)
posts = st.lists(
    st.tuples(
        st.integers(0, 40),  # day
        st.sampled_from([0, 12]),  # hour: same-day claims share or split an instant
        st.sampled_from([800, 1000, 1200, 5000]),
        st.sampled_from(["src-a", "src-b", "src-c"]),
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(posts, st.randoms(use_true_random=False))
def test_as_of_answers_equal_a_recomputation_whatever_the_posting_order(
    posted: list[tuple[int, int, int, str]], rnd: random.Random
) -> None:
    bodies = [
        report(
            claim(subject=SUBJECT, value=value),
            source=source,
            published_at=iso(DAY0 + timedelta(days=day, hours=hour)),
        )
        for day, hour, value, source in posted
    ]
    arrival = list(bodies)
    rnd.shuffle(arrival)
    with tempfile.TemporaryDirectory() as tmp:
        incremental = Ledger.open(f"sqlite:///{Path(tmp) / 'incremental.db'}")
        batch = Ledger.open(f"sqlite:///{Path(tmp) / 'batch.db'}")
        try:
            for body in arrival:  # one report at a time, in arrival order
                incremental.post(body)
            # from scratch: every report stored first, then applied in one batch
            batch.apply(*[batch.accept(b) for b in bodies])
            claims = _claims(incremental)
            assert len(claims) == len(bodies)
            for as_of in _probes(claims):
                expected = _recomputed(claims, as_of)
                for ledger in (incremental, batch):
                    view = views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, as_of, None)
                    assert _answer(view) == expected, as_of
            current = [
                _answer(views.consensus(ledger.engine, SUBJECT, ATTRIBUTE, None, None))
                for ledger in (incremental, batch)
            ]
            assert current[0] == current[1]
        finally:
            incremental.close()
            batch.close()


# --- the same edges through the HTTP API: precisions of as_of, and valid_at ------------------


@pytest.fixture
def api(ledger: Ledger, redis_server: LocalRedis, db_url: str) -> Iterator[TestClient]:
    settings = QuerySettings(database_url=db_url, redis_url=redis_server.url)
    with TestClient(create_app(settings)) as client:
        yield client


def _get(api: TestClient, **params: str) -> Any:
    return api.get(f"/v1/consensus/{SUBJECT}/{ATTRIBUTE}", params=params)


def test_an_as_of_year_month_or_day_includes_the_whole_period(
    ledger: Ledger, api: TestClient
) -> None:
    _post(ledger, "2024-12-31T23:00:00Z", 1000, "src-a")
    _post(ledger, "2025-12-31T22:00:00Z", 3000, "src-b")
    counts = {}
    for as_of in (
        "2023",
        "2024",
        "2025",
        "2024-12",
        "2025-11",
        "2025-12",
        "2025-12-30",
        "2025-12-31",
        "2025-12-31T21:59:59Z",
        "2025-12-31T22:00:00Z",
    ):
        answer = _get(api, as_of=as_of)
        counts[as_of] = 0 if answer.status_code == 404 else len(_ids(answer.json()))
    assert counts == {
        "2023": 0,
        "2024": 1,
        "2025": 2,
        "2024-12": 1,
        "2025-11": 1,
        "2025-12": 2,
        "2025-12-30": 1,
        "2025-12-31": 2,
        "2025-12-31T21:59:59Z": 1,
        "2025-12-31T22:00:00Z": 2,
    }


def test_valid_at_answers_the_value_claimed_for_that_world_date(
    ledger: Ledger, api: TestClient
) -> None:
    _post(ledger, "2025-01-20", 11000, "src-a", valid_time="2024-11")
    _post(ledger, "2025-02-20", 3000, "src-b", valid_time="2025-01")
    answers = {
        day: _get(api, valid_at=day)
        for day in ("2024-10-31", "2024-11-01", "2024-11-30", "2024-12-01", "2025-01-31")
    }
    # segments are half-open [valid_from, valid_to): November's ends where December begins
    assert {d: a.status_code for d, a in answers.items()} == {
        "2024-10-31": 404,
        "2024-11-01": 200,
        "2024-11-30": 200,
        "2024-12-01": 404,
        "2025-01-31": 200,
    }
    assert answers["2024-11-01"].json()["best"] == answers["2024-11-30"].json()["best"] == 11000
    assert answers["2024-11-30"].json()["segment"]["valid_from"] == "2024-11-01"
    assert answers["2025-01-31"].json()["best"] == 3000
    # as_of and valid_at together: before the January report, nothing was said about January
    assert _get(api, valid_at="2025-01-31", as_of="2025-02-01").status_code == 404
    assert _get(api, valid_at="2024-11-30", as_of="2025-02-01").json()["best"] == 11000
