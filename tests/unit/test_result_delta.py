"""Stored versions hold deltas (shared.codec.result_delta): applying one to the version
before gives back exactly the result, whatever changed, and a typical change is small."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codec import apply_result_delta, result_delta

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
