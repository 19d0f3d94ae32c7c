"""bench/accuracy.py's analysts' gold answers (issue 18): which claims an analyst marks, which
keys are held out, and that the marks reach the learner as assessments do."""

from __future__ import annotations

from collections.abc import Mapping

from bench.accuracy import Claim, Dataset, gold_sample, held_out_score, offline_learned

WHEN = "2009-01-01T00:00:00Z"


def claim(subject: str, source: str, value: float) -> Claim:
    return Claim(subject, "population", source, value, WHEN)


def dataset(claims: list[Claim], truth: Mapping[str, float]) -> Dataset:
    return Dataset(
        "test",
        claims,
        {(s, "population"): [v] for s, v in truth.items()},
        "population",
    )


def test_the_claims_stating_the_truth_on_settled_keys_are_marked_and_the_rest_held_out() -> None:
    claims = [
        claim("a", "editor", 100),
        claim("a", "bot", 90),
        claim("a", "other", 100),
        claim("b", "editor", 7),
        claim("b", "bot", 8),
    ]
    ds = dataset(claims, {"a": 100, "b": 9, "no-claims": 5})

    everything = gold_sample(ds, 1.0, seed=1)
    nothing = gold_sample(ds, 0.0, seed=1)

    # both keys with truth and claims are settled; the one without claims is not a key
    assert everything.keys == {("a", "population"), ("b", "population")}
    assert everything.preferred == {0, 2}  # the two claims of a's truth, none of b's
    assert everything.unanchored == 1  # b: no claim states 9, nothing to assess
    assert everything.held_out == frozenset()
    assert nothing.keys == frozenset() and nothing.preferred == frozenset()
    assert nothing.held_out == {("a", "population"), ("b", "population")}


def test_the_sample_is_seeded_and_a_larger_share_settles_a_superset() -> None:
    claims = [claim(f"k{i}", "s", i) for i in range(40)]
    ds = dataset(claims, {f"k{i}": i for i in range(40)})

    small, large = gold_sample(ds, 0.1, seed=3), gold_sample(ds, 0.3, seed=3)

    assert len(small.keys) == 4 and len(large.keys) == 12
    assert small.keys < large.keys
    assert gold_sample(ds, 0.1, seed=3) == small
    assert gold_sample(ds, 0.1, seed=4).keys != small.keys
    assert small.keys.isdisjoint(small.held_out) and len(small.held_out) == 36


def test_only_held_out_keys_are_scored() -> None:
    truth = {("a", "p"): [100.0], ("b", "p"): [10.0]}
    estimates = {("a", "p"): 100.0, ("b", "p"): 50.0}

    scored = held_out_score(estimates, truth, frozenset({("a", "p")}))

    assert scored["keys"] == 1 and scored["wrong"] == 0 and scored["mae"] == 0


def test_gold_answers_reach_the_learner_and_decide_a_held_out_key() -> None:
    # The usual wrong Population key: the bot and a one-claim partner against a careful
    # editor. On five keys the editor is outvoted even with a preferred claim's larger
    # prior (the lower weighted median), so only the gold answers themselves say that the
    # editor was right there; they must make it outweigh the bot on a held-out key.
    claims = []
    for i in range(5):
        claims += [
            claim(f"g{i}", "editor", 1000 + i),
            claim(f"g{i}", "bot", 500 + i),
            claim(f"g{i}", f"partner{i}", 501 + i),
        ]
    claims += [claim("held", "editor", 3000), claim("held", "bot", 2000)]
    truth = {f"g{i}": 1000 + i for i in range(5)} | {"held": 3000}
    ds = dataset(claims, truth)
    held = {("held", "population")}
    gold = next(g for s in range(100) if (g := gold_sample(ds, 5 / 6, s)).held_out == held)

    without = offline_learned(ds)
    with_gold = offline_learned(ds, gold.preferred)

    assert without[("held", "population")] == 2000
    assert with_gold[("held", "population")] == 3000
