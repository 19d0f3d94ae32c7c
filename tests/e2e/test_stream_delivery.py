"""GET /v1/stream under load and faults: every version once and in order, across resumes,
query restarts, Redis loss, and next to a subscriber too slow to keep up."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimledger.client import Client
from services.infra.localredis import LocalRedis
from shared.positions import parse_token
from tests.conftest import Cluster, wait_for
from tests.factories import claim, report

ATTRIBUTE = "personnel_deployed"


class Reader(threading.Thread):
    """A real HTTP client reading one SSE stream into a list of (event, id, data)."""

    def __init__(
        self, url: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.params, self.headers = url, params, headers or {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.start_id: str | None = None
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.stop = False
        self.error: Exception | None = None

    def run(self) -> None:
        kind, ident = "message", None
        try:
            with httpx.stream(
                "GET",
                self.url,
                params=self.params,
                headers=self.headers,
                timeout=httpx.Timeout(10, read=60),
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        ident = line[3:].strip()
                        if self.start_id is None:
                            self.start_id = ident
                        self.opened.set()
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        assert ident is not None
                        self.events.append((kind, ident, json.loads(line[5:])))
                    elif line == "":
                        kind = "message"
                    if self.stop:
                        return
        except httpx.HTTPError as exc:  # the server went away (tests stop it at the end)
            self.error = exc
        finally:
            self.opened.set()
            self.ended.set()

    def consensus(self) -> list[dict[str, Any]]:
        return [data for kind, _, data in list(self.events) if kind == "consensus"]


def _post(ingest: str, subject: str, value: int, day: int, report_id: str) -> str:
    """One claim published on day `day` (counted from 2020-01-01: increasing days make
    exactly one new version each)."""
    published = date(2020, 1, 1) + timedelta(days=day)
    body = report(
        claim(subject=subject, value=value, attributed_to=f"origin-{value}"),
        published_at=published.isoformat(),
        report_id=report_id,
    )
    answer = httpx.post(f"{ingest}/v1/reports", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["token"])


def _history(query: str, subject: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = httpx.get(
            f"{query}/v1/consensus/{subject}/{ATTRIBUTE}/history",
            params={"after": after, "limit": 1000},
        )
        if page.status_code == 404:
            return items
        body = page.json()
        items.extend(body["items"])
        if body["next_cursor"] is None:
            return items
        after = int(body["next_cursor"])


def _positions(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Each version's place: (partition, its number there)."""
    return [_place(i["position"]) for i in items]


def _place(token: str) -> tuple[int, int]:
    ((part, seq),) = parse_token(token).items()
    return part, seq


def _by_partition(places: list[tuple[int, int]]) -> dict[int, list[int]]:
    """The numbers seen of each partition, in the order seen: the order a client relies on
    is per partition (every subject is in one)."""
    out: dict[int, list[int]] = {}
    for part, seq in places:
        out.setdefault(part, []).append(seq)
    return out


def _wait_applied(query: str, token: str) -> None:
    got = httpx.get(f"{query}/v1/snapshot", params={"min_token": token, "limit": 1}, timeout=30)
    assert got.status_code == 200


def test_every_version_arrives_once_and_in_order_while_reports_are_posted(
    running: Cluster,
) -> None:
    ingest, query = running.url("ingest"), running.url("query")
    subjects = ["deliver-a", "deliver-b"]
    reader = Reader(f"{query}/v1/stream", {"subject": subjects})
    everything = Reader(f"{query}/v1/stream", {})
    reader.start()
    everything.start()
    assert reader.opened.wait(10) and everything.opened.wait(10)
    token = ""
    for n in range(30):
        token = _post(ingest, subjects[n % 2], 1000 + n, n, f"deliver-{n}")
    _wait_applied(query, token)
    expected = sorted(_positions(_history(query, subjects[0]) + _history(query, subjects[1])))
    assert len(expected) >= 30
    wait_for(lambda: len(reader.consensus()) >= len(expected), timeout_s=30)
    reader.stop = everything.stop = True
    got = _positions(reader.consensus())
    # once each, in commit order in each partition
    assert sorted(got) == expected and _by_partition(got) == _by_partition(expected)
    assert all(i["subject"] in subjects for i in reader.consensus())
    wait_for(lambda: set(expected) <= set(_positions(everything.consensus())), timeout_s=30)
    for seqs in _by_partition(_positions(everything.consensus())).values():
        assert seqs == sorted(set(seqs))
    for item in reader.consensus():  # the consensus shape plus the diff and cause
        assert {"subject", "attribute", "version", "best", "diff", "cause", "position"} <= set(item)


def test_a_fresh_subscriber_is_told_where_it_starts_and_resuming_there_misses_nothing(
    running: Cluster,
) -> None:
    ingest, query = running.url("ingest"), running.url("query")
    subject = "deliver-start"
    first = Reader(f"{query}/v1/stream", {"subject": subject})
    first.start()
    assert first.opened.wait(10) and first.start_id is not None
    first.stop = True
    token = ""
    for n in range(5):  # posted after the first stream was dropped
        token = _post(ingest, subject, 200 + n, 1 + n, f"deliver-start-{n}")
    _wait_applied(query, token)
    resumed = Reader(f"{query}/v1/stream", {"subject": subject}, {"Last-Event-ID": first.start_id})
    resumed.start()
    expected = _positions(_history(query, subject))
    wait_for(lambda: len(resumed.consensus()) >= len(expected), timeout_s=30)
    resumed.stop = True
    assert _positions(resumed.consensus()) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"since": "-1"},
        {"since": "12"},  # a position from before revision 0004: a clear 422, not a wrong resume
        {"since": "p0.1_0.2"},
        {"subject": ""},
        {"attribute": "bad\u0001name"},
        {"subject": [f"s{i}" for i in range(101)]},
    ],
)
def test_bad_filters_are_a_422_problem_naming_the_field(
    running: Cluster, params: dict[str, Any]
) -> None:
    got = httpx.get(f"{running.url('query')}/v1/stream", params=params)
    assert got.status_code == 422
    assert got.headers["content-type"] == "application/problem+json"
    field = next(iter(params))
    assert got.json()["errors"][0]["pointer"] == f"/{field}"
    if params == {"since": "12"}:
        assert "before positions were per partition" in got.json()["errors"][0]["detail"]


@pytest.fixture
def own(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path,
        redis_server.url,
        db_url,
        CLAIMLEDGER_REPUBLISH_AFTER_S="5",
        CLAIMLEDGER_STREAM_BUFFER="16",
        CLAIMLEDGER_STREAM_SEND_TIMEOUT_S="300",
    )
    try:
        for name in ("ingest", "reconcile", "query"):
            c.start(name)
        yield c
    finally:
        c.stop_all()


def test_a_subscriber_keeps_every_version_across_a_query_service_restart(own: Cluster) -> None:
    ingest, query = own.url("ingest"), own.url("query")
    subject = "deliver-restart"
    got: list[dict[str, Any]] = []
    done = threading.Event()
    client = Client(ingest_url=ingest, query_url=query, backoff_s=0.1, max_backoff_s=0.5)

    def listen() -> None:
        for item in client.subscribe(subject=subject, since=0, read_timeout_s=30):
            got.append(item)
            if done.is_set():
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    for n in range(10):
        _post(ingest, subject, 300 + n, 1 + n, f"restart-a-{n}")
    wait_for(lambda: len(got) >= 10, timeout_s=30)
    own.restart("query")  # the client reconnects to the new process with its last id
    token = ""
    for n in range(10):
        token = _post(ingest, subject, 400 + n, 11 + n, f"restart-b-{n}")
    _wait_applied(query, token)
    expected = _positions(_history(query, subject))
    wait_for(lambda: len(got) >= len(expected), timeout_s=60)
    done.set()
    _post(ingest, subject, 999, 99, "restart-last")  # wakes the listener so it returns
    thread.join(30)
    client.close()
    assert _positions(got)[: len(expected)] == expected


def test_a_stream_keeps_delivering_through_a_redis_loss(
    own: Cluster, redis_server: LocalRedis
) -> None:
    ingest, query = own.url("ingest"), own.url("query")
    subject = "deliver-redis-loss"
    reader = Reader(f"{query}/v1/stream", {"subject": subject})
    reader.start()
    assert reader.opened.wait(10)
    _post(ingest, subject, 500, 1, "redis-loss-0")
    wait_for(lambda: len(reader.consensus()) >= 1, timeout_s=30)
    redis_server.stop(kill=True)
    token = _post(ingest, subject, 501, 2, "redis-loss-1")  # durable in ingest's outbox
    redis_server.wipe()
    redis_server.start()  # empty: the updates stream starts over
    token = _post(ingest, subject, 502, 3, "redis-loss-2")
    _wait_applied(query, token)
    expected = _positions(_history(query, subject))
    wait_for(lambda: len(reader.consensus()) >= len(expected), timeout_s=60)
    assert not reader.ended.is_set()
    reader.stop = True
    assert _positions(reader.consensus()) == expected  # same connection, nothing lost


def _stalled_stream(url: str, path: str) -> socket.socket:
    """An SSE request whose client never reads: tiny receive buffer, so the server's
    writes back up after a few frames."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


def _read_all(sock: socket.socket) -> str:
    sock.settimeout(30)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks).decode()
        chunks.append(data)


def _overflows(query: str) -> float:
    for line in httpx.get(f"{query}/metrics").text.splitlines():
        if line.startswith("claimledger_sse_overflows_total "):
            return float(line.split()[1])
    return 0.0


def test_a_slow_subscriber_is_told_to_resync_while_a_fast_one_misses_nothing(
    own: Cluster,
) -> None:
    ingest, query = own.url("ingest"), own.url("query")
    subject = "deliver-slow"
    fast = Reader(f"{query}/v1/stream", {"subject": subject})
    fast.start()
    assert fast.opened.wait(10)
    slow = _stalled_stream(query, f"/v1/stream?subject={subject}")
    # post a few versions at a time, each group seen by the fast subscriber before the next
    # (so its buffer of 16 frames, CLAIMLEDGER_STREAM_BUFFER, never fills), until the
    # stalled one has overflowed
    n = 0
    while _overflows(query) < 1:
        assert n < 3000, "the stalled subscriber never overflowed"
        for _ in range(3):
            _post(ingest, subject, 600 + n, n, f"slow-{n}")
            n += 1
        wait_for(lambda n=n: len(fast.consensus()) >= n, timeout_s=30, interval_s=0.01)  # type: ignore[misc]
    token = ""
    for _ in range(5):  # the fast one goes on after the slow one fell behind
        token = _post(ingest, subject, 600 + n, n, f"slow-{n}")
        n += 1
    _wait_applied(query, token)
    expected = _positions(_history(query, subject))
    wait_for(lambda: len(fast.consensus()) >= len(expected), timeout_s=30)
    fast.stop = True
    assert _positions(fast.consensus()) == expected
    assert all(kind == "consensus" for kind, _, _ in fast.events)

    text = _read_all(slow)  # the stalled client finally reads: data, then resync, then the end
    slow.close()
    kinds = re.findall(r"^event: (\w+)", text, flags=re.M)
    ids = re.findall(r"^id: (\S+)", text, flags=re.M)
    assert kinds[-1] == "resync" and kinds.count("resync") == 1
    part = expected[0][0]  # the subject's partition
    # each id is the cursor just after its version: here, its number in the partition
    received = [(part, parse_token(i)[part]) for i in ids[1:-1]]  # ids[0]: the start
    assert received == expected[: len(received)]  # a gapless prefix
    resume_from = ids[-1]
    assert parse_token(resume_from) == parse_token(ids[-2])  # after the last one received
    resumed = Reader(f"{query}/v1/stream", {"subject": subject}, {"Last-Event-ID": resume_from})
    resumed.start()
    wait_for(lambda: len(received) + len(resumed.consensus()) >= len(expected), timeout_s=30)
    resumed.stop = True
    assert received + _positions(resumed.consensus()) == expected
