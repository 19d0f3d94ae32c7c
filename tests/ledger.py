"""A ledger in one process for integration tests: ingest's own preparation and outbox write,
the reconciler's apply and the query views, on a real database, without Redis in between.

Writes go through the public entry points only (prepare_report, outbox.accept_report,
Reconciler.apply), so a test states what a user posts and what a reader gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.ingest import outbox
from services.ingest.api import IngestContext, prepare_report
from services.reconcile.store import Reconciler
from shared.attributes import AttributeRegistry
from shared.positions import part_of, seq_of
from shared.reports import ReportIn

REGISTRY = AttributeRegistry.load()


def prepare(engine: Engine, body: dict[str, Any], partitions: int = 4) -> outbox.Pending:
    """What ingest makes of a posted report (its events, over `partitions`), not yet stored."""
    ctx = IngestContext(
        engine, None, REGISTRY, KeyChecker(engine), partitions=partitions, tolerance=0.1
    )
    return prepare_report(ReportIn.model_validate(body), ctx, None)


def numbers(ids: list[int]) -> dict[int, list[int]]:
    """Version ids (in id order) as each partition's version numbers."""
    out: dict[int, list[int]] = {}
    for row_id in sorted(ids):
        out.setdefault(part_of(row_id), []).append(seq_of(row_id))
    return out


def gapless(ids: list[int]) -> bool:
    """Each partition's version numbers run 1, 2, 3 ... with no gap."""
    return all(seqs == list(range(1, len(seqs) + 1)) for seqs in numbers(ids).values())


@dataclass
class Ledger:
    engine: Engine
    reconciler: Reconciler = field(default_factory=lambda: Reconciler(REGISTRY))

    @classmethod
    def open(cls, url: str) -> Ledger:
        engine = make_engine(url)
        create_schema(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def prepare(self, body: dict[str, Any]) -> outbox.Pending:
        return prepare(self.engine, body)

    def accept(self, body: dict[str, Any]) -> Written:
        """Stores the report and its events in the outbox (what a 202 means), unapplied."""
        pending = self.prepare(body)
        accepted = outbox.accept_report(self.engine, pending)
        return Written(pending, int(accepted.response["token"]))

    def apply(self, *writes: Written) -> None:
        """The reconciler applies these reports' events, in this order, in one batch."""
        self.reconciler.apply(self.engine, [e for w in writes for e in w.pending.events])

    def post(self, body: dict[str, Any]) -> Written:
        written = self.accept(body)
        self.apply(written)
        return written


@dataclass(frozen=True)
class Written:
    pending: outbox.Pending
    token: int  # the write token the client got back
