"""The `eventsourcing` peer: the same append + project workload, side by side.

Workload: `claims` numeric claims over `keys` keys, appended in chunks of 500 and projected
into a per-key view, exactly once.
- claimledger: `Reconciler.apply` on the ClaimAsserted events, 500 per transaction (event log
  row = applied marker, then consensus versions per key), SQLite WAL, synchronous=NORMAL.
- eventsourcing 9.5.x on SQLite: one aggregate per key takes a `ClaimAsserted` event per
  claim, `app.save(*touched)` once per chunk of 500 claims; a ProcessApplication follows it
  (SingleThreadedRunner) and keeps a per-key view aggregate (count, median), recording each
  processed event with its tracking position in one transaction (the library's exactly-once
  projection). The library leaves SQLite at its default synchronous=FULL; it is run twice,
  at FULL (its default) and at NORMAL (claimledger's setting: equal durability).

Both sides are fed the same claims; the figure is claims/s over append + project.
"""

from __future__ import annotations

import functools
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

_NS = uuid.UUID("0e4f1c1e-5b1f-4a59-9f43-7d7c4a0c5e11")


def eventsourcing_rate(tmp: Path, claims: list[tuple[str, str, float]], synchronous: str) -> float:
    """claims: (key, claim_id, value). Returns claims/s over append + project."""
    from eventsourcing.system import SingleThreadedRunner, System

    KeyClaims, Claims, Views = _classes()
    db = tmp / f"eventsourcing-{synchronous.lower()}.db"
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
    with _synchronous(synchronous), _environ(env):
        Views.key_of = {KeyClaims.create_id(k): k for k in {c[0] for c in claims}}
        Views.views = {}
        runner = SingleThreadedRunner(System(pipes=[[Claims, Views]]))
        runner.start()
        try:
            app = runner.get(Claims)
            aggregates: dict[str, Any] = {}
            start = time.perf_counter()
            for i in range(0, len(claims), 500):
                touched: dict[str, Any] = {}
                for key, claim_id, value in claims[i : i + 500]:
                    agg = aggregates.get(key)
                    if agg is None:
                        agg = aggregates[key] = KeyClaims(key)
                    agg.assert_claim(claim_id, value)
                    touched[key] = agg
                app.save(*touched.values())  # the runner projects before save returns
            elapsed = time.perf_counter() - start
            views = runner.get(Views)
            projected = sum(len(v.values) for v in views.views.values())
            assert projected == len(claims), (projected, len(claims))
        finally:
            runner.stop()
    return len(claims) / elapsed


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    import os

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _synchronous(level: str) -> Iterator[None]:
    """Sets PRAGMA synchronous on every connection the library opens (it sets none)."""
    from eventsourcing.sqlite import SQLiteConnectionPool

    original = SQLiteConnectionPool._create_connection

    def create(self: Any) -> Any:
        conn = original(self)
        conn._sqlite_conn.execute(f"PRAGMA synchronous={level}")
        return conn

    SQLiteConnectionPool._create_connection = create  # type: ignore[method-assign]
    try:
        yield
    finally:
        SQLiteConnectionPool._create_connection = original  # type: ignore[method-assign]


@functools.cache
def _classes() -> tuple[Any, Any, Any]:
    """Defined once per process: the library registers each class under its topic."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.system import ProcessApplication

    class KeyClaims(Aggregate):
        @staticmethod
        def create_id(key: str) -> uuid.UUID:
            return uuid.uuid5(_NS, key)

        @event("Started")
        def __init__(self, key: str) -> None:
            self.key = key
            self.count = 0

        @event("ClaimAsserted")
        def assert_claim(self, claim_id: str, value: float) -> None:
            self.count += 1

    class KeyView(Aggregate):
        @staticmethod
        def create_id(key: str) -> uuid.UUID:
            return uuid.uuid5(_NS, "view:" + key)

        @event("Started")
        def __init__(self, key: str) -> None:
            self.key = key
            self.values: list[float] = []
            self.median: float | None = None

        @event("Updated")
        def update(self, value: float) -> None:
            self.values.append(value)
            self.median = statistics.median(self.values)

    class Claims(Application[uuid.UUID]):
        pass

    class Views(ProcessApplication[uuid.UUID]):
        def policy(self, domain_event: Any, processing_event: Any) -> None:
            if isinstance(domain_event, KeyClaims.ClaimAsserted):
                key = self.key_of[domain_event.originator_id]
                view_id = KeyView.create_id(key)
                view = self.views.get(view_id)
                if view is None:
                    view = KeyView(key)
                    self.views[view_id] = view
                view.update(domain_event.value)
                processing_event.collect_events(view)

        key_of: ClassVar[dict[uuid.UUID, str]] = {}
        views: ClassVar[dict[uuid.UUID, Any]] = {}  # the view kept in memory, like our key cache

    return KeyClaims, Claims, Views
