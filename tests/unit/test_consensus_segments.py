"""Valid-time segments at their edges, as a reader sees them: claims with only an end, a
running total "by" a date, a span of no length or written backwards, times given as
datetimes, the calendar's last day (issue #25's mutants)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from shared.consensus import compute_consensus
from shared.model import ClaimFacts, ValidTime, Value
from tests.unit.test_consensus import KILLED, STATUS, STOCK, claim, exact, name


def _at(cid: str, value: Value, origin: str, start: date | None, end: date | None) -> ClaimFacts:
    return claim(cid, value, origin, valid_time=ValidTime(start, end, "interval"))


def _periods(claims: list[ClaimFacts], spec: object = STOCK) -> list[tuple[object, ...]]:
    result = compute_consensus(claims, spec)  # type: ignore[arg-type]
    return [(s.valid_from, s.valid_to, s.best, s.support) for s in result.segments]


def test_a_claim_with_only_an_end_holds_until_it() -> None:
    # "deployed until January": a segment with no start, then December with two witnesses
    claims = [
        claim("u", name("deployed"), "Blog", attribute="deployment_status",
              valid_time=ValidTime(None, date(2025, 1, 1), "interval")),
        claim("dec", name("deployed"), "Wire", attribute="deployment_status",
              valid_time=ValidTime(date(2024, 12, 1), date(2025, 1, 1), "month")),
    ]  # fmt: skip
    before, december = compute_consensus(claims, STATUS).segments
    assert (before.valid_from, before.valid_to, before.support) == (None, date(2024, 12, 1), ("u",))
    assert before.explanation == "Until 2024-12-01: Single origin (Blog): 'deployed'."
    assert (december.status, december.support) == ("settled", ("dec", "u"))


def test_a_running_total_by_a_date_counts_from_that_date() -> None:
    # "1,000 killed by 31 December": anchored at its end, and still reached in February
    claims = [
        claim("by", exact(1000), "A", attribute="killed",
              valid_time=ValidTime(None, date(2024, 12, 31), "interval")),
        claim("feb", exact(3000), "B", attribute="killed",
              valid_time=ValidTime(date(2025, 2, 1), date(2025, 3, 1), "month")),
    ]  # fmt: skip
    result = compute_consensus(claims, KILLED)
    assert [(s.valid_from, s.valid_to, s.best, s.support) for s in result.segments] == [
        (date(2024, 12, 31), date(2025, 2, 1), 1000, ("by",)),
        (date(2025, 2, 1), None, 3000, ("by", "feb")),
    ]
    assert result.best == 3000


def test_a_span_of_no_length_or_written_backwards_covers_its_first_day() -> None:
    month = _at("m", exact(200), "B", date(2024, 12, 1), date(2025, 1, 1))
    for end in (date(2024, 12, 5), date(2024, 12, 2)):  # empty; ends before it starts
        day = _at("d", exact(100), "A", date(2024, 12, 5), end)
        assert _periods([day, month]) == [
            (date(2024, 12, 1), date(2024, 12, 5), 200, ("m",)),
            (date(2024, 12, 5), date(2024, 12, 6), 100, ("d",)),
            (date(2024, 12, 6), date(2025, 1, 1), 200, ("m",)),
        ]


def test_valid_times_given_as_datetimes_are_read_by_their_day() -> None:
    noon = _at(
        "a",
        exact(100),
        "A",
        datetime(2024, 12, 1, 12, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    day = _at("b", exact(100), "B", date(2024, 12, 1), date(2025, 1, 1))
    result = compute_consensus([noon, day], STOCK)
    [december] = result.segments
    assert (december.valid_from, december.valid_to) == (date(2024, 12, 1), date(2025, 1, 1))
    assert (december.status, december.support) == ("settled", ("a", "b"))


def test_a_claim_about_the_calendars_last_day_still_reads() -> None:
    last = _at("z", exact(100), "A", date.max, date.max)
    result = compute_consensus([last], STOCK)
    assert (result.best, result.status) == (100, "single_source")
