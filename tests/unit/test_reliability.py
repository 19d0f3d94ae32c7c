"""Learned source reliability (shared.consensus.reliability): pure, with literals."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.consensus import compute_consensus
from shared.consensus.reliability import Observation, Params, learn_reliability
from shared.model import AttributeSpec, ClaimFacts, Value


def _obs(key: str, source: str, value: float) -> Observation:
    return Observation(key, source, value, claim_id=f"{key}/{source}")


def _history() -> list[Observation]:
    """'good' is always right; 'noisy1' and 'noisy2' are each right one time in six,
    and on key 'x' they happen to agree with each other against 'good'."""
    obs: list[Observation] = []
    for i in range(60):
        truth = 1000 + 10 * i
        obs.append(_obs(f"k{i}", "good", truth))
        obs.append(_obs(f"k{i}", "noisy1", truth if i % 6 == 0 else truth * 1.3))
        obs.append(_obs(f"k{i}", "noisy2", truth if i % 6 == 1 else truth * 0.7))
        obs.append(_obs(f"k{i}", f"bystander{i}", truth))
    obs += [_obs("x", "good", 500), _obs("x", "noisy1", 800), _obs("x", "noisy2", 800)]
    return obs


def test_a_reliable_source_outvotes_two_noisy_ones_after_sharp_learning() -> None:
    sharp = Params(exponent=1.0)
    learned = learn_reliability(_history(), sharp)
    assert learned.scores["good"] > 2 * learned.scores["noisy1"]
    assert learned.consensus["x"] == 500
    # before learning (equal weights) the two noisy sources win
    unlearned = learn_reliability(_history(), Params(max_rounds=0))
    assert unlearned.consensus["x"] == 800


def test_by_default_learning_breaks_ties_toward_the_reliable_source() -> None:
    # The default exponent is gentle (tuned on the Population benchmark): a proven
    # source wins a one-against-one disagreement, not yet a two-against-one.
    obs = [*_history(), _obs("y", "good", 700), _obs("y", "noisy1", 600)]
    learned = learn_reliability(obs)
    assert learned.scores["good"] > learned.scores["noisy1"]
    assert learned.consensus["y"] == 700
    assert learn_reliability(obs, Params(max_rounds=0)).consensus["y"] == 600


def test_a_source_with_one_claim_stays_near_its_prior() -> None:
    obs = [*_history(), _obs("k0", "newcomer", 5000)]
    learned = learn_reliability(obs)
    assert learned.claims["newcomer"] == 1
    assert 0.8 < learned.scores["newcomer"] < 1.0
    assert learned.scores["newcomer"] > learned.scores["noisy1"] * 0.9


def test_an_extreme_outlier_costs_no_more_than_a_plain_error() -> None:
    base = _history()
    mild = learn_reliability([*base, _obs("k1", "wild", 1100 * 2)])
    extreme = learn_reliability([*base, _obs("k1", "wild", 1100 * 1000)])
    assert mild.scores == extreme.scores
    assert all(0.05 <= s <= 20 for s in extreme.scores.values())


def test_the_same_input_in_any_order_gives_the_same_scores() -> None:
    obs = _history()
    first = learn_reliability(obs)
    again = learn_reliability(list(reversed(obs)))
    assert first == again
    assert first.converged


def test_a_lone_claim_teaches_nothing() -> None:
    learned = learn_reliability([_obs("solo", "a", 1), _obs("other", "b", 2)])
    assert learned.scores == {}
    assert learned.consensus == {"solo": 1, "other": 2}


def test_learned_consensus_equals_the_products_fusion_with_those_scores() -> None:
    obs = _history()
    learned = learn_reliability(obs)
    spec = AttributeSpec(name="population", kind="stock")
    for key in ("x", "k4", "k5"):
        claims = [
            ClaimFacts(
                claim_id=o.claim_id,
                report_id=o.claim_id,
                subject=key,
                attribute="population",
                source_id=o.source_id,
                published_at=datetime(2020, 1, 1, tzinfo=UTC),
                value=Value(o.value, o.value, o.value, "exact", "test"),
                attributed_to=o.source_id,
            )
            for o in obs
            if o.key == key
        ]
        result = compute_consensus(claims, spec, source_scores=learned.scores)
        assert result.best == learned.consensus[key]


def test_a_unanimous_key_teaches_nothing() -> None:
    obs = _history()
    echoes = [o for i in range(50) for o in (_obs(f"u{i}", "echo", 7), _obs(f"u{i}", "good", 7))]
    echoed = [*obs, *echoes]
    learned = learn_reliability(obs)
    again = learn_reliability(echoed)
    assert "echo" not in again.scores
    assert again.scores == learned.scores
