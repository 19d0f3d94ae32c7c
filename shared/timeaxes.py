"""The three time axes (DESIGN.md §4), as pure functions over plain data.

Times are stored as fixed-width ISO-8601 UTC strings, so that string order is
time order on every SQL backend and interval tests are plain indexed
comparisons. Intervals are half-open [from, to); open ends use sentinels
instead of NULL so that `from <= t < to` needs no special case.

A key's consensus over publication time is a step function: it changes only at
the publication (or effective) times of its inputs. When an input arrives with
publication time p, every step from p on is recomputed; steps before p are
untouched (the past before p did not know this input). `revise` computes which
stored steps end (in recorded time) and which new steps begin.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

MIN_TIME = "0001-01-01T00:00:00.000000Z"
MAX_TIME = "9999-12-31T23:59:59.999999Z"
# The latest instant a query can ask about: `pub_to > t` must hold for the open-ended
# current step, whose pub_to is MAX_TIME itself.
LAST_QUERY_TIME = "9999-12-31T23:59:59.999998Z"


def iso(value: datetime | date) -> str:
    """Fixed width, whatever the year: strftime's %Y writes year 999 as "999" on glibc,
    which sorts after "2025" and does not parse back (fromisoformat needs four digits)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)  # 3.11 reads the trailing Z; much faster than strptime


def now_iso() -> str:
    return iso(datetime.now(UTC))


def public_time(value: str | None) -> str | None:
    """Sentinels are an storage detail: open ends read as null."""
    if value is None or value in (MIN_TIME, MAX_TIME):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Step:
    """One piece of a key's publication-time timeline, as currently believed."""

    pub_from: str
    pub_to: str
    result: Any  # a consensus result (compared by equality)
    version: int | None = None  # stored version number; None for a new step
    previous: Any = None  # the result this step replaces at pub_from (for the diff)


@dataclass(frozen=True, slots=True)
class Revision:
    closed: tuple[Step, ...]  # stored steps whose recorded-time interval ends now
    opened: tuple[Step, ...]  # new steps, in publication order


def revise(
    current: Sequence[Step],
    input_times: Sequence[str],
    since: str,
    evaluate: Callable[[str], Any],
) -> Revision:
    """Recompute the timeline from publication time `since` on.

    `current`: the key's steps as currently recorded (recorded-time open).
    `input_times`: effective times of all the key's inputs (claims, retractions...).
    `evaluate(t)`: the consensus from every input effective at or before t.
    """
    affected = [s for s in current if s.pub_to > since]
    opened: list[Step] = []
    for step in affected:
        if step.pub_from < since:  # the part before `since` keeps its result
            opened.append(Step(step.pub_from, since, step.result, previous=step.result))
    times = sorted({t for t in input_times if t >= since} | {since})
    for i, start in enumerate(times):
        end = times[i + 1] if i + 1 < len(times) else MAX_TIME
        before = _covering(current, start)
        opened.append(Step(start, end, evaluate(start), previous=before))
    return _drop_unchanged(affected, opened)


def _covering(steps: Sequence[Step], t: str) -> Any:
    for step in steps:
        if step.pub_from <= t < step.pub_to:
            return step.result
    return None


def _drop_unchanged(affected: list[Step], opened: list[Step]) -> Revision:
    """A step recomputed to exactly what is stored stays as it is (no new version)."""
    stored = {(s.pub_from, s.pub_to): s for s in affected}
    closed, new = [], []
    kept: set[tuple[str, str]] = set()
    for step in opened:
        old = stored.get((step.pub_from, step.pub_to))
        if old is not None and old.result == step.result:
            kept.add((step.pub_from, step.pub_to))
        else:
            new.append(step)
    closed = [s for s in affected if (s.pub_from, s.pub_to) not in kept]
    return Revision(tuple(closed), tuple(new))


def segment_at(segments: Sequence[dict[str, Any]], day: date) -> dict[str, Any] | None:
    """The valid-time segment covering world date `day` (segments are half-open)."""
    d = day.isoformat()
    for seg in segments:
        lo, hi = seg.get("valid_from"), seg.get("valid_to")
        if (lo is None or lo <= d) and (hi is None or d < hi):
            return seg
    return None


def query_instant(moment: datetime, precision: str) -> str:
    """A time parameter names a whole period: `as_of=2025-01-31` includes all of that day.

    Returns the last microsecond of the period (inclusive bound for `from <= t < to`),
    at most LAST_QUERY_TIME. Computed within the period (no "first instant of the next
    one"), so December 9999 needs no year 10000.
    """
    m = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if precision in ("day", "month", "year"):
        month = 12 if precision == "year" else m.month
        day = calendar.monthrange(m.year, month)[1] if precision != "day" else m.day
        m = datetime(m.year, month, day, 23, 59, 59, 999999, tzinfo=UTC)
    return min(iso(m), LAST_QUERY_TIME)
