"""Literal builders for reports in the public input shape (services.harness.factories,
shared with the benchmarks)."""

from services.harness.factories import claim, report  # noqa: F401 (re-exported)
