"""The three services as real processes over HTTP, on a real redis-server, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from services.cli import demo_reports
from services.infra.db import make_engine
from tests.conftest import BACKENDS, Cluster, wait_for
from tests.factories import claim, report

pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)


def _count(cluster: Cluster, sql: str, **params: str) -> int:
    engine = make_engine(cluster.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def _up(cluster: Cluster) -> tuple[str, str]:
    for name in ("ingest", "reconcile", "query"):
        cluster.start(name)
    return cluster.url("ingest"), cluster.url("query")


def _applied(query: str, report_id: str) -> bool:
    body = httpx.get(f"{query}/v1/reports/{report_id}").json()
    return bool(body.get("applied"))


def test_posted_report_becomes_readable_consensus(cluster: Cluster) -> None:
    ingest, query = _up(cluster)
    posted = httpx.post(
        f"{ingest}/v1/reports", json=report(claim(value=12000, hedge="approximately"))
    )
    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert set(body) >= {"report_id", "claim_ids", "recorded_at", "token"}

    got = httpx.get(
        f"{query}/v1/consensus/dprk-troops-kursk/personnel_deployed",
        params={"min_token": body["token"]},
        timeout=10,
    )
    assert got.status_code == 200, got.text
    view = got.json()
    assert view["version"] >= 1 and view["best"] == 12000
    assert view["support"] == body["claim_ids"]
    assert view["explanation"]
    assert int(view["token"]) >= int(body["token"])
    assert httpx.get(f"{query}/v1/reports/{body['report_id']}").json()["applied"] is True


def test_report_posted_twice_is_applied_once(cluster: Cluster) -> None:
    ingest, query = _up(cluster)
    r = report(claim(value=11000), claim(attribute="killed", raw="over 3,000"))
    first = httpx.post(f"{ingest}/v1/reports", json=r)
    second = httpx.post(f"{ingest}/v1/reports", json=r)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json() == second.json()
    wait_for(lambda: _applied(query, r["report_id"]))

    events = _count(cluster, "SELECT count(*) FROM events WHERE report_id = :r", r=r["report_id"])
    assert events == 1 + 2  # ReportReceived + one ClaimAsserted per claim
    history = httpx.get(f"{query}/v1/consensus/dprk-troops-kursk/killed/history").json()
    assert [v["version"] for v in history["items"]] == [1]


def test_same_report_id_with_other_content_is_a_conflict(cluster: Cluster) -> None:
    ingest, _ = _up(cluster)
    r = report(claim(value=11000))
    assert httpx.post(f"{ingest}/v1/reports", json=r).status_code == 202
    r["claims"][0]["value"] = 9000
    conflict = httpx.post(f"{ingest}/v1/reports", json=r)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"


def test_invalid_report_names_the_field_and_writes_nothing(cluster: Cluster) -> None:
    ingest, query = _up(cluster)
    bad = report(claim(value=12000), claim(raw="quite a lot of"))
    answer = httpx.post(f"{ingest}/v1/reports", json=bad)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert any(e["pointer"].startswith("/claims/1") for e in answer.json()["errors"])
    assert httpx.get(f"{query}/v1/reports/{bad['report_id']}").status_code == 404
    assert _count(cluster, "SELECT count(*) FROM outbox") == 0


def test_seed_demo_shows_kursk_consensus(cluster: Cluster) -> None:
    ingest, query = _up(cluster)
    token = "0"
    for r in demo_reports():
        answer = httpx.post(f"{ingest}/v1/reports", json=r)
        assert answer.status_code == 202, answer.text
        token = answer.json()["token"]
    view = httpx.get(
        f"{query}/v1/consensus/dprk-troops-kursk/personnel_deployed",
        params={"min_token": token},
        timeout=10,
    ).json()
    assert 10_000 <= view["best"] <= 12_000
    subject = httpx.get(f"{query}/v1/subjects/dprk-troops-kursk").json()
    assert {"personnel_deployed", "killed_or_wounded", "deployment_status"} <= {
        a["attribute"] for a in subject["attributes"]
    }


def test_services_started_together_on_an_empty_database_all_become_ready(
    cluster: Cluster,
) -> None:
    cluster.start_together("query", "reconcile", "ingest")
    posted = httpx.post(f"{cluster.url('ingest')}/v1/reports", json=report(claim(value=3)))
    assert posted.status_code == 202
