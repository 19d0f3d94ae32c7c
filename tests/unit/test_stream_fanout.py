"""The SSE fan-out's pure parts: matching, gap detection, history+live merge, bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.query.stream import (
    PAIR_INDEX_LIMIT,
    Fanout,
    Frame,
    StreamFilter,
    SubscriberIndex,
    Subscription,
    announced_ids,
    chunks,
    contiguous,
    fresh,
    resync_frame,
)
from shared.positions import Cursor, parse_token, version_id


def _id(seq: int, part: int = 0) -> int:
    return version_id(part, seq)


def _frame(seq: int, subject: str = "s", attribute: str = "a", part: int = 0) -> Frame:
    return Frame(_id(seq, part), subject, attribute, f"id: p{part}.{seq}\r\n\r\n".encode())


def _seqs(frames: list[Frame]) -> list[int]:
    return [f.id // 1024 for f in frames]


def _filter(subjects: tuple[str, ...] = (), attributes: tuple[str, ...] = ()) -> StreamFilter:
    return StreamFilter(frozenset(subjects), frozenset(attributes))


def test_an_empty_filter_side_matches_anything() -> None:
    assert _filter().matches("x", "y")
    assert _filter(("x",)).matches("x", "y")
    assert not _filter(("x",)).matches("z", "y")
    assert _filter((), ("y",)).matches("z", "y")
    assert _filter(("x", "z"), ("y",)).matches("z", "y")
    assert not _filter(("x",), ("y",)).matches("x", "w")


FILTERS = [
    _filter(),
    _filter(("s1",)),
    _filter(("s1", "s2")),
    _filter((), ("a1",)),
    _filter(("s1",), ("a1",)),
    _filter(("s1", "s2"), ("a1", "a2")),
    _filter(tuple(f"s{i}" for i in range(PAIR_INDEX_LIMIT + 1)), ("a1",)),  # subject-indexed
]


@pytest.mark.parametrize("subject", ["s1", "s2", "s3", "s64"])
@pytest.mark.parametrize("attribute", ["a1", "a2", "a3"])
def test_the_index_returns_exactly_the_matching_subscribers_once(
    subject: str, attribute: str
) -> None:
    index = SubscriberIndex()
    members = [Subscription(f, 10) for f in FILTERS]
    for m in members:
        index.add(m.filter, m)
    got = index.match(subject, attribute, lambda m: m.filter)
    assert len(got) == len({id(m) for m in got})  # no subscriber twice
    assert {id(m) for m in got} == {id(m) for m in members if m.filter.matches(subject, attribute)}


def test_removed_subscribers_are_no_longer_matched_and_leave_no_empty_slots() -> None:
    index = SubscriberIndex()
    members = [Subscription(f, 10) for f in FILTERS]
    for m in members:
        index.add(m.filter, m)
    assert len(index) == len(members)
    for m in members:
        index.remove(m.filter, m)
    assert index.match("s1", "a1", lambda m: m.filter) == []
    assert len(index) == 0
    assert not index.by_pair and not index.by_subject and not index.by_attribute


def test_contiguous_counts_ids_up_to_the_first_hole() -> None:
    assert contiguous(10, [11, 12, 13]) == 3
    assert contiguous(10, [11, 13, 14]) == 1
    assert contiguous(10, [12]) == 0
    assert contiguous(0, []) == 0


def test_announced_ids_reads_the_version_ids_and_skips_junk() -> None:
    entries: list[tuple[Any, dict[Any, Any]]] = [
        (b"1-0", {b"__data__": json.dumps({"id": 7}).encode()}),
        (b"1-1", {b"__data__": b"not json"}),
        (b"1-2", {b"other": b"x"}),
        (b"1-3", {b"__data__": json.dumps({"id": 5}).encode()}),
    ]
    assert announced_ids(entries) == [7, 5]
    assert announced_ids([]) == []


def test_merge_of_history_and_live_drops_what_was_already_sent() -> None:
    history = [_frame(3), _frame(5), _frame(8)]
    sent, last = fresh(history, Cursor({0: 4}))
    assert _seqs(sent) == [5, 8] and last == Cursor({0: 8})
    live = [_frame(7), _frame(8), _frame(9), _frame(12)]  # overlaps history
    more, last = fresh(live, last)
    assert _seqs(more) == [9, 12] and last == Cursor({0: 12})
    nothing, same = fresh([], last)
    assert nothing == [] and same == Cursor({0: 12})


def test_the_merge_keeps_each_partition_apart() -> None:
    """A number sent in one partition says nothing of another's."""
    frames = [_frame(2, part=1), _frame(9, part=0), _frame(3, part=1), _frame(1, part=2)]
    sent, last = fresh(frames, Cursor({0: 9, 1: 2}))
    assert [(f.id % 1024, f.id // 1024) for f in sent] == [(1, 3), (2, 1)]
    assert last == Cursor({0: 9, 1: 3, 2: 1})


def test_a_full_buffer_marks_the_subscriber_to_resync_and_drops_its_buffer() -> None:
    sub = Subscription(_filter(), limit=2)
    assert not sub.push(_frame(1)) and not sub.push(_frame(2))
    assert not sub.overflowed and _seqs(list(sub.buffer)) == [1, 2]
    assert sub.push(_frame(3))
    assert sub.overflowed and not sub.buffer and sub.wake.is_set()
    assert not sub.push(_frame(4))  # ignored once overflowed
    assert not sub.buffer


def _sized(i: int, size: int) -> Frame:
    return Frame(i, "s", "a", b"x" * size)


def test_a_buffer_is_bounded_in_bytes_whatever_the_number_of_frames() -> None:
    sub = Subscription(_filter(), limit=1000, limit_bytes=1000)
    assert not sub.push(_sized(1, 400)) and not sub.push(_sized(2, 600))
    assert sub.size == 1000 and not sub.overflowed
    assert sub.push(_sized(3, 1))  # one byte past the bound: resync
    assert sub.overflowed and not sub.buffer and sub.size == 0


def test_take_hands_out_at_most_a_chunk_and_keeps_the_rest_counted() -> None:
    sub = Subscription(_filter(), limit=1000, limit_bytes=10_000)
    for i in range(1, 6):
        sub.push(_sized(i, 300))
    taken = sub.take(max_bytes=700)
    assert [f.id for f in taken] == [1, 2]
    assert [f.id for f in sub.buffer] == [3, 4, 5] and sub.size == 900
    big = Subscription(_filter(), limit=10, limit_bytes=10_000)
    big.push(_sized(9, 5000))
    assert [f.id for f in big.take(max_bytes=700)] == [9]  # a frame larger than a chunk goes alone
    assert big.size == 0


def test_chunks_join_frames_into_writes_of_bounded_size_in_order() -> None:
    frames = [_sized(i, 300) for i in range(1, 6)] + [_sized(6, 2000)]
    out = list(chunks(frames, max_bytes=700))
    assert [len(c) for c in out] == [600, 600, 300, 2000]
    assert b"".join(out) == b"".join(f.data for f in frames)


def test_publish_hands_each_frame_to_matching_subscribers_and_advances_the_position() -> None:
    fanout = Fanout(engine=None, redis=None)  # type: ignore[arg-type]
    fanout.position = Cursor({0: 10, 1: 4})
    one = fanout.subscribe(_filter(("s1",)))
    other = fanout.subscribe(_filter(("s2",)))
    assert one.anchor == other.anchor == Cursor({0: 10, 1: 4})
    fanout.publish([_frame(11, "s1"), _frame(5, "s2", part=1), _frame(12, "s1")])
    assert _seqs(list(one.buffer)) == [11, 12]
    assert _seqs(list(other.buffer)) == [5]
    assert fanout.position == Cursor({0: 12, 1: 5})
    late = fanout.subscribe(_filter(("s1",)))
    assert late.anchor == Cursor({0: 12, 1: 5}) and not late.buffer  # the rest is history
    fanout.unsubscribe(one)
    fanout.publish([_frame(13, "s1")])
    assert _seqs(list(one.buffer)) == [11, 12]
    assert _seqs(list(late.buffer)) == [13]


def test_reanchoring_clears_the_overflow_and_moves_the_anchor_to_the_present() -> None:
    fanout = Fanout(engine=None, redis=None, buffer=1)  # type: ignore[arg-type]
    sub = fanout.subscribe(_filter())
    fanout.publish([_frame(1), _frame(2)])
    assert sub.overflowed
    fanout.reanchor(sub)
    assert not sub.overflowed and sub.anchor == Cursor({0: 2}) and not sub.buffer


def test_a_resync_names_the_cursor_to_resume_from() -> None:
    resync = resync_frame(Cursor({0: 41, 3: 2})).decode()
    assert "event: resync\r\n" in resync and "id: p0.41_3.2\r\n" in resync
    data = next(line[6:] for line in resync.split("\r\n") if line.startswith("data: "))
    assert parse_token(json.loads(data)["resume_from"]) == Cursor({0: 41, 3: 2})


def _row(result: dict[str, Any], **overrides: Any) -> Any:
    from types import SimpleNamespace

    fields = dict(
        id=version_id(1, 9),
        subject="s/1",
        attribute="killed",
        version=3,
        result=json.dumps(result),
        diff=json.dumps({"best": [1, 2]}),
        pub_from="2025-01-01T00:00:00Z",
        pub_to="9999-12-31T23:59:59.999999Z",
        rec_from="2025-01-02T00:00:00Z",
        rec_to="9999-12-31T23:59:59.999999Z",
        cause_event_id="ev-1",
        cause_report_id=None,
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


@pytest.mark.parametrize(
    "result",
    [
        {},
        {
            "low": 1,
            "best": 2.5,
            "high": 4,
            "conservative": 1,
            "value_text": "about 2,500",
            "unit": "persons",
            "kind": "count",
            "status": "contested",
            "support": ["c1", "c2"],
            "dissent": ["c3"],
            "excluded": [],
            "exclusions": {"c4": "retracted"},
            "explanation": "Two of three \u00e9 sources",
            "segments": [{"from": "2025-01-01"}],
            "clusters": [["c1", "c2"]],
            "weights": {"c1": 0.5},
            "constraints": [],
            "method": "weighted-median",
            "method_version": 2,
            "extra": {"ignored": True},
        },
    ],
)
def test_a_frame_from_a_stored_row_carries_exactly_the_version_view(
    result: dict[str, Any],
) -> None:
    from services.query.stream import render_row
    from services.query.views import MAX_TIME, version_view

    row = _row(result, pub_to=MAX_TIME, rec_to=MAX_TIME)
    frame = render_row(row, "p0.3_1.9")
    text = frame.data.decode()
    data = next(line[6:] for line in text.split("\r\n") if line.startswith("data: "))
    assert json.loads(data) == json.loads(json.dumps(version_view(row)))
    assert json.loads(data)["position"] == "p1.9"  # the row (_row): partition 1, number 9
    assert text.startswith("id: p0.3_1.9\r\nevent: consensus\r\n")
    assert text.endswith("\r\n\r\n")
    assert (frame.id, frame.subject, frame.attribute) == (version_id(1, 9), "s/1", "killed")
    assert "id:" not in render_row(row, None).data.decode()  # a snapshot frame
