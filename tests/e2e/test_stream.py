"""GET /v1/stream: every version once, in order, and resumable without gaps."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.conftest import Cluster
from tests.factories import claim, report


def _read(
    url: str,
    params: dict[str, Any],
    headers: dict[str, str],
    want: int,
    timeout_s: float = 20,
    opened: threading.Event | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Reads until `want` consensus events arrived; returns them and the last id seen.
    `opened` is set once the stream is answered: from then on, no new version is missed."""
    events: list[dict[str, Any]] = []
    last_id, kind = None, None
    deadline = time.monotonic() + timeout_s
    with httpx.stream("GET", url, params=params, headers=headers, timeout=timeout_s) as response:
        assert response.status_code == 200
        if opened is not None:
            opened.set()
        for line in response.iter_lines():
            if line.startswith("id:"):
                last_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "consensus":
                events.append(json.loads(line[5:]))
            if len(events) >= want or time.monotonic() > deadline:
                break
    return events, last_id


def _post(c: Cluster, subject: str, value: int, day: int) -> None:
    body = report(
        claim(subject=subject, value=value, attributed_to=f"origin-{value}"),
        published_at=f"2025-01-{day:02d}",
    )
    assert httpx.post(f"{c.url('ingest')}/v1/reports", json=body).status_code == 202


def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(running: Cluster) -> None:
    subject = "stream-resume"
    url = f"{running.url('query')}/v1/stream"
    start = httpx.get(f"{running.url('query')}/v1/snapshot").json()  # warm up
    del start
    for day, value in enumerate((100, 110, 120), start=1):
        _post(running, subject, value, day)
    first, last_id = _read(url, {"subject": subject, "since": "0"}, {}, want=3)
    for day, value in enumerate((130, 140), start=4):
        _post(running, subject, value, day)
    history = httpx.get(
        f"{running.url('query')}/v1/consensus/{subject}/personnel_deployed/history"
    ).json()
    total = len(history["items"])
    rest, _ = _read(
        url,
        {"subject": subject},
        {"Last-Event-ID": str(first[-1]["position"])},
        want=total - len(first),
    )
    seen = [e["position"] for e in first + rest]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert [e["version"] for e in first + rest] == [v["version"] for v in history["items"]]
    assert last_id is not None


def test_subscription_to_a_key_that_does_not_exist_yet_starts_when_it_appears(
    running: Cluster,
) -> None:
    subject = "stream-later"
    url = f"{running.url('query')}/v1/stream"
    result: dict[str, Any] = {}
    opened = threading.Event()

    def listen() -> None:
        result["events"], _ = _read(url, {"subject": subject}, {}, want=1, opened=opened)

    thread = threading.Thread(target=listen)
    thread.start()
    assert opened.wait(20), "the stream was not answered"
    _post(running, subject, 7, 1)
    thread.join(25)
    assert result["events"][0]["subject"] == subject and result["events"][0]["best"] == 7


def test_bad_stream_filter_is_a_422(running: Cluster) -> None:
    got = httpx.get(f"{running.url('query')}/v1/stream", params={"since": "not-an-id"})
    assert got.status_code == 422
    assert got.headers["content-type"] == "application/problem+json"
