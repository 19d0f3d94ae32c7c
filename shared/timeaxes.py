"""The three time axes (docs/architecture.md §4), as pure functions over plain data.

Times are stored as fixed-width ISO-8601 UTC strings, so that string order is
time order on every SQL backend and interval tests are plain indexed
comparisons. Intervals are half-open [from, to); open ends use sentinels
instead of NULL so that `from <= t < to` needs no special case.

A key's consensus over publication time is a step function: it changes only at
the publication (or effective) times of its inputs. A stored step answers from its
`pub_from` on, up to its `pub_to`, until a step recorded with a later `pub_from`
takes over: the answer at publication time t is the step with the greatest
`pub_from` among those with `pub_from <= t < pub_to` (`answer_at`). So an input
published after everything else costs one new step and leaves the others as they
are; a step is stored only where what a reader sees changes. When an input arrives
with publication time p, every answer from p on is recomputed; answers before p
are untouched (the past before p did not know this input). `revise` computes which
stored steps end (in recorded time) and which new steps begin.
"""

from __future__ import annotations

import calendar
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    """One piece of a key's publication-time timeline, as currently believed: it answers
    from `pub_from` until a step with a later `pub_from` takes over, or `pub_to`."""

    pub_from: str
    pub_to: str
    result: Any  # a consensus result (compared by equality)
    version: int | None = None  # stored version number; None for a new step
    previous: Any = None  # what a reader saw at pub_from before this step (for the diff)


@dataclass(frozen=True, slots=True)
class Revision:
    closed: tuple[Step, ...]  # stored steps whose recorded-time interval ends now
    opened: tuple[Step, ...]  # new steps, in publication order
    # steps opened earlier at this same recorded time and superseded at it: their recorded
    # interval would be empty (no reader at any recorded time saw them), so they are removed
    dropped: tuple[Step, ...] = ()
    # steps closed earlier at this same recorded time that answer again: the close is undone
    reopened: tuple[Step, ...] = ()
    # a step opened earlier at this recorded time whose end moves (with its new `pub_to`)
    retimed: tuple[Step, ...] = ()


def answer_at(steps: Sequence[Step], t: str) -> Step | None:
    """The step answering at publication time t (`steps` in pub_from order): the greatest
    `pub_from` covering t. Searched from the end: most reads are near the head."""
    i = bisect_right(steps, t, key=lambda s: s.pub_from)
    while i > 0:
        i -= 1
        if t < steps[i].pub_to:
            return steps[i]
    return None


def _result_at(steps: Sequence[Step], t: str) -> Any:
    step = answer_at(steps, t)
    return None if step is None else step.result


def revise(
    current: Sequence[Step],
    input_times: Sequence[str],
    since: str,
    evaluate: Callable[[str], Any],
    *,
    fresh: frozenset[int] | set[int] = frozenset(),
    closed_now: Sequence[Step] = (),
) -> Revision:
    """Recompute the timeline from publication time `since` on.

    `current`: the key's steps as currently recorded (recorded-time open), one per pub_from.
    `input_times`: effective times of all the key's inputs (claims, retractions...).
    `evaluate(t)`: the consensus from every input effective at or before t.
    `fresh`: versions of `current` opened at the recorded time of this revision (by an
    earlier part of the same recorded-time group), `closed_now`: steps closed at it.

    A new step is opened only at a time where the answer a reader would see changes; a
    stored step recomputed to its own result stays. Steps written together tile the
    range they change (each ends where the next begins); a step opened at the head
    ends nowhere (`MAX_TIME`): a later one takes over.

    Supersession is decided per recorded time, not per call: the result is the same as if
    every input of the recorded time had been revised at once against the timeline as it
    was before that recorded time (the baseline: `current` without `fresh`, with
    `closed_now`). So fresh steps from `since` on are dropped and recomputed, a baseline
    step closed at this recorded time is reopened if it answers again, and the diff
    (`previous`) is against the baseline. Given how the earlier part was revised (by this
    same function), only `since` onwards can differ; before it everything is kept, except
    the end of the last fresh step, which the first step from `since` decides.
    """
    current = sorted(current, key=lambda s: s.pub_from)
    closed_versions = {s.version for s in closed_now}
    baseline = sorted(
        [s for s in current if s.version not in fresh] + list(closed_now), key=lambda s: s.pub_from
    )
    chosen = [s for s in current if s.pub_from < since]  # the past before `since` stays
    dropped = tuple(s for s in current if s.pub_from >= since and s.version in fresh)
    stored = {s.pub_from: s for s in baseline if s.pub_from >= since}
    seed: Step | None = None  # the last fresh step before `since`: its end is decided again
    if chosen and chosen[-1].version in fresh:
        seed = chosen[-1]
        chosen[-1] = replace(seed, pub_to=MAX_TIME)
    tail_new = seed is not None  # chosen[-1] was opened at this recorded time
    closed: list[Step] = []
    opened: list[Step] = []
    reopened: list[Step] = []

    def append(step: Step, new: bool) -> None:
        # a step opened at this recorded time just before `step` ends where it begins (it
        # would be shadowed from here on anyway)
        nonlocal tail_new
        if tail_new and step.pub_to == MAX_TIME:
            bounded = replace(chosen[-1], pub_to=step.pub_from)
            if opened and chosen[-1] is opened[-1]:
                opened[-1] = bounded
            chosen[-1] = bounded
        chosen.append(step)
        tail_new = new
        if new:
            opened.append(step)

    for t in sorted({t for t in input_times if t >= since} | {since}):
        want = evaluate(t)
        old = stored.pop(t, None)
        if old is not None and old.result == want:
            if old.version in closed_versions:
                reopened.append(old)
            append(old, False)
            continue
        if old is not None and old.version not in closed_versions:
            closed.append(old)
        under = _result_at(chosen, t)  # what a reader would see at t without a step here
        if under == want:
            continue
        before = _result_at(baseline, t)
        # the diff names what changed for a reader of t; if the recorded answer at t was
        # already this one, the step only stops an earlier new one: diff against that
        append(Step(t, MAX_TIME, want, previous=under if before == want else before), True)
    # cannot happen (inputs are never removed): kept correct anyway
    closed += [s for s in stored.values() if s.version not in closed_versions]
    retimed: tuple[Step, ...] = ()
    if seed is not None:
        end = next(s for s in chosen if s.version == seed.version).pub_to
        if end != seed.pub_to:
            retimed = (replace(seed, pub_to=end),)
    return Revision(
        tuple(sorted(closed, key=lambda s: s.pub_from)),
        tuple(opened),
        dropped,
        tuple(reopened),
        retimed,
    )


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
