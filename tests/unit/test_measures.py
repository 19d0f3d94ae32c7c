"""Measures (signed readings such as a temperature): the plurality decision rule in the
fusion and in the learner, with literals. Counts keep their median-or-mode rule."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.consensus import compute_consensus
from shared.consensus._numeric import (
    MEDIAN_OR_MODE,
    PLURALITY,
    plurality_best,
    point_best,
)
from shared.consensus.reliability import Observation, Params, learn_reliability
from shared.model import AttributeSpec, ClaimFacts, ConsensusResult
from shared.values import parse_value

TEMPERATURE = AttributeSpec(name="temperature", kind="measure", unit="°F")
POPULATION = AttributeSpec(name="population", kind="stock")


def reading(
    cid: str,
    value: object,
    source: str,
    kind: str = "measure",
    attribute: str = "temperature",
    hour: int = 8,
) -> ClaimFacts:
    return ClaimFacts(
        claim_id=cid,
        report_id=f"r-{cid}",
        subject="sanjose-jan29-08",
        attribute=attribute,
        source_id=source,
        published_at=datetime(2010, 1, 29, hour, tzinfo=UTC),
        value=parse_value(value, kind=kind),
        attributed_to=source,
    )


def fuse(claims: list[ClaimFacts], spec: AttributeSpec = TEMPERATURE) -> ConsensusResult:
    return compute_consensus(claims, spec)


# -- the rule itself ---------------------------------------------------------------------------


def test_plurality_picks_the_exact_value_with_the_most_weight() -> None:
    entries = [
        (48.0, 1.0, "a"),
        (48.0, 1.0, "b"),
        (50.0, 1.0, "c"),
        (51.0, 1.0, "d"),
        (52.0, 1.0, "e"),
    ]
    assert plurality_best(list(entries)) == 48.0
    assert point_best(list(entries)) == 50.0  # a count's rule: 2 of 5 is no clear share


def test_plurality_weighs_votes_by_the_learned_weights() -> None:
    entries = [(48.0, 1.0, "a"), (48.0, 1.0, "b"), (50.0, 2.5, "c")]
    assert plurality_best(entries) == 50.0


def test_a_plurality_tie_goes_to_the_value_nearer_the_median_then_the_lower() -> None:
    assert plurality_best([(40.0, 1.0, "a"), (47.0, 1.0, "b"), (48.0, 1.0, "c")]) == 47.0
    assert plurality_best([(47.0, 1.0, "a"), (49.0, 1.0, "b")]) == 47.0


def test_plurality_does_not_depend_on_the_order_of_the_entries() -> None:
    entries = [(-3.0, 1.0, "a"), (-2.0, 1.0, "b"), (-2.0, 1.0, "c"), (5.0, 1.0, "d")]
    assert plurality_best(list(entries)) == plurality_best(list(reversed(entries))) == -2.0


# -- through compute_consensus -------------------------------------------------------------------


def test_a_measures_consensus_is_the_most_supported_exact_reading() -> None:
    claims = [
        reading("c1", 48, "msn"),
        reading("c2", 48, "herald"),
        reading("c3", 50, "uswx"),
        reading("c4", 51, "yahoo"),
        reading("c5", 52, "wunderground"),
    ]
    assert fuse(claims).best == 48
    # the same numbers as counts: the median stands
    counts = [reading(c.claim_id, c.value.best, c.source_id, "stock", "population") for c in claims]
    assert fuse(counts, POPULATION).best == 50


def test_sub_zero_readings_are_fused_on_the_line() -> None:
    claims = [
        reading("c1", -3, "msn"),
        reading("c2", -3, "herald"),
        reading("c3", 2, "uswx"),
        reading("c4", "-4", "yahoo"),
    ]
    result = fuse(claims)
    assert result.best == -3
    assert result.status == "contested"
    assert set(result.support) == {"c1", "c2"}


def test_ranges_of_a_measure_without_points_meet_at_their_linear_midpoint() -> None:
    claims = [
        reading("c1", "-10 to 2", "msn"),
        reading("c2", "-4 to 0", "herald"),
        reading("c3", "-3 to 1", "uswx"),
    ]
    result = fuse(claims)
    assert result.best == -2  # the derived midpoints -4, -2, -1: the tie goes to the median
    assert (result.low, result.high) == (-10, 2)


def test_a_sources_latest_reading_is_its_vote() -> None:
    claims = [
        reading("c1", 45, "msn", hour=7),
        reading("c2", 48, "msn", hour=9),
        reading("c3", 48, "herald"),
        reading("c4", 45, "uswx"),
    ]
    assert fuse(claims).best == 48


def test_personnel_deployed_keeps_the_median_or_mode_rule() -> None:
    spec = AttributeSpec(name="personnel_deployed", kind="stock")
    claims = [
        reading(f"c{i}", n, f"s{i}", "stock", "personnel_deployed")
        for i, n in enumerate([10_000, 11_000, 12_000, 12_000, 13_200, 14_000])
    ]
    assert fuse(claims, spec).best == 12_000
    odd = [
        reading(f"c{i}", n, f"s{i}", "stock", "personnel_deployed")
        for i, n in enumerate([10_000, 11_000, 12_000, 13_200, 14_000])
    ]
    assert fuse(odd, spec).best == 12_000


# -- the learner -----------------------------------------------------------------------------------


def _obs(
    key: str, source: str, value: float, rule: str = PLURALITY, published: float = 0.0
) -> Observation:
    return Observation(
        key, source, value, published=published, claim_id=f"{key}/{source}/{value}", rule=rule
    )


def _weather() -> list[Observation]:
    """'station' reads right every hour; 'copy1' and 'copy2' repeat one stale reading that
    is right one hour in four; two different bystanders agree with the station each hour."""
    obs: list[Observation] = []
    for i in range(40):
        truth = 30 + i % 7
        obs.append(_obs(f"h{i}", "station", truth))
        obs.append(_obs(f"h{i}", "copy1", truth if i % 4 == 0 else truth - 1))
        obs.append(_obs(f"h{i}", "copy2", truth if i % 4 == 0 else truth - 1))
        obs.append(_obs(f"h{i}", f"bystander{i}", truth))
        obs.append(_obs(f"h{i}", f"passer-by{i}", truth))
    obs += [_obs("x", "station", -2), _obs("x", "copy1", -3), _obs("x", "copy2", -3)]
    return obs


def test_a_measures_learner_judges_exact_agreement_and_lets_the_reliable_reading_win() -> None:
    learned = learn_reliability(_weather())
    assert learned.scores["station"] > 2 * learned.scores["copy1"]
    assert learned.consensus["x"] == -2
    assert learn_reliability(_weather(), Params(max_rounds=0)).consensus["x"] == -3


def test_a_reading_one_degree_off_is_a_wrong_reading() -> None:
    obs = [*_weather(), _obs("y", "near", 41), _obs("y", "exact", 42), _obs("y", "other", 42)]
    learned = learn_reliability(obs)
    assert learned.agreement["near"] < learned.agreement["exact"]


def test_a_measures_superseded_reading_is_not_held_against_its_source() -> None:
    base = _weather()
    updated = [*base, _obs("h1", "station", 99, published=-1.0)]  # an earlier, superseded one
    assert learn_reliability(updated).scores == learn_reliability(base).scores


def test_counts_and_measures_learn_side_by_side_without_disturbing_each_other() -> None:
    counts = [
        _obs(f"k{i}", s, v, MEDIAN_OR_MODE)
        for i in range(30)
        for s, v in (("a", 1000 + i), ("b", 1000 + i), ("c", 1300 + i))
    ]
    alone = learn_reliability(counts)
    together = learn_reliability([*counts, *_weather()])
    assert {s: together.scores[s] for s in alone.scores} == alone.scores
    assert together.consensus["x"] == -2


def test_a_key_with_one_measure_reading_follows_the_measure_rule() -> None:
    obs = [
        _obs("z", "a", 48, MEDIAN_OR_MODE),
        _obs("z", "b", 48),
        _obs("z", "c", 50),
        _obs("z", "d", 51),
        _obs("z", "e", 52, MEDIAN_OR_MODE),
    ]
    assert learn_reliability(obs, Params(max_rounds=0)).consensus["z"] == 48


def test_reweighing_judges_a_stored_measure_reading_by_the_measure_rule() -> None:
    from services.ingest.learning import observation_of

    measure = observation_of(reading("c1", -3, "msn"), "2010-01-29T08:00:00Z")
    count = observation_of(reading("c2", 12, "msn", "stock", "population"), "2010-01-29T08:00:00Z")
    assert measure is not None and (measure.value, measure.rule) == (-3.0, PLURALITY)
    assert count is not None and count.rule == MEDIAN_OR_MODE
