"""Structured logs: JSON lines, and one trace id from the ingest request to the version."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Cluster, system, wait_for
from tests.factories import claim, report

SUBJECT = "trace-subject"
ATTRIBUTE = "personnel_deployed"


def _parse(log: Path) -> list[dict[str, Any]]:
    text = log.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _lines(c: Cluster, name: str) -> list[dict[str, Any]]:
    return _parse(c.services[name].log)


def _find(c: Cluster, name: str, **fields: Any) -> dict[str, Any] | None:
    return next(
        (line for line in _lines(c, name) if all(line.get(k) == v for k, v in fields.items())),
        None,
    )


def _history(query: str, **headers: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{query}/v1/consensus/{SUBJECT}/{ATTRIBUTE}/history", headers=headers)
    return list(r.json().get("items", [])) if r.status_code == 200 else []


def test_a_request_id_follows_a_report_from_ingest_to_its_version(tmp_path: Path) -> None:
    with system(tmp_path) as c:
        logs = {
            name: c.start(name, log_level="info").log for name in ("ingest", "reconcile", "query")
        }
        ingest, query = c.url("ingest"), c.url("query")
        trace = f"e2e-{uuid.uuid4().hex[:12]}"
        body = report(claim(subject=SUBJECT, value=12000), report_id="trace-report-1")

        r = httpx.post(f"{ingest}/v1/reports", json=body, headers={"X-Request-ID": trace})
        assert r.status_code == 202
        assert r.headers["x-request-id"] == trace

        items = wait_for(lambda: _history(query), timeout_s=15)
        cause = items[0]["cause"]
        assert cause["report_id"] == "trace-report-1"
        assert cause["trace_id"] == trace

        # ingest: the request line and the acceptance, both with the id
        request = wait_for(lambda: _find(c, "ingest", event="request", trace_id=trace))
        assert request["route"] == "/v1/reports" and request["status"] == 202
        assert request["service"] == "ingest"
        accepted = _find(c, "ingest", event="report accepted", trace_id=trace)
        assert accepted is not None and accepted["report_id"] == "trace-report-1"
        # reconcile: the version it wrote, with the causing event and the same id
        version = wait_for(lambda: _find(c, "reconcile", event="version written", trace_id=trace))
        assert (version["subject"], version["attribute"], version["version"]) == (
            SUBJECT,
            ATTRIBUTE,
            1,
        )
        assert version["event_id"] == cause["event_id"]
        assert version["report_id"] == "trace-report-1"
        # query: its own requests are logged with their ids
        asked = f"q-{uuid.uuid4().hex[:8]}"
        assert _history(query, **{"X-Request-ID": asked})
        line = wait_for(lambda: _find(c, "query", event="request", trace_id=asked))
        assert line["route"] == "/v1/consensus/{rest:path}" and line["status"] == 200

        # a retry with another id is the same report: its version keeps the first id
        retry = httpx.post(f"{ingest}/v1/reports", json=body, headers={"X-Request-ID": "other"})
        assert retry.status_code == 200 and retry.headers["x-request-id"] == "other"
        assert _find(c, "ingest", event="report retried", trace_id="other") is not None
        assert [i["cause"]["trace_id"] for i in _history(query)] == [trace]

        # W3C traceparent: its trace-id part is the id; a retraction carries it too
        claim_id = r.json()["claim_ids"][0]
        trace_id = uuid.uuid4().hex
        parent = f"00-{trace_id}-00f067aa0ba902b7-01"
        r = httpx.post(
            f"{ingest}/v1/claims/{claim_id}/retraction",
            json={"reason": "misquoted"},
            headers={"traceparent": parent},
        )
        assert r.status_code == 202 and r.headers["x-request-id"] == trace_id
        later = wait_for(lambda: [i for i in _history(query) if i["version"] > 1], timeout_s=15)
        assert later[0]["cause"]["trace_id"] == trace_id
        wait_for(lambda: _find(c, "reconcile", event="version written", trace_id=trace_id))

        # no id given: one is made, and answered
        made = httpx.get(f"{query}/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)

    # every line of every service (uvicorn's and FastStream's included) is a JSON object
    for name, log in logs.items():
        lines = _parse(log)
        assert lines
        for line in lines:
            assert {"timestamp", "level", "logger", "service", "event"} <= set(line), line
            assert line["service"] == name
            assert line["timestamp"].endswith("Z")
