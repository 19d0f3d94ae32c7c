"""Rebuild every projection from the stored event log, and hash projections to compare."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.infra.db import create_schema
from services.reconcile.store import Reconciler, events_t, versions_t
from shared.events import Event, event_from_json


def stored_events(engine: Engine, batch: int = 2000) -> Iterator[list[Event]]:
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(events_t.c.position, events_t.c.body)
                .where(events_t.c.position > after)
                .order_by(events_t.c.position)
                .limit(batch)
            ).all()
        if not rows:
            return
        after = rows[-1].position
        yield [event_from_json(r.body) for r in rows]


def replay(source: Engine, target: Engine, reconciler: Reconciler) -> int:
    """Applies the source's event log, in order, to an empty target database."""
    create_schema(target)
    count = 0
    for events in stored_events(source):
        reconciler.apply(target, events)
        count += len(events)
    return count


def projection_hash(engine: Engine) -> str:
    """Content hash of every version row (ids excluded: they are storage positions; so are
    the placeholders that keep a dropped row's id, services/reconcile/store.py)."""
    digest = hashlib.sha256()
    cols = [
        versions_t.c[name]
        for name in (
            "subject",
            "attribute",
            "version",
            "pub_from",
            "pub_to",
            "rec_from",
            "rec_to",
            "status",
            "cause_event_id",
            "cause_report_id",
            "result",
            "diff",
            "delta",
            "base",
            "digest",
            "summary",
        )
    ]
    with engine.connect() as conn:
        result = conn.execute(
            select(*cols)
            .where(versions_t.c.version > 0)  # not the placeholders of dropped rows' ids
            .order_by(versions_t.c.subject, versions_t.c.attribute, versions_t.c.version)
        )
        for row in result:
            digest.update(json.dumps(list(row), ensure_ascii=False).encode())
            digest.update(b"\n")
    return digest.hexdigest()
