"""pending_events: what a subject's min_token read asks the outbox (services/query/watermark)."""

from __future__ import annotations

from pathlib import Path

from services.infra.db import create_schema, make_engine
from services.ingest import outbox
from services.query.watermark import Pending, pending_events
from shared.events import CLAIM_ASSERTED, SCHEMA_VERSION, SOURCE_RATED, Event, stream_for
from shared.timeaxes import now_iso


def _event(n: int, kind: str = CLAIM_ASSERTED, subject: str = "s") -> Event:
    return Event(f"e_{n}", kind, SCHEMA_VERSION, now_iso(), None, {"n": n}, subject=subject)


def test_unapplied_events_in_range_with_type_and_subject_and_none_for_a_backlog(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        create_schema(engine)
        events = [_event(1, subject="a"), _event(2, SOURCE_RATED, "src"), _event(3, subject="b")]
        outbox.append_events(engine, events, [stream_for(0)] * 3)
        with engine.begin() as conn:
            conn.execute(outbox.outbox.update().where(outbox.outbox.c.seq == 3).values(state=2))
        assert pending_events(engine, 0, 3, 10) == [
            Pending(1, CLAIM_ASSERTED, "a"),
            Pending(2, SOURCE_RATED, "src"),
        ]
        assert pending_events(engine, 1, 3, 10) == [Pending(2, SOURCE_RATED, "src")]
        assert pending_events(engine, 0, 3, 1) is None  # more than the limit: a backlog
    finally:
        engine.dispose()
