"""The reconciler's SQL: apply events exactly once, with their projection changes, in ONE
transaction (event log row = the applied marker, as in the `eventsourcing` library).

For each event it records the input (claim, retraction, assessment, rating), then
recomputes the affected keys' publication-time timelines from the input's effective
time on (shared.timeaxes.revise) and stores the new versions bitemporally. The
recorded time of a change is the event's `recorded_at` (kept monotonic per key), so
replaying the log in order rebuilds byte-identical versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from services.tables import ClaimRow, EventRow, KeyRow, ModifierRow, OutboxRow, VersionRow
from shared.attributes import AttributeRegistry
from shared.codec import claim_from_dict, result_to_dict
from shared.consensus import compute_consensus
from shared.events import (
    CLAIM_ASSERTED,
    CLAIM_ASSESSED,
    CLAIM_RETRACTED,
    SOURCE_RATED,
    Event,
)
from shared.model import ClaimFacts, Estimate
from shared.timeaxes import MAX_TIME, Step, parse_iso, revise

events_t = EventRow.__table__  # type: ignore[attr-defined]
claims_t = ClaimRow.__table__  # type: ignore[attr-defined]
mods_t = ModifierRow.__table__  # type: ignore[attr-defined]
keys_t = KeyRow.__table__  # type: ignore[attr-defined]
versions_t = VersionRow.__table__  # type: ignore[attr-defined]
outbox_t = OutboxRow.__table__  # type: ignore[attr-defined]

DIFF_FIELDS = ("low", "best", "high", "conservative", "status", "value_text")


@dataclass(frozen=True, slots=True)
class VersionWritten:
    """A new version row, announced on the updates stream after commit."""

    id: int
    subject: str
    attribute: str
    version: int
    current: bool  # answers for the latest publication time


class Reconciler:
    def __init__(self, registry: AttributeRegistry) -> None:
        self.registry = registry

    def apply(self, engine: Engine, events: list[Event]) -> tuple[list[VersionWritten], int]:
        """Applies the not-yet-applied events; returns new versions and how many applied."""
        with engine.begin() as conn:
            known = _known(conn, [e.event_id for e in events])
            fresh, seen = [], set(known)
            for event in events:
                if event.event_id not in seen:
                    seen.add(event.event_id)
                    fresh.append(event)
            written: list[VersionWritten] = []
            for event in fresh:
                written.extend(self._apply_one(conn, event))
            if fresh:
                conn.execute(
                    update(outbox_t)
                    .where(outbox_t.c.event_id.in_([e.event_id for e in fresh]))
                    .values(state=1)
                )
            # events already applied (redelivery) still confirm their outbox rows
            if known:
                conn.execute(
                    update(outbox_t)
                    .where(outbox_t.c.event_id.in_(list(known)), outbox_t.c.state == 0)
                    .values(state=1)
                )
        return written, len(fresh)

    def _apply_one(self, conn: Connection, event: Event) -> list[VersionWritten]:
        conn.execute(
            insert(events_t).values(
                event_id=event.event_id,
                type=event.type,
                report_id=event.report_id,
                subject=event.subject,
                attribute=event.attribute,
                recorded_at=event.recorded_at,
                body=event.to_json(),
            )
        )
        if event.type == CLAIM_ASSERTED:
            return self._claim_asserted(conn, event)
        if event.type in (CLAIM_RETRACTED, CLAIM_ASSESSED):
            return self._claim_modified(conn, event)
        if event.type == SOURCE_RATED:
            return self._source_rated(conn, event)
        return []  # ReportReceived: the log row is its whole projection

    def _claim_asserted(self, conn: Connection, event: Event) -> list[VersionWritten]:
        claim = claim_from_dict(event.payload["claim"])
        exists = conn.execute(
            select(claims_t.c.claim_id).where(claims_t.c.claim_id == claim.claim_id)
        ).first()
        if exists is None:
            conn.execute(
                insert(claims_t).values(
                    claim_id=claim.claim_id,
                    report_id=claim.report_id,
                    subject=claim.subject,
                    attribute=claim.attribute,
                    source_id=claim.source_id,
                    published_at=event.payload["claim"]["published_at"],
                    recorded_at=event.recorded_at,
                    facts=json.dumps(event.payload["claim"], ensure_ascii=False),
                )
            )
        self._touch_key(conn, claim, event.payload.get("subject_label"), event.recorded_at)
        since = event.payload["claim"]["published_at"]
        return self._recompute(conn, claim.subject, claim.attribute, since, event)

    def _claim_modified(self, conn: Connection, event: Event) -> list[VersionWritten]:
        payload = event.payload
        row = conn.execute(
            select(claims_t.c.subject, claims_t.c.attribute).where(
                claims_t.c.claim_id == payload["claim_id"]
            )
        ).first()
        kind = "retraction" if event.type == CLAIM_RETRACTED else "assessment"
        self._store_modifier(conn, event, kind, payload["claim_id"])
        if row is None:  # claim unknown here: the modifier waits for it
            return []
        return self._recompute(conn, row.subject, row.attribute, payload["effective_at"], event)

    def _source_rated(self, conn: Connection, event: Event) -> list[VersionWritten]:
        source_id = event.payload["source_id"]
        self._store_modifier(conn, event, "rating", source_id)
        keys = conn.execute(
            select(claims_t.c.subject, claims_t.c.attribute)
            .where(claims_t.c.source_id == source_id)
            .distinct()
            .order_by(claims_t.c.subject, claims_t.c.attribute)
        ).all()
        written: list[VersionWritten] = []
        for key in keys:
            written += self._recompute(
                conn, key.subject, key.attribute, event.payload["effective_at"], event
            )
        return written

    def _store_modifier(self, conn: Connection, event: Event, kind: str, target: str) -> None:
        conn.execute(
            insert(mods_t).values(
                event_id=event.event_id,
                kind=kind,
                target=target,
                effective_at=event.payload["effective_at"],
                recorded_at=event.recorded_at,
                data=json.dumps(event.payload, ensure_ascii=False),
            )
        )

    def _touch_key(self, conn: Connection, claim: ClaimFacts, label: str | None, at: str) -> None:
        row = conn.execute(
            select(keys_t.c.subject).where(
                keys_t.c.subject == claim.subject, keys_t.c.attribute == claim.attribute
            )
        ).first()
        if row is None:
            conn.execute(
                insert(keys_t).values(
                    subject=claim.subject,
                    attribute=claim.attribute,
                    subject_label=label,
                    head_version=0,
                    updated_at=at,
                )
            )
        elif label:
            conn.execute(
                update(keys_t)
                .where(keys_t.c.subject == claim.subject, keys_t.c.attribute == claim.attribute)
                .values(subject_label=label)
            )

    # -- recomputation -------------------------------------------------------------

    def _recompute(
        self,
        conn: Connection,
        subject: str,
        attribute: str,
        since: str,
        cause: Event,
        *,
        follow_dependents: bool = True,
    ) -> list[VersionWritten]:
        inputs = _load_inputs(conn, subject, attribute)
        if not inputs.claims:
            return []
        spec = self.registry.spec_for(attribute, numeric=inputs.claims[0].value.is_numeric)
        related_names = set(spec.composite_of) | {
            c.value.relative_to for c in inputs.claims if c.value.relative_to
        }
        related = {name: _current_steps(conn, subject, name) for name in sorted(related_names)}
        current = _current_steps(conn, subject, attribute)

        def evaluate(t: str) -> dict[str, Any]:
            claims = inputs.effective_at(t)
            estimates = {n: e for n, steps in related.items() if (e := _estimate_at(steps, t))}
            result = compute_consensus(claims, spec, at=parse_iso(t), related=estimates)
            return result_to_dict(result)

        revision = revise(current, inputs.times, since, evaluate)
        if not revision.closed and not revision.opened:
            return []
        rec_at = max([cause.recorded_at, *(s.rec_from for s in current)])  # type: ignore[attr-defined]
        written = self._write_revision(conn, subject, attribute, revision, cause, rec_at)
        if follow_dependents and any(w.current for w in written):
            written += self._recompute_dependents(conn, subject, attribute, since, cause)
        return written

    def _recompute_dependents(
        self, conn: Connection, subject: str, attribute: str, since: str, cause: Event
    ) -> list[VersionWritten]:
        """Keys of the same subject that read this one (relative claims, composites)."""
        others = (
            conn.execute(
                select(keys_t.c.attribute)
                .where(keys_t.c.subject == subject, keys_t.c.attribute != attribute)
                .order_by(keys_t.c.attribute)
            )
            .scalars()
            .all()
        )
        written: list[VersionWritten] = []
        for other in others:
            spec = self.registry.get(other)
            depends = spec is not None and attribute in spec.composite_of
            if not depends:
                depends = any(
                    c.value.relative_to == attribute
                    for c in _load_inputs(conn, subject, other).claims
                )
            if depends:
                written += self._recompute(
                    conn, subject, other, since, cause, follow_dependents=False
                )
        return written

    def _write_revision(
        self,
        conn: Connection,
        subject: str,
        attribute: str,
        revision: Any,
        cause: Event,
        rec_at: str,
    ) -> list[VersionWritten]:
        closed_ids = [s.version for s in revision.closed]
        if closed_ids:
            conn.execute(
                update(versions_t)
                .where(
                    versions_t.c.subject == subject,
                    versions_t.c.attribute == attribute,
                    versions_t.c.version.in_(closed_ids),
                )
                .values(rec_to=rec_at)
            )
        head = conn.execute(
            select(keys_t.c.head_version).where(
                keys_t.c.subject == subject, keys_t.c.attribute == attribute
            )
        ).scalar_one()
        written = []
        for step in revision.opened:
            head += 1
            new_id = conn.execute(
                insert(versions_t)
                .values(
                    subject=subject,
                    attribute=attribute,
                    version=head,
                    pub_from=step.pub_from,
                    pub_to=step.pub_to,
                    rec_from=rec_at,
                    rec_to=MAX_TIME,
                    status=step.result["status"],
                    cause_event_id=cause.event_id,
                    cause_report_id=cause.report_id,
                    result=json.dumps(step.result, ensure_ascii=False, sort_keys=True),
                    diff=json.dumps(_diff(step.previous, step.result), sort_keys=True),
                )
                .returning(versions_t.c.id)
            ).scalar_one()
            written.append(
                VersionWritten(new_id, subject, attribute, head, step.pub_to == MAX_TIME)
            )
        conn.execute(
            update(keys_t)
            .where(keys_t.c.subject == subject, keys_t.c.attribute == attribute)
            .values(head_version=head, updated_at=rec_at)
        )
        return written


@dataclass(frozen=True, slots=True)
class StoredStep(Step):
    rec_from: str = ""


@dataclass
class KeyInputs:
    """A key's claims and the modifiers that touch them, each with its effective time."""

    claims: list[ClaimFacts]
    published: dict[str, str]  # claim_id -> published_at (ISO)
    modifiers: list[tuple[str, str, str, dict[str, Any]]]  # (effective_at, kind, target, data)

    @property
    def times(self) -> list[str]:
        return sorted(set(self.published.values()) | {m[0] for m in self.modifiers})

    def effective_at(self, t: str) -> list[ClaimFacts]:
        """Claims published by t, with retractions, assessments and ratings made by t."""
        mods = [m for m in self.modifiers if m[0] <= t]
        out = []
        for claim in self.claims:
            if self.published[claim.claim_id] > t:
                continue
            out.append(_modified(claim, mods))
        return out


def _modified(
    claim: ClaimFacts, mods: Iterable[tuple[str, str, str, dict[str, Any]]]
) -> ClaimFacts:
    for _, kind, target, data in mods:  # in effective-time order: later ones win
        if kind == "rating" and target == claim.source_id:
            claim = replace(claim, source_reliability=data["reliability"])
        elif target != claim.claim_id:
            continue
        elif kind == "retraction":
            claim = replace(claim, retracted=True)
        elif kind == "assessment":
            if data.get("rank"):
                claim = replace(claim, rank=data["rank"])
            if data.get("credibility"):
                claim = replace(claim, credibility=data["credibility"])
    return claim


def _load_inputs(conn: Connection, subject: str, attribute: str) -> KeyInputs:
    rows = conn.execute(
        select(claims_t.c.claim_id, claims_t.c.published_at, claims_t.c.facts)
        .where(claims_t.c.subject == subject, claims_t.c.attribute == attribute)
        .order_by(claims_t.c.claim_id)
    ).all()
    claims = [claim_from_dict(json.loads(r.facts)) for r in rows]
    published = {r.claim_id: r.published_at for r in rows}
    targets = list(published) + sorted({c.source_id for c in claims})
    mods = []
    if targets:
        mods = [
            (m.effective_at, m.kind, m.target, json.loads(m.data))
            for m in conn.execute(
                select(
                    mods_t.c.effective_at,
                    mods_t.c.kind,
                    mods_t.c.target,
                    mods_t.c.data,
                    mods_t.c.event_id,
                )
                .where(mods_t.c.target.in_(targets))
                .order_by(mods_t.c.effective_at, mods_t.c.recorded_at, mods_t.c.event_id)
            ).all()
            if m.kind != "rating" or m.target in {c.source_id for c in claims}
        ]
    return KeyInputs(claims, published, mods)


def _current_steps(conn: Connection, subject: str, attribute: str) -> list[StoredStep]:
    rows = conn.execute(
        select(
            versions_t.c.version,
            versions_t.c.pub_from,
            versions_t.c.pub_to,
            versions_t.c.rec_from,
            versions_t.c.result,
        )
        .where(
            versions_t.c.subject == subject,
            versions_t.c.attribute == attribute,
            versions_t.c.rec_to == MAX_TIME,
        )
        .order_by(versions_t.c.pub_from)
    ).all()
    return [
        StoredStep(r.pub_from, r.pub_to, json.loads(r.result), r.version, rec_from=r.rec_from)
        for r in rows
    ]


def _estimate_at(steps: list[StoredStep], t: str) -> Estimate | None:
    for step in steps:
        if step.pub_from <= t < step.pub_to:
            r = step.result
            if r.get("best") is None and r.get("low") is None and r.get("high") is None:
                return None
            return Estimate(r.get("low"), r.get("best"), r.get("high"))
    return None


def _diff(previous: dict[str, Any] | None, result: dict[str, Any]) -> dict[str, Any]:
    if previous is None:
        return {f: [None, result.get(f)] for f in DIFF_FIELDS if result.get(f) is not None}
    return {
        f: [previous.get(f), result.get(f)] for f in DIFF_FIELDS if previous.get(f) != result.get(f)
    }


def _known(conn: Connection, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i : i + 500]
        found.update(
            conn.execute(select(events_t.c.event_id).where(events_t.c.event_id.in_(chunk)))
            .scalars()
            .all()
        )
    return found
