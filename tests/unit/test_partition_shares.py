"""How reconcilers split partitions: evenly, the same plan computed by every member."""

from __future__ import annotations

from services.reconcile.partitions import fair_share, lease_key, preferred_order
from shared.events import stream_for


def test_four_partitions_over_three_reconcilers_split_two_one_one() -> None:
    members = ["rec-c", "rec-a", "rec-b"]
    assert [fair_share(m, members, 4) for m in ("rec-a", "rec-b", "rec-c")] == [2, 1, 1]


def test_shares_always_add_up_to_the_partition_count() -> None:
    for partitions in (1, 4, 7, 16):
        for n in range(1, 20):
            members = [f"r{i}" for i in range(n)]
            assert sum(fair_share(m, members, partitions) for m in members) == partitions


def test_reconcilers_beyond_the_partition_count_stand_by() -> None:
    members = ["a", "b", "c", "d", "e"]
    assert [fair_share(m, members, 4) for m in members] == [1, 1, 1, 1, 0]


def test_a_member_not_yet_in_the_list_counts_itself() -> None:
    assert fair_share("new", [], 4) == 4
    assert fair_share("b", ["a"], 4) == 2


def test_each_member_tries_every_partition_once_from_its_own_offset() -> None:
    for member in ("rec-a", "rec-b", "pod-7f9c"):
        order = preferred_order(member, 8)
        assert sorted(order) == list(range(8))


def test_a_lease_shares_its_partition_streams_hash_tag() -> None:
    assert stream_for(3).endswith("{3}") and lease_key(3).endswith("{3}")
