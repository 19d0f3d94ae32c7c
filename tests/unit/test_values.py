"""Value normalisation: every row of the table in shared/values.py, plus the refusals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.attributes import AttributeRegistry
from shared.values import HEDGE_NAMES, ValueProblem, format_number, parse_value


def bounds(v):
    return (v.low, v.best, v.high)


# -- bare numbers and exactness -------------------------------------------------------------


def test_bare_number_sets_all_three_bounds():
    v = parse_value(12000)
    assert bounds(v) == (12000, 12000, 12000)
    assert v.hedge == "exact" and v.rule == "number.bare" and v.rule_version == 1
    assert v.raw is None


def test_integral_numbers_stay_ints_so_they_come_back_as_claimed():
    for value in (12000, 12000.0, "12,000"):
        v = parse_value(value)
        assert type(v.best) is int and v.best == 12000


def test_fractional_numbers_stay_exact_floats():
    assert bounds(parse_value(0.1)) == (0.1, 0.1, 0.1)


def test_zero_is_a_valid_count():
    assert bounds(parse_value(0)) == (0, 0, 0)
    assert bounds(parse_value("0")) == (0, 0, 0)


@pytest.mark.parametrize(
    ("phrase", "number"),
    [
        ("12,000", 12000),
        ("12 000", 12000),
        ("1.5 million", 1_500_000),
        ("2.3bn", 2_300_000_000),
        ("3k", 3000),
        ("twelve thousand", 12000),
        ("three thousand five hundred", 3500),
        ("a dozen", 12),
        ("a hundred", 100),
        ("one and a half million", 1_500_000),
        ("half a million", 500_000),
        ("one hundred and fifty", 150),
        ("twenty-five thousand", 25000),
    ],
)
def test_number_forms_are_read_exactly(phrase, number):
    v = parse_value(phrase)
    assert bounds(v) == (number, number, number)
    assert type(v.best) is int
    assert v.raw == phrase


# -- hedges -----------------------------------------------------------------------------------


def test_approximately_uses_ten_percent_band():
    v = parse_value("about 12,000")
    assert bounds(v) == (10800, 12000, 13200)
    assert type(v.low) is int and v.hedge == "approximately" and v.rule == "hedge.approximately"


@pytest.mark.parametrize(
    "word", ["approximately", "about", "around", "some", "roughly", "an estimated", "approx.", "~"]
)
def test_every_approximately_word_is_the_same_hedge(word):
    assert parse_value(f"{word} 3,000").hedge == "approximately"


def test_approximately_tolerance_is_configurable():
    assert bounds(parse_value("about 1,000", tolerance=0.2)) == (800, 1000, 1200)


def test_approximate_bounds_may_be_fractional():
    assert bounds(parse_value("about 1234")) == (1110.6, 1234, 1357.4)


def test_nearly_sets_band_below_only():
    for phrase in ("nearly 3,000", "almost 3,000"):
        v = parse_value(phrase)
        assert bounds(v) == (2700, 3000, 3000) and v.hedge == "nearly"


@pytest.mark.parametrize(
    "phrase", ["up to 3,000", "as many as 3,000", "at most 3,000", "no more than 3,000"]
)
def test_up_to_sets_only_high(phrase):
    v = parse_value(phrase)
    assert bounds(v) == (None, None, 3000) and v.hedge == "up_to"
    assert not v.high_exclusive


@pytest.mark.parametrize(
    "phrase", ["over 500", "more than 500", "exceeding 500", "in excess of 500"]
)
def test_over_sets_exclusive_low(phrase):
    v = parse_value(phrase)
    assert bounds(v) == (500, None, None) and v.hedge == "over" and v.low_exclusive


@pytest.mark.parametrize("phrase", ["at least 200", "no fewer than 200", "a minimum of 200"])
def test_at_least_sets_inclusive_low(phrase):
    v = parse_value(phrase)
    assert bounds(v) == (200, None, None) and v.hedge == "at_least" and not v.low_exclusive


@pytest.mark.parametrize("phrase", ["fewer than 100", "under 100", "less than 100", "below 100"])
def test_under_sets_exclusive_high(phrase):
    v = parse_value(phrase)
    assert bounds(v) == (None, None, 100) and v.hedge == "under" and v.high_exclusive


def test_trailing_hedges_are_read():
    assert parse_value("3,000+").hedge == "at_least"
    assert parse_value("3,000 or more").hedge == "at_least"
    assert parse_value("3,000 or so").hedge == "approximately"


def test_hedge_parameter_applies_to_a_number():
    assert bounds(parse_value(3000, hedge="up_to")) == (None, None, 3000)
    assert bounds(parse_value("12,000", hedge="approximately")) == (10800, 12000, 13200)


def test_hedge_parameter_that_contradicts_the_phrase_is_rejected():
    with pytest.raises(ValueProblem) as err:
        parse_value("up to 3,000", hedge="at_least")
    assert err.value.field == "hedge"


# -- ranges, magnitudes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "rule"),
    [
        ("between 10,000 and 12,000", "range.between"),
        ("10,000 to 12,000", "range.to"),
        ("from 10,000 to 12,000", "range.from"),
        ("10,000-12,000", "range.dash"),
        ("10,000–12,000", "range.dash"),
        ("an estimated 10,000 to 12,000", "range.to"),
    ],
)
def test_range_sets_both_bounds_and_a_derived_midpoint(phrase, rule):
    v = parse_value(phrase)
    assert bounds(v) == (10000, 11000, 12000)
    assert v.hedge == "range" and v.best_derived and v.rule == rule


def test_range_shares_a_trailing_scale_word():
    assert bounds(parse_value("between 10 and 12 thousand")) == (10000, 11000, 12000)
    assert bounds(parse_value("1-2 million")) == (1_000_000, 1_500_000, 2_000_000)


def test_range_with_low_above_high_is_rejected():
    with pytest.raises(ValueProblem):
        parse_value("between 5,000 and 3,000")


@pytest.mark.parametrize(
    ("phrase", "low", "rule"),
    [
        ("tens", 10, "magnitude.tens"),
        ("dozens", 12, "magnitude.dozens"),
        ("hundreds", 100, "magnitude.hundreds"),
        ("thousands", 1000, "magnitude.thousands"),
        ("tens of thousands", 10000, "magnitude.tens_of_thousands"),
    ],
)
def test_order_of_magnitude_sets_only_low(phrase, low, rule):
    v = parse_value(phrase)
    assert bounds(v) == (low, None, None)
    assert v.hedge == "order_of_magnitude" and v.rule == rule


def test_order_of_magnitude_keeps_its_unit():
    assert parse_value("thousands of troops").unit == "troops"


# -- relative claims --------------------------------------------------------------------------


def test_a_third_of_the_troops_is_a_ratio_of_personnel_deployed():
    v = parse_value("a third of the initial troops")
    assert v.hedge == "relative" and v.relative_to == "personnel_deployed"
    assert bounds(v) == (1 / 3, 1 / 3, 1 / 3)
    assert v.rule == "relative.fraction"


def test_up_to_a_third_caps_the_ratio_only():
    v = parse_value("up to a third of the initial troops")
    assert bounds(v) == (None, None, 1 / 3)
    assert v.hedge == "relative" and v.relative_to == "personnel_deployed"


@pytest.mark.parametrize(
    ("phrase", "ratio"),
    [("half of the soldiers", 0.5), ("half the troops", 0.5), ("a quarter of the personnel", 0.25),
     ("10% of the troops", 0.1), ("two thirds of the troops", 2 / 3)],
)  # fmt: skip
def test_relative_fractions_and_percentages(phrase, ratio):
    v = parse_value(phrase)
    assert v.best == pytest.approx(ratio) and v.relative_to == "personnel_deployed"


def test_relative_to_parameter_wins_over_phrase_words():
    assert parse_value("a third of them", relative_to="killed").relative_to == "killed"


def test_relative_without_a_known_attribute_is_rejected():
    with pytest.raises(ValueProblem) as err:
        parse_value("a third of something")
    assert err.value.field == "relative_to"


def test_relative_target_resolves_with_a_custom_registry():
    reg = AttributeRegistry.from_toml('[attributes.tanks]\nkind = "stock"\naliases = ["armour"]\n')
    assert parse_value("half of the armour", registry=reg).relative_to == "tanks"


# -- units, filler, raw -------------------------------------------------------------------------


def test_unit_word_is_split_off():
    assert parse_value("12,000 troops").unit == "troops"
    assert parse_value("3,000 soldiers").unit == "soldiers"
    assert parse_value("5 km").unit == "km"
    assert parse_value("25%").unit == "%"


def test_trailing_filler_is_ignored_and_head_noun_is_the_unit():
    v = parse_value("some 12,000 North Korean troops were killed in Kursk")
    assert bounds(v) == (10800, 12000, 13200) and v.unit == "troops"


def test_unit_parameter_wins():
    assert parse_value("12,000 troops", unit="personnel").unit == "personnel"


def test_raw_alone_is_parsed():
    v = parse_value(None, raw="up to 3,000")
    assert bounds(v) == (None, None, 3000) and v.raw == "up to 3,000"


def test_value_wins_over_raw_and_raw_is_kept_verbatim():
    v = parse_value(2500, raw="  up to 3,000 ")
    assert bounds(v) == (2500, 2500, 2500) and v.raw == "  up to 3,000 "


# -- bound objects ----------------------------------------------------------------------------


def test_object_with_all_bounds_is_kept_as_given():
    v = parse_value({"low": 10000, "best": 12000, "high": 15000})
    assert bounds(v) == (10000, 12000, 15000) and v.rule == "object.bounds" and not v.best_derived


def test_object_with_only_high_reads_as_up_to():
    v = parse_value({"low": None, "best": None, "high": 3000})
    assert bounds(v) == (None, None, 3000) and v.hedge == "up_to"


def test_object_with_low_and_high_gets_derived_midpoint():
    v = parse_value({"low": 10, "high": 20})
    assert bounds(v) == (10, 15, 20) and v.best_derived


def test_object_with_only_best_is_a_point_estimate_and_takes_its_hedge():
    assert bounds(parse_value({"best": 1000})) == (1000, 1000, 1000)
    assert bounds(parse_value({"best": 1000, "hedge": "approximately"})) == (900, 1000, 1100)


def test_extract_output_shape_round_trips():
    first = parse_value("up to 3,000 troops")
    again = parse_value(
        {"low": first.low, "best": first.best, "high": first.high, "hedge": first.hedge,
         "raw": first.raw}
    )  # fmt: skip
    assert bounds(again) == bounds(first) and again.hedge == "up_to" and again.raw == first.raw


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"low": 5, "high": 3}, "value.low"),
        ({"low": 5, "best": 4, "high": 9}, "value.best"),
        ({"low": -1}, "value.low"),
        ({"high": float("nan")}, "value.high"),
        ({"best": True}, "value.best"),
        ({}, "value"),
        ({"lo": 3}, "value"),
        ({"best": 3, "hedge": "guess"}, "hedge"),
    ],
)
def test_invalid_objects_are_rejected_with_the_field(obj, field):
    with pytest.raises(ValueProblem) as err:
        parse_value(obj)
    assert err.value.field == field


# -- categorical and unknown attributes -----------------------------------------------------------


def test_categorical_kind_takes_a_name():
    v = parse_value("Kim Yong Bok", kind="categorical")
    assert v.text == "Kim Yong Bok" and v.hedge == "categorical" and v.rule == "categorical.text"
    assert bounds(v) == (None, None, None) and not v.is_numeric


def test_state_kind_keeps_a_number_like_name_as_text():
    assert parse_value("12", kind="state").text == "12"


def test_unknown_attribute_numeric_phrase_is_numeric():
    assert parse_value("about 3,000", kind=None).is_numeric


def test_unknown_attribute_other_text_is_categorical():
    v = parse_value("Kim Yong Bok", kind=None)
    assert v.text == "Kim Yong Bok" and v.raw == "Kim Yong Bok"


def test_number_for_a_categorical_attribute_is_rejected():
    with pytest.raises(ValueProblem):
        parse_value(5, kind="categorical")


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phrase", ["a few", "several thousand", "12,000 troops and 500 tanks", "many", "1,5"]
)
def test_unparseable_phrase_is_rejected_not_guessed(phrase):
    with pytest.raises(ValueProblem) as err:
        parse_value(phrase, kind="stock")
    assert err.value.field == "value"


def test_unparseable_raw_is_reported_on_raw():
    with pytest.raises(ValueProblem) as err:
        parse_value(None, raw="quite a lot", kind="cumulative")
    assert err.value.field == "raw"


@pytest.mark.parametrize("bad", [-1, -0.5, "-5", "−5"])
def test_negative_counts_are_rejected(bad):
    with pytest.raises(ValueProblem, match="negative"):
        parse_value(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_rejected(bad):
    with pytest.raises(ValueProblem):
        parse_value(bad)


def test_bool_is_not_a_number():
    with pytest.raises(ValueProblem):
        parse_value(True)


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_text_is_rejected(bad):
    with pytest.raises(ValueProblem):
        parse_value(bad)


def test_missing_value_and_raw_is_rejected():
    with pytest.raises(ValueProblem) as err:
        parse_value(None)
    assert err.value.field == "value"


def test_unknown_hedge_is_rejected():
    with pytest.raises(ValueProblem) as err:
        parse_value(3, hedge="probably")
    assert err.value.field == "hedge"


def test_range_hedge_on_a_single_number_is_rejected():
    with pytest.raises(ValueProblem):
        parse_value(3000, hedge="range")


def test_value_problem_is_a_value_error_with_field_and_detail():
    err = ValueProblem("value.low", "low is above high")
    assert isinstance(err, ValueError) and err.field == "value.low" and err.detail


def test_hedge_names_are_the_model_hedges():
    assert "up_to" in HEDGE_NAMES and "relative" in HEDGE_NAMES and "categorical" in HEDGE_NAMES


# -- format_number and the round-trip property -------------------------------------------------


def test_format_number_uses_thousands_separators_and_no_trailing_zero():
    assert format_number(12000) == "12,000"
    assert format_number(12000.0) == "12,000"
    assert format_number(0.25) == "0.25"
    assert format_number(None) == "open"


@given(st.integers(min_value=0, max_value=10**15))
def test_any_non_negative_int_round_trips_exactly(n):
    for text in (str(n), f"{n:,}", format_number(n)):
        v = parse_value(text)
        assert v.best == n and type(v.best) is int and v.hedge == "exact"


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_any_finite_float_comes_back_equal(x):
    v = parse_value(x)
    assert v.best == x and not math.isnan(v.best)


# -- measures: signed readings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "claimed, best",
    [
        (-3, -3),
        (-0.5, -0.5),
        ("-3", -3),
        ("−12", -12),
        ("- 4.5", -4.5),
        ("+7", 7),
        (0, 0),
    ],
)
def test_a_measure_accepts_a_sign(claimed, best):
    v = parse_value(claimed, kind="measure")
    assert bounds(v) == (best, best, best)
    assert v.rule.startswith("measure.")


def test_a_measures_approximate_band_is_as_wide_below_zero_as_above():
    assert bounds(parse_value("about -10", kind="measure")) == (-11, -10, -9)
    assert bounds(parse_value("about 10", kind="measure")) == (9, 10, 11)


@pytest.mark.parametrize(
    "phrase, expected",
    [
        ("between -5 and -3", (-5, -4, -3)),
        ("-5 to 3", (-5, -1, 3)),
        ("from -2 to 2", (-2, 0, 2)),
    ],
)
def test_a_measures_range_may_span_zero_and_its_midpoint_is_linear(phrase, expected):
    v = parse_value(phrase, kind="measure")
    assert bounds(v) == expected
    assert v.best_derived


def test_a_measures_bounds_object_may_be_negative():
    v = parse_value({"low": -2, "high": 4}, kind="measure")
    assert (v.low, v.high, v.hedge) == (-2, 4, "range")


def test_a_measures_range_with_low_above_high_is_still_rejected():
    with pytest.raises(ValueProblem, match="above"):
        parse_value("-3 to -5", kind="measure")


@pytest.mark.parametrize("kind", [None, "stock", "delta", "cumulative"])
@pytest.mark.parametrize(
    "bad, field",
    [
        (-3, "value"),
        ("-3", "value"),
        ({"low": -2, "high": 3}, "value.low"),
        ({"best": "-4"}, "value.best"),
    ],
)
def test_a_count_refuses_a_sign_naming_the_field_and_the_measure_kind(kind, bad, field):
    with pytest.raises(ValueProblem, match=r'negative.*kind = "measure"') as err:
        parse_value(bad, kind=kind)
    assert err.value.field == field


def test_count_values_keep_their_rule_ids():
    assert parse_value(12, kind="stock").rule == "number.bare"
    assert parse_value("about 12,000", kind="stock").rule == "hedge.approximately"
    assert parse_value(12, kind="measure").rule == "measure.number.bare"


@pytest.mark.parametrize(
    "value",
    [
        int("9" * 400),
        "9" * 400,
        1e300,
        -1e19,
        {"low": 1, "high": 10**19},
        "about 1,000,000,000,000,000,000",
        "2,000,000,000,000,000,000",
    ],
)
def test_numbers_beyond_ten_to_the_18_are_refused(value):
    try:
        parse_value(value, kind="measure")
    except ValueProblem as exc:
        assert exc.field.startswith("value")
    else:
        raise AssertionError(f"{value!r} was accepted")


def test_numbers_up_to_ten_to_the_18_are_kept_exactly():
    assert parse_value(10**18).best == 10**18
    assert parse_value(-(10**18), kind="measure").best == -(10**18)
