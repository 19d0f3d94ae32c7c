"""A :batch body is read by msgspec where it reads JSON as json.loads does, and by json.loads
where it does not (services.ingest.api._batch_items, issue #21): every body must give the
items json.loads gives (types, NaN, huge numbers, lone surrogates, duplicate keys) or the same
422 naming json's error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.infra.http import Problem
from services.ingest.api import _batch_items

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN and infinities: json.dumps writes NaN, Infinity
    st.text(st.characters(), max_size=10),  # surrogates too: json writes \\ud800
)
value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=15,
)


def same(a: Any, b: Any) -> bool:
    """Equal, types included, NaN equal to NaN."""
    return json.dumps(a) == json.dumps(b) and repr(a) == repr(b)


def old_batch_items(raw: bytes) -> Any:
    """What _batch_items answered when json.loads read every body (the oracle): the items,
    or the problem's status and errors."""
    try:
        return _batch_items_by_json(raw)
    except Problem as exc:
        return (exc.status, exc.errors)


def _batch_items_by_json(raw: bytes) -> Any:
    import services.ingest.api as api

    saved = api._loads
    api._loads = json.loads
    try:
        return _batch_items(raw)
    finally:
        api._loads = saved


def new_batch_items(raw: bytes) -> Any:
    try:
        return _batch_items(raw)
    except Problem as exc:
        return (exc.status, exc.errors)


@settings(max_examples=1500, deadline=None)
@given(st.lists(value, min_size=0, max_size=5))
def test_items_are_what_json_loads_reads(items: list[Any]) -> None:
    array = json.dumps(items).encode()
    assert same(new_batch_items(array), old_batch_items(array))
    ndjson = "\n".join(json.dumps(i) for i in items).encode()
    assert same(new_batch_items(ndjson), old_batch_items(ndjson))


@pytest.mark.parametrize(
    "body",
    [
        b"[1e400]",
        b'["\\ud800"]',
        b"[NaN, -Infinity]",
        b'[{"a": 1, "a": 2}]',
        b"[18446744073709551616]",
        b'{"a": 1}\n{"b": NaN}',
        b'[{"a": 1,}]',
        b"[" * 5000 + b"]" * 5000,
        b"\xff[]",
    ],
)
def test_what_msgspec_refuses_json_reads_or_refuses_as_before(body: bytes) -> None:
    assert same(new_batch_items(body), old_batch_items(body))
