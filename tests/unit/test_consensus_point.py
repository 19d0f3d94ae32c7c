"""The count rule's point (`point_best`) at its thresholds, with literal entries: two
clusters make a mode, 45 % of the weight is enough, and the mode must outweigh the median's
own value (issue #25's mutants)."""

from __future__ import annotations

from shared.consensus._numeric import point_best


def _entries(*pairs: tuple[float, float]) -> list[tuple[float, float, str]]:
    return [(v, w, f"c{i}") for i, (v, w) in enumerate(pairs)]


def test_two_clusters_with_enough_weight_make_the_mode() -> None:
    # 10 twice: 2.0 of 4.4, over 45 %; the weighted median alone would say 50
    assert point_best(_entries((10, 1.0), (10, 1.0), (50, 1.0), (60, 1.4))) == 10
    assert point_best(_entries((10, 1.0), (50, 1.0), (60, 1.4))) == 50


def test_exactly_45_percent_of_the_weight_is_enough() -> None:
    assert point_best(_entries((10, 0.45), (10, 0.45), (50, 0.55), (60, 0.55))) == 10


def test_a_mode_no_heavier_than_the_medians_own_value_gives_way_to_it() -> None:
    assert point_best(_entries((10, 0.5), (10, 0.5), (50, 1.0), (60, 0.2))) == 50


def test_the_heaviest_repeated_value_is_the_mode_not_the_lowest() -> None:
    # 500 three times (6.0 of 12.0) against 100 twice: the weighted median alone says 230
    entries = _entries(
        (100, 1.0), (100, 1.0), (200, 1.0), (210, 1.0), (220, 1.0), (230, 1.0),
        (500, 2.0), (500, 2.0), (500, 2.0),
    )  # fmt: skip
    assert point_best(entries) == 500


def test_of_two_equally_heavy_modes_the_one_nearer_the_median_wins() -> None:
    # 100 and 400 twice each; two light readings put the median at 350
    entries = _entries((100, 1.0), (100, 1.0), (400, 1.0), (400, 1.0), (350, 0.1), (360, 0.1))
    assert point_best(entries) == 400
