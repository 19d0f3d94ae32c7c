"""The copy detector's arithmetic and bookkeeping (shared.consensus.dependence), with literal
numbers: what each piece of evidence is worth, how accuracies and copy rates enter, which of
two sources is the copier, and what a learning run records (issue #25's mutants)."""

from __future__ import annotations

import pytest

from shared.consensus.dependence import (
    Copying,
    DependenceParams,
    detect_copying,
    discount,
    false_values_per_object,
    posterior,
)
from shared.consensus.reliability import Params

ACCURATE = {"x": 0.75, "y": 0.75}


def _odds(p: float) -> float:
    return p / (1 - p)


def _p(kt: float, kf: float, kd: int, accuracy: dict[str, float], **params: object) -> float:
    return posterior(kt, kf, kd, accuracy, "x", "y", 3, DependenceParams(**params))  # type: ignore[arg-type]


def test_without_evidence_the_posterior_is_the_prior_of_copying_either_way() -> None:
    assert _p(0, 0, 0, ACCURATE) == pytest.approx(0.2)  # alpha 0.1 in each direction
    assert _p(0, 0, 0, ACCURATE, alpha=0.25) == pytest.approx(0.5)


def test_each_piece_of_evidence_multiplies_the_odds_of_copying_by_the_papers_ratio() -> None:
    """Accuracy 0.75, three false values per object, a copier copying 90 %: a shared true
    value is weak evidence (x1.3), a shared false one strong (x10.9), a difference counts
    against (x0.1)."""
    prior = _odds(_p(0, 0, 0, ACCURATE, copy_rates=(0.9,)))
    ratios = [
        _odds(_p(*counts, ACCURATE, copy_rates=(0.9,))) / prior
        for counts in ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    ]
    assert ratios == pytest.approx([1.3, 10.9, 0.1])


def test_the_likelihood_of_copying_is_averaged_over_the_copy_rates() -> None:
    def odds(rates: tuple[float, ...]) -> float:
        return _odds(_p(10, 5, 10, ACCURATE, copy_rates=rates))

    assert odds((0.5, 0.9)) == pytest.approx((odds((0.5,)) + odds((0.9,))) / 2)


def test_a_pairs_accuracy_is_the_geometric_mean_of_its_two_sources() -> None:
    assert _p(10, 5, 10, {"x": 0.9, "y": 0.4}) == pytest.approx(_p(10, 5, 10, {"x": 0.6, "y": 0.6}))


def test_a_source_of_unknown_accuracy_counts_as_80_percent_accurate() -> None:
    known = _p(10, 5, 10, {"x": 0.8, "y": 0.8})
    assert _p(10, 5, 10, {}) == pytest.approx(known)
    assert _p(10, 5, 10, {"x": 0.8}) == pytest.approx(known)
    assert _p(10, 5, 10, {"y": 0.8}) == pytest.approx(known)


def test_accuracies_are_held_between_5_and_95_percent() -> None:
    assert _p(10, 5, 10, {"x": 1.0, "y": 1.0}) == pytest.approx(
        _p(10, 5, 10, {"x": 0.95, "y": 0.95})
    )
    assert _p(10, 5, 10, {"x": 0.0, "y": 0.0}) == pytest.approx(
        _p(10, 5, 10, {"x": 0.05, "y": 0.05})
    )


def test_a_copiers_discount_is_rounded_to_six_decimals_as_weights_are() -> None:
    assert discount(Copying("c", "o", 0.973937, 40, 10), DependenceParams()) == 0.123457


def _pair(
    keys: int,
    copy_later_on: int,
    *,
    loners: bool = False,
    belief: dict[str, dict[str, float]] | None = None,
    published: bool = True,
) -> tuple[dict, dict, dict]:
    """'orig' and 'copy' give the same value on every key, true on three keys in four and
    an odd (false) one on the rest; 'copy' publishes later than 'orig' on the first
    `copy_later_on` keys and earlier on the rest. `loners`: a key only 'orig' describes,
    sorting first."""
    values: dict[str, dict[str, str]] = {}
    times: dict[str, dict[str, float]] = {}
    beliefs: dict[str, dict[str, float]] = {}
    for i in range(keys):
        key = f"k{i:02}"
        value = f"odd{i}" if i % 4 == 0 else "true"
        values[key] = {"orig": value, "copy": value}
        times[key] = {"orig": 1.0, "copy": 2.0 if i < copy_later_on else 0.5}
        beliefs[key] = {"true": 0.99, f"odd{i}": 0.01}
    if loners:
        values["a-lone"] = {"orig": "true"}
    return values, times if published else {}, beliefs if belief is None else belief


ACCURACY = {"orig": 0.75, "copy": 0.75}


def test_the_copier_is_the_one_publishing_later_on_more_of_the_shared_keys() -> None:
    found = detect_copying(*_pair(40, copy_later_on=25), ACCURACY)
    assert {c: f.original for c, f in found.items()} == {"copy": "orig"}
    found = detect_copying(*_pair(40, copy_later_on=15), ACCURACY)
    assert {c: f.original for c, f in found.items()} == {"orig": "copy"}


def test_two_sources_are_judged_on_the_keys_they_alone_describe() -> None:
    found = detect_copying(*_pair(40, copy_later_on=40, loners=True), ACCURACY)
    assert set(found) == {"copy"}
    assert (found["copy"].shared, found["copy"].shared_false) == (40, 10)


def test_without_publication_times_only_a_same_time_judgement_finds_copying() -> None:
    values, published, belief = _pair(40, copy_later_on=40, published=False)
    assert detect_copying(values, published, belief, ACCURACY) == {}
    found = detect_copying(values, published, belief, ACCURACY, same_time=True)
    assert {c: f.original for c, f in found.items()} == {"orig": "copy"}  # the later name


def test_a_shared_value_the_consensus_gives_no_chance_counts_as_a_shared_error() -> None:
    # no belief at all for the keys: twelve agreements, every one of them suspect
    found = detect_copying(*_pair(12, copy_later_on=12, belief={}), ACCURACY)
    assert (found["copy"].shared, found["copy"].shared_false) == (12, 12)
    # the odd values missing from the beliefs: still errors
    only_true = {f"k{i:02}": {"true": 0.99} for i in range(40)}
    found = detect_copying(*_pair(40, copy_later_on=40, belief=only_true), ACCURACY)
    assert found["copy"].shared_false == 10


def test_a_learning_run_records_every_parameter_it_ran_with() -> None:
    assert DependenceParams().as_dict() == {
        "alpha": 0.1,
        "copy_rate": 0.9,
        "min_shared": 10,
        "min_false": 0.0,
        "threshold": 0.99,
        "copy_rates": [0.5, 0.6, 0.7, 0.8, 0.9],
    }
    assert Params().as_dict() == {
        "tolerance": 0.01,
        "span": 2.0,
        "pseudo_count": 20.0,
        "exponent": 0.3,
        "plurality_exponent": 1.0,
        "max_rounds": 20,
        "epsilon": 1e-6,
        "gold_weight": 5,
        "dependence": DependenceParams().as_dict(),
    }
    assert Params(dependence=None).as_dict()["dependence"] is None


def _agreeing(keys: int, errors: int, *, extra: dict[str, int] | None = None) -> tuple[dict, ...]:
    """'orig' and 'copy' (publishing later) agree on `keys` keys, on an odd value the
    consensus is sure is false on the first `errors` of them; each source of `extra`
    repeats 'orig', later still, on as many keys as it says."""
    values: dict[str, dict[str, str]] = {}
    times: dict[str, dict[str, float]] = {}
    beliefs: dict[str, dict[str, float]] = {}
    for i in range(keys):
        key, value = f"k{i:02}", f"odd{i}" if i < errors else "true"
        values[key] = {"orig": value, "copy": value}
        times[key] = {"orig": 1.0, "copy": 2.0}
        beliefs[key] = {"true": 1.0, f"odd{i}": 0.0}
        for source, covered in (extra or {}).items():
            if i < covered:
                values[key][source], times[key][source] = value, 3.0
    return values, times, beliefs


def test_a_finding_carries_its_posterior_under_the_two_accuracies_to_six_decimals() -> None:
    accuracy = {"orig": 0.7, "copy": 0.7}
    values, times, beliefs = _agreeing(20, errors=2)
    [finding] = detect_copying(values, times, beliefs, accuracy).values()
    assert finding == Copying("copy", "orig", 0.996863, 20, 2)
    # a pair exactly at the threshold is reported
    exact = posterior(18, 2, 0, accuracy, "copy", "orig", 1, DependenceParams())
    at_threshold = DependenceParams(threshold=exact)
    assert set(detect_copying(values, times, beliefs, accuracy, at_threshold)) == {"copy"}


def test_only_pairs_sharing_ten_objects_are_judged() -> None:
    """'nine' repeats 'orig' on nine keys, errors included: strong evidence, too little of
    it; 'ten' does so on ten and is found. Skipping a pair does not end the search."""
    values, times, beliefs = _agreeing(40, errors=10, extra={"nine": 9, "ten": 10})
    assert set(detect_copying(values, times, beliefs, ACCURACY)) == {"copy", "ten"}


def test_only_pairs_sharing_min_false_errors_are_judged() -> None:
    values, times, beliefs = _agreeing(40, errors=10)
    assert set(detect_copying(values, times, beliefs, ACCURACY, DependenceParams(min_false=10)))
    assert not detect_copying(values, times, beliefs, ACCURACY, DependenceParams(min_false=10.5))


def test_the_number_of_false_values_is_estimated_from_objects_described_twice_or_more() -> None:
    # four answers where four sources disagree, two where two do: three on average, less
    # the true one; an object only one source describes says nothing
    values = {
        "four": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0},
        "two": {"a": 1.0, "b": 2.0},
        "lone": {"a": 1.0},
    }
    assert false_values_per_object(values) == 2
    assert false_values_per_object({"lone": {"a": 1.0}}) == 1
    assert false_values_per_object({}) == 1
