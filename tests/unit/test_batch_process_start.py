"""A batch process (or the learner) whose worker died while it was starting, before it could
ask for PR_SET_PDEATHSIG, exits instead of waiting for ever on its call queue
(services/ingest/children.py): the fault tests kill ingest -9 right after it answers, while
its second worker may still be starting its batch process; such processes were found still
running, reparented to init, an hour later."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
from services.ingest.batches import BatchConfig, _start_process
config = BatchConfig("sqlite://", None, None, 4, 0.1, 86400.0)
_start_process(config, int(sys.argv[1]))
print("started")
"""


def run(worker: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(worker)], capture_output=True, text=True, timeout=60
    )


def test_a_batch_process_of_a_dead_worker_exits() -> None:
    gone = run(worker=os.getpid() + 1_000_000)  # not its parent: the worker is gone
    assert gone.returncode == 0 and "started" not in gone.stdout, gone.stderr


def test_the_learners_initializer_exits_too() -> None:
    script = "import sys; from services.ingest.children import die_with_worker; "
    script += "die_with_worker(int(sys.argv[1])); print('started')"
    gone = subprocess.run(
        [sys.executable, "-c", script, str(os.getpid() + 1_000_000)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == 0 and "started" not in gone.stdout, gone.stderr


def test_a_batch_process_of_a_live_worker_starts() -> None:
    alive = run(worker=os.getpid())  # its parent: this test process
    assert alive.returncode == 0 and "started" in alive.stdout, alive.stderr
