"""Source dependence (shared.consensus.dependence) and the learner's copy discount: pure,
with literal claims."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.consensus import compute_consensus
from shared.consensus.dependence import (
    Copying,
    DependenceParams,
    detect_copying,
    discount,
    posterior,
)
from shared.consensus.reliability import Observation, Params, learn_reliability
from shared.model import AttributeSpec, ClaimFacts, Value

SURE = 0.99  # belief in the true value of every key below


def _world(
    copier_values: dict[int, str], *, keys: int = 40, copier_later: bool = True
) -> tuple[dict, dict, dict]:
    """40 keys; 'orig' is wrong on every 4th key with an odd name, 'a' and 'b' are
    independent and right; 'copy' answers as `copier_values` says (by key index)."""
    values: dict[str, dict[str, str]] = {}
    published: dict[str, dict[str, float]] = {}
    belief: dict[str, dict[str, float]] = {}
    for i in range(keys):
        key = f"k{i}"
        orig = f"odd{i}" if i % 4 == 0 else "true"
        values[key] = {"orig": orig, "a": "true", "b": "true"}
        values[key]["copy"] = copier_values.get(i, orig)
        published[key] = {"orig": 1.0, "a": 1.0, "b": 1.0, "copy": 2.0 if copier_later else 1.0}
        belief[key] = {"true": SURE, f"odd{i}": 1 - SURE}
    return values, published, belief


ACCURACY = {"orig": 0.75, "a": 0.95, "b": 0.95, "copy": 0.75}


def test_a_source_that_repeats_anothers_false_values_is_found_copying_it() -> None:
    values, published, belief = _world({})
    found = detect_copying(values, published, belief, ACCURACY)
    assert set(found) == {"copy"}
    finding = found["copy"]
    assert finding.original == "orig"
    assert finding.shared_false == 10
    assert finding.probability > 0.99


def test_the_later_publisher_is_the_copier() -> None:
    values, published, belief = _world({})
    for key in published:
        published[key]["orig"], published[key]["copy"] = 3.0, 2.0
    assert detect_copying(values, published, belief, ACCURACY)["orig"].original == "copy"


def test_independent_sources_agreeing_on_the_truth_are_not_copiers() -> None:
    """'a' and 'b' share forty true values and no false one: agreement on the truth is
    what accurate sources do."""
    values, published, belief = _world({})
    found = detect_copying(values, published, belief, ACCURACY)
    assert "a" not in found and "b" not in found


def test_sharing_a_few_false_values_by_chance_is_not_copying() -> None:
    """Two sources that err alike twice in 40 keys and differ on the rest of the errors:
    below the evidence a finding needs."""
    copier = {i: f"own{i}" for i in range(0, 40, 4) if i not in (0, 4)}
    values, published, belief = _world(copier)
    assert detect_copying(values, published, belief, ACCURACY) == {}


def test_sources_publishing_at_the_same_moment_are_judged_only_when_asked() -> None:
    """Nothing says which of two simultaneous sources would be the copy, and under the
    first rounds' beliefs their agreement is no evidence yet: the learner asks only once
    the directed findings have settled. Then the later name is called the copier."""
    values, published, belief = _world({}, copier_later=False)
    assert detect_copying(values, published, belief, ACCURACY) == {}
    found = detect_copying(values, published, belief, ACCURACY, same_time=True)
    assert set(found) == {"orig"} and found["orig"].original == "copy"


def test_the_discount_is_one_minus_copy_rate_times_probability() -> None:
    params = DependenceParams(copy_rate=0.9)
    assert discount(None, params) == 1.0
    assert discount(Copying("c", "o", 1.0, 40, 10), params) == 0.1
    assert discount(Copying("c", "o", 0.5, 40, 10), params) == 0.55


def _flights(mirrors: int) -> list[Observation]:
    """Gates of 30 flights: four independent sources, each wrong on a different fifth
    of the flights; 'feed' wrong on every third flight, and `mirrors` sources repeating
    the feed an hour later. Without copy detection the feed's errors win by numbers."""
    obs: list[Observation] = []
    for i in range(30):
        key, truth = f"flight{i}", f"B{i}"
        for n, source in enumerate(("alpha", "beta", "gamma", "delta")):
            value = f"{source}-{i}" if i % 5 == n else truth
            obs.append(Observation(key, source, value, claim_id=f"{i}{source}"))
        feed = f"C{i}" if i % 3 == 0 else truth
        obs.append(Observation(key, "feed", feed, published=100.0, claim_id=f"{i}feed"))
        for m in range(mirrors):
            source = f"mirror{m}"
            obs.append(Observation(key, source, feed, published=3700.0, claim_id=f"{i}{source}"))
    return obs


def test_copiers_of_a_feed_do_not_outvote_independent_sources() -> None:
    obs = _flights(mirrors=4)
    plain = learn_reliability(obs, Params(dependence=None))
    learned = learn_reliability(obs)
    wrong_plain = [k for k, v in plain.consensus.items() if v != f"B{k[6:]}"]
    wrong_learned = [k for k, v in learned.consensus.items() if v != f"B{k[6:]}"]
    assert len(wrong_plain) >= 8  # five voices for the feed's errors against four
    assert wrong_learned == []
    assert set(learned.copies) == {f"mirror{m}" for m in range(4)}
    assert all(f.original == "feed" for f in learned.copies.values())


def test_names_are_learned_like_numbers() -> None:
    """A source right on names gains weight, as on numbers: learning covers categorical keys."""
    learned = learn_reliability(_flights(mirrors=0))
    assert learned.scores["alpha"] > learned.scores["feed"]
    assert learned.consensus["flight3"] == "B3"


def test_a_key_with_one_name_compares_its_numbers_as_names() -> None:
    obs = [
        Observation("gate", "s1", "B12", claim_id="1"),
        Observation("gate", "s2", 12.0, claim_id="2"),
        Observation("gate", "s3", 12.0, claim_id="3"),
        Observation("gate", "s4", "C3", claim_id="4"),
        Observation("gate", "s5", 12.0, claim_id="5"),
    ]
    assert learn_reliability(obs).consensus["gate"] == "12"


def _gate_claim(cid: str, source: str, text: str, copies: str | None = None) -> ClaimFacts:
    return ClaimFacts(
        claim_id=cid,
        report_id=f"r-{cid}",
        subject="flight-1",
        attribute="gate",
        source_id=source,
        published_at=datetime(2026, 11, 2, tzinfo=UTC),
        value=Value(None, None, None, "categorical", "test/text", text=text),
        attributed_to=source,
        copies_source=copies,
    )


GATE = AttributeSpec(name="gate", kind="categorical")


def test_a_learned_copier_agreeing_with_its_original_is_one_voice_with_it() -> None:
    """The feed and three sources found copying it say C7; two independent sources say
    B7. Counted as five voices the copies win; as one voice with the feed they lose."""
    claims = [
        _gate_claim("a", "alpha", "B7"),
        _gate_claim("b", "beta", "B7"),
        _gate_claim("f", "feed", "C7"),
        *(_gate_claim(f"m{i}", f"mirror{i}", "C7", copies="feed") for i in range(3)),
    ]
    got = compute_consensus(claims, GATE)
    assert got.value_text == "B7"
    assert len(got.clusters) == 3
    assert "3 sources found copying others count once with them" in got.explanation


def test_a_copier_saying_something_else_keeps_its_own_voice() -> None:
    claims = [
        _gate_claim("a", "alpha", "B7"),
        _gate_claim("f", "feed", "C7"),
        _gate_claim("m", "mirror", "D7", copies="feed"),
    ]
    got = compute_consensus(claims, GATE)
    assert len(got.clusters) == 3
    assert "copying" not in got.explanation


def _one_against_one(rank_of_x: str = "normal", rank_of_y: str = "normal") -> list[Observation]:
    """Twenty keys where 'x' and 'y' disagree one against one, an undecidable vote; on
    the first five an analyst assessed one of the claims. A tie would go to y ("a" < "x")."""
    obs = []
    for i in range(20):
        rx, ry = (rank_of_x, rank_of_y) if i < 5 else ("normal", "normal")
        obs.append(Observation(f"k{i}", "x", f"x{i}", claim_id=f"{i}x", rank=rx))
        obs.append(Observation(f"k{i}", "y", f"a{i}", claim_id=f"{i}y", rank=ry))
    return obs


def test_an_analysts_preferred_claims_anchor_the_source_that_made_them() -> None:
    learned = learn_reliability(_one_against_one(rank_of_x="preferred"))
    assert learned.scores["x"] > learned.scores["y"]
    assert [learned.consensus[f"k{i}"] for i in range(5, 20)] == [f"x{i}" for i in range(5, 20)]


def test_an_analysts_deprecated_claims_count_against_their_source() -> None:
    learned = learn_reliability(_one_against_one(rank_of_y="deprecated"))
    assert learned.scores["y"] < learned.scores["x"]
    assert learned.consensus["k10"] == "x10"


def test_a_score_that_moved_by_less_than_one_percent_is_not_sent_again() -> None:
    """Every run moves every score a little while claims arrive; each score sent re-derives
    every key of its source, so only moves that matter are sent."""
    from services.ingest.learning import changed_scores

    assert changed_scores({"a": 1.005, "b": 2.0}, {"a": 1.0, "b": 1.5}) == {"b": 2.0}
    assert changed_scores({}, {"gone": 1.005}) == {}
    assert changed_scores({}, {"gone": 1.5}) == {"gone": 1.0}
    assert changed_scores({"c": 1.0}, {"c": 1.0}, {"c": "feed"}, {}) == {"c": 1.0}


def test_a_source_copying_half_of_what_it_publishes_is_found_by_the_rate_that_fits() -> None:
    """15 true and 10 false values shared, 15 different: a copier at half its values.
    At the one rate 0.9 its differences would clear it; averaged over the rates 0.5-0.9
    the ten shared errors convict it. Two independent sources of the same accuracy share
    about one error in 40 by chance, and stay independent."""
    accuracy = {"x": 0.75, "y": 0.75}
    params = DependenceParams()
    assert posterior(15, 10, 15, accuracy, "x", "y", 3, params) > params.threshold
    only_wholesale = DependenceParams(copy_rates=(0.9,))
    assert posterior(15, 10, 15, accuracy, "x", "y", 3, only_wholesale) < 0.5
    assert posterior(23, 1, 16, accuracy, "x", "y", 3, params) < 0.5


def _lagging(keys: int = 60) -> list[Observation]:
    """Four independent sources ('a'-'d'), each wrong on its own tenth of the keys with a
    value of its own, two poor ones ('e', 'f') right on one key in three; two feeds that
    publish together, later, and repeat one stale value on three keys in four (both on
    half of the keys)."""
    obs = []
    for i in range(keys):
        key, truth = f"k{i}", f"T{i}"
        for n, source in enumerate("abcdef"):
            wrong = i % 10 == n if n < 4 else i % 3 != n - 4
            value = f"{source}{i}" if wrong else truth
            obs.append(Observation(key, source, value, published=1.0, claim_id=f"{i}{source}"))
        for source, stale in (("lag1", i % 4 != 3), ("lag2", i % 4 != 2)):
            value = f"S{i}" if stale else truth
            obs.append(Observation(key, source, value, published=5.0, claim_id=f"{i}{source}"))
    return obs


def test_feeds_repeating_the_same_stale_values_at_the_same_moment_are_found_dependent() -> None:
    """Which of the two copies which, their times cannot say; that they share a stale
    value on a quarter of the keys can. They are judged once the findings that times can
    direct have settled (and the consensus with them); the independent sources, which
    also publish together, share no error and are not joined."""
    learned = learn_reliability(_lagging())
    assert set(learned.copies) == {"lag2"}
    assert learned.copies["lag2"].original == "lag1"
    directed_only = learn_reliability(_lagging(), Params(max_rounds=1))
    assert directed_only.copies == {}
