"""Exact readings (issue 18): a key whose sources mostly repeat one another's exact values
(a delay in minutes, a seat count, a departure time sent as a number) is decided by the
weighted plurality of the readings, not by the median of several wrong ones; estimates
that differ by a little keep the median. Pure, with literal claims."""

from __future__ import annotations

from shared.consensus._numeric import exact_readings
from shared.consensus.reliability import Observation, learn_reliability
from tests.unit.test_consensus import claim, exact, run

# A flight's delay in minutes, one reading per origin: 15 is the reading most origins
# give (4 of 11, 36 %: no clear share for the mode of counts); the others are wrong
# readings, most of them repeated (stale values, the scheduled time).
DELAYS = [15, 15, 15, 15, 120, 120, 85, 85, 45, 45, 0]


def _delay_claims(values: list[int]) -> list:
    return [claim(f"c{i}", exact(v), f"origin-{i}") for i, v in enumerate(values)]


def test_a_count_read_exactly_by_its_sources_is_decided_by_the_most_given_reading() -> None:
    """The weighted median of these readings is 45, which one origin gave; 15 is what
    four independent origins read."""
    got = run(_delay_claims(DELAYS))
    assert got.best == 15


def test_estimates_that_do_not_repeat_keep_the_median() -> None:
    """Two of six origins agree exactly, the rest differ by a little: estimates, not
    readings. The repeated value is no more likely than its neighbours."""
    got = run(_delay_claims([1000, 1000, 1010, 1020, 1030, 1040]))
    assert got.best == 1010


def test_exact_readings_need_three_quarters_of_the_origins_repeating() -> None:
    def entries(values: list[int]) -> list[tuple[float, float, str]]:
        return [(float(v), 1.0, f"o{i}") for i, v in enumerate(values)]

    assert exact_readings(entries([1, 1, 2, 2, 3, 3, 4, 5])) is True  # 6 of 8
    assert exact_readings(entries([1, 1, 2, 2, 3, 4, 5])) is False  # 4 of 7
    assert exact_readings(entries([1, 1])) is False  # too few origins to say
    assert exact_readings(entries([7, 7, 7])) is False  # unanimous: nothing to decide


CAREFUL = ("good", "b", "c", "d", "e", "f", "g")


def _readings() -> list[Observation]:
    """40 flights' delays: seven independent sources read them right except on one
    flight in ten each; 'sloppy' is 1 % off on every flight (a reading that is off is
    wrong, however little)."""
    obs = []
    for i in range(40):
        key, truth = f"f{i}\x1fdelay", float(100 + i)
        for n, source in enumerate(CAREFUL):
            value = truth + 5.0 if i % 10 == n else truth
            obs.append(Observation(key, source, value, claim_id=f"{i}{source}", attribute="delay"))
        obs.append(
            Observation(key, "sloppy", truth * 1.01, claim_id=f"{i}sloppy", attribute="delay")
        )
    return obs


def test_sources_of_exact_readings_are_judged_right_or_wrong_not_within_a_tolerance() -> None:
    """Within the 1 % tolerance of estimates 'sloppy' would agree fully on every flight;
    read as exact readings it is wrong on every one, and scores below every other source."""
    learned = learn_reliability(_readings())
    assert learned.scores["sloppy"] < min(learned.scores[s] for s in CAREFUL)
    assert learned.scores["sloppy"] < 1.0 < learned.scores["good"]
