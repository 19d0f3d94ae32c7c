"""POST /v1/reports is served by `services.ingest.api.FastReports` in the plain case and by
the FastAPI route otherwise (issue #21). A client must not be able to tell which: the same
report gets the same answer, a retry through either is the same retry, keys and scopes are
checked the same, and a bad body gets the route's 422 naming the field.

A `+json` media type is read as JSON by the route but never taken by the fast path (only
`application/json` is), which is how these tests reach each one on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.harness.cluster import Cluster, system
from tests.factories import claim, report

KEY = "cl_fast-path-write-key-for-tests-8d1c"


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("fastpath")
    with system(tmp, "ingest", CLAIMLEDGER_BOOTSTRAP_WRITE_KEY=KEY) as cluster:
        yield cluster


def _post(cluster: Cluster, body: object, *, fast: bool, key: str | None = KEY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers["content-type"] = "application/json" if fast else "application/vnd.report+json"
    return httpx.post(
        f"{cluster.url('ingest')}/v1/reports",
        content=json.dumps(body).encode(),
        headers=headers,
        timeout=10,
    )


def test_a_report_and_its_retries_get_one_answer_whichever_path_serves_them(
    ingest: Cluster,
) -> None:
    body = report(claim(subject="fastpath-one", value=1200), report_id="fastpath-one")
    first = _post(ingest, body, fast=True)
    assert first.status_code == 202, first.text
    assert first.headers["x-request-id"]
    answer = first.json()
    assert answer["report_id"] == "fastpath-one" and len(answer["claim_ids"]) == 1
    for fast in (False, True):  # an identical retry, through the route then the fast path
        again = _post(ingest, body, fast=fast)
        assert (again.status_code, again.json()) == (200, answer)
    changed = report(claim(subject="fastpath-one", value=1300), report_id="fastpath-one")
    for fast in (False, True):
        conflict = _post(ingest, changed, fast=fast)
        assert conflict.status_code == 409, conflict.text
        assert conflict.headers["content-type"] == "application/problem+json"


def test_new_reports_through_both_paths_are_answered_alike(ingest: Cluster) -> None:
    answers = {}
    for fast in (True, False):
        body = report(claim(subject=f"fastpath-{fast}", value=7), report_id=f"fastpath-{fast}")
        response = _post(ingest, body, fast=fast)
        assert response.status_code == 202, response.text
        answers[fast] = response.json()
    assert answers[True].keys() == answers[False].keys()
    assert int(answers[True]["token"]) < int(answers[False]["token"])


@pytest.mark.parametrize("fast", [True, False])
def test_keys_are_required_on_both_paths(ingest: Cluster, fast: bool) -> None:
    body = report(claim(subject="fastpath-auth", value=3), report_id=f"fastpath-auth-{fast}")
    missing = _post(ingest, body, fast=fast, key=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = _post(ingest, body, fast=fast, key="cl_not-a-key")
    assert (wrong.status_code, wrong.json()["title"]) == (401, "Invalid API key")


@pytest.mark.parametrize("fast", [True, False])
def test_a_bad_body_gets_the_routes_422_naming_the_field(ingest: Cluster, fast: bool) -> None:
    body = report(claim(subject="", value=3), report_id="fastpath-bad")
    response = _post(ingest, body, fast=fast)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "/claims/0/subject" in [e["pointer"] for e in response.json()["errors"]]
    not_json = _post(ingest, "{not json", fast=fast)
    assert not_json.status_code == 422
