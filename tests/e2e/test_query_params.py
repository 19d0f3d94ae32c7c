"""Query parameters a reader gets wrong or a client sends to hurt: a 422 problem naming the
parameter, never a 500, never a hang, never a silent drop; and the subject search."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Cluster
from tests.factories import claim, report

ARABIC_INDIC = "١٢٣"  # int() and str.isdigit() accept these; no token is spelt so
SUPERSCRIPT = "²"  # isdigit() is true, int() raises
HUGE = "9" * 5000  # past int()'s digit limit
BEYOND_INT64 = str(2**63)
HOSTILE = [ARABIC_INDIC, SUPERSCRIPT, HUGE, BEYOND_INT64, "-1", " 1", "1e3"]


def _problem(got: httpx.Response, name: str) -> None:
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert f"/{name}" in [e["pointer"] for e in got.json()["errors"]]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/snapshot", "min_token"),
        ("/v1/consensus/a/b", "min_token"),
        ("/v1/stream", "since"),
    ],
)
def test_hostile_positions_are_a_422_naming_the_parameter(
    running: Cluster, path: str, name: str, value: str
) -> None:
    got = httpx.get(f"{running.url('query')}{path}", params={name: value}, timeout=10)
    _problem(got, name)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v.strip() == v])  # no header spaces
def test_a_hostile_last_event_id_is_a_422_naming_the_header(running: Cluster, value: str) -> None:
    got = httpx.get(
        f"{running.url('query')}/v1/stream",
        headers=[(b"Last-Event-ID", value.encode())],
        timeout=10,
    )
    _problem(got, "Last-Event-ID")


@pytest.mark.parametrize("value", [ARABIC_INDIC, HUGE, BEYOND_INT64])
def test_a_hostile_history_cursor_is_a_422_not_a_500(running: Cluster, value: str) -> None:
    got = httpx.get(
        f"{running.url('query')}/v1/consensus/a/b/history", params={"after": value}, timeout=10
    )
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/subjects", {"query": "kursk"}),
        ("/v1/subjects/some-subject", {"q": "x"}),
        ("/v1/snapshot", {"subject": "a"}),
        ("/v1/consensus", {"subject": "a", "attribute": "b", "asof": "2025"}),
        ("/v1/consensus/a/b", {"as-of": "2025"}),
        ("/v1/consensus/a/b/history", {"cursor": "3"}),
        ("/v1/claims", {"subjects": "a"}),
        ("/v1/reports/r-1", {"verbose": "1"}),
        ("/v1/stream", {"subjects": "a"}),
    ],
)
def test_an_unknown_query_parameter_is_a_422_naming_it(
    running: Cluster, path: str, params: dict[str, str]
) -> None:
    got = httpx.get(f"{running.url('query')}{path}", params=params, timeout=10)
    unknown = next(
        k for k in params if path != "/v1/consensus" or k not in ("subject", "attribute")
    )
    _problem(got, unknown)


def _post(c: Cluster, subject: str, label: str) -> str:
    body: dict[str, Any] = report(
        claim(subject=subject, subject_label=label, value=100), published_at="2025-01-01"
    )
    got = httpx.post(f"{c.url('ingest')}/v1/reports", json=body)
    assert got.status_code == 202, got.text
    return str(got.json()["token"])


def test_subjects_are_searched_by_key_or_label_ignoring_case(running: Cluster) -> None:
    query = running.url("query")
    _post(running, "search-troops-kursk", "Troops in Kursk")
    _post(running, "search-other", "Casualties at SEARCHPOINT")
    token = _post(running, "search-unrelated", "Something else")
    assert httpx.get(f"{query}/v1/snapshot", params={"min_token": token}).status_code == 200

    def found(q: str) -> list[str]:
        got = httpx.get(f"{query}/v1/subjects", params={"q": q})
        assert got.status_code == 200, got.text
        return [s["subject"] for s in got.json()["items"]]

    assert found("KURSK") == ["search-troops-kursk"]  # the key, any case
    assert found("searchpoint") == ["search-other"]  # the label, any case
    assert set(found("search-")) == {"search-troops-kursk", "search-other", "search-unrelated"}
    assert found("100%") == []  # LIKE wildcards are text
    assert found("no-such-subject") == []
    page = httpx.get(f"{query}/v1/subjects", params={"q": "search-", "limit": 2}).json()
    rest = httpx.get(
        f"{query}/v1/subjects", params={"q": "search-", "cursor": page["next_cursor"]}
    ).json()
    assert [s["subject"] for s in page["items"] + rest["items"]] == sorted(found("search-"))


def test_answers_name_attributes_by_their_registry_label(running: Cluster) -> None:
    query = running.url("query")
    token = _post(running, "label-subject", "Label subject")
    assert httpx.get(f"{query}/v1/snapshot", params={"min_token": token}).status_code == 200
    one = httpx.get(f"{query}/v1/consensus/label-subject/personnel_deployed").json()
    assert one["attribute_label"] == "Personnel deployed"
    subject = httpx.get(f"{query}/v1/subjects/label-subject").json()
    assert [a["attribute_label"] for a in subject["attributes"]] == ["Personnel deployed"]
    listed = httpx.get(f"{query}/v1/subjects", params={"q": "label-subject"}).json()["items"]
    assert listed[0]["published_at"].startswith("2025-01-01")
