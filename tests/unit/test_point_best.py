"""The point a numeric consensus reports: weighted median, or the repeated exact value."""

from __future__ import annotations

from shared.consensus._numeric import point_best, weighted_median


def test_a_value_repeated_by_independent_clusters_with_a_clear_share_beats_the_median() -> None:
    entries = [
        (100.0, 1.0, "a"),
        (292648.0, 1.0, "b"),
        (292648.0, 1.0, "c"),
        (292648.0, 1.0, "d"),
        (292650.0, 1.0, "e"),
        (292700.0, 1.0, "f"),
        (292900.0, 1.0, "g"),
    ]
    assert weighted_median(list(entries)) == 292648.0  # (the mode is also the median here)
    shifted = [(v + (3.0 if v > 292648.0 else 0.0), w, r) for v, w, r in entries] + [
        (292660.0, 1.0, "h"),
        (292670.0, 1.0, "i"),
    ]
    assert weighted_median(list(shifted)) == 292653.0
    # three of nine clusters (33 %) is not a clear share: the median stands
    assert point_best(list(shifted)) == 292653.0
    heavier = [(v, 2.0 if v == 292648.0 else w, r) for v, w, r in shifted]  # 6 of 12: 50 %
    assert point_best(heavier) == 292648.0


def test_without_repetition_the_median_stands() -> None:
    entries = [(1.0, 1.0, "a"), (2.0, 1.2, "b"), (3.0, 1.0, "c")]
    assert point_best(entries) == 2.0


def test_one_cluster_alone_is_not_a_mode_however_heavy() -> None:
    entries = [(10.0, 1.0, "a"), (12.0, 1.0, "b"), (13.0, 1.9, "c"), (14.0, 1.0, "d")]
    assert point_best(entries) == weighted_median(list(entries))


def test_the_point_does_not_depend_on_the_order_of_the_entries() -> None:
    entries = [(5.0, 1.0, "a"), (7.0, 1.0, "b"), (7.0, 1.0, "c"), (9.0, 1.0, "d")]
    assert point_best(list(entries)) == point_best(list(reversed(entries))) == 7.0
