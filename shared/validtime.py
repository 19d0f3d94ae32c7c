"""World time ("late 2024", "2024-08/2024-12") and instants (published_at, API params).

A claim's valid time is the half-open interval [start, end) of dates it is about, kept with
its precision so that "December 2024" is not mistaken for 1 December. Hand-written: the
phrases are few and fixed, and date libraries (dateutil, dateparser) turn "late 2024" into a
single guessed day, where we need the whole period or a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.model import ValidTime


class TimeProblem(ValueError):
    """A time that cannot be read; `field` says where, `detail` says why."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"

# Sub-year periods as (first month, number of months); winter runs into the next year.
_PARTS = {"early": (1, 4), "mid": (5, 4), "late": (9, 4)}
_SEASONS = {"spring": (3, 3), "summer": (6, 3), "autumn": (9, 3), "fall": (9, 3), "winter": (12, 3)}
_HALVES = {"first": 1, "1st": 1, "second": 2, "2nd": 2}
# Parts of a month ("late December"): days [from, to) with 32 meaning "to the month's end".
_MONTH_PARTS = {"early": (1, 11), "mid": (11, 21), "late": (21, 32)}


@dataclass(frozen=True, slots=True)
class _Period:
    start: date
    end: date
    precision: str


def _months_later(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _span(year: int, month: int, months: int, precision: str) -> _Period:
    start = date(year, month, 1)
    return _Period(start, _months_later(start, months), precision)


def _day(d: date) -> _Period:
    return _Period(d, d + timedelta(days=1), "day")


def _relative(text: str, reference: date | None, field: str) -> _Period | None:
    m = re.fullmatch(r"today|yesterday|(this|last) (week|month|year)", text)
    if not m:
        return None
    if reference is None:
        raise TimeProblem(field, f"{text!r} needs a reference date (e.g. the publication date)")
    if text in ("today", "yesterday"):
        return _day(reference - timedelta(days=1 if text == "yesterday" else 0))
    back = 1 if m[1] == "last" else 0
    if m[2] == "week":  # ISO weeks start on Monday
        monday = reference - timedelta(days=reference.weekday() + 7 * back)
        return _Period(monday, monday + timedelta(days=7), "interval")
    if m[2] == "month":
        start = _months_later(date(reference.year, reference.month, 1), -back)
        return _Period(start, _months_later(start, 1), "month")
    return _span(reference.year - back, 1, 12, "year")


def _period(text: str, *, reference: date | None, field: str, year: int | None = None) -> _Period:
    """One period phrase. `year` fills in a missing year ("August" in "August to December 2024")."""
    try:
        return _period_or_raise(text, reference=reference, field=field, year=year)
    except ValueError as exc:  # date(2024, 2, 30), year 0 ...
        if isinstance(exc, TimeProblem):
            raise
        raise TimeProblem(field, f"{text!r} is not a valid date: {exc}") from None


def _period_or_raise(text: str, *, reference: date | None, field: str, year: int | None) -> _Period:
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text):
        return _day(date(int(m[1]), int(m[2]), int(m[3])))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}.*", text):
        # the date as written: a local "23:30 on the 15th" is about the 15th
        return _day(datetime.fromisoformat(text.upper()).date())
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        return _span(int(m[1]), int(m[2]), 1, "month")
    if m := re.fullmatch(r"(\d{4})", text):
        return _span(int(m[1]), 1, 12, "year")
    if m := re.fullmatch(r"q([1-4]) (\d{4})|(\d{4})[ -]?q([1-4])", text):
        q, y = (m[1], m[2]) if m[1] else (m[4], m[3])
        return _span(int(y), 3 * int(q) - 2, 3, "season")
    if m := re.fullmatch(r"(?:(first|second|1st|2nd) half(?: of)?|h([12])) (\d{4})", text):
        half = _HALVES[m[1]] if m[1] else int(m[2])
        return _span(int(m[3]), 1 + 6 * (half - 1), 6, "season")
    if m := re.fullmatch(r"(early|mid|late)[ -]?(\d{4})", text):
        first, n = _PARTS[m[1]]
        return _span(int(m[2]), first, n, "season")
    if m := re.fullmatch(r"(spring|summer|autumn|fall|winter)(?: of)? (\d{4})", text):
        first, n = _SEASONS[m[1]]
        return _span(int(m[2]), first, n, "season")
    if m := re.fullmatch(rf"(early|mid|late)[ -]?({_MONTH})(?: (\d{{4}}))?", text):
        y = _year(m[3], year, text, field)
        start = date(y, _MONTHS[m[2]], 1)
        lo, hi = _MONTH_PARTS[m[1]]
        end = _months_later(start, 1) if hi == 32 else start.replace(day=hi)
        return _Period(start.replace(day=lo), end, "interval")
    month_day = rf"(?:(\d{{1,2}}){_ORD} )?({_MONTH})(?: (\d{{1,2}}){_ORD},?)?(?: (\d{{4}}))?"
    if m := re.fullmatch(month_day, text):
        y = _year(m[4], year, text, field)
        day = m[1] or m[3]
        if day:
            return _day(date(y, _MONTHS[m[2]], int(day)))
        return _span(y, _MONTHS[m[2]], 1, "month")
    rel = _relative(text, reference, field)
    if rel is not None:
        return rel
    raise TimeProblem(field, f"cannot read a time in {text!r} (e.g. 2024-12, 'late 2024')")


def _year(given: str | None, default: int | None, text: str, field: str) -> int:
    if given:
        return int(given)
    if default is None:
        raise TimeProblem(field, f"{text!r} needs a year")
    return default


def _normalise(text: str) -> str:
    s = re.sub(r"\s+", " ", text.strip().lower())
    s = re.sub(rf"\b({_MONTH})\.", r"\1", s)  # "Dec. 2024"
    return re.sub(r"^(?:in|during|throughout) ", "", s)


_SEPARATOR = re.compile(
    r"^(?:from |between )?(.+?)(?: to | until | till | through | and | ?[–—] ?| - )(.+)$"
)


def _interval(text: str, reference: date | None, field: str) -> ValidTime | None:
    """Two-sided or open intervals; None when the text is a single period."""
    if "/" in text:  # ISO 8601 interval, ".." for an open side
        a, _, b = text.partition("/")
        lo = None if a in ("", "..") else _period(a, reference=reference, field=field)
        hi = None if b in ("", "..") else _period(b, reference=reference, field=field)
        return _make(lo.start if lo else None, hi.end if hi else None, text, field)
    m = re.fullmatch(r"(since|from|after|until|till|through|before|by) (.+)", text)
    if m and not _SEPARATOR.fullmatch(text):
        p = _period(m[2], reference=reference, field=field)
        if m[1] in ("since", "from"):
            return _make(p.start, None, text, field)
        if m[1] == "after":
            return _make(p.end, None, text, field)
        if m[1] == "before":
            return _make(None, p.start, text, field)
        return _make(None, p.end, text, field)
    m = _SEPARATOR.fullmatch(text) or re.fullmatch(rf"({_MONTH})-((?:{_MONTH}) \d{{4}})", text)
    if not m:
        return None
    left_text, right_text = m.group(1), m.group(2)
    right = _period(right_text, reference=reference, field=field)
    if re.fullmatch(r"\d{1,2}", left_text) and right.precision == "day":  # "15 to 20 December"
        left = _day(right.start.replace(day=int(left_text)))
    else:
        left = _period(left_text, reference=reference, field=field, year=right.start.year)
        if left.start >= right.end:  # "November to February 2025" starts the year before
            left = _period(left_text, reference=reference, field=field, year=right.start.year - 1)
    return _make(left.start, right.end, text, field)


def _make(start: date | None, end: date | None, raw: str, field: str) -> ValidTime:
    if start is None and end is None:
        raise TimeProblem(field, "an interval needs a start or an end")
    if start is not None and end is not None and start >= end:
        raise TimeProblem(field, f"start {start} is not before end {end}")
    precision = "interval" if start is not None and end is not None else "open"
    return ValidTime(start, end, precision, raw)


def parse_valid_time(
    value: Any, *, reference: date | None = None, field: str = "valid_time"
) -> ValidTime | None:
    """A claim's world time as [start, end) with precision; None when not given.

    Accepts a date, "2024-12-15", "2024-12", "2024", "December 2024", "late 2024", "winter
    2024", "Q4 2024", "first half of 2025", "2024-08/2024-12", "August to December 2024",
    "since March 2025", relative phrases against `reference` ("last month"), or a mapping
    {"start", "end"} whose sides may be any of these periods (end is inclusive of its period).
    """
    try:
        return _parse_valid_time(value, reference, field)
    except OverflowError:  # a day after 9999-12-31 (the end of "since 9999-12-31") or before 1
        raise TimeProblem(field, f"{value!r} is {_OUT_OF_RANGE}") from None


def _parse_valid_time(value: Any, reference: date | None, field: str) -> ValidTime | None:
    if value is None:
        return None
    if isinstance(reference, datetime):
        reference = reference.date()
    if isinstance(value, datetime):
        value = _aware(value).date()
    if isinstance(value, date):
        p = _day(value)
        return ValidTime(p.start, p.end, p.precision, value.isoformat())
    if isinstance(value, Mapping):
        return _from_mapping(value, reference, field)
    if not isinstance(value, str) or not value.strip():
        raise TimeProblem(field, "expected a date, a period phrase or {start, end}")
    text = _normalise(value)
    interval = _interval(text, reference, field)
    if interval is not None:
        return ValidTime(interval.start, interval.end, interval.precision, value)
    p = _period(text, reference=reference, field=field)
    return ValidTime(p.start, p.end, p.precision, value)


def _side(value: Any, reference: date | None, field: str) -> tuple[_Period, str]:
    if isinstance(value, datetime):
        value = _aware(value).date()
    if isinstance(value, date):
        return _day(value), value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise TimeProblem(field, "expected a date or a period such as 2024-12")
    return _period(_normalise(value), reference=reference, field=field), value.strip()


def _from_mapping(value: Mapping[str, Any], reference: date | None, field: str) -> ValidTime:
    unknown = set(value) - {"start", "end"}
    if unknown:
        raise TimeProblem(field, f"unknown keys {sorted(unknown)}; use start and end")
    lo = hi = None
    lo_raw = hi_raw = ".."
    if value.get("start") is not None:
        lo, lo_raw = _side(value["start"], reference, f"{field}.start")
    if value.get("end") is not None:
        hi, hi_raw = _side(value["end"], reference, f"{field}.end")
    # raw in ISO interval form, so that it parses back to the same ValidTime
    made = _make(lo.start if lo else None, hi.end if hi else None, f"{lo_raw}/{hi_raw}", field)
    if lo is not None and lo == hi:  # {"start": "2024-12", "end": "2024-12"} is December
        return ValidTime(lo.start, lo.end, lo.precision, made.raw)
    return made


# -- instants ---------------------------------------------------------------------------


def _aware(dt: datetime) -> datetime:
    """Naive means UTC; aware is converted to UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?"
)


def parse_instant(value: Any, *, field: str = "published_at") -> tuple[datetime, str]:
    """An instant as an aware UTC datetime and its precision (year | month | day | second).

    "2025" and "2025-02" stand for the start of the period, since a report published "in
    February 2025" is known to exist from then on.
    """
    try:
        return _parse_instant(value, field)
    except OverflowError:  # an offset that moves 0001-01-01 or 9999-12-31 out of range
        raise TimeProblem(field, f"{value!r} is {_OUT_OF_RANGE}") from None


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_OUT_OF_RANGE = "outside the years 0001-9999 (UTC) that claimledger can store"


def _parse_instant(value: Any, field: str) -> tuple[datetime, str]:
    if isinstance(value, datetime):
        return _aware(value), "second"
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC), "day"
    if not isinstance(value, str):
        raise TimeProblem(field, "expected an ISO 8601 date or timestamp")
    s = value.strip()
    try:
        if m := re.fullmatch(r"(\d{4})", s):
            return datetime(int(m[1]), 1, 1, tzinfo=UTC), "year"
        if m := re.fullmatch(r"(\d{4})-(\d{2})", s):
            return datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC), "month"
        if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", s):
            return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC), "day"
        # Only the extended form: fromisoformat would also take "2025W07" and the like.
        if _TIMESTAMP.fullmatch(s):
            moment = _aware(datetime.fromisoformat(s.upper()))
            if moment == _END_OF_TIME:  # the stored open end (shared.timeaxes.MAX_TIME)
                raise OverflowError
            return moment, "second"
    except ValueError as exc:
        raise TimeProblem(field, f"{value!r} is not a valid time: {exc}") from None
    raise TimeProblem(field, f"{value!r} is not ISO 8601 (e.g. 2025-02-16 or 2025-02-16T10:00Z)")
