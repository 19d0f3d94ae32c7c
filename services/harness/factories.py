"""Literal builders for reports in the public input shape."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def claim(
    subject: str = "dprk-troops-kursk", attribute: str = "personnel_deployed", **fields: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": subject, "attribute": attribute}
    if "value" not in fields and "raw" not in fields:
        fields["value"] = 12000
    out.update(fields)
    return out


def report(
    *claims: dict[str, Any],
    source: str = "kyiv-independent",
    published_at: str = "2025-02-17",
    **fields: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "report_id": fields.pop("report_id", f"test-report-{next(_ids)}"),
        "source": {"id": source, "name": source.title(), "kind": "news"},
        "published_at": published_at,
        "claims": list(claims) or [claim()],
    }
    out.update(fields)
    return out
