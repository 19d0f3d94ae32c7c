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


def _resolve(spec: dict, schema: dict) -> dict:  # type: ignore[type-arg]
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _missing(spec: dict, schema: dict, answer: object, at: str) -> list[str]:  # type: ignore[type-arg]
    """Where `answer` lacks a field its schema requires (nested objects and lists too)."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        tries = [_missing(spec, s, answer, at) for s in schema["anyOf"]]
        return min(tries, key=len)
    if isinstance(answer, list) and "items" in schema:
        return [
            m for i, a in enumerate(answer) for m in _missing(spec, schema["items"], a, f"{at}/{i}")
        ]
    if not isinstance(answer, dict) or "properties" not in schema:
        return []
    out = [f"{at}/{name}" for name in schema.get("required", []) if name not in answer]
    for name, sub in schema["properties"].items():
        if name in answer:
            out += _missing(spec, sub, answer[name], f"{at}/{name}")
    return out


def test_every_read_declares_its_answer_and_answers_it(running: Cluster) -> None:
    """Issue #23: each GET under /v1 (but the SSE stream) has a 200 schema naming its
    fields, and a real answer holds every field that schema requires, exactly as stored."""
    subject = "typed answers/one"
    body = report(
        claim(subject=subject, attribute="personnel_deployed", value=7),
        claim(
            subject=subject,
            attribute="killed",
            value={"low": 1, "best": 2, "high": 3},
            valid_time={"start": "2025-01"},
        ),
    )
    token = _post(running, body)["token"]
    q, s = running.url("query"), quote(subject, safe="")
    key = {"subject": subject, "attribute": "personnel_deployed"}
    samples = {
        "/v1/consensus": [("/v1/consensus", {**key, "min_token": token})],
        "/v1/consensus/{rest}": [
            (f"/v1/consensus/{s}/personnel_deployed", {"min_token": token}),
            (f"/v1/consensus/{s}/killed", {"valid_at": "2025-06-01"}),
            (f"/v1/consensus/{s}/killed/history", {}),
        ],
        "/v1/snapshot": [("/v1/snapshot", {"limit": 1})],
        "/v1/subjects": [("/v1/subjects", {"q": subject, "limit": 1})],
        "/v1/subjects/{subject}": [(f"/v1/subjects/{s}", {})],
        "/v1/claims": [("/v1/claims", {"subject": subject, "limit": 1})],
        "/v1/reports/{report_id}": [(f"/v1/reports/{body['report_id']}", {})],
    }
    spec = httpx.get(f"{q}/openapi.json").json()
    reads = {p for p, ops in spec["paths"].items() if p.startswith("/v1/") and "get" in ops}
    assert reads - {"/v1/stream"} == set(samples)
    for path, asks in samples.items():
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        declared = [_resolve(spec, s) for s in schema["schema"].get("anyOf", [schema["schema"]])]
        assert all(d.get("properties") for d in declared), f"{path} declares no fields"
        for url, params in asks:
            got = httpx.get(f"{q}{url}", params=params, timeout=10)
            assert got.status_code == 200, (url, got.text)
            assert _missing(spec, schema["schema"], got.json(), url) == []
    # not filtered nor coerced through the model: a claimed 7 comes back 7, not 7.0, and
    # the fields only some answers carry are kept
    one = httpx.get(f"{q}/v1/consensus", params=key, timeout=10)
    assert (
        '"best":7,' in one.text and one.json()["status"] == "stale" and "fresh_status" in one.json()
    )
    dated = httpx.get(f"{q}/v1/consensus/{s}/killed", params={"valid_at": "2025-06-01"})
    assert dated.json()["segment"]["best"] == 2
