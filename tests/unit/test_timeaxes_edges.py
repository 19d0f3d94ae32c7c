"""Edges of shared/timeaxes.py that mutation testing found unpinned (docs/testing.md).

The storage format is UTC whatever the machine's zone: these run under a zone far from UTC,
so a naive local time that slipped into a conversion shows as a wrong instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.timeaxes import (
    MAX_TIME,
    MIN_TIME,
    Step,
    iso,
    now_iso,
    parse_iso,
    public_time,
    query_instant,
    revise,
)


def test_a_date_is_its_first_instant_in_utc() -> None:
    assert iso(date(2025, 1, 2)) == "2025-01-02T00:00:00.000000Z"


def test_open_ends_read_as_null_and_real_times_as_themselves() -> None:
    assert public_time(MIN_TIME) is None and public_time(MAX_TIME) is None
    assert public_time(None) is None
    assert public_time("2025-01-02T00:00:00.000000Z") == "2025-01-02T00:00:00.000000Z"


def test_now_is_utc_whatever_the_machine_zone(far_from_utc: None) -> None:
    before = datetime.now(UTC)
    now = parse_iso(now_iso())
    after = datetime.now(UTC)
    assert before <= now <= after


@pytest.mark.parametrize(
    ("moment", "precision", "last_instant"),
    [
        (datetime(2025, 2, 14, tzinfo=UTC), "day", "2025-02-14T23:59:59.999999Z"),
        (datetime(2025, 2, 1, tzinfo=UTC), "month", "2025-02-28T23:59:59.999999Z"),
        (datetime(2024, 12, 1, tzinfo=UTC), "month", "2024-12-31T23:59:59.999999Z"),
        (datetime(2025, 1, 1, tzinfo=UTC), "year", "2025-12-31T23:59:59.999999Z"),
        (datetime(2025, 2, 14, 9, 30, tzinfo=UTC), "second", "2025-02-14T09:30:00.000000Z"),
    ],
)
def test_a_period_ends_at_its_last_microsecond_in_utc(
    far_from_utc: None, moment: datetime, precision: str, last_instant: str
) -> None:
    assert query_instant(moment, precision) == last_instant


def test_iso_reads_naive_times_as_utc_and_converts_aware_ones(far_from_utc: None) -> None:
    assert iso(date(2025, 1, 2)) == "2025-01-02T00:00:00.000000Z"
    assert iso(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05.000000Z"
    tokyo = datetime(2025, 1, 2, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    assert iso(tokyo) == "2025-01-02T00:00:00.000000Z"


T1, T2, T3 = (f"2025-01-0{d}T00:00:00.000000Z" for d in (1, 2, 3))


def _at(t: str) -> str:
    return f"result at {t}"


def test_revise_opens_one_step_per_input_time_each_ending_where_the_next_begins() -> None:
    revision = revise([], [T1, T2, T3], T1, _at)
    assert [(s.pub_from, s.pub_to, s.result) for s in revision.opened] == [
        (T1, T2, _at(T1)),
        (T2, T3, _at(T2)),
        (T3, MAX_TIME, _at(T3)),
    ]
    assert revision.closed == ()


def test_revise_keeps_the_past_before_since_and_names_what_each_new_step_replaces() -> None:
    current = [Step(T1, T2, "old 1", version=1), Step(T2, MAX_TIME, "old 2", version=2)]
    revision = revise(current, [T1, T2, T3], T2, _at)
    # the step before `since` is untouched (it ends where `since` begins): not reopened
    assert [s.version for s in revision.closed] == [2]
    opened = [(s.pub_from, s.pub_to, s.result, s.previous) for s in revision.opened]
    assert opened == [(T2, T3, _at(T2), "old 2"), (T3, MAX_TIME, _at(T3), "old 2")]


def test_revise_adds_one_version_where_since_falls_inside_a_step() -> None:
    """Versions are changes: a later-published version takes over from T2 on, and the one
    before keeps answering before T2 without being closed or copied (one new row)."""
    current = [Step(T1, MAX_TIME, "old", version=1)]
    revision = revise(current, [T1, T2], T2, _at)
    assert revision.closed == ()
    opened = [(s.pub_from, s.pub_to, s.result, s.previous) for s in revision.opened]
    assert opened == [(T2, MAX_TIME, _at(T2), "old")]
