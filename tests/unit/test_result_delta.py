"""Stored versions hold deltas (shared.codec.result_delta): applying one to the version
before gives back exactly the result, whatever changed, and a typical change is small."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codec import (
    apply_result_delta,
    encode_fields,
    fields_delta,
    join_fields,
    result_delta,
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2), st.sampled_from("abcxyz")
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from("abcde"), inner),
    max_leaves=25,
)
results = st.dictionaries(st.sampled_from(["support", "weights", "best", "clusters"]), values)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@given(results, results)
def test_a_delta_applied_to_the_old_result_gives_the_new_one_exactly(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    delta = json.loads(json.dumps(result_delta(old, new)))  # as stored
    assert _json(apply_result_delta(old, delta)) == _json(new)  # true and 1 stay apart


@settings(max_examples=300)
@given(st.lists(scalars, max_size=8), st.lists(scalars, max_size=8))
def test_lists_of_mixed_values_come_back_exactly(old: list[Any], new: list[Any]) -> None:
    delta = json.loads(json.dumps(result_delta({"l": old}, {"l": new})))
    assert _json(apply_result_delta({"l": old}, delta)) == _json({"l": new})


def test_a_claim_added_to_a_large_result_is_a_small_delta() -> None:
    ids = [f"c_{i:026d}" for i in range(2000)]
    old = {"support": ids, "weights": dict.fromkeys(ids, 0.5), "clusters": [{"claim_ids": ids}]}
    moved = [*ids[:700], *ids[701:], ids[700]]  # one id moved to the end, one added
    new = {
        "support": [*moved, "c_new"],
        "weights": {**old["weights"], "c_new": 0.25},
        "clusters": [{"claim_ids": [*ids, "c_new"]}],
    }
    delta = json.dumps(result_delta(old, new))
    assert len(delta) < 400 < len(json.dumps(new)) / 100
    assert apply_result_delta(old, json.loads(delta)) == new


def test_a_zero_that_changes_sign_comes_back_with_its_sign() -> None:
    """-0.0 == 0.0 in Python, but not as JSON text: a delta must not keep the old one."""
    delta = json.loads(json.dumps(result_delta({"l": [0.0], "x": 0.0}, {"l": [-0.0], "x": -0.0})))
    assert _json(apply_result_delta({"l": [0.0], "x": 0.0}, delta)) == '{"l": [-0.0], "x": -0.0}'


@given(results)
def test_a_result_encoded_field_by_field_is_its_json_byte_for_byte(result: dict[str, Any]) -> None:
    """The reconciler encodes each field once and joins them (digest, stored text): the
    join must be what the sorted encoder writes for the whole result, or digests move."""
    whole = msgspec.json.Encoder(order="sorted").encode(result)
    assert join_fields(encode_fields(result)) == whole


@given(results, results)
def test_a_delta_from_encoded_fields_is_the_same_delta(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Fields compared by their JSON text give the delta `_same` gives (stored rows and
    the projection hash do not change); results as stored, i.e. read back from JSON."""
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    fast = result_delta(old, new, encode_fields(old), encode_fields(new))
    assert json.dumps(fast, sort_keys=True) == json.dumps(result_delta(old, new), sort_keys=True)


@given(results, results)
def test_a_delta_from_the_encoded_fields_alone_is_the_same_delta(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """The reconciler keeps its head version as encoded fields only (not the decoded
    result): the delta it stores from them is the delta of the decoded results, byte for
    byte as stored."""
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    stored = msgspec.json.Encoder(order="sorted").encode
    fast = fields_delta(encode_fields(old), encode_fields(new))
    assert stored(fast) == stored(result_delta(old, new))


def _reference_list_delta(old: list[Any], new: list[Any]) -> list[Any]:
    """The list delta as first written (before container items were encoded once): the
    stored bytes of every delta must stay these, or replay of an existing log differs."""
    from shared.codec import _runs, _same, _value_delta

    def nestable(a: Any, b: Any) -> bool:
        return (
            _same(a, b)
            or (isinstance(a, dict) and isinstance(b, dict))
            or (isinstance(a, list) and isinstance(b, list))
        )

    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and _same(old[prefix], new[prefix]):
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and _same(old[len(old) - 1 - suffix], new[len(new) - 1 - suffix]):
        suffix += 1
    was, now = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    if was and len(was) == len(now) and all(nestable(a, b) for a, b in zip(was, now, strict=True)):
        pairs = zip(was, now, strict=True)
        return [
            prefix,
            suffix,
            ["p", [None if _same(a, b) else _value_delta(a, b) for a, b in pairs]],
        ]
    if was and now and all(isinstance(v, str) for v in now):
        return [prefix, suffix, ["s", _runs(old, now)]]
    return [prefix, suffix, ["r", now]]


items = st.one_of(scalars, st.dictionaries(st.sampled_from("ab"), scalars, max_size=2))


@settings(max_examples=400)
@given(st.lists(items, max_size=7), st.lists(items, max_size=7), st.data())
def test_a_list_delta_is_the_one_first_stored(
    old: list[Any], new: list[Any], data: st.DataObject
) -> None:
    """Lists of clusters (dicts) that shift, grow and change in place: the same delta, as
    stored, as the first implementation's."""
    from shared.codec import _list_delta

    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    if old and data.draw(st.booleans()):  # often: the new list is the old one edited
        new = [*old[: len(old) // 2], *new, *old[len(old) // 2 :]]
    stored = msgspec.json.Encoder(order="sorted").encode
    assert stored(_list_delta(old, new)) == stored(_reference_list_delta(old, new))
