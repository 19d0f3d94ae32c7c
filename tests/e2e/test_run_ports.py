"""`claimledger run` (what `make run` starts) checks its ports before it starts anything.

A second `make run` beside a running one used to start half, then load its demo into the
first instance and die with "demo report rejected: 401 Invalid API key". Now it says which
port is taken and by what (a running claimledger, or another program), and exits 3.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.cli import PORTS_TAKEN, ports_taken
from services.infra.localredis import free_port
from tests.conftest import system, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def run_command(cwd: Path, ports: dict[str, int]) -> list[str]:
    return [sys.executable, "-m", "services.cli", "run", "--var", str(cwd / "var"),
            "--ingest-port", str(ports["ingest"]), "--query-port", str(ports["query"]),
            "--reconcile-port", str(ports["reconcile"])]  # fmt: skip


def run_once(cwd: Path, ports: dict[str, int]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLAIMLEDGER_REDIS_URL"}
    return subprocess.run(
        run_command(cwd, ports),
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_ports() -> dict[str, int]:
    return {"ingest": free_port(), "query": free_port(), "reconcile": free_port()}


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A whole `claimledger run`, demo loaded, on free ports."""
    ports = free_ports()
    env = {k: v for k, v in os.environ.items() if k != "CLAIMLEDGER_REDIS_URL"}
    # its output goes to a file, not a pipe: the services inherit it, and a pipe nobody reads
    # until teardown would block them once full; the file also says why, should it stop early
    log = tmp_path / "first.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            run_command(tmp_path / "first", ports),
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        demo = "/v1/consensus/dprk-troops-kursk/personnel_deployed"
        wait_for(
            lambda: proc.poll() is not None or _answers(f"http://127.0.0.1:{ports['query']}{demo}"),
            timeout_s=90,
            interval_s=0.2,
        )
        assert proc.poll() is None, log.read_text()
        yield ports
        assert proc.poll() is None, f"the first run stopped during the test:\n{log.read_text()}"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: it stops its services and Redis
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_run_beside_a_running_one_says_so_and_starts_nothing(
    first_run: dict[str, int], tmp_path: Path
) -> None:
    second = tmp_path / "second"
    second.mkdir()
    log = tmp_path / "first.log"
    held = ports_taken("127.0.0.1", first_run)
    assert len(held) == 3, f"the first run is not whole ({held}):\n{log.read_text()}"
    done = run_once(second, first_run)
    assert done.returncode == PORTS_TAKEN != 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    for name, port in first_run.items():
        assert f"port {port}, wanted for {name}, is taken by a running claimledger" in said
    assert "demo report rejected" not in said
    assert not (second / "var").exists()  # no Redis, no database was started
    # the first one is untouched
    assert _answers(f"http://127.0.0.1:{first_run['ingest']}/readyz")


def test_a_port_held_by_another_program_is_named_as_such(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as other:
        other.bind(("127.0.0.1", ports["query"]))
        other.listen()
        done = run_once(tmp_path, ports)
    assert done.returncode == PORTS_TAKEN, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert f"port {ports['query']}, wanted for query, is taken by another program" in said
    assert said.count("error:") == 1  # only the taken one
    assert not (tmp_path / "var").exists()


def test_one_service_of_a_claimledger_on_a_port_is_recognised(tmp_path: Path) -> None:
    with system(tmp_path / "sys", "reconcile") as running:
        ports = {**free_ports(), "reconcile": running.port("reconcile")}
        done = run_once(tmp_path, ports)
    said = " ".join(done.stdout.split())
    assert done.returncode == PORTS_TAKEN, said
    assert "is taken by a running claimledger (its reconcile service)" in said
