"""World time ([start, end) with precision) and instants (published_at, API params)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.model import ValidTime
from shared.validtime import TimeProblem, parse_instant, parse_valid_time

D = date


def span(text, **kw):
    vt = parse_valid_time(text, **kw)
    assert vt is not None
    return (vt.start, vt.end, vt.precision)


def test_missing_valid_time_stays_none():
    assert parse_valid_time(None) is None


def test_day_covers_one_day():
    assert span("2024-12-15") == (D(2024, 12, 15), D(2024, 12, 16), "day")


def test_month_precision_date_covers_the_whole_month():
    assert span("2024-12") == (D(2024, 12, 1), D(2025, 1, 1), "month")
    assert span("December 2024") == (D(2024, 12, 1), D(2025, 1, 1), "month")
    assert span("Dec 2024") == (D(2024, 12, 1), D(2025, 1, 1), "month")
    assert span("January 2025") == (D(2025, 1, 1), D(2025, 2, 1), "month")


def test_year_covers_the_whole_year():
    assert span("2024") == (D(2024, 1, 1), D(2025, 1, 1), "year")


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("late 2024", D(2024, 9, 1), D(2025, 1, 1)),
        ("mid-2024", D(2024, 5, 1), D(2024, 9, 1)),
        ("mid 2024", D(2024, 5, 1), D(2024, 9, 1)),
        ("early 2025", D(2025, 1, 1), D(2025, 5, 1)),
        ("spring 2024", D(2024, 3, 1), D(2024, 6, 1)),
        ("summer 2024", D(2024, 6, 1), D(2024, 9, 1)),
        ("autumn 2024", D(2024, 9, 1), D(2024, 12, 1)),
        ("fall 2024", D(2024, 9, 1), D(2024, 12, 1)),
        ("winter 2024", D(2024, 12, 1), D(2025, 3, 1)),
        ("Q4 2024", D(2024, 10, 1), D(2025, 1, 1)),
        ("first half of 2025", D(2025, 1, 1), D(2025, 7, 1)),
        ("second half of 2025", D(2025, 7, 1), D(2026, 1, 1)),
    ],
)
def test_part_of_year_phrases_cover_their_months(phrase, start, end):
    assert span(phrase) == (start, end, "season")


def test_winter_runs_into_the_next_year():
    assert span("winter 2024")[1] == D(2025, 3, 1)


def test_raw_phrase_is_kept():
    assert parse_valid_time("  Late 2024 ").raw == "  Late 2024 "


@pytest.mark.parametrize(
    "phrase",
    ["2024-08/2024-12", "August to December 2024", "from August to December 2024",
     "between August and December 2024", "Aug-Dec 2024", "August 2024 to December 2024"],
)  # fmt: skip
def test_intervals_run_from_the_first_period_start_to_the_last_period_end(phrase):
    assert span(phrase) == (D(2024, 8, 1), D(2025, 1, 1), "interval")


def test_interval_left_side_without_year_may_start_the_year_before():
    assert span("November to February 2025") == (D(2024, 11, 1), D(2025, 3, 1), "interval")


def test_open_intervals_leave_one_side_open():
    assert span("2024-08/..") == (D(2024, 8, 1), None, "open")
    assert span("since March 2025") == (D(2025, 3, 1), None, "open")
    assert span("until December 2024") == (None, D(2025, 1, 1), "open")


def test_relative_phrases_need_and_use_a_reference_date():
    ref = D(2025, 2, 16)  # a Sunday
    assert span("last month", reference=ref) == (D(2025, 1, 1), D(2025, 2, 1), "month")
    assert span("this month", reference=ref) == (D(2025, 2, 1), D(2025, 3, 1), "month")
    assert span("last year", reference=ref) == (D(2024, 1, 1), D(2025, 1, 1), "year")
    assert span("last week", reference=ref) == (D(2025, 2, 3), D(2025, 2, 10), "interval")
    with pytest.raises(TimeProblem):
        parse_valid_time("last month")


def test_last_month_in_january_is_december_of_the_previous_year():
    assert span("last month", reference=D(2025, 1, 10))[:2] == (D(2024, 12, 1), D(2025, 1, 1))


def test_mapping_sides_take_period_start_and_period_end():
    both = {"start": "2024-08", "end": "2024-12"}
    assert span(both) == (D(2024, 8, 1), D(2025, 1, 1), "interval")
    assert span({"end": "2024-12-31"}) == (None, D(2025, 1, 1), "open")
    assert span({"start": D(2024, 8, 3)}) == (D(2024, 8, 3), None, "open")


def test_mapping_raw_parses_back_to_the_same_time():
    vt = parse_valid_time({"start": "2024-08", "end": "2024-12"})
    assert span(vt.raw) == (vt.start, vt.end, vt.precision)


def test_date_objects_are_days():
    expected = ValidTime(D(2024, 1, 2), D(2024, 1, 3), "day", "2024-01-02")
    assert parse_valid_time(D(2024, 1, 2)) == expected


@pytest.mark.parametrize(
    "bad",
    ["banana", "2024-13", "2024-02-30", "December", "", 5, {"from": "2024"}, {},
     {"start": "2024-12", "end": "2024-08"}, "2024-12/2024-01"],
)  # fmt: skip
def test_unreadable_or_backwards_times_are_rejected(bad):
    with pytest.raises(TimeProblem) as err:
        parse_valid_time(bad)
    assert err.value.field.startswith("valid_time") and isinstance(err.value, ValueError)


# -- instants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("2025-02-16", datetime(2025, 2, 16, tzinfo=UTC), "day"),
        ("2025-02", datetime(2025, 2, 1, tzinfo=UTC), "month"),
        ("2025", datetime(2025, 1, 1, tzinfo=UTC), "year"),
        ("2025-02-16T10:00:00Z", datetime(2025, 2, 16, 10, tzinfo=UTC), "second"),
        ("2025-02-16T10:00:00+02:00", datetime(2025, 2, 16, 8, tzinfo=UTC), "second"),
        ("2025-02-16 10:00", datetime(2025, 2, 16, 10, tzinfo=UTC), "second"),
    ],
)
def test_instants_are_aware_utc_with_precision(text, expected, precision):
    assert parse_instant(text) == (expected, precision)


def test_naive_datetime_is_utc_and_aware_is_converted():
    assert parse_instant(datetime(2025, 1, 1, 5))[0] == datetime(2025, 1, 1, 5, tzinfo=UTC)
    plus3 = datetime(2025, 1, 1, 5, tzinfo=timezone(timedelta(hours=3)))
    assert parse_instant(plus3)[0] == datetime(2025, 1, 1, 2, tzinfo=UTC)
    assert parse_instant(D(2025, 1, 1)) == (datetime(2025, 1, 1, tzinfo=UTC), "day")


@pytest.mark.parametrize("bad", ["2025-02-30", "2025W07", "yesterday", "", 2025, None])
def test_bad_instants_are_rejected_on_their_field(bad):
    with pytest.raises(TimeProblem) as err:
        parse_instant(bad, field="as_of")
    assert err.value.field == "as_of"


# -- the range the store can represent (issue #24) ----------------------------------------


@pytest.mark.parametrize(
    "edge",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999Z"],
)
def test_instants_outside_years_1_to_9999_in_utc_are_refused_on_their_field(edge):
    with pytest.raises(TimeProblem) as err:
        parse_instant(edge, field="effective_at")
    assert err.value.field == "effective_at"
    assert "0001-9999" in err.value.detail


def test_instants_at_the_edges_inside_the_range_are_read():
    assert parse_instant("0001-01-01T00:00:00-14:00")[0] == datetime(1, 1, 1, 14, tzinfo=UTC)
    assert parse_instant("0999-06-01")[0] == datetime(999, 6, 1, tzinfo=UTC)
    assert parse_instant("9999-12-31T23:59:59+14:00")[0] == datetime(
        9999, 12, 31, 9, 59, 59, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "phrase",
    [
        "since 9999-12-31",
        "9999-12-31",
        "9999-12-31T23:59:59-14:00",
        "winter 9999",
        "after 9999",
        {"start": "2025", "end": "9999-12-31"},
    ],
)
def test_valid_times_ending_after_year_9999_are_refused(phrase):
    with pytest.raises(TimeProblem) as err:
        parse_valid_time(phrase, reference=D(2025, 1, 1))
    assert err.value.field.startswith("valid_time")


def test_yesterday_before_year_1_is_refused():
    with pytest.raises(TimeProblem):
        parse_valid_time("yesterday", reference=D(1, 1, 1))
