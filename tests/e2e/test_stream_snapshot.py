"""GET /v1/stream?snapshot=true: the current version of each matching key first, then live
versions, with no gap and no duplicate between the two, even while versions are written."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from shared.positions import parse_token
from tests.conftest import Cluster, wait_for
from tests.factories import claim, report

ATTRIBUTE = "personnel_deployed"


class Events(threading.Thread):
    """Reads one SSE stream into a list of {event, id, data, comment}."""

    def __init__(self, url: str, params: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(daemon=True)
        self.url, self.params, self.headers = url, params, headers or {}
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.stop = False

    def run(self) -> None:
        current: dict[str, Any] = {}
        with httpx.stream(
            "GET", self.url, params=self.params, headers=self.headers, timeout=30
        ) as response:
            self.status = response.status_code
            for line in response.iter_lines():
                if line == "":
                    if current:
                        self.events.append(current)
                    current = {}
                elif line.startswith(":"):
                    current["comment"] = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    current[name] = value.strip()
                if self.stop:
                    return

    def consensus(self) -> list[dict[str, Any]]:
        return [
            {**json.loads(e["data"]), "_id": e.get("id")}
            for e in list(self.events)
            if e.get("event") == "consensus"
        ]


def _post(c: Cluster, subject: str, value: int, day: int, attribute: str = ATTRIBUTE) -> str:
    body = report(
        claim(subject=subject, attribute=attribute, value=value, attributed_to=f"o-{value}"),
        published_at=f"2024-01-{day:02d}",
    )
    got = httpx.post(f"{c.url('ingest')}/v1/reports", json=body)
    assert got.status_code == 202, got.text
    return str(got.json()["token"])


def _applied(c: Cluster, token: str) -> None:
    got = httpx.get(f"{c.url('query')}/v1/snapshot", params={"min_token": token}, timeout=30)
    assert got.status_code == 200


def test_snapshot_sends_each_current_version_then_live_ones(running: Cluster) -> None:
    query = running.url("query")
    for day, value in enumerate((100, 110, 120), start=1):
        _post(running, "snap-a", value, day)
    _post(running, "snap-b", 7, 1, attribute="killed")
    _applied(running, _post(running, "snap-other", 1, 1))
    params = {"subject": ["snap-a", "snap-b"], "snapshot": "true"}
    reader = Events(f"{query}/v1/stream", params)
    reader.start()
    wait_for(lambda: any("comment" in e for e in reader.events), timeout_s=20)
    assert reader.status == 200
    first = reader.consensus()
    current = {
        (s, a): httpx.get(f"{query}/v1/consensus/{s}/{a}").json()
        for s, a in (("snap-a", ATTRIBUTE), ("snap-b", "killed"))
    }
    assert [(v["subject"], v["attribute"], v["version"]) for v in first] == [
        (s, a, v["version"]) for (s, a), v in sorted(current.items())
    ]
    assert all(v["_id"] is None for v in first)  # not a place to resume from
    start = next(e for e in reader.events if "comment" in e)
    assert start["comment"] == "start"
    begins = parse_token(start["id"])  # covers every version the snapshot sent
    assert all(begins.covers(parse_token(v["position"])) for v in first)
    _applied(running, _post(running, "snap-a", 130, 4))
    history = httpx.get(f"{query}/v1/consensus/snap-a/{ATTRIBUTE}/history").json()["items"]
    expected = [v["position"] for v in history if not begins.covers(parse_token(v["position"]))]
    assert expected  # the new report made at least one version
    wait_for(lambda: len(reader.consensus()) >= len(first) + len(expected), timeout_s=30)
    live = reader.consensus()[len(first) :]
    assert [v["position"] for v in live] == expected  # each once, in order
    # each frame's id resumes right after it
    assert all(parse_token(v["_id"]).covers(parse_token(v["position"])) for v in live)
    reader.stop = True


def test_snapshot_while_versions_are_written_has_no_gap_and_no_duplicate(
    running: Cluster,
) -> None:
    query, subject = running.url("query"), "snap-busy"
    _applied(running, _post(running, subject, 500, 1))
    done = threading.Event()
    tokens: list[str] = []

    def write() -> None:
        for day in range(2, 26):
            tokens.append(_post(running, subject, 500 + day, day))
            time.sleep(0.02)  # pacing, not synchronisation: the writes span the subscriptions
        done.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    readers = []
    for i in range(4):  # subscribe at different moments of the writing: after 0, 5, 10, 15
        wait_for(lambda i=i: len(tokens) >= 5 * i, timeout_s=60)  # type: ignore[misc]
        reader = Events(f"{query}/v1/stream", {"subject": subject, "snapshot": "true"})
        reader.start()
        readers.append(reader)
    assert done.wait(60)
    _applied(running, tokens[-1])
    history = httpx.get(f"{query}/v1/consensus/{subject}/{ATTRIBUTE}/history").json()["items"]
    final = max(v["version"] for v in history)
    for reader in readers:
        wait_for(lambda r=reader: any(v["version"] == final for v in r.consensus()), timeout_s=30)  # type: ignore[misc]
        reader.stop = True
        got = reader.consensus()
        snapshot, live = got[0], got[1:]
        assert snapshot["_id"] is None
        # live: every version after the snapshot's, once, in order
        expected = [v["version"] for v in history if v["version"] > snapshot["version"]]
        assert [v["version"] for v in live] == expected


def test_a_resuming_subscriber_gets_no_second_snapshot(running: Cluster) -> None:
    query = running.url("query")
    _applied(running, _post(running, "snap-resume", 1, 1))
    position = httpx.get(f"{query}/v1/consensus/snap-resume/{ATTRIBUTE}").json()["position"]
    reader = Events(
        f"{query}/v1/stream",
        {"subject": "snap-resume", "snapshot": "true"},
        {"Last-Event-ID": position},
    )
    reader.start()
    _post(running, "snap-resume", 2, 2)
    wait_for(lambda: len(reader.consensus()) >= 1, timeout_s=30)
    reader.stop = True
    got = reader.consensus()
    assert got[0]["_id"] is not None
    assert not parse_token(position).covers(parse_token(got[0]["position"]))  # a later one
