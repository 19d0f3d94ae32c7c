"""Answers that read right (issue #20), through the three services as real processes:
aliases resolve, staleness is judged at the time asked about, reasons are shown."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from claimledger.bulk import run_export
from claimledger.client import Client
from tests.conftest import Cluster, system, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with system(tmp_path_factory.mktemp("reads")) as cluster:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(cluster.start, ("ingest", "reconcile", "query")))
        yield cluster


def _subject() -> str:
    return f"reads-{uuid.uuid4().hex[:10]}"


def _post(live: Cluster, source: str, published: str, *claims: dict[str, Any]) -> dict[str, Any]:
    body = {"source": {"id": source, "kind": "news"}, "published_at": published, "claims": claims}
    r = httpx.post(f"{live.url('ingest')}/v1/reports", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return dict(r.json())


def _read(live: Cluster, subject: str, attribute: str, token: str, **params: str) -> Any:
    r = httpx.get(
        f"{live.url('query')}/v1/consensus/{quote(subject, safe='')}/{quote(attribute, safe='')}",
        params={"min_token": token, **params},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _retract(live: Cluster, claim_id: str, **body: str) -> str:
    """Retracts once the claim is applied (a claim not yet applied is 404 by contract)."""

    def sent() -> httpx.Response | None:
        r = httpx.post(
            f"{live.url('ingest')}/v1/claims/{claim_id}/retraction", json=body, timeout=10
        )
        return None if r.status_code == 404 else r

    r = wait_for(sent, timeout_s=30, interval_s=0.1)
    assert r.status_code == 202, r.text
    return str(r.json()["token"])


def test_aliases_and_case_are_stored_and_read_under_the_canonical_attribute(
    live: Cluster,
) -> None:
    subject = _subject()
    first = _post(
        live,
        "a",
        "2026-11-01",
        {"subject": subject, "attribute": "death toll", "value": 120},
        {"subject": subject, "attribute": "Fuel Price", "value": 3},
    )
    second = _post(
        live, "b", "2026-11-02", {"subject": subject, "attribute": "Killed", "value": 120}
    )
    # the 202 answer says where each claim went; an unknown attribute stays as posted
    assert [(c["subject"], c["attribute"]) for c in first["claims"]] == [
        (subject, "killed"),
        (subject, "Fuel Price"),
    ]
    assert [c["claim_id"] for c in first["claims"]] == first["claim_ids"]
    assert second["claims"][0]["attribute"] == "killed"

    view = _read(live, subject, "killed", second["token"])
    assert (view["best"], view["status"], view["excluded"]) == (120, "settled", [])
    assert sorted(view["support"]) == sorted([first["claim_ids"][0], *second["claim_ids"]])
    by_alias = _read(live, subject, "Death Toll", second["token"])
    assert (by_alias["attribute"], by_alias["version"]) == ("killed", view["version"])


def test_staleness_is_judged_at_the_time_asked_not_by_the_last_event(live: Cluster) -> None:
    subject = _subject()
    claims = [
        _post(live, s, f"2025-06-0{i + 1}", {"subject": subject, "attribute": "killed", "value": v})
        for i, (s, v) in enumerate((("a", 1000), ("b", 1000), ("c", 5000)))
    ]
    token = claims[-1]["token"]
    then = _read(live, subject, "killed", token, as_of="2025-09-01")
    now = _read(live, subject, "killed", token)
    assert (then["status"], then["age_days"]) == ("contested", 91)
    assert then["newest_support_at"].startswith("2025-06-02")
    # read today, June 2025 is more than a year old: stale, with what it was when fresh
    assert (now["status"], now["fresh_status"]) == ("stale", "contested")
    assert now["age_days"] > 365 and "Stale: the newest supporting claim" in now["explanation"]

    token = _retract(live, claims[-1]["claim_ids"][0], reason="misread")
    after = _read(live, subject, "killed", token)
    assert (after["status"], after["fresh_status"]) == ("stale", "settled")
    assert _read(live, subject, "killed", token, as_of="2025-09-01")["status"] == "contested"

    # `claimledger export` shows the same answer, judged the same way
    out = io.StringIO()
    with Client(query_url=live.url("query")) as client:
        run_export(client, out, "jsonl")
    [exported] = [
        r for line in out.getvalue().splitlines() if (r := json.loads(line))["subject"] == subject
    ]
    shown = ("low", "best", "high", "status", "explanation")
    assert {k: exported[k] for k in shown} == {k: after[k] for k in shown}


def test_a_recent_key_stays_fresh_when_an_unrelated_claim_is_retracted(live: Cluster) -> None:
    subject = _subject()
    day = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    posted = [
        _post(live, s, day, {"subject": subject, "attribute": "killed", "value": v})
        for s, v in (("a", 1000), ("b", 1000), ("c", 5000))
    ]
    token = _retract(live, posted[-1]["claim_ids"][0], reason="misread")
    view = _read(live, subject, "killed", token)
    assert (view["status"], view["age_days"]) == ("settled", 30)


def test_a_retraction_shows_its_reason_who_and_when(live: Cluster) -> None:
    subject = _subject()
    kept = _post(live, "a", "2026-11-01", {"subject": subject, "attribute": "killed", "value": 10})
    wrong = _post(live, "b", "2026-11-02", {"subject": subject, "attribute": "killed", "value": 99})
    claim_id = wrong["claim_ids"][0]
    token = _retract(
        live, claim_id, reason="misread the source", by="desk-7", effective_at="2026-11-03"
    )
    view = _read(live, subject, "killed", token)
    note = "retracted: misread the source (desk-7, 2026-11-03)"
    assert view["exclusions"] == {claim_id: note}
    assert view["notes"] == {claim_id: note}
    assert f"1 claim excluded ({note})" in view["explanation"]
    assert view["support"] == kept["claim_ids"]


def test_an_answer_at_a_date_explains_that_date(live: Cluster) -> None:
    subject = _subject()
    status = "deployment_status"
    posted = [
        _post(live, "a", "2025-02-10", {"subject": subject, "attribute": status, **c})
        for c in (
            {"value": "deployed", "valid_time": "2024-12"},
            {"value": "withdrawn", "valid_time": "2025-01"},
            {"value": "deployed", "valid_time": {"start": "2025-02"}},
        )
    ]
    january = _read(live, subject, status, posted[-1]["token"], valid_at="2025-01-15")
    assert january["value"] == "withdrawn"
    assert january["support"] == posted[1]["claim_ids"] and january["dissent"] == []
    assert january["explanation"] == (
        "From 2025-01-01 to 2025-02-01: Single origin (a): 'withdrawn'."
    )
