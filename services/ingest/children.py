"""Ingest's child processes (batch processes, the learner) end with the worker that started them."""

from __future__ import annotations

import os

from services.infra.processes import die_with_parent


def die_with_worker(worker: int) -> None:
    """A process pool's initializer: SIGTERM when the worker `worker` (the parent) dies, even
    by SIGKILL; and exit at once if it is already gone. A spawned child imports ingest for a
    second or more before this runs: a worker killed meanwhile never signals it, and the pool's
    call queue never ends (the child holds its writing end too), so it would wait for ever,
    reparented to init (found after the fault tests, which kill ingest right after it answers)."""
    die_with_parent()
    if os.getppid() != worker:
        os._exit(0)
