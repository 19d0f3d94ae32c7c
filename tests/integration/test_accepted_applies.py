"""Whatever ingest accepts, the reconciler applies (issue #24, item 2).

A report that passed validation and then failed in the reconciler sat in retries, reached
the dead-letter stream, stayed `applied: false` for ever and held the watermark back. Here
hypothesis generates report bodies (times at the edges of the calendar, with offsets;
numbers of every size; valid-time phrases; hedges), keeps those ingest's validation
accepts, and applies their events with the real reconciler on SQLite: none may fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from services.infra.db import create_schema, make_engine
from services.infra.http import Problem
from services.infra.keys import KeyChecker
from services.ingest.api import (
    CorrectionTarget,
    IngestContext,
    correction_event,
    prepare_report,
)
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.events import CLAIM_ASSESSED, CLAIM_RETRACTED, SOURCE_RATED, event_from_json
from shared.reports import ReportIn

REGISTRY = AttributeRegistry.from_toml(
    """
[attributes.killed]
kind = "cumulative"
unit = "person"
[attributes.personnel_deployed]
kind = "stock"
unit = "person"
[attributes.additional_deployment]
kind = "delta"
unit = "person"
[attributes.temperature]
kind = "measure"
unit = "C"
[attributes.commander]
kind = "categorical"
"""
)

YEARS = st.sampled_from(["0001", "0999", "1000", "1969", "2024", "2025", "9998", "9999"])
DAYS = st.sampled_from(["01-01", "02-29", "06-01", "12-31"])
OFFSETS = st.sampled_from(["", "Z", "+14:00", "-14:00", "+05:30", "-0000"])


@st.composite
def instants(draw: st.DrawFn) -> str:
    year, day = draw(YEARS), draw(DAYS)
    shape = draw(st.sampled_from(["year", "month", "day", "time"]))
    if shape == "year":
        return year
    if shape == "month":
        return f"{year}-{day[:2]}"
    if shape == "day":
        return f"{year}-{day}"
    clock = draw(st.sampled_from(["00:00", "00:00:00", "23:59:59", "23:59:59.999999", "12:30"]))
    return f"{year}-{day}T{clock}{draw(OFFSETS)}"


PHRASES = st.sampled_from(
    [
        "{y}",
        "late {y}",
        "winter {y}",
        "Q4 {y}",
        "second half of {y}",
        "since {y}",
        "after {y}",
        "before {y}",
        "until {y}",
        "December {y}",
        "late December {y}",
        "31 December {y}",
        "November to February {y}",
        "{y}-12/..",
        "../{y}-01",
        "yesterday",
        "last week",
        "last month",
        "this year",
    ]
)


@st.composite
def valid_times(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["phrase", "instant", "mapping", "none"]))
    if kind == "none":
        return None
    if kind == "instant":
        return draw(instants())
    if kind == "mapping":
        return {"start": draw(instants()), "end": draw(st.none() | instants())}
    return draw(PHRASES).format(y=draw(YEARS))


NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([0, 1, 10**18, 10**18 + 1, -(10**18), 2**63, 2**64, int("9" * 400)])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e-300, max_value=1e-300, allow_nan=False)
)
TEXT_NUMBERS = st.sampled_from(
    ["about 12,000", "up to 5 million", "9" * 40, "0." + "0" * 40 + "1", "1e18", "over 3 billion"]
)


@st.composite
def values(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["number", "bounds", "text"]))
    if kind == "number":
        hedge = draw(st.none() | st.sampled_from(["exact", "approximately", "up_to", "over"]))
        return {"value": draw(NUMBERS), **({"hedge": hedge} if hedge else {})}
    if kind == "bounds":
        keys = draw(st.sets(st.sampled_from(["low", "best", "high"]), min_size=1))
        return {"value": {k: draw(NUMBERS) for k in sorted(keys)}}
    return {"value": draw(TEXT_NUMBERS)}


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    attribute = draw(st.sampled_from(["killed", "personnel_deployed", "temperature", "other"]))
    out: dict[str, Any] = {"subject": draw(st.sampled_from(["a", "b"])), "attribute": attribute}
    if draw(st.booleans()):
        out.update(attribute="commander", value=draw(st.sampled_from(["Kim", "Ri"])))
    else:
        out.update(draw(values()))
    vt = draw(valid_times())
    if vt is not None:
        out["valid_time"] = vt
    return out


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "source": {"id": draw(st.sampled_from(["s1", "s2", "s3"])), "kind": "news"},
        "published_at": draw(instants()),
        "claims": draw(st.lists(claims(), min_size=1, max_size=3)),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Reconciler]]:
    path: Path = tmp_path_factory.mktemp("accepted") / "claimledger.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    yield engine, Reconciler(REGISTRY)
    engine.dispose()


def _accepted(engine: Engine, body: dict[str, Any]) -> list[Any] | None:
    """The events ingest would store for `body`, or None when ingest refuses it."""
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=2, tolerance=0.1)
    try:
        return prepare_report(ReportIn.model_validate(body), ctx, None).events
    except (ValidationError, Problem):
        return None


def _apply(store: tuple[Engine, Reconciler], events: list[Any]) -> None:
    engine, reconciler = store
    # through JSON, as the reconciler receives them from the stream
    reconciler.apply(engine, [event_from_json(e.to_json()) for e in events])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=reports())
def test_every_accepted_report_applies(
    store: tuple[Engine, Reconciler], body: dict[str, Any]
) -> None:
    events = _accepted(store[0], body)
    assume(events is not None)
    assert events is not None
    _apply(store, events)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=reports(),
    kind=st.sampled_from([CLAIM_RETRACTED, CLAIM_ASSESSED, SOURCE_RATED]),
    effective_at=st.none() | instants(),
)
def test_every_accepted_correction_applies(
    store: tuple[Engine, Reconciler], body: dict[str, Any], kind: str, effective_at: str | None
) -> None:
    events = _accepted(store[0], body)
    assume(events is not None)
    assert events is not None
    _apply(store, events)
    claim = events[1].payload.claim
    target = CorrectionTarget(
        claim["claim_id"], claim["subject"], claim["attribute"], claim["report_id"]
    )
    data: dict[str, Any] = {"reason": "checked"}
    if kind == CLAIM_ASSESSED:
        data["rank"] = "deprecated"
    if kind == SOURCE_RATED:
        target = CorrectionTarget(claim["source_id"], claim["source_id"], None, None)
        data = {"reliability": "E", "rationale": "checked"}
    try:
        event, _ = correction_event(kind, target, data, effective_at, partitions=2)
    except Problem:
        return  # refused at the door: a 422
    _apply(store, [event])
