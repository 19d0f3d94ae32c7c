"""Hostile and edge input over HTTP (issue #24, items 2, 6, 7, 10, 11a).

Every case answers a 4xx problem naming the field (or the idempotent 200/202), never a 500,
and writes nothing it cannot apply. Real service processes, as in test_security.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from services.infra.db import create_schema, make_engine
from services.infra.keys import create_key, revoke_key
from tests.conftest import Cluster, wait_for
from tests.factories import claim, report

PROBLEM = "application/problem+json"
EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
MIB = 1024 * 1024


def _db(c: Cluster) -> sqlite3.Connection:
    return sqlite3.connect(c.db_url.removeprefix("sqlite:///"))


def _stored_reports(c: Cluster, report_id: str) -> int:
    with _db(c) as db:
        row = db.execute("SELECT count(*) FROM reports WHERE report_id = ?", (report_id,))
        return int(row.fetchone()[0])


def _outbox_rows(c: Cluster, *needles: str) -> int:
    where = " AND ".join("body LIKE ?" for _ in needles)
    with _db(c) as db:
        row = db.execute(f"SELECT count(*) FROM outbox WHERE {where}", [f"%{n}%" for n in needles])
        return int(row.fetchone()[0])


def _problem(got: httpx.Response, status: int, pointer: str) -> None:
    assert got.status_code == status, got.text
    assert got.headers["content-type"] == PROBLEM
    pointers = [e["pointer"] for e in got.json().get("errors", [])]
    assert any(p.startswith(pointer) for p in pointers), pointers


def _applied_claim(c: Cluster, subject: str) -> tuple[str, str]:
    """(claim id, token) of a new report's claim, once the reconciler has applied it."""
    posted = httpx.post(f"{c.url('ingest')}/v1/reports", json=report(claim(subject=subject)))
    assert posted.status_code == 202, posted.text
    token = posted.json()["token"]
    got = httpx.get(
        f"{c.url('query')}/v1/consensus/{subject}/personnel_deployed",
        params={"min_token": token},
        timeout=15,
    )
    assert got.status_code == 200, got.text
    return posted.json()["claim_ids"][0], token


# --- 2 / 7. times the store cannot represent are refused at the door ------------------------


@pytest.mark.parametrize(
    ("where", "edge", "pointer"),
    [
        ("published_at", EDGES[0], "/published_at"),
        ("published_at", EDGES[1], "/published_at"),
        # a valid time is the world date as written (0001-01-01 at +14:00 is that day),
        # so only the day after 9999-12-31 is out of range
        ("valid_time", EDGES[1], "/claims/0/valid_time"),
        ("valid_time_start", EDGES[1], "/claims/0/valid_time"),
    ],
)
def test_report_times_past_the_calendar_edges_are_422_and_nothing_is_stored(
    running: Cluster, where: str, edge: str, pointer: str
) -> None:
    report_id = f"edge-{where}-{edge[:4]}"
    body = report(report_id=report_id)
    if where == "published_at":
        body["published_at"] = edge
    elif where == "valid_time":
        body["claims"][0]["valid_time"] = edge
    else:
        body["claims"][0]["valid_time"] = {"start": edge, "end": None}
    _problem(httpx.post(f"{running.url('ingest')}/v1/reports", json=body), 422, pointer)
    assert _stored_reports(running, report_id) == 0


@pytest.mark.parametrize(
    "phrase", ["since 9999-12-31", "winter 9999", "9999-12-31", "after 9999-12-31"]
)
def test_valid_time_ending_past_year_9999_is_422(running: Cluster, phrase: str) -> None:
    body = report(claim(valid_time=phrase))
    _problem(
        httpx.post(f"{running.url('ingest')}/v1/reports", json=body), 422, "/claims/0/valid_time"
    )


@pytest.mark.parametrize("edge", EDGES)
def test_correction_effective_at_past_the_edges_is_422_and_writes_nothing(
    running: Cluster, edge: str
) -> None:
    claim_id, _ = _applied_claim(running, f"edge-effective-{edge[:4]}")
    ingest = running.url("ingest")
    before = _outbox_rows(running, claim_id)
    for path, body in (
        (f"/v1/claims/{claim_id}/retraction", {"reason": "r", "effective_at": edge}),
        (
            f"/v1/claims/{claim_id}/assessment",
            {"reason": "r", "rank": "preferred", "effective_at": edge},
        ),
    ):
        _problem(httpx.post(f"{ingest}{path}", json=body), 422, "/effective_at")
    rating = {"reliability": "B", "rationale": "r", "effective_at": edge}
    _problem(httpx.put(f"{ingest}/v1/sources/edge-src/rating", json=rating), 422, "/effective_at")
    assert _outbox_rows(running, claim_id) == before
    assert _outbox_rows(running, "edge-src") == 0


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("name", ["as_of", "recorded_as_of", "valid_at"])
def test_query_times_past_the_edges_are_422_naming_the_parameter(
    running: Cluster, edge: str, name: str
) -> None:
    got = httpx.get(f"{running.url('query')}/v1/consensus/a/b", params={name: edge})
    _problem(got, 422, f"/{name}")


def test_a_report_from_year_999_is_applied_and_time_travel_before_1000_is_right(
    running: Cluster,
) -> None:
    subject = "year-999"
    old = report(claim(subject=subject, value=5), published_at="0999-06-01")
    new = report(claim(subject=subject, value=7), published_at="2025-01-01")
    posted = [httpx.post(f"{running.url('ingest')}/v1/reports", json=b) for b in (old, new)]
    assert [p.status_code for p in posted] == [202, 202], [p.text for p in posted]
    query = f"{running.url('query')}/v1/consensus/{subject}/personnel_deployed"
    token = posted[1].json()["token"]
    assert httpx.get(query, params={"min_token": token}, timeout=15).json()["best"] == 7
    then = httpx.get(query, params={"as_of": "0999-12-31"})
    assert then.status_code == 200, then.text
    assert then.json()["best"] == 5  # not today's consensus
    assert httpx.get(query, params={"as_of": "0998"}).status_code == 404
    applied = httpx.get(f"{running.url('query')}/v1/reports/{old['report_id']}").json()
    assert applied["applied"] is True
    assert httpx.get(query, params={"as_of": "9999-12"}).json()["best"] == 7


def test_a_value_of_400_digits_is_422_naming_it(running: Cluster) -> None:
    text = json.dumps(report(claim(), report_id="digits-400")).replace("12000", "9" * 400)
    got = httpx.post(
        f"{running.url('ingest')}/v1/reports",
        content=text,
        headers={"Content-Type": "application/json"},
    )
    _problem(got, 422, "/claims/0/value")
    assert _stored_reports(running, "digits-400") == 0


# --- 7 / 10. batches: encoding, nesting, line breaks, sizes ----------------------------------


def _batch(c: Cluster, content: bytes, kind: str = "application/x-ndjson") -> httpx.Response:
    return httpx.post(
        f"{c.url('ingest')}/v1/reports:batch",
        content=content,
        headers={"Content-Type": kind},
        timeout=60,
    )


@pytest.mark.parametrize(
    "content",
    [
        b'[{"source": {"id": "\xff\xfe"}}]',
        b'{"source": {"id": "\xc3\x28"}}\n',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"\n",
    ],
    ids=["utf8-array", "utf8-ndjson", "deep-array", "deep-ndjson"],
)
def test_malformed_batches_are_422(running: Cluster, content: bytes) -> None:
    _problem(_batch(running, content), 422, "/")


def test_ndjson_lines_end_at_newline_only(running: Cluster) -> None:
    quote_text = "line\u2028separator, next\u0085line, and\u2029paragraph"
    body = report(claim(subject="ndjson-separators", quote=quote_text), report_id="ndjson-seps")
    line = json.dumps(body, ensure_ascii=False).encode()
    got = _batch(running, line + b"\n")
    assert got.status_code == 200, got.text
    assert [r["status"] for r in got.json()["results"]] == [202]
    query = running.url("query")

    def applied() -> bool:  # the report is listed once accepted; its claims once applied
        got = httpx.get(f"{query}/v1/reports/ndjson-seps")
        return got.status_code == 200 and got.json()["applied"]

    wait_for(applied)
    claims = httpx.get(f"{query}/v1/claims", params={"subject": "ndjson-separators"}).json()
    assert [c["quote"] for c in claims["items"]] == [quote_text]


def test_more_than_1000_reports_in_a_batch_is_413(running: Cluster) -> None:
    lines = [json.dumps(report(report_id=f"too-many-{i}")) for i in range(1001)]
    got = _batch(running, "\n".join(lines).encode())
    assert got.status_code == 413, got.text
    assert got.headers["content-type"] == PROBLEM
    assert _stored_reports(running, "too-many-0") == 0


def test_more_than_50000_claims_in_a_report_is_413(running: Cluster) -> None:
    body = report(*[claim(subject="c", value=1)] * 50_001, report_id="too-many-claims")
    got = httpx.post(f"{running.url('ingest')}/v1/reports", json=body, timeout=60)
    _problem(got, 413, "/claims")
    in_batch = _batch(running, json.dumps(body).encode())
    assert in_batch.status_code == 200, in_batch.text
    assert in_batch.json()["results"][0]["status"] == 413
    assert _stored_reports(running, "too-many-claims") == 0


def _chunks(size: int) -> Any:
    piece = b"x" * MIB
    for _ in range(size // MIB):
        yield piece


@pytest.mark.parametrize("path", ["/v1/reports", "/v1/reports:batch"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_8_mib_are_413(running: Cluster, path: str, chunked: bool) -> None:
    url = f"{running.url('ingest')}{path}"
    headers = {"Content-Type": "application/json"}
    content = _chunks(9 * MIB) if chunked else b"x" * (9 * MIB)
    got = httpx.post(url, content=content, headers=headers, timeout=60)
    assert got.status_code == 413, got.text
    assert got.headers["content-type"] == PROBLEM


# --- 11a. corrections are idempotent -------------------------------------------------------


def _history_length(c: Cluster, subject: str) -> int:
    got = httpx.get(f"{c.url('query')}/v1/consensus/{quote(subject)}/personnel_deployed/history")
    return len(got.json()["items"])


def test_a_retried_retraction_adds_no_event_and_no_version(running: Cluster) -> None:
    subject = "retry-retraction"
    claim_id, _ = _applied_claim(running, subject)
    url = f"{running.url('ingest')}/v1/claims/{claim_id}/retraction"
    first = httpx.post(url, json={"reason": "misattributed"})
    assert first.status_code == 202, first.text
    wait_for(
        lambda: (
            httpx.get(
                f"{running.url('query')}/v1/snapshot", params={"min_token": first.json()["token"]}
            ).status_code
            == 200
        )
    )
    versions = _history_length(running, subject)
    again = httpx.post(url, json={"reason": "misattributed"})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert _outbox_rows(running, "ClaimRetracted", claim_id) == 1
    later = httpx.post(f"{running.url('ingest')}/v1/reports", json=report(claim(subject="tick")))
    token = later.json()["token"]  # everything before it is applied once this is visible
    httpx.get(f"{running.url('query')}/v1/snapshot", params={"min_token": token}, timeout=15)
    assert _history_length(running, subject) == versions


def test_concurrent_identical_retractions_answer_one_event(running: Cluster) -> None:
    claim_id, _ = _applied_claim(running, "concurrent-retraction")
    url = f"{running.url('ingest')}/v1/claims/{claim_id}/retraction"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(url, json={"reason": "dup"}), range(16)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 15 + [202], [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert _outbox_rows(running, "ClaimRetracted", claim_id) == 1


def test_idempotency_key_answers_the_first_result_and_refuses_another_body(
    running: Cluster,
) -> None:
    claim_id, _ = _applied_claim(running, "idempotency-key")
    url = f"{running.url('ingest')}/v1/claims/{claim_id}/assessment"
    headers = {"Idempotency-Key": "assess-once-1"}
    first = httpx.post(url, json={"reason": "checked", "rank": "preferred"}, headers=headers)
    assert first.status_code == 202, first.text
    again = httpx.post(url, json={"reason": "checked", "rank": "preferred"}, headers=headers)
    assert (again.status_code, again.json()) == (200, first.json())
    other = httpx.post(url, json={"reason": "checked", "rank": "deprecated"}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.headers["content-type"] == PROBLEM
    fresh = httpx.post(
        url, json={"reason": "checked", "rank": "preferred"}, headers={"Idempotency-Key": "two"}
    )
    assert fresh.status_code == 202  # a new key is a new assessment, even with the same body
    assert _outbox_rows(running, "ClaimAssessed", claim_id) == 2


def test_a_retried_rating_answers_the_first_result(running: Cluster) -> None:
    url = f"{running.url('ingest')}/v1/sources/retry-rated/rating"
    body = {"reliability": "C", "rationale": "mixed record"}
    first = httpx.put(url, json=body)
    again = httpx.put(url, json=body)
    assert (first.status_code, again.status_code) == (202, 200), again.text
    assert again.json() == first.json()
    assert _outbox_rows(running, "SourceRated", "retry-rated") == 1


# --- 6. authentication fails closed ---------------------------------------------------------


def _keys(c: Cluster) -> Any:
    return make_engine(c.db_url)


def test_revoking_the_last_key_keeps_writes_closed(cluster: Cluster) -> None:
    cluster.start("ingest")
    url = f"{cluster.url('ingest')}/v1/reports"
    engine = _keys(cluster)
    try:
        key_id, secret = create_key(engine, ["write"], name="only")
        auth = {"Authorization": f"Bearer {secret}"}
        wait_for(lambda: httpx.post(url, json=report()).status_code == 401)
        assert httpx.post(url, json=report(), headers=auth).status_code == 202
        assert revoke_key(engine, key_id)
    finally:
        engine.dispose()
    wait_for(lambda: httpx.post(url, json=report(), headers=auth).status_code == 401)
    # one worker refused it; every ingest worker's (or replica's) key cache, filled before
    # the revocation, has expired 5 s after it (KeyChecker's ttl_s)
    time.sleep(5.5)
    for _ in range(3):  # stays closed once the key cache has expired
        assert httpx.post(url, json=report()).status_code == 401
        assert httpx.post(url, json=report(), headers=auth).status_code == 401


def test_open_writes_is_the_explicit_way_back_to_keyless_writes(cluster: Cluster) -> None:
    engine = _keys(cluster)
    try:
        create_schema(engine)
        key_id, _ = create_key(engine, ["write"], name="gone")
        revoke_key(engine, key_id)
    finally:
        engine.dispose()
    cluster.start("ingest", CLAIMLEDGER_OPEN_WRITES="true")
    url = f"{cluster.url('ingest')}/v1/reports"
    assert httpx.post(url, json=report()).status_code == 202
