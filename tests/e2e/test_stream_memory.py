"""Subscribers that never read cannot grow the query service's memory: each is bounded in
bytes (CLAIMLEDGER_STREAM_BUFFER_BYTES), falls behind, and is told to resync."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.infra.localredis import LocalRedis
from tests.conftest import Cluster, wait_for

SUBJECT = "memory-heavy"
STALLED = 40
# RSS growth allowed while the versions are written and read: the process's own reading and
# rendering takes ~120-140 MB whether 1 or 40 subscribers stall; before the byte bound, 40
# stalled subscribers took it to +559 MB (each held its own joined copy of what it was sent)
GROWTH_MB = 250
REPORTS = 300  # one key: each version lists every claim so far, frames grow past 50 KB


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0  # exited (a zombie has no VmRSS)


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, _rss_mb(self.pid))


def _stalled(url: str) -> socket.socket:
    """A stream request whose client never reads (a small receive buffer: the server's
    writes soon back up)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /v1/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


def _read_all(sock: socket.socket) -> str:
    chunks = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks).decode()


def _reports() -> list[dict[str, object]]:
    return [
        {
            "report_id": f"memory-{n}",
            "source": {"id": f"outlet-{n}", "kind": "news"},
            "published_at": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
            "claims": [
                {
                    "subject": SUBJECT,
                    "attribute": "personnel_deployed",
                    "value": 1000 + 7 * n,
                    "attributed_to": f"official number {n} of a long-named ministry",
                }
            ],
        }
        for n in range(REPORTS)
    ]


@pytest.fixture
def heavy(tmp_path: Path, redis_server: LocalRedis, db_url: str) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path,
        redis_server.url,
        db_url,
        CLAIMLEDGER_STREAM_SEND_TIMEOUT_S="600",  # stalled, not dropped: they read at the end
        CLAIMLEDGER_MAX_STREAMS_PER_CLIENT="0",
    )
    try:
        for name in ("ingest", "reconcile", "query"):
            c.start(name)
        yield c
    finally:
        c.stop_all()


def test_subscribers_that_never_read_keep_memory_flat_and_get_resync(heavy: Cluster) -> None:
    ingest, query = heavy.url("ingest"), heavy.url("query")
    pid = heavy.services["query"].process.pid
    socks = [_stalled(query) for _ in range(STALLED)]
    wait_for(lambda: _streams(query) >= STALLED, timeout_s=30)
    baseline = _rss_mb(pid)
    sampler = PeakRss(pid)
    sampler.start()
    token = ""
    for start in range(0, REPORTS, 20):  # batches: the reconciler commits many versions at once
        got = httpx.post(
            f"{ingest}/v1/reports:batch", json=_reports()[start : start + 20], timeout=60
        )
        assert got.status_code == 200, got.text
        token = str(got.json()["results"][-1]["token"])
    wait_for(lambda: _applied(query, token), timeout_s=120)
    history = httpx.get(
        f"{query}/v1/consensus/{SUBJECT}/personnel_deployed/history", params={"limit": 1000}
    ).json()["items"]
    frame_mb = sum(len(str(v)) for v in history) / 2**20
    wait_for(lambda: _overflows(query) >= STALLED, timeout_s=60)
    sampler.done.set()
    sampler.join()
    growth = sampler.peak - baseline
    assert frame_mb > 5, f"too little written to tell ({frame_mb:.1f} MB)"
    assert growth < GROWTH_MB, f"RSS grew {growth:.0f} MB (baseline {baseline:.0f} MB)"
    for sock in socks:  # they finally read: a gapless prefix, then resync, then the end
        text = _read_all(sock)
        sock.close()
        kinds = re.findall(r"^event: (\w+)", text, flags=re.M)
        assert kinds and kinds[-1] == "resync" and kinds.count("resync") == 1


def _applied(query: str, token: str) -> bool:
    try:
        got = httpx.get(f"{query}/v1/snapshot", params={"min_token": token}, timeout=15)
    except httpx.TimeoutException:
        return False
    return got.status_code == 200


def _metric(query: str, name: str) -> float:
    for line in httpx.get(f"{query}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _overflows(query: str) -> float:
    return _metric(query, "claimledger_sse_overflows_total")


def _streams(query: str) -> float:
    return _metric(query, "claimledger_sse_subscribers")
