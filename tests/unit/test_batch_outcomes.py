"""A :batch request handed to a batch process (services/ingest/batches.py) is answered as in
the worker's thread: its outcome crosses the process boundary as plain data (pickled) and
comes back as the same answer, the same Problem (status, title, detail, errors) or the same
503 for a lock wait."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from services.infra.db import create_schema, make_engine
from services.infra.http import Problem, busy_answer
from services.infra.keys import KeyChecker
from services.ingest import api, batches
from services.ingest.api import IngestContext
from shared.attributes import AttributeRegistry


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> IngestContext:
    engine = make_engine("sqlite://")
    create_schema(engine)
    context = IngestContext(engine, None, AttributeRegistry.load(), KeyChecker(engine), 4, 0.1)
    monkeypatch.setattr(batches, "_context", context)  # what _start_process sets up there
    return context


def there(body: bytes) -> api.BatchDone:
    """The batch process's path: _accept_there, pickled across, unwrapped."""
    outcome = pickle.loads(pickle.dumps(batches._accept_there(body, "t-1")))
    return batches._unwrap(outcome)


def problem_of(call: Any) -> tuple[Any, ...]:
    with pytest.raises(Problem) as raised:
        call()
    p = raised.value
    return (p.status, p.title, p.detail, p.errors, p.headers, p.extra)


REPORT = {
    "source": {"id": "s"},
    "published_at": "2025-03-01",
    "claims": [{"subject": "k", "attribute": "killed", "value": 3}],
}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps([REPORT] * (api.MAX_REPORTS_PER_BATCH + 1)).encode()],
)
def test_a_refused_batch_is_the_same_problem(ctx: IngestContext, body: bytes) -> None:
    here = problem_of(lambda: api.accept_batch(body, ctx, "t-1"))
    assert problem_of(lambda: there(body)) == here
    assert here[0] in (413, 422)


def test_an_accepted_batch_answers_alike(ctx: IngestContext) -> None:
    bad = {**REPORT, "claims": [{"subject": "k", "attribute": "killed", "value": "many"}]}
    body = json.dumps([REPORT, bad, {**REPORT, "report_id": "r2"}]).encode()
    done = there(body)
    results = json.loads(done.answer)["results"]
    assert [r["status"] for r in results] == [202, 422, 202]
    assert results[1]["errors"][0]["pointer"] == "/claims/0/value"
    assert [(n, created) for _, n, _, created in done.accepted] == [(1, True), (1, True)]
    assert not done.recorded  # counted and logged by the worker (record_accepted)
    again = json.loads(api.accept_batch(body, ctx, "t-1").answer)["results"]
    assert [r["status"] for r in again] == [200, 422, 200]  # stored once: retries now


def test_a_lock_wait_is_the_same_503(ctx: IngestContext, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = OperationalError("INSERT", {}, Exception("database is locked"))

    def busy(*_: Any, **__: Any) -> api.BatchDone:
        raise locked

    monkeypatch.setattr(api, "accept_batch", busy)
    with pytest.raises(Exception) as raised:
        there(b"[]")
    answer, expected = busy_answer(raised.value), busy_answer(locked)
    assert answer is not None and expected is not None
    assert (answer.status_code, answer.body) == (expected.status_code, expected.body)
    assert answer.headers["retry-after"] == expected.headers["retry-after"]
