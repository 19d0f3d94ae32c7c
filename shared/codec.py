"""Plain-data <-> JSON-compatible dicts for the domain dataclasses.

Events and stored versions carry these dicts; numbers keep their exact type
(ints stay ints), so a value comes back exactly as it was claimed.
"""

from __future__ import annotations

import functools
import operator
import sys
from dataclasses import fields
from datetime import date, datetime
from typing import Any

import msgspec

from shared.model import (
    ClaimFacts,
    Cluster,
    ConsensusResult,
    Segment,
    ValidTime,
    Value,
)
from shared.timeaxes import iso, parse_iso

_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.lru_cache(maxsize=1024)
def _iso(moment: datetime) -> str:
    # the claims of one report share their publication time: formatted once
    return iso(moment)


def _jsonable(obj: Any) -> Any:
    if type(obj) in _PLAIN:  # most fields: one set lookup instead of five isinstance calls
        return obj
    if isinstance(obj, datetime):
        return _iso(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


# Field by field rather than dataclasses.asdict, which deep-copies every value: these run
# for every claim ingest accepts and every claim the reconciler loads.
_VALUE_FIELDS = tuple(f.name for f in fields(Value))
_VALUE_NAMES = frozenset(_VALUE_FIELDS)
_VALUE_KEEP = {"low", "best", "high"}
_CLAIM_FIELDS = tuple(f.name for f in fields(ClaimFacts))
_CLAIM_NAMES = frozenset(_CLAIM_FIELDS)


def value_to_dict(value: Value) -> dict[str, Any]:
    out = {}
    for name in _VALUE_FIELDS:
        v = getattr(value, name)
        if v not in (None, False) or name in _VALUE_KEEP:
            out[name] = v
    return out


# Strings that repeat across claims (a report's id and subject, a source, the rule that
# read the value). A decoder makes a new copy of each for every claim; the reconciler
# keeps hundreds of thousands of claims, so these copies were about a quarter of its
# memory per claim (bench/RESULTS.md). sys.intern shares one copy, freed with its last user.
_SHARED_CLAIM_TEXT = frozenset(
    {
        "report_id",
        "subject",
        "attribute",
        "source_id",
        "attributed_to",
        "source_kind",
        "source_reliability",
        "modality",
        "rank",
    }
)
_SHARED_VALUE_TEXT = frozenset({"hedge", "rule", "unit", "text", "relative_to"})


def _fields_of(
    data: dict[str, Any], allowed: frozenset[str], shared: frozenset[str]
) -> dict[str, Any]:
    """The known fields of `data`, in one pass, with the repeated text interned."""
    return {
        k: sys.intern(v) if k in shared and type(v) is str else v
        for k, v in data.items()
        if k in allowed
    }


def value_from_dict(data: dict[str, Any]) -> Value:
    return Value(**_fields_of(data, _VALUE_NAMES, _SHARED_VALUE_TEXT))


def valid_time_from_dict(data: dict[str, Any] | None) -> ValidTime | None:
    if data is None:
        return None
    return ValidTime(
        start=date.fromisoformat(data["start"]) if data.get("start") else None,
        end=date.fromisoformat(data["end"]) if data.get("end") else None,
        precision=data.get("precision", "open"),
        raw=data.get("raw"),
    )


_CLAIM_VALUES = operator.attrgetter(*_CLAIM_FIELDS)


def claim_to_dict(claim: ClaimFacts) -> dict[str, Any]:
    # every field read in one C call; only the few non-scalar ones converted (ingest
    # builds one of these per claim it accepts: 6 -> 2 us)
    out: dict[str, Any] = dict(zip(_CLAIM_FIELDS, _CLAIM_VALUES(claim), strict=True))
    for name, v in out.items():
        if type(v) not in _PLAIN:
            out[name] = _jsonable(v)
    out["value"] = value_to_dict(claim.value)
    vt = claim.valid_time
    if vt is not None:
        out["valid_time"] = {
            "start": _jsonable(vt.start),
            "end": _jsonable(vt.end),
            "precision": vt.precision,
            "raw": vt.raw,
        }
    return out


def claim_from_dict(data: dict[str, Any]) -> ClaimFacts:
    kwargs = _fields_of(data, _CLAIM_NAMES, _SHARED_CLAIM_TEXT)
    kwargs["value"] = value_from_dict(data["value"])
    kwargs["valid_time"] = valid_time_from_dict(data.get("valid_time"))
    kwargs["published_at"] = parse_iso(data["published_at"])
    kwargs["cites"] = tuple(data.get("cites") or ())
    kwargs["notes"] = tuple(data.get("notes") or ())
    return ClaimFacts(**kwargs)


_RESULT_FIELDS = tuple(f.name for f in fields(ConsensusResult))
_CLUSTER_FIELDS = tuple(f.name for f in fields(Cluster))
_SEGMENT_FIELDS = tuple(f.name for f in fields(Segment))
_CLUSTER_TUPLES = tuple(
    f.name for f in fields(Cluster) if str(f.type).startswith(("tuple", "typing.Tuple"))
)


def result_to_dict(result: ConsensusResult) -> dict[str, Any]:
    # field by field rather than dataclasses.asdict: this runs for every version the
    # reconciler computes, and asdict deep-copies
    out: dict[str, Any] = {name: getattr(result, name) for name in _RESULT_FIELDS}
    for name in ("support", "dissent", "excluded", "constraints"):
        out[name] = list(out[name])
    out["clusters"] = [_cluster_dict(c) for c in result.clusters]
    out["weights"] = dict(result.weights)
    out["exclusions"] = dict(result.exclusions)
    out["notes"] = dict(result.notes)
    out["segments"] = [_segment_dict(s) for s in result.segments]
    return out


_CLUSTER_VALUES = operator.attrgetter(*_CLUSTER_FIELDS)


def _cluster_dict(cluster: Cluster) -> dict[str, Any]:
    # every field read in one C call; then the tuples made lists (claim_ids, by the type)
    out: dict[str, Any] = dict(zip(_CLUSTER_FIELDS, _CLUSTER_VALUES(cluster), strict=True))
    for name in _CLUSTER_TUPLES:
        out[name] = list(out[name])
    return out


_SORTED_RESULT_FIELDS = tuple(sorted(_RESULT_FIELDS))
_SORTED_RESULT_VALUES = operator.attrgetter(*_SORTED_RESULT_FIELDS)
# tuples of pairs that result_to_dict writes as objects
_PAIRS_AT = tuple(
    i for i, name in enumerate(_SORTED_RESULT_FIELDS) if name in ("weights", "exclusions", "notes")
)


def result_fields(result: ConsensusResult) -> dict[str, bytes]:
    """`encode_fields(result_to_dict(result))` without the dict: the encoder writes the
    clusters and segments (dataclasses, fields sorted; tuples as arrays, dates ISO) as
    result_to_dict would have them; only the pairs become objects first."""
    values = list(_SORTED_RESULT_VALUES(result))
    for i in _PAIRS_AT:
        values[i] = dict(values[i])
    return dict(zip(_SORTED_RESULT_FIELDS, map(_encode, values), strict=True))


def _segment_dict(segment: Segment) -> dict[str, Any]:
    out = {name: getattr(segment, name) for name in _SEGMENT_FIELDS}
    out["support"], out["dissent"] = list(segment.support), list(segment.dissent)
    for name in ("valid_from", "valid_to"):
        if out[name] is not None:
            out[name] = out[name].isoformat()
    return out


def result_from_dict(data: dict[str, Any]) -> ConsensusResult:
    """Inverse of result_to_dict (for comparing a recomputed result with a stored one)."""
    names = {f.name for f in fields(ConsensusResult)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for key in ("support", "dissent", "excluded", "constraints"):
        kwargs[key] = tuple(kwargs.get(key) or ())
    kwargs["clusters"] = tuple(
        Cluster(**{**c, "claim_ids": tuple(c["claim_ids"])}) for c in data.get("clusters", ())
    )
    kwargs["weights"] = tuple(data.get("weights", {}).items())
    kwargs["exclusions"] = tuple(data.get("exclusions", {}).items())
    kwargs["notes"] = tuple(data.get("notes", {}).items())
    kwargs["segments"] = tuple(
        Segment(
            **{
                **s,
                "valid_from": date.fromisoformat(s["valid_from"]) if s.get("valid_from") else None,
                "valid_to": date.fromisoformat(s["valid_to"]) if s.get("valid_to") else None,
                "support": tuple(s["support"]),
                "dissent": tuple(s["dissent"]),
            }
        )
        for s in data.get("segments", ())
    )
    return ConsensusResult(**kwargs)


# -- result deltas: a stored version holds what changed since the key's previous version --
#
# A delta maps each changed key of a dict to [tag, payload]: "=" the new value, "-" removed,
# "d" a nested dict delta, "l" a list delta [prefix, suffix, middle]: the new list keeps the
# old one's first `prefix` and last `suffix` items, and in between either ["r", items] (new
# items) or ["p", [delta or null per item]] (as many items, each changed in place). A claim
# added to a key's support, weights and cluster is then a few dozen bytes, not the result.


_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.decode


def encode_fields(result: dict[str, Any]) -> dict[str, bytes]:
    """Each top-level field's JSON, in key order: `join_fields` of it is the result's JSON
    (`Encoder(order="sorted")`), so a result is encoded once for its digest, its parts, its
    stored text and its delta (`result_delta(..., old_fields, new_fields)`)."""
    keys = sorted(result)
    # map, not a comprehension: no bytecode per field (this runs for every version)
    return dict(zip(keys, map(_encode, map(result.__getitem__, keys)), strict=True))


def join_fields(encoded: dict[str, bytes]) -> bytes:
    """The JSON object of fields encoded by `encode_fields` (sorted keys, no spaces), byte
    for byte what the sorted encoder writes for the whole dict."""
    return b"{" + b",".join(map(bytes.__add__, map(_key_json, encoded), encoded.values())) + b"}"


@functools.lru_cache(maxsize=256)
def _key_json(key: str) -> bytes:
    return _encode(key) + b":"


def result_delta(
    old: dict[str, Any],
    new: dict[str, Any],
    old_fields: dict[str, bytes] | None = None,
    new_fields: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """What turns `old` into `new` (`apply_result_delta(old, delta) == new`).

    `old_fields`, `new_fields`: their `encode_fields`, when known: a top-level field is
    then compared by its JSON text (equal JSON text is what `_same` decides) instead of
    being encoded again."""
    out: dict[str, Any] = {}
    known = old_fields is not None and new_fields is not None
    for key, value in new.items():
        if key not in old:
            out[key] = ["=", value]
        elif known:
            if old_fields[key] != new_fields[key]:  # type: ignore[index]
                out[key] = _value_delta(old[key], value)
        elif not _same(old[key], value):
            out[key] = _value_delta(old[key], value)
    for key in old:
        if key not in new:
            out[key] = ["-"]
    return out


def fields_delta(old_fields: dict[str, bytes], new_fields: dict[str, bytes]) -> dict[str, Any]:
    """`result_delta(old, new, old_fields, new_fields)` from the two results' encoded fields
    alone (`encode_fields`): only the fields that changed are decoded, so a caller keeps
    the bytes of its last result, not the result."""
    out: dict[str, Any] = {}
    for key, encoded in new_fields.items():
        before = old_fields.get(key)
        if before is None:
            out[key] = ["=", _decode(encoded)]
        elif before != encoded:
            out[key] = _value_delta(_decode(before), _decode(encoded))
    for key in old_fields:
        if key not in new_fields:
            out[key] = ["-"]
    return out


def apply_result_delta(old: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, change in delta.items():
        if change[0] == "-":
            out.pop(key, None)
        else:
            out[key] = _apply_value(old.get(key), change)
    return out


def _value_delta(old: Any, new: Any) -> list[Any]:
    if isinstance(old, dict) and isinstance(new, dict):
        return ["d", result_delta(old, new)]
    if isinstance(old, list) and isinstance(new, list):
        return ["l", _list_delta(old, new)]
    return ["=", new]


def _apply_value(old: Any, change: list[Any]) -> Any:
    tag, payload = change
    if tag == "d":
        return apply_result_delta(old, payload)
    if tag == "l":
        prefix, suffix, (how, middle) = payload
        if how == "s":
            middle = [
                item
                for part in middle
                for item in (old[part[0] : part[1]] if isinstance(part, list) else (part,))
            ]
        elif how == "p":
            mid = old[prefix : len(old) - suffix]
            middle = [
                m if c is None else _apply_value(m, c) for m, c in zip(mid, middle, strict=True)
            ]
        return [*old[:prefix], *middle, *old[len(old) - suffix :]]
    return payload


def _list_delta(old: list[Any], new: list[Any]) -> list[Any]:
    """Common prefix and suffix kept; the middle replaced, or changed item by item when it
    has as many items on both sides and they are containers (a cluster that grew).

    A container item is compared by its JSON text (what `_same` decides for one: their
    == never holds where the text differs, JSON having no NaN), encoded once here, where
    the prefix, the suffix and the middle each encoded it again."""
    texts: dict[tuple[int, int], bytes] = {}

    def same(i: int, j: int) -> bool:
        a, b = old[i], new[j]
        kind = type(a)
        if kind is not type(b):
            return False
        if kind is dict or kind is list:
            x = texts.get((0, i))
            if x is None:
                x = texts[(0, i)] = _encode(a)
            y = texts.get((1, j))
            if y is None:
                y = texts[(1, j)] = _encode(b)
            return x == y
        return _same(a, b)

    n_old, n_new = len(old), len(new)
    limit = min(n_old, n_new)
    prefix = 0
    while prefix < limit and same(prefix, prefix):
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and same(n_old - 1 - suffix, n_new - 1 - suffix):
        suffix += 1
    was, now = old[prefix : n_old - suffix], new[prefix : n_new - suffix]
    if was and len(was) == len(now):
        kept = [same(prefix + k, prefix + k) for k in range(len(was))]
        if all(
            kept[k]
            or (isinstance(a, dict) and isinstance(b, dict))
            or (isinstance(a, list) and isinstance(b, list))
            for k, (a, b) in enumerate(zip(was, now, strict=True))
        ):
            return [
                prefix,
                suffix,
                [
                    "p",
                    [
                        None if kept[k] else _value_delta(a, b)
                        for k, (a, b) in enumerate(zip(was, now, strict=True))
                    ],
                ],
            ]
    if was and now and all(isinstance(v, str) for v in now):
        return [prefix, suffix, ["s", _runs(old, now)]]
    return [prefix, suffix, ["r", now]]


def _runs(old: list[Any], now: list[Any]) -> list[Any]:
    """`now` as runs of `old` ([start, end]: old[start:end]) and single new items: a claim
    moved from one end of a list to the other is two short runs, not the items between."""
    where: dict[Any, int] = {}
    for n, v in enumerate(old):
        if isinstance(v, str):
            where.setdefault(v, n)
    out: list[Any] = []
    j = 0
    while j < len(now):
        i = where.get(now[j])
        if i is None or old[i] != now[j]:
            out.append(now[j])
            j += 1
            continue
        k = 1
        while j + k < len(now) and i + k < len(old) and old[i + k] == now[j + k]:
            k += 1
        out.append([i, i + k])
        j += k
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: Python's == takes 1 for 1.0 and for true, and 0.0 for -0.0, which
    JSON keeps apart."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is str or kind is int:  # most items (claim ids, figures): == is JSON equality
        return a == b
    if kind is float:  # equal floats print alike, but for the zeros (0.0 == -0.0)
        return a == b and (a != 0.0 or repr(a) == repr(b))
    if a != b:
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, dict | list):  # == held, but nested values may differ in type
        return _encode(a) == _encode(b)
    return True
