"""Positions in the update feed (shared.positions): per-partition numbers, tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.positions import (
    SLOTS,
    BadToken,
    Cursor,
    parse_token,
    part_of,
    position_of,
    seq_of,
    version_id,
)


def test_an_id_names_its_partition_and_its_number_there() -> None:
    row_id = version_id(3, 41)
    assert (part_of(row_id), seq_of(row_id)) == (3, 41)
    assert version_id(0, 2) > version_id(SLOTS - 1, 1)  # a partition's ids grow with its numbers


def test_a_token_names_each_partition_reached() -> None:
    cursor = Cursor({0: 12, 1: 40, 3: 7, 2: 0})
    assert cursor.token() == "p0.12_1.40_3.7"
    assert parse_token("p0.12_1.40_3.7") == cursor
    assert Cursor().token() == "p" and parse_token("p") == Cursor()


@given(st.dictionaries(st.integers(0, SLOTS - 1), st.integers(0, 2**40)))
def test_a_token_reads_back_as_the_cursor_it_came_from(seqs: dict[int, int]) -> None:
    cursor = Cursor(seqs)
    assert parse_token(cursor.token()) == cursor


def test_a_version_position_resumes_after_it_in_its_partition_and_from_the_start_elsewhere() -> (
    None
):
    after = parse_token(position_of(version_id(2, 513)))
    assert after[2] == 513 and after[0] == after[1] == 0
    assert after.sent(version_id(2, 513)) and not after.sent(version_id(2, 514))
    assert not after.sent(version_id(0, 1))


def test_advancing_moves_only_forward_and_covers_compares_every_partition() -> None:
    cursor = Cursor({0: 5}).advanced([version_id(0, 3), version_id(1, 2), version_id(0, 7)])
    assert cursor == Cursor({0: 7, 1: 2})
    assert cursor.covers(Cursor({0: 7})) and not Cursor({0: 7}).covers(cursor)


@pytest.mark.parametrize(
    "text", ["12", "p0", "p0.", "p.1", "p0.1_0.2", "p1024.1", "x0.1", "p0.1_", "p٣.1", "p0.-1"]
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(BadToken):
        parse_token(text)


def test_zero_still_means_the_start_of_the_feed() -> None:
    assert parse_token("0") == Cursor()
