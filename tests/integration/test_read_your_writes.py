"""Read-your-writes without timing (issue #25, item 3).

The reconciler applies partitions independently, so a later write can be applied before an
earlier one. The watermark must then stay below the earlier write's token: a read with
`min_token` = that token waits (and answers 504 when the write never lands), and never
answers without the write. Each test holds one write back on purpose and applies it later,
so the outcome does not depend on how fast anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.infra.localredis import LocalRedis
from services.query import views
from services.query.main import QuerySettings, create_app
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import Ledger, Written

ATTRIBUTE = "personnel_deployed"


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    ledger = Ledger.open(db_url)
    yield ledger
    ledger.close()


def _three_writes(ledger: Ledger, tag: str) -> tuple[Written, Written, Written]:
    a, b, c = (
        ledger.accept(report(claim(subject=f"ryw-{tag}-{n}", value=v), report_id=f"ryw-{tag}-{n}"))
        for n, v in (("a", 1000), ("b", 2000), ("c", 3000))
    )
    assert a.token < b.token < c.token
    return a, b, c


def _visible(ledger: Ledger, written: Written) -> bool:
    subject = written.pending.events[1].subject
    return views.consensus(ledger.engine, subject, ATTRIBUTE, None, None) is not None


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_watermark_stays_below_a_write_applied_after_later_ones(ledger: Ledger) -> None:
    a, b, c = _three_writes(ledger, "mark")
    ledger.apply(b, c)  # the partition holding `a` lags behind
    mark = views.watermark(ledger.engine)
    assert mark < a.token, "the watermark passed a write that is not applied"
    for w in (a, b, c):  # whatever the mark covers is readable
        assert w.token > mark or _visible(ledger, w)
    ledger.apply(a)
    assert views.watermark(ledger.engine) >= c.token
    assert all(_visible(ledger, w) for w in (a, b, c))


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_watermark_is_the_last_write_before_the_oldest_unapplied_one(ledger: Ledger) -> None:
    assert views.watermark(ledger.engine) == 0  # nothing written yet
    first = ledger.accept(report(claim(subject="ryw-exact-0"), report_id="ryw-exact-0"))
    a, b, c = _three_writes(ledger, "exact")
    ledger.apply(first, b, c)
    assert views.watermark(ledger.engine) == first.token  # exactly: `a` comes next
    ledger.apply(a)
    assert views.watermark(ledger.engine) == c.token


@pytest.fixture
def query(ledger: Ledger, redis_server: LocalRedis, db_url: str) -> Iterator[TestClient]:
    """The query service in process (its lifespan: watermark poller, SSE fan-out)."""
    settings = QuerySettings(database_url=db_url, redis_url=redis_server.url, min_token_wait_s=0.5)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_read_with_the_token_of_an_unapplied_write_never_answers_without_it(
    ledger: Ledger, query: TestClient
) -> None:
    a, b, c = _three_writes(ledger, "api")
    ledger.apply(b, c)
    subject = a.pending.events[1].subject
    url = f"/v1/consensus/{subject}/{ATTRIBUTE}"
    waiting = query.get(url, params={"min_token": str(a.token)})
    assert waiting.status_code == 504, waiting.text
    assert int(waiting.json()["token"]) < a.token
    # a later write's token must wait too: it names every write before it
    assert query.get(url, params={"min_token": str(c.token)}).status_code == 504

    ledger.apply(a)
    answered = query.get(url, params={"min_token": str(a.token)})
    assert answered.status_code == 200, answered.text
    assert answered.json()["best"] == 1000
    assert int(answered.json()["token"]) >= c.token
