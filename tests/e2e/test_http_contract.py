"""Public contract details over HTTP (docs/architecture.md §6), against one running system."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.conftest import Cluster
from tests.factories import claim, report


def _post(c: Cluster, body: dict) -> dict:  # type: ignore[type-arg]
    answer = httpx.post(f"{c.url('ingest')}/v1/reports", json=body, timeout=10)
    assert answer.status_code in (200, 202), answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_encoded_slash_in_subject_routes_to_the_right_key(running: Cluster) -> None:
    subject, attribute = "ukraine/kursk oblast ✓", "troops/present"
    token = _post(running, report(claim(subject=subject, attribute=attribute, value=7)))["token"]
    path = f"/v1/consensus/{quote(subject, safe='')}/{quote(attribute, safe='')}"
    got = httpx.get(f"{running.url('query')}{path}", params={"min_token": token}, timeout=10)
    assert got.status_code == 200, got.text
    assert (got.json()["subject"], got.json()["attribute"], got.json()["best"]) == (
        subject,
        attribute,
        7,
    )
    same = httpx.get(
        f"{running.url('query')}/v1/consensus", params={"subject": subject, "attribute": attribute}
    )
    assert same.json()["version"] == got.json()["version"]


def test_malformed_time_parameter_is_a_422_naming_it(running: Cluster) -> None:
    for name in ("as_of", "recorded_as_of", "valid_at"):
        got = httpx.get(
            f"{running.url('query')}/v1/consensus/a/b", params={name: "last tuesday-ish"}
        )
        assert got.status_code == 422
        assert got.headers["content-type"] == "application/problem+json"
        assert got.json()["errors"][0]["pointer"] == f"/{name}"


def test_min_token_never_written_times_out_with_a_clear_504(running: Cluster) -> None:
    got = httpx.get(
        f"{running.url('query')}/v1/snapshot", params={"min_token": "999999999"}, timeout=30
    )
    assert got.status_code == 504
    assert "not applied" in got.json()["detail"]


def test_numbers_come_back_exactly_as_claimed(running: Cluster) -> None:
    body = report(claim(subject="exactness", value={"low": 0, "best": 3, "high": 11999}))
    token = _post(running, body)["token"]
    got = httpx.get(
        f"{running.url('query')}/v1/consensus/exactness/personnel_deployed",
        params={"min_token": token},
        timeout=10,
    ).json()
    assert (got["low"], got["best"], got["high"]) == (0, 3, 11999)


def test_batch_rejects_only_the_bad_items(running: Cluster) -> None:
    good = report(claim(subject="batch-good", value=5))
    bad = report(claim(subject="batch-bad", value=-5))
    answer = httpx.post(f"{running.url('ingest')}/v1/reports:batch", json=[good, bad, good])
    assert answer.status_code == 200
    statuses = [r["status"] for r in answer.json()["results"]]
    assert statuses == [202, 422, 200]
    assert answer.json()["results"][1]["errors"][0]["pointer"].startswith("/claims/0/value")
    assert httpx.get(f"{running.url('query')}/v1/reports/{bad['report_id']}").status_code == 404


def test_every_service_answers_health_readiness_metrics_and_openapi(running: Cluster) -> None:
    for name in ("ingest", "reconcile", "query"):
        base = running.url(name)
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["status"] == "ready" and set(ready["dependencies"]) >= {"database", "redis"}
        assert httpx.get(f"{base}/metrics").status_code == 200
        assert httpx.get(f"{base}/openapi.json").status_code == 200
