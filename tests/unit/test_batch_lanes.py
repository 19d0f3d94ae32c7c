"""A batch process killed while it sends its answer must not leave the request waiting
(services/ingest/batches.py): the worker's read ends with EOFError and the batch runs again
in the worker. With a ProcessPoolExecutor it waited for ever (the pool keeps both ends of
its answer queue), which hung a fresh-clone CI run."""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import pytest

from services.ingest.batches import BatchConfig, _Lane

CONFIG = BatchConfig("sqlite://", None, None, 4, 0.1, 86400.0)
ANSWER = 200_000_000  # bytes: far more than a pipe holds, so the send takes a while


def _serve_large(conn: Connection, _config: BatchConfig, _worker: int) -> None:
    conn.send("ready")
    conn.recv()
    data = b"x" * ANSWER
    conn.send_bytes(b"S")  # "sending now"
    conn.send(("done", data))


def _call_in_thread(lane: _Lane) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            lane.conn.send((b"{}", "trace"))
            assert lane.conn.recv_bytes() == b"S"
            out["started"] = time.monotonic()
            out["answer"] = lane.conn.recv()
        except BaseException as exc:  # the test reads it
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_batch_process_killed_while_answering_ends_the_wait() -> None:
    lane = _Lane.spawn(CONFIG, serve=_serve_large)
    try:
        lane.wait_ready()
        thread, out = _call_in_thread(lane)
        deadline = time.monotonic() + 30
        while "started" not in out and time.monotonic() < deadline:
            time.sleep(0.001)
        assert "started" in out, out
        time.sleep(0.05)  # inside the 200 MB send
        assert lane.process.pid is not None
        os.kill(lane.process.pid, signal.SIGKILL)
        thread.join(15)
        assert not thread.is_alive(), "the read never ended after the batch process died"
        assert isinstance(out.get("error"), EOFError | OSError), out.keys()
    finally:
        lane.reap()


def test_a_dead_lane_fails_the_next_call_at_once() -> None:
    lane = _Lane.spawn(CONFIG, serve=_serve_large)
    try:
        lane.wait_ready()
        assert lane.process.pid is not None
        os.kill(lane.process.pid, signal.SIGKILL)
        lane.process.join(10)
        with pytest.raises((EOFError, OSError)):
            lane.call(b"{}", "trace")
    finally:
        lane.reap()
