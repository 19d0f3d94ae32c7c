"""Staleness, judged when a consensus is read: pure functions over a stored answer.

A stored version cannot know when it will be read, so it carries only the publication
time of its newest supporting claim (`newest_support_at`). Whoever reads it says which
time they ask about (their `as_of`, or now), and the answer is stale when even that
newest support is older than STALE_AFTER at that time. The same rule holds for every
key, and an unrelated event (a retraction of another claim) cannot flip it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

STALE_AFTER = timedelta(days=365)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_days(newest_support_at: str | None, at: datetime) -> int | None:
    """Whole days from the newest support's publication to `at` (never negative)."""
    if newest_support_at is None:
        return None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return max(0, (at - _moment(newest_support_at)).days)


def is_stale(newest_support_at: str | None, at: datetime, after: timedelta = STALE_AFTER) -> bool:
    days = age_days(newest_support_at, at)
    return days is not None and days > after.days


def judge(
    answer: Mapping[str, Any], at: datetime, after: timedelta = STALE_AFTER
) -> dict[str, Any]:
    """The answer as read at `at`: `age_days` added, and when stale the status is
    "stale" (the status it had is kept as `fresh_status`) and the explanation says why.
    Only the open-ended (current) segment can go stale: a closed one is history."""
    out = dict(answer)
    newest = out.get("newest_support_at")
    out["age_days"] = age_days(newest, at)
    if out.get("status") not in (None, "no_data") and is_stale(newest, at, after):
        out["fresh_status"] = out["status"]
        out["status"] = "stale"
        out["explanation"] = _stale_text(out.get("explanation"), newest, out["age_days"])
    segments = out.get("segments")
    if segments:
        out["segments"] = [_segment(s, at, after) for s in segments]
    return out


def _segment(seg: Mapping[str, Any], at: datetime, after: timedelta) -> dict[str, Any]:
    out = dict(seg)
    newest = out.get("newest_support_at")
    out["age_days"] = age_days(newest, at)
    if out.get("valid_to") is None and is_stale(newest, at, after):
        out["fresh_status"] = out.get("status")
        out["status"] = "stale"
        out["explanation"] = _stale_text(out.get("explanation"), newest, out["age_days"])
    return out


def _stale_text(explanation: str | None, newest: str | None, days: int | None) -> str:
    day = (newest or "")[:10]
    note = (
        f"Stale: the newest supporting claim was published {day},"
        f" {days} days before the time asked about."
    )
    return f"{explanation} {note}" if explanation else note
