"""parse_value remembers its answers (issue #21): a remembered answer must be the answer.

1, 1.0 and True are equal as Python keys but not the same claim; the hedge, unit, kind and
tolerance change the reading; a refusal is refused again.
"""

from __future__ import annotations

import pytest

from shared import values
from shared.values import ValueProblem, parse_value


def test_a_remembered_reading_is_the_fresh_one() -> None:
    cases = [
        (1000, {}),
        (1000, {"hedge": "approximately"}),
        (1000, {"hedge": "approximately", "tolerance": 0.2}),
        ("about 1,000", {}),
        ({"low": 900, "high": 1100}, {}),
        (12.5, {"unit": "km", "kind": "measure"}),
    ]
    for value, kwargs in cases:
        first = parse_value(value, **kwargs)
        assert parse_value(value, **kwargs) == first
        fresh = values._parse_value(
            value,
            kwargs.get("hedge"),
            None,
            kwargs.get("unit"),
            kwargs.get("kind"),
            None,
            kwargs.get("tolerance", 0.10),
            None,
        )
        assert first == fresh


def test_equal_keys_of_other_types_are_read_apart() -> None:
    assert parse_value(1).best == 1
    with pytest.raises(ValueProblem):
        parse_value(True)  # == 1 in Python, but not a number here
    assert parse_value({"low": 1, "high": 2}).low == 1
    with pytest.raises(ValueProblem):
        parse_value({"low": True, "high": 2})


def test_what_changes_the_reading_is_part_of_the_key() -> None:
    exact, about = parse_value(1000), parse_value(1000, hedge="approximately")
    assert (exact.low, exact.high) == (1000, 1000)
    assert about.low < 1000 < about.high
    wider = parse_value(1000, hedge="approximately", tolerance=0.3)
    assert wider.low < about.low
    assert parse_value(1000, unit="troops").unit == "troops"
    assert parse_value(1000).unit != "troops"


def test_a_refusal_is_refused_again() -> None:
    for _ in range(2):
        with pytest.raises(ValueProblem):
            parse_value("no number here", kind="stock")
