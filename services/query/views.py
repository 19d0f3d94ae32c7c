"""Query's SQL reads: indexed lookups over the bitemporal versions table (no replay)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.engine import Engine

from services.infra.db import read_snapshot
from services.infra.tables import (
    ClaimRow,
    EventRow,
    KeyRow,
    OutboxRow,
    PartitionFence,
    ReportRow,
    VersionRow,
)
from shared.codec import apply_result_delta
from shared.positions import Cursor, position_of, version_id
from shared.timeaxes import MAX_TIME, public_time

_decode = msgspec.json.decode  # ~3x json.loads; snapshots decode thousands of versions
_encode = msgspec.json.Encoder(order="sorted").encode  # as the reconciler stores results


class _Traced(msgspec.Struct):
    trace_id: str | None = None


_decode_trace = msgspec.json.Decoder(_Traced).decode  # reads one field, skips the payload
versions = VersionRow.__table__  # type: ignore[attr-defined]
keys = KeyRow.__table__  # type: ignore[attr-defined]
claims = ClaimRow.__table__  # type: ignore[attr-defined]
outbox = OutboxRow.__table__  # type: ignore[attr-defined]
reports = ReportRow.__table__  # type: ignore[attr-defined]
events = EventRow.__table__  # type: ignore[attr-defined]
fences = PartitionFence.__table__  # type: ignore[attr-defined]


def watermark(engine: Engine) -> int:
    """Largest outbox seq S such that every event with seq <= S is applied (or dead).

    Tokens are these numbers: a write's token is its last seq, and a read whose
    token is >= it includes that write.

    One statement, so one snapshot: read as two, a write committing in between made the
    second read (max seq) pass events the first (oldest pending) had not seen.
    """
    oldest_pending = select(func.min(outbox.c.seq) - 1).where(outbox.c.state == 0)
    newest = select(func.max(outbox.c.seq))
    mark = select(func.coalesce(oldest_pending.scalar_subquery(), newest.scalar_subquery(), 0))
    with engine.connect() as conn:
        return int(conn.execute(mark).scalar_one())


def _visible(table: Any, recorded_as_of: str | None) -> Any:
    if recorded_as_of is None:
        return table.c.rec_to == MAX_TIME
    return and_(table.c.rec_from <= recorded_as_of, table.c.rec_to > recorded_as_of)


def _covers(table: Any, as_of: str | None) -> Any:
    if as_of is None:
        return table.c.pub_to == MAX_TIME
    return and_(table.c.pub_from <= as_of, table.c.pub_to > as_of)


def _answers(
    conn: Any,
    as_of: str | None,
    recorded_as_of: str | None,
    *,
    limit: int,
    after: tuple[str, str] | None = None,
    subject: str | None = None,
    subjects_: Sequence[str] = (),
    attributes: Sequence[str] = (),
    upto: Cursor | None = None,
) -> list[Any]:
    """The version rows answering for (as_of, recorded_as_of), one per key in key order:
    of the rows shown at that recorded time that cover that publication time, the one
    with the greatest pub_from (a later-published version takes over from an earlier
    one, see services.infra.tables.VersionRow). Driven by the keys table in its own order, one
    index seek per key (ix_versions_answer), however many versions a key has. `upto`:
    only rows up to that place in their partition (an SSE snapshot; later rows reach it
    live)."""
    conditions = [
        versions.c.subject == keys.c.subject,
        versions.c.attribute == keys.c.attribute,
        _visible(versions, recorded_as_of),
        _covers(versions, as_of),
    ]
    if upto is not None:
        conditions.append(versions.c.id <= _last_id_in_part(upto))
    answer = (
        select(versions.c.id)
        .where(*conditions)
        .order_by(versions.c.pub_from.desc())
        .limit(1)
        .scalar_subquery()
    )
    per_key = select(keys.c.subject, keys.c.attribute, answer.label("answer"))
    if subject is not None:
        per_key = per_key.where(keys.c.subject == subject)
    if subjects_:
        per_key = per_key.where(keys.c.subject.in_(subjects_))
    if attributes:
        per_key = per_key.where(keys.c.attribute.in_(attributes))
    if after is not None:
        per_key = per_key.where(
            or_(
                keys.c.subject > after[0],
                and_(keys.c.subject == after[0], keys.c.attribute > after[1]),
            )
        )
    found = per_key.subquery()
    ids = (
        conn.execute(
            select(found.c.answer)
            .where(found.c.answer.is_not(None))
            .order_by(found.c.subject, found.c.attribute)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    rows = {r.id: r for r in conn.execute(select(versions).where(versions.c.id.in_(ids)))}
    return [rows[i] for i in ids]


def consensus(
    engine: Engine, subject: str, attribute: str, as_of: str | None, recorded_as_of: str | None
) -> dict[str, Any] | None:
    key = (versions.c.subject == subject, versions.c.attribute == attribute)
    query = (
        select(versions)
        .where(*key, _visible(versions, recorded_as_of), _covers(versions, as_of))
        .order_by(versions.c.pub_from.desc())
        .limit(1)
    )
    with read_snapshot(engine) as conn:
        row = conn.execute(query).first()
        if row is None:
            return None
        until = None
        if as_of is not None:  # where a later-published version takes over
            until = conn.execute(
                select(func.min(versions.c.pub_from)).where(
                    *key,
                    _visible(versions, recorded_as_of),
                    versions.c.pub_from > as_of,
                    versions.c.pub_from < row.pub_to,
                )
            ).scalar()
        (row,) = materialize(conn, [row])
        label = conn.execute(
            select(keys.c.subject_label)
            .where(keys.c.subject == subject)
            .where(keys.c.subject_label.is_not(None))
            .limit(1)
        ).scalar()
    view = version_view(row, label)
    if until is not None:
        view["published_to"] = public_time(until)
    return view


class _Row(SimpleNamespace):
    """A version row with its whole result rebuilt (attribute access like a SQL row)."""


def materialize(conn: Any, rows: Sequence[Any]) -> list[Any]:
    """The rows with `result` holding the whole result JSON: a row stored as a delta gets
    its chain (snapshot `base` .. its version) read in one indexed range per key and applied."""
    need: dict[tuple[str, str], tuple[int, int]] = {}
    for r in rows:
        if r.result is None:
            k = (r.subject, r.attribute)
            lo, hi = need.get(k, (r.base, r.version))
            need[k] = (min(lo, r.base), max(hi, r.version))
    built: dict[tuple[str, str, int], str] = {}
    for (subject, attribute), (lo, hi) in need.items():
        data: Any = None
        for c in conn.execute(
            select(versions.c.version, versions.c.result, versions.c.delta)
            .where(
                versions.c.subject == subject,
                versions.c.attribute == attribute,
                versions.c.version >= lo,
                versions.c.version <= hi,
            )
            .order_by(versions.c.version)
        ):
            if c.delta is None:
                data = _decode(c.result)
            elif data is not None:
                data = apply_result_delta(data, _decode(c.delta))
                built[(subject, attribute, c.version)] = _encode(data).decode()
    out = []
    for r in rows:
        if r.result is not None:
            out.append(r)
        else:
            out.append(_Row(**{**r._mapping, "result": built[(r.subject, r.attribute, r.version)]}))
    return out


def key_exists(engine: Engine, subject: str, attribute: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(keys.c.head_version).where(
                    keys.c.subject == subject, keys.c.attribute == attribute
                )
            ).first()
            is not None
        )


def version_view(row: Any, label: str | None = None) -> dict[str, Any]:
    result = _decode(row.result)
    return {
        "subject": row.subject,
        "attribute": row.attribute,
        "subject_label": label,
        "version": row.version,
        "low": result.get("low"),
        "best": result.get("best"),
        "high": result.get("high"),
        "conservative": result.get("conservative"),
        "value": result.get("value_text"),
        "unit": result.get("unit"),
        "kind": result.get("kind"),
        "status": result.get("status"),
        "support": result.get("support", []),
        "dissent": result.get("dissent", []),
        "excluded": result.get("excluded", []),
        "exclusions": result.get("exclusions", {}),
        "notes": result.get("notes", {}),
        "explanation": result.get("explanation"),
        "newest_support_at": result.get("newest_support_at"),
        "segments": result.get("segments", []),
        "clusters": result.get("clusters", []),
        "weights": result.get("weights", {}),
        "constraints": result.get("constraints", []),
        "method": {"name": result.get("method"), "version": result.get("method_version")},
        "published_from": public_time(row.pub_from),
        "published_to": public_time(row.pub_to),
        "recorded_from": public_time(row.rec_from),
        "recorded_to": public_time(row.rec_to),
        "cause": {"event_id": row.cause_event_id, "report_id": row.cause_report_id},
        "diff": _decode(row.diff),
        "position": position_of(row.id),
    }


def history(
    engine: Engine, subject: str, attribute: str, after_version: int, limit: int
) -> list[dict[str, Any]]:
    with read_snapshot(engine) as conn:
        rows = conn.execute(
            select(versions)
            .where(
                versions.c.subject == subject,
                versions.c.attribute == attribute,
                versions.c.version > after_version,
            )
            .order_by(versions.c.version)
            .limit(limit)
        ).all()
        traces = _cause_traces(conn, sorted({r.cause_event_id for r in rows if r.cause_event_id}))
        rows = materialize(conn, rows)
    items = [version_view(r) for r in rows]
    for item in items:
        item["cause"]["trace_id"] = traces.get(item["cause"]["event_id"])
    return items


def _cause_traces(conn: Any, event_ids: list[str]) -> dict[str, str | None]:
    """Trace ids of the causing events, read from the stored event bodies (the versions
    table does not hold them: they must not change projection hashes)."""
    out: dict[str, str | None] = {}
    for i in range(0, len(event_ids), 500):
        rows = conn.execute(
            select(events.c.event_id, events.c.body).where(
                events.c.event_id.in_(event_ids[i : i + 500])
            )
        ).all()
        for r in rows:
            try:
                out[r.event_id] = _decode_trace(r.body).trace_id
            except msgspec.DecodeError:
                out[r.event_id] = None
    return out


def snapshot(
    engine: Engine,
    as_of: str | None,
    recorded_as_of: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    with read_snapshot(engine) as conn:
        rows = materialize(conn, _answers(conn, as_of, recorded_as_of, limit=limit, after=after))
    return [version_view(r) for r in rows]


def subjects(
    engine: Engine, after: str | None, limit: int, matching: Any | None = None
) -> list[dict[str, Any]]:
    """Subjects in key order with their label, attribute count and last update; `matching`:
    a select of the subjects to keep (a search)."""
    query = (
        select(
            keys.c.subject,
            func.max(keys.c.subject_label).label("label"),
            func.count().label("attributes"),
            func.max(keys.c.updated_at).label("updated_at"),
        )
        .group_by(keys.c.subject)
        .order_by(keys.c.subject)
        .limit(limit)
    )
    if matching is not None:
        query = query.where(keys.c.subject.in_(matching))
    if after is not None:
        query = query.where(keys.c.subject > after)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


def subject_keys(engine: Engine, subject: str) -> list[dict[str, Any]]:
    with read_snapshot(engine) as conn:
        rows = materialize(conn, _answers(conn, None, None, limit=100_000, subject=subject))
        label = conn.execute(
            select(func.max(keys.c.subject_label)).where(keys.c.subject == subject)
        ).scalar()
        known = conn.execute(select(keys.c.attribute).where(keys.c.subject == subject)).first()
    if known is None:
        return []
    return [version_view(r, label) for r in rows]


def list_claims(
    engine: Engine,
    subject: str | None,
    attribute: str | None,
    source: str | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(claims.c.claim_id, claims.c.recorded_at, claims.c.facts)
    if subject is not None:
        query = query.where(claims.c.subject == subject)
    if attribute is not None:
        query = query.where(claims.c.attribute == attribute)
    if source is not None:
        query = query.where(claims.c.source_id == source)
    if after is not None:
        query = query.where(claims.c.claim_id > after)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(claims.c.claim_id).limit(limit)).all()
    return [{**json.loads(r.facts), "recorded_at": r.recorded_at} for r in rows]


def report(engine: Engine, report_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(reports).where(reports.c.report_id == report_id)).first()
        if row is None:
            return None
        applied = conn.execute(
            select(func.count()).select_from(events).where(events.c.report_id == report_id)
        ).scalar_one()
    body = json.loads(row.body)
    first = json.loads(row.response)
    return {
        **{k: v for k, v in body.items() if k != "claims"},
        "report_id": report_id,
        "claim_ids": first.get("claim_ids", []),
        "claims": body.get("claims", []),
        "recorded_at": row.recorded_at,
        "token": first.get("token"),
        "events": row.event_count,
        "events_applied": applied,
        "applied": applied >= row.event_count,
    }


def version_rows_after(
    engine: Engine,
    part: int,
    after_id: int,
    subjects_: list[str],
    attributes: list[str],
    limit: int,
    *,
    upto: int | None = None,
) -> list[Any]:
    """The update feed of one partition: its version rows with after_id < id <= upto, in
    id order (the partition's commit order), for SSE."""
    query = select(versions).where(versions.c.part == part, versions.c.id > after_id)
    if upto is not None:
        query = query.where(versions.c.id <= upto)
    if subjects_:
        query = query.where(versions.c.subject.in_(subjects_))
    if attributes:
        query = query.where(versions.c.attribute.in_(attributes))
    with read_snapshot(engine) as conn:
        return materialize(conn, conn.execute(query.order_by(versions.c.id).limit(limit)).all())


def partition_heads(engine: Engine) -> Cursor:
    """Each partition's last committed version number (kept in its row by the apply
    transaction that numbered it)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(fences.c.partition, fences.c.seq).where(fences.c.partition >= 0)
        ).all()
    return Cursor({int(r.partition): int(r.seq) for r in rows})


def _last_id_in_part(upto: Cursor) -> Any:
    """The highest id `upto` covers in the row's own partition (-1: none of it)."""
    if not upto.parts():
        return literal(-1)
    return case({p: version_id(p, s) for p, s in upto.items()}, value=versions.c.part, else_=-1)


def current_rows_upto(
    engine: Engine,
    upto: Cursor,
    subjects_: list[str],
    attributes: list[str],
    after: tuple[str, str] | None,
    limit: int,
) -> list[Any]:
    """The current version rows up to `upto`, by (subject, attribute) after `after`:
    an SSE snapshot (versions above `upto` reach the subscriber live)."""
    with read_snapshot(engine) as conn:
        rows = _answers(
            conn,
            None,
            None,
            limit=limit,
            after=after,
            subjects_=subjects_,
            attributes=attributes,
            upto=upto,
        )
        return materialize(conn, rows)


def search_subjects(engine: Engine, q: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Subjects (as `subjects`) whose key or label contains `q`, ignoring case."""
    needle = q.lower()
    matching = (
        select(keys.c.subject)
        .where(
            or_(
                func.lower(keys.c.subject).contains(needle, autoescape=True),
                func.lower(keys.c.subject_label).contains(needle, autoescape=True),
            )
        )
        .distinct()
    )
    return subjects(engine, after, limit, matching)


def latest_publications(engine: Engine, subjects_: list[str]) -> dict[str, str | None]:
    """Subject -> when the newest report about it was published (as it stands now)."""
    if not subjects_:
        return {}
    query = (
        select(versions.c.subject, func.max(versions.c.pub_from).label("published"))
        .where(versions.c.subject.in_(subjects_), versions.c.rec_to == MAX_TIME)
        .group_by(versions.c.subject)
    )
    with engine.connect() as conn:
        return {r.subject: public_time(r.published) for r in conn.execute(query).all()}
