"""A minimal HTTP/1.1 keep-alive load generator for the single-report figures.

Written here rather than taken from httpx because httpx's AsyncClient tops out near 400
requests/s on the 2-core bench machine even against a server that does nothing, so it
would measure itself. This client pre-encodes every request and parses only the status
line and Content-Length of each answer (the ingest service always sends a length).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def encode_posts(
    url: str, path: str, bodies: Sequence[Any], headers: dict[str, str] | None = None
) -> list[bytes]:
    host = urlsplit(url).netloc
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    out = []
    for body in bodies:
        data = json.dumps(body).encode()
        out.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n{extra}\r\n"
            ).encode()
            + data
        )
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def post_all(
    url: str, requests: Sequence[bytes], concurrency: int, keep_bodies: bool = False
) -> LoadResult:
    """Sends every request over `concurrency` keep-alive connections, as fast as answered."""
    parts = urlsplit(url)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    result = LoadResult(0.0)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while not queue.empty():
                request = queue.get_nowait()
                start = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(body)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


class Pool:
    """Keep-alive connections shared by concurrent tasks (open loop: a task takes a free
    connection, or opens one when none is free).

    As any HTTP client with a pool: a connection idle for longer than the server keeps it
    (uvicorn: 5 s) is not reused, and a request on a reused connection that the server
    closed before answering is sent again once on a fresh one (every request here is
    idempotent: reads, and reports with their own ids)."""

    IDLE_S = 4.0

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.netloc = parts.hostname, parts.port, parts.netloc
        self._free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    def get(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.netloc}\r\n\r\n".encode()

    async def call(self, request: bytes) -> tuple[int, bytes]:
        reused = self._take()
        if reused is not None:
            try:
                return await self._send(*reused, request)
            except (ConnectionResetError, BrokenPipeError):
                pass
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._send(reader, writer, request)

    def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self._free:
            reader, writer, since = self._free.pop()
            if now - since < self.IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _send(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes]:
        try:
            writer.write(request)
            answer = await _read_response(reader)
        except BaseException:
            writer.close()
            raise
        self._free.append((reader, writer, time.monotonic()))
        return answer

    def close(self) -> None:
        for _, writer, _ in self._free:
            writer.close()
        self._free.clear()
