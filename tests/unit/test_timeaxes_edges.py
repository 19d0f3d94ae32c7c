"""Edges of shared/timeaxes.py that mutation testing found unpinned (docs/testing.md).

The storage format is UTC whatever the machine's zone: these run under a zone far from UTC,
so a naive local time that slipped into a conversion shows as a wrong instant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from shared.timeaxes import MAX_TIME, MIN_TIME, iso, now_iso, parse_iso, public_time, query_instant


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


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
