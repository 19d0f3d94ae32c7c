"""The fault suite's load generator and counters: they live in services.harness.load,
shared with the benchmarks (which run without tests/)."""

from services.harness.load import (  # noqa: F401 (re-exported for the fault tests)
    ATTRIBUTES,
    COMMANDERS,
    Acked,
    Loader,
    Replayed,
    applied_events,
    batches,
    claim_ids,
    clean_replay,
    converged,
    counts,
    make_reports,
    pending_entries,
    post_batch,
    readiness,
    redis_ok,
    version_counts,
    wait_ready,
)
