"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import signal


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# Young generation of 50,000 allocations instead of CPython's 700; the middle one collected every
# 20 young collections (CPython: 10), the oldest as CPython does.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc_for_throughput() -> None:
    """Fewer, cheaper cyclic garbage collections in a service that allocates per request.

    Ingest builds a few dozen objects per claim (models, dicts, events) that die young; at
    CPython's default thresholds the collector ran so often, and scanned the whole heap so
    often, that it took ~20% of :batch's CPU, charged to whatever line allocated
    (bench/RESULTS.md, issue #21). `gc.freeze()` moves what startup built (modules,
    schemas, the attribute registry) out of every later scan. Call once, after startup.
    """
    global _gc_tuned
    if _gc_tuned:  # once per process (an app started again, as in tests, freezes nothing new)
        return
    _gc_tuned = True
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


_gc_tuned = False
