"""The learner's rules in numbers (shared.consensus.reliability), with literal observations:
how a score follows from agreement, what one claim's agreement is, what a vote count and a
belief are (issue #25's mutants)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from shared.consensus._numeric import MEDIAN_OR_MODE, PLURALITY
from shared.consensus.reliability import (
    CATEGORICAL,
    Observation,
    Params,
    _agree,
    _belief,
    _Cluster,
    _Key,
    _trust,
    _vote,
    learn_reliability,
)

ONE_ROUND = Params(max_rounds=1, dependence=None)


def _two_against_one(a: float | str, c: float | str) -> list[Observation]:
    """Ten keys where 'a' and 'b' say `a` and 'c' says `c`."""
    return [
        Observation(f"k{i}", source, value, claim_id=f"{i}{source}")
        for i in range(10)
        for source, value in (("a", a), ("b", a), ("c", c))
    ]


def _shrunk(right: int, pooled: float) -> float:
    """Ten judgements, `right` of them right, and 20 pseudo-claims at the pooled agreement."""
    return (right + 20 * pooled) / (10 + 20)


def test_a_score_is_trust_relative_to_the_pooled_source_shrunk_toward_it() -> None:
    """Counts: TruthFinder's trustworthiness -ln(1 - agreement), relative to the pooled
    source's, to the power 0.3; the agreement shrunk toward the pooled 2/3 by 20
    pseudo-claims."""
    learned = learn_reliability(_two_against_one(100.0, 150.0), ONE_ROUND)
    pooled = 2 / 3
    # agreements carry nine decimals, scores six
    assert learned.pooled == round(pooled, 9)
    assert learned.agreement == {
        a: round(x, 9) for a, x in (("a", 7 / 9), ("b", 7 / 9), ("c", 4 / 9))
    }
    assert learned.claims == {"a": 10, "b": 10, "c": 10}

    def score(right: int) -> float:
        return (math.log(1 - _shrunk(right, pooled)) / math.log(1 - pooled)) ** 0.3

    assert learned.scores == {
        "a": round(score(10), 6),
        "b": round(score(10), 6),
        "c": round(score(0), 6),
    }


def test_a_names_score_is_its_vote_count_relative_to_the_pooled_sources() -> None:
    """Names: AccuCopy's vote count ln(n A / (1 - A)), n = 1 false value per key here;
    below the floor (c, right less often than chance) it falls off exponentially."""
    learned = learn_reliability(_two_against_one("x", "y"), ONE_ROUND)
    pooled = 2 / 3
    good = math.log(_shrunk(10, pooled) / (1 - _shrunk(10, pooled))) / math.log(2)
    poor = 0.05 * math.exp(math.log(_shrunk(0, pooled) / (1 - _shrunk(0, pooled))) - 0.05)
    # scores carry six decimals
    expected = {"a": good, "b": good, "c": poor / math.log(2)}
    assert learned.scores == pytest.approx(expected, abs=1e-6)
    # the exponent sharpens vote counts as it does trust
    sharp = learn_reliability(
        _two_against_one("x", "y"), Params(max_rounds=1, dependence=None, plurality_exponent=2.0)
    )
    assert sharp.scores["a"] == pytest.approx(good**2, abs=1e-6)


def test_a_source_judged_under_two_rules_has_one_score_their_geometric_mean() -> None:
    numbers = _two_against_one(100.0, 150.0)
    names = [
        replace(o, key=f"name-{o.key}", value=("x" if o.value == 100.0 else "y")) for o in numbers
    ]
    both = learn_reliability([*numbers, *names], ONE_ROUND)
    by_numbers = learn_reliability(numbers, ONE_ROUND).scores
    by_names = learn_reliability(names, ONE_ROUND).scores
    assert both.claims["a"] == 20
    # and one agreement: the mean of the two, by claims
    by_numbers_a = learn_reliability(numbers, ONE_ROUND).agreement["a"]
    by_names_a = learn_reliability(names, ONE_ROUND).agreement["a"]
    assert both.agreement["a"] == pytest.approx((by_numbers_a + by_names_a) / 2, abs=1e-9)
    assert both.scores["a"] == pytest.approx(math.sqrt(by_numbers["a"] * by_names["a"]), abs=2e-6)
    assert both.scores["c"] == pytest.approx(math.sqrt(by_numbers["c"] * by_names["c"]), abs=2e-6)


def test_a_source_judged_only_on_a_tie_of_names_is_the_pooled_source() -> None:
    """A one-against-one tie of names is decided by the alphabet and teaches nothing: a
    source disputed nowhere else keeps the neutral score (it made the run fail)."""
    obs = [
        *_two_against_one(100.0, 150.0),
        Observation("gate", "d", "B12", claim_id="d"),
        Observation("gate", "e", "C3", claim_id="e"),
    ]
    learned = learn_reliability(obs, ONE_ROUND)
    assert (learned.scores["d"], learned.claims["d"]) == (1.0, 0)
    assert learned.agreement["d"] == learned.pooled
    assert learned.scores["a"] > 1.0 > learned.scores["c"]
    # nothing taught anywhere: every source is the neutral one
    ties = learn_reliability(obs[-2:], ONE_ROUND)
    assert (ties.scores, ties.agreement, ties.pooled) == (
        {"d": 1.0, "e": 1.0},
        {"d": 0.5, "e": 0.5},
        0.5,
    )


def test_a_claim_within_one_percent_agrees_beyond_two_percent_does_not() -> None:
    params = Params()
    assert _agree(10050.0, 10000.0, MEDIAN_OR_MODE, params) == 1.0
    assert _agree(10300.0, 10000.0, MEDIAN_OR_MODE, params) == 0.0
    assert _agree(10150.0, 10000.0, MEDIAN_OR_MODE, params) == pytest.approx(0.5, abs=0.02)
    # a wider span: the same error a quarter of the way into it
    wide = Params(span=3.0)
    assert _agree(10150.0, 10000.0, MEDIAN_OR_MODE, wide) == pytest.approx(0.75, abs=0.01)


def test_a_measures_reading_and_a_name_agree_only_when_equal() -> None:
    params = Params()
    assert _agree(100.5, 100.0, PLURALITY, params) == 0.0
    assert _agree(100.0, 100.0, PLURALITY, params) == 1.0
    assert _agree("B12", "B12", CATEGORICAL, params) == 1.0


def test_vote_count_and_trustworthiness_are_the_papers() -> None:
    assert _vote(0.75, 3) == pytest.approx(math.log(9))  # ln(n A / (1 - A))
    assert _vote(0.5, 1) == pytest.approx(0.05 * math.exp(-0.05))  # at chance: the floor
    assert _trust(0.5) == pytest.approx(math.log(2))  # -ln(1 - A)
    assert _trust(0.9) == pytest.approx(math.log(10))


def _disputed(**voices: str) -> _Key:
    return _Key(
        CATEGORICAL,
        [_Cluster(s, [Observation("k", s, v, claim_id=s)]) for s, v in voices.items()],
    )


def test_belief_in_an_answer_is_its_vote_count_against_those_of_every_answer() -> None:
    """s1 (accuracy 0.75) says A, s2 (0.5) says B, three false values per key: votes
    ln 9 and ln 3, and the two answers nobody gave count 0: P(A) = 9 / (9 + 3 + 1 + 1)."""
    key = _disputed(s1="A", s2="B")
    assert _belief(key, {"s1": 0.75, "s2": 0.5}, {}, 3) == pytest.approx({"A": 9 / 14, "B": 3 / 14})
    # a source of unknown accuracy is at chance (0.5); accuracy is held below 0.95
    assert _belief(key, {"s1": 0.75}, {}, 3) == pytest.approx({"A": 9 / 14, "B": 3 / 14})
    assert _belief(key, {"s1": 1.0, "s2": 0.5}, {}, 3) == pytest.approx({"A": 57 / 62, "B": 3 / 62})
    # a copier keeps only its share of a vote: s2 at half, sqrt(3)
    kept = _belief(key, {"s1": 0.75, "s2": 0.5}, {"s2": 0.5}, 3)
    assert kept == pytest.approx(
        {"A": 9 / (11 + math.sqrt(3)), "B": math.sqrt(3) / (11 + math.sqrt(3))}
    )
    # one false value per key, both given: nothing is left unseen
    assert _belief(key, {"s1": 0.75, "s2": 0.5}, {}, 1) == pytest.approx({"A": 0.75, "B": 0.25})


def test_numbers_in_a_key_of_names_read_as_they_were_written() -> None:
    obs = [
        Observation("gate", "s1", "B12", claim_id="1"),
        Observation("gate", "s2", 12.5, claim_id="2"),
        Observation("gate", "s3", 12.5, claim_id="3"),
    ]
    assert learn_reliability(obs).consensus["gate"] == "12.5"


def test_names_of_equal_weight_go_to_the_one_more_clusters_give() -> None:
    obs = [
        Observation("k", "s1", "x", claim_id="1", prior=0.5),
        Observation("k", "s2", "x", claim_id="2", prior=0.5),
        Observation("k", "s3", "w", claim_id="3", prior=1.0),
    ]
    assert learn_reliability(obs, Params(max_rounds=0)).consensus["k"] == "x"


def _readings(c_says: float) -> list[Observation]:
    """Ten flights' seat counts: 'a' and 'b' say 180, 'c' says `c_says`, 'd' says 181;
    ten towns' populations, four sources a few people apart."""
    obs = []
    for i in range(10):
        for source, value in (("a", 180.0), ("b", 180.0), ("c", c_says), ("d", 181.0)):
            obs.append(
                Observation(f"seats{i}", source, value, claim_id=f"s{i}{source}", attribute="seats")
            )
        for n, source in enumerate("pqrt"):
            value = 10000.0 + n
            obs.append(
                Observation(
                    f"pop{i}", source, value, claim_id=f"p{i}{source}", attribute="population"
                )
            )
    return obs


def test_an_attribute_whose_sources_repeat_exact_values_is_judged_right_or_wrong() -> None:
    """Three clusters in four giving a value another gives too (EXACT_SHARE): seat counts
    are exact readings, and 181 for 180 is simply wrong; populations a few apart all
    agree. With only two in four repeating, 181 is within tolerance of 180."""
    exact = learn_reliability(_readings(c_says=180.0), ONE_ROUND).agreement
    assert exact["d"] < exact["a"] == exact["c"]
    assert exact["p"] == exact["q"] == exact["t"]
    loose = learn_reliability(_readings(c_says=182.0), ONE_ROUND).agreement
    assert loose["d"] == loose["a"] == loose["p"]


def test_an_analysts_preferred_claim_makes_a_key_teach_even_where_all_agree() -> None:
    preferred = Observation("k", "a", 5.0, claim_id="1", rank="preferred")
    agreeing = Observation("k", "b", 5.0, claim_id="2")
    assert learn_reliability([preferred, agreeing]).claims == {"a": 5, "b": 5}  # gold: x5
    # the source alone on its key: nobody to teach
    own = Observation("k", "a", 6.0, claim_id="2")
    assert learn_reliability([preferred, own]).claims == {}


def test_learning_stops_once_no_score_moves_and_judges_same_time_copies_once_more() -> None:
    plain = learn_reliability(_readings(c_says=180.0), Params(dependence=None))
    assert (plain.rounds, plain.converged) == (2, True)
    # with copy detection, one more round once the directed findings settle
    learned = learn_reliability(_readings(c_says=180.0))
    assert (learned.rounds, learned.converged) == (3, True)
    # nothing disputed: nothing moves
    quiet = learn_reliability(
        [Observation("k", "a", 1.0, claim_id="1"), Observation("k", "b", 1.0, claim_id="2")]
    )
    assert (quiet.rounds, quiet.converged) == (2, True)
    # no round at all: nothing learned, nothing converged
    none = learn_reliability(_readings(180.0), Params(max_rounds=0))
    assert set(none.scores.values()) == {1.0}
    assert (none.pooled, none.rounds, none.converged) == (0.5, 0, False)
    assert (ONE_ROUND.max_rounds, learn_reliability(_readings(180.0), ONE_ROUND).converged) == (
        1,
        False,
    )


def test_two_sources_that_disagree_are_both_judged_and_a_non_number_is_ignored() -> None:
    obs = [
        Observation("k", "a", math.nan, claim_id="0"),
        Observation("k", "a", 1.0, claim_id="1"),
        Observation("k", "b", 2.0, claim_id="2"),
    ]
    assert learn_reliability(obs).claims == {"a": 1, "b": 1}


def test_each_deprecated_claim_counts_against_its_source_as_five_judgements() -> None:
    # one source alone on its key: the analysts' verdicts still teach
    obs = [
        Observation("k", "a", 1.0, claim_id="1"),
        Observation("k", "b", 2.0, claim_id="3", rank="deprecated"),
        Observation("k", "c", 3.0, claim_id="2", rank="deprecated"),
    ]
    learned = learn_reliability(obs)
    assert learned.claims == {"a": 1, "b": 5, "c": 5}
    assert learned.scores["b"] == learned.scores["c"] < 1.0 < learned.scores["a"]
    alone = learn_reliability(obs[:2])
    assert alone.claims == {"a": 1, "b": 5}
