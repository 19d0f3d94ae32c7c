"""Publication-time timelines: which steps a new input closes and opens."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.timeaxes import (
    MAX_TIME,
    Step,
    answer_at,
    iso,
    parse_iso,
    query_instant,
    revise,
    segment_at,
)

JAN, FEB, MAR = (
    "2025-01-01T00:00:00.000000Z",
    "2025-02-01T00:00:00.000000Z",
    "2025-03-01T00:00:00.000000Z",
)


def _count_before(inputs: list[str]):  # type: ignore[no-untyped-def]
    return lambda t: sum(1 for i in inputs if i <= t)


def test_first_input_opens_one_step_to_the_open_end() -> None:
    rev = revise([], [FEB], FEB, _count_before([FEB]))
    assert rev.closed == ()
    assert [(s.pub_from, s.pub_to, s.result) for s in rev.opened] == [(FEB, MAX_TIME, 1)]


def test_an_input_at_the_head_opens_one_step_and_closes_none() -> None:
    """Issue #19: an append used to close the open step and write a copy of it."""
    current = [Step(JAN, MAX_TIME, 1, version=1)]
    rev = revise(current, [JAN, FEB], FEB, _count_before([JAN, FEB]))
    assert rev.closed == ()
    assert [(s.pub_from, s.pub_to, s.result) for s in rev.opened] == [(FEB, MAX_TIME, 2)]
    assert rev.opened[0].previous == 1
    timeline = [*current, *rev.opened]
    assert [_at(timeline, t) for t in (JAN, FEB, MAR)] == [1, 2, 2]


def _at(steps: list[Step], t: str) -> object:
    step = answer_at(steps, t)
    return None if step is None else step.result


def test_a_back_dated_change_that_ends_before_a_stored_step_ends_there() -> None:
    """A step opened between stored ones ends where the stored answer resumes."""
    current = [Step(JAN, MAX_TIME, "a", version=1), Step(MAR, MAX_TIME, "c", version=2)]
    rev = revise(current, [JAN, FEB, MAR], FEB, {FEB: "b", MAR: "c"}.__getitem__)
    assert rev.closed == ()
    assert [(s.pub_from, s.pub_to, s.result) for s in rev.opened] == [(FEB, MAR, "b")]
    timeline = sorted([*current, *rev.opened], key=lambda s: s.pub_from)
    assert [_at(timeline, t) for t in (JAN, FEB, MAR)] == ["a", "b", "c"]


def test_a_change_undone_later_opens_a_step_with_what_changed_for_that_reader() -> None:
    current = [Step(JAN, MAX_TIME, "a", version=1)]
    rev = revise(current, [JAN, FEB, MAR], FEB, {FEB: "b", MAR: "a"}.__getitem__)
    assert [(s.pub_from, s.pub_to, s.result) for s in rev.opened] == [
        (FEB, MAR, "b"),
        (MAR, MAX_TIME, "a"),
    ]
    assert [s.previous for s in rev.opened] == ["a", "b"]  # never an empty diff


def test_backfill_recomputes_every_later_step() -> None:
    current = [Step(FEB, MAR, 1, version=1), Step(MAR, MAX_TIME, 2, version=2)]
    inputs = [JAN, FEB, MAR]
    rev = revise(current, inputs, JAN, _count_before(inputs))
    assert {s.version for s in rev.closed} == {1, 2}
    assert [(s.pub_from, s.pub_to, s.result) for s in rev.opened] == [
        (JAN, FEB, 1),
        (FEB, MAR, 2),
        (MAR, MAX_TIME, 3),
    ]


def test_recomputing_to_the_stored_result_opens_no_new_version() -> None:
    current = [Step(FEB, MAX_TIME, "same", version=1)]
    rev = revise(current, [FEB], FEB, lambda t: "same")
    assert rev.closed == () and rev.opened == ()


def test_new_step_remembers_what_it_replaced_for_the_diff() -> None:
    current = [Step(FEB, MAX_TIME, "old", version=1)]
    rev = revise(current, [FEB], FEB, lambda t: "new")
    assert rev.opened[0].previous == "old"


def test_iso_times_sort_as_strings_in_time_order() -> None:
    a = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    b = datetime(2025, 1, 1, tzinfo=UTC)
    assert iso(a) < iso(b) < MAX_TIME
    assert parse_iso(iso(a)) == a


def test_a_day_as_of_includes_the_whole_day() -> None:
    assert query_instant(datetime(2025, 1, 31, tzinfo=UTC), "day") == "2025-01-31T23:59:59.999999Z"
    assert (
        query_instant(datetime(2024, 12, 1, tzinfo=UTC), "month") == "2024-12-31T23:59:59.999999Z"
    )


def test_valid_at_picks_the_half_open_segment() -> None:
    segments = [
        {"valid_from": "2025-01-01", "valid_to": "2025-02-01", "text": "withdrawn"},
        {"valid_from": "2025-02-01", "valid_to": None, "text": "deployed"},
    ]
    assert segment_at(segments, datetime(2025, 1, 31).date())["text"] == "withdrawn"  # type: ignore[index]
    assert segment_at(segments, datetime(2025, 2, 1).date())["text"] == "deployed"  # type: ignore[index]
    assert segment_at(segments, datetime(2024, 12, 1).date()) is None


def test_iso_is_fixed_width_before_year_1000_so_string_order_is_time_order() -> None:
    early = iso(datetime(999, 6, 1, tzinfo=UTC))
    assert early == "0999-06-01T00:00:00.000000Z"
    assert early < iso(datetime(2025, 1, 1, tzinfo=UTC))
    assert parse_iso(early) == datetime(999, 6, 1, tzinfo=UTC)


def test_query_instants_in_december_9999_stay_inside_the_open_end() -> None:
    for precision in ("day", "month", "year"):
        moment = datetime(9999, 12, 31, tzinfo=UTC)
        t = query_instant(moment, precision)
        assert t < MAX_TIME  # the current step [from, MAX_TIME) still covers it
    assert query_instant(datetime(999, 2, 3, tzinfo=UTC), "month") == "0999-02-28T23:59:59.999999Z"
