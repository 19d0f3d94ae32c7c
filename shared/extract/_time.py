"""World-time phrases in a sentence, resolved against the publication date.

"in December 2024", "late 2024", "mid-2024", "last month", "on Friday", "in January",
"February", "since November", "early March" become `ValidTime`s through
shared.validtime.parse_valid_time once the missing year (or the weekday's date) is filled in
from the publication date: the most recent such period on or before publication.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from shared.model import ValidTime
from shared.validtime import TimeProblem, parse_valid_time

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}

_M = "|".join(sorted(_MONTHS, key=len, reverse=True))
_Y = r"(?:19|20)\d\d"
_PREFIX = (
    r"(?:(?P<pre>since|from|as of|by|until|till|through|before|after|in|during|throughout|"
    r"over|on|at|for|of)\s+)?(?:the\s+)?"
)
_PATTERNS = [
    # "August to December 2024", "between October and December"
    (
        "mrange",
        rf"(?P<m1>{_M})\.?\s*(?:to|until|through|-|–|and)\s*(?P<m2>{_M})\.?"
        rf"(?:,?\s+(?P<y>{_Y}))?",
    ),
    ("dmy", rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{_M})\.?(?:,?\s+(?P<y>{_Y}))?"),
    ("mdy", rf"(?P<m>{_M})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?![\d,]\d)(?:,?\s+(?P<y>{_Y}))?"),
    ("pmonth", rf"(?P<part>early|mid|late)[\s-]+(?P<m>{_M})\.?(?:,?\s+(?P<y>{_Y}))?"),
    ("pyear", rf"(?P<part>early|mid|late)[\s-]?(?P<y>{_Y})"),
    ("eyear", rf"(?P<edge>end|beginning|start|middle)\s+of\s+(?P<y>{_Y})"),
    ("half", rf"(?P<h>first|second|1st|2nd)\s+half\s+of\s+(?P<y>{_Y})"),
    ("quarter", rf"q(?P<q>[1-4])\s+(?P<y>{_Y})"),
    (
        "season",
        rf"(?:(?P<rel>last|this|next|past)\s+)?(?P<s>spring|summer|autumn|fall|winter)"
        rf"(?:,?\s+(?:of\s+)?(?P<y>{_Y}))?",
    ),
    ("month", rf"(?P<m>{_M})\.?(?:,?\s+(?P<y>{_Y}))?"),
    ("year", rf"(?P<y>{_Y})(?![\d,])"),
    (
        "future",
        r"(?:coming|next|following)\s+(?:few\s+)?(?:days|weeks|months|week|month|year)"
        r"|soon|shortly",
    ),
    (
        "rel",
        r"(?P<rel>last|this|past|previous)\s+(?P<unit>week|month|year)"
        r"|(?:earlier|later)\s+this\s+(?P<unit2>week|month|year)|(?P<day>yesterday|today)",
    ),
    ("weekday", rf"(?:(?P<last>last)\s+)?(?P<wd>{'|'.join(_WEEKDAYS)})"),
]
# Python's re refuses a group name twice, so one pattern per kind; the earliest longest wins.
_TIMES = [
    (kind, re.compile(r"(?<![\w-])" + _PREFIX + f"(?:{p})" + r"(?![\w])")) for kind, p in _PATTERNS
]
_ANY_TIME = re.compile(
    rf"(?:{_M}|{_Y}|spring|summer|autumn|fall|winter|weeks?|months?|years?|days?|soon|shortly|"
    rf"{'|'.join(_WEEKDAYS)})(?![a-z])"
)
_SPEECH_BEFORE = re.compile(
    r"(?:said|says|announced|told\s+\w+|reported|stated|added|claimed|confirmed|wrote|"
    r"estimated|briefed|denied)\s*$"
)


@dataclass(frozen=True, slots=True)
class TimeMention:
    start: int
    end: int
    valid: ValidTime | None  # None: a time is named but unknown or in the future
    speech: bool  # when something was said ("said on Monday"), not what it is about


def _year_for(month: int, day: int, published: date) -> int:
    before = (month, day) <= (published.month, published.day)
    return published.year if before else published.year - 1


def _period(g: dict[str, str | None], kind: str, published: date) -> ValidTime | None:
    y = int(g.get("y") or 0) or None
    if kind in ("month", "pmonth", "dmy", "mdy"):
        m = _MONTHS[g["m"] or ""]
        d = int(g.get("d") or 1)
        year = y or _year_for(m, d, published)
        name = _MONTH_NAMES[m - 1]
        if kind == "pmonth":
            part = g["part"]
            return parse_valid_time(f"{part} {name} {year}")
        if g.get("d"):
            return parse_valid_time(date(year, m, d))
        return parse_valid_time(f"{year}-{m:02d}")
    if kind == "mrange":
        m2 = _MONTHS[g["m2"] or ""]
        year = y or _year_for(m2, 1, published)
        return parse_valid_time(f"{g['m1']} to {_MONTH_NAMES[m2 - 1]} {year}")
    if kind == "pyear":
        return parse_valid_time(f"{g['part']} {y}")
    if kind == "eyear":
        edge = {"end": "late", "beginning": "early", "start": "early", "middle": "mid"}
        return parse_valid_time(f"{edge[g['edge'] or 'end']} {y}")
    if kind == "half":
        return parse_valid_time(f"{g['h']} half of {y}")
    if kind == "quarter":
        return parse_valid_time(f"q{g['q']} {y}")
    if kind == "year":
        return parse_valid_time(str(y))
    if kind == "season":
        return _season(g, published)
    if kind == "rel":
        if g.get("day"):
            return parse_valid_time(g["day"], reference=published)
        unit = g.get("unit") or g.get("unit2")
        rel = "this" if g.get("unit2") or g.get("rel") == "this" else "last"
        return parse_valid_time(f"{rel} {unit}", reference=published)
    if kind == "weekday":
        wd = _WEEKDAYS.index(g["wd"] or "")
        back = (published.weekday() - wd) % 7
        if back == 0 and g.get("last"):
            back = 7
        return parse_valid_time(published - timedelta(days=back))
    return None  # future


def _season(g: dict[str, str | None], published: date) -> ValidTime | None:
    name = g["s"] or ""
    first = _SEASONS[name]
    if g.get("y"):
        return parse_valid_time(f"{name} {g['y']}")
    rel = g.get("rel")
    if rel in ("last", "past"):
        year = published.year
        while date(year, first, 1) + timedelta(days=92) > published:
            year -= 1
        return parse_valid_time(f"{name} {year}")
    if rel == "this":
        year = published.year - (1 if first == 12 and published.month < 3 else 0)
        return parse_valid_time(f"{name} {year}")
    return None  # "by the summer": unknown or future


def _open(vt: ValidTime | None, pre: str | None, kind: str) -> ValidTime | None:
    if vt is None or pre is None or kind == "mrange":  # "from August to December"
        return vt
    if pre in ("since", "from", "after"):
        start = vt.end if pre == "after" else vt.start
        return ValidTime(start, None, "open", f"{pre} {vt.raw}")
    if pre in ("until", "till", "through", "before"):
        end = vt.start if pre == "before" else vt.end
        return ValidTime(None, end, "open", f"{pre} {vt.raw}")
    return vt


def find_times(low: str, original: str, published: date) -> list[TimeMention]:
    """Time mentions in a lowercased sentence (`original` keeps case, for "May")."""
    if not _ANY_TIME.search(low):
        return []
    found = sorted(
        (
            (m.start(), -m.end(), order, kind, m)
            for order, (kind, rx) in enumerate(_TIMES)
            for m in rx.finditer(low)
        ),
        key=lambda t: t[:3],
    )
    out: list[TimeMention] = []
    taken = 0
    for start, _, _, kind, m in found:
        if start < taken:
            continue
        groups = m.groupdict()
        if "may" in (groups.get("m"), groups.get("m1"), groups.get("m2")):
            i = low.find("may", m.start())
            if original[i : i + 3] != "May" or not (groups.get("y") or groups.get("pre")):
                continue  # the verb "may"
        if kind == "year" and not groups.get("pre"):
            continue  # a bare 2024 is more often a label than a time
        if kind == "weekday" and original[m.start("wd")].islower():
            continue
        try:
            vt = _open(_period(groups, kind, published), groups.get("pre"), kind)
        except (TimeProblem, ValueError):
            continue
        speech = bool(_SPEECH_BEFORE.search(low, max(0, m.start() - 30), m.start()))
        if vt is not None:
            raw = original[m.start() : m.end()].rstrip(".")
            vt = ValidTime(vt.start, vt.end, vt.precision, raw)
        out.append(TimeMention(m.start(), m.end(), vt, speech))
        taken = m.end()
    return out


def public_valid_time(vt: ValidTime | None) -> dict[str, str | None] | None:
    """{start, end} in the claim-input form: ISO periods, end inclusive of its period."""
    if vt is None:
        return None
    return {"start": _side(vt.start, first=True), "end": _side(vt.end, first=False)}


def _side(d: date | None, *, first: bool) -> str | None:
    if d is None:
        return None
    if first:
        if d.month == 1 and d.day == 1:
            return f"{d.year}-01"
        return f"{d.year}-{d.month:02d}" if d.day == 1 else d.isoformat()
    if d.day == 1:  # exclusive month start -> the previous month, inclusive
        last = d - timedelta(days=1)
        return f"{last.year}-{last.month:02d}"
    return (d - timedelta(days=1)).isoformat()
