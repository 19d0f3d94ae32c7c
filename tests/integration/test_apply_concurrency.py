"""Scale-out on PostgreSQL (issue 26): no lock is shared by all partitions on the apply path.
A batch folds holding no lock, then locks the rows of the partitions it writes, which give
its versions their numbers there: reconcilers of different partitions never wait for each
other, numbers follow commit order within a partition with no gap, and a fold that a
cross-partition commit (or another writer of its keys) made stale is redone under the lock
that such batches share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from services.infra.db import create_schema, make_engine
from services.infra.keys import KeyChecker
from services.ingest.api import CorrectionTarget, IngestContext, correction_event, prepare_report
from services.query import views
from services.reconcile import store
from services.reconcile.replay import projection_hash
from services.reconcile.store import Reconciler, VersionWritten, versions_t
from shared.attributes import AttributeRegistry
from shared.events import SOURCE_RATED, Event
from shared.reports import ReportIn
from tests.conftest import wait_for
from tests.factories import claim, report
from tests.integration import test_recorded_groups as recorded_groups
from tests.ledger import gapless, numbers, prepare
from tests.postgres import lock_waiters

REGISTRY = AttributeRegistry.load()


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only (the `engine` fixture's database): there two reconcilers fold at once."""
    return postgres_url


def _reconciler() -> Reconciler:
    return Reconciler(REGISTRY, partitions=2)  # as the events' partitions (_events)


def _events(engine: Any, body: dict[str, Any]) -> list[Event]:
    return prepare(engine, body, partitions=2).events


def _stored_ids(engine: Any) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(versions_t.c.id).order_by(versions_t.c.id)).scalars())


def _numbers(engine: Any) -> dict[int, list[int]]:
    return numbers(_stored_ids(engine))


class _Pauses:
    """Stops the thread named `who` after its fold or inside its write (writer lock held)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folded: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}
        self.pause_after_fold: set[str] = set()
        self.pause_in_write: set[str] = set()
        fold, write = store._Batch.fold, store._Batch.write

        def paused_fold(batch: Any, events: list[Event]) -> None:
            fold(batch, events)
            who = threading.current_thread().name
            self._event(self.folded, who).set()
            if who in self.pause_after_fold and not batch.locked:
                assert self._event(self.release, who).wait(20)

        def paused_write(batch: Any) -> tuple[list[VersionWritten], int]:
            who = threading.current_thread().name
            if who in self.pause_in_write:
                self._event(self.folded, f"{who}:writing").set()
                assert self._event(self.release, who).wait(20)
            return write(batch)

        monkeypatch.setattr(store._Batch, "fold", paused_fold)
        monkeypatch.setattr(store._Batch, "write", paused_write)

    @staticmethod
    def _event(events: dict[str, threading.Event], name: str) -> threading.Event:
        return events.setdefault(name, threading.Event())

    def reached(self, name: str) -> threading.Event:
        return self._event(self.folded, name)

    def go(self, who: str) -> None:
        self._event(self.release, who).set()


def _start(name: str, work: Callable[[], Any], results: dict[str, Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(name, work()), name=name)
    thread.start()
    return thread


def test_reconcilers_of_two_partitions_never_wait_for_each_other(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_events = _events(engine, report(claim(subject="alpha", value=1), claim(subject="alpha2")))
    b_events = _events(engine, report(claim(subject="beta", value=2)))  # the other partition
    pauses = _Pauses(monkeypatch)
    pauses.pause_in_write.add("a")
    results: dict[str, Any] = {}
    a = _start("a", lambda: _reconciler().apply(engine, a_events), results)
    assert pauses.reached("a:writing").wait(20)  # a holds its partition's row
    b = _start("b", lambda: _reconciler().apply(engine, b_events), results)
    b.join(20)
    assert "b" in results and "a" not in results  # b committed while a held its row
    pauses.go("a")
    a.join(20)
    assert _numbers(engine) == {0: [1, 2], 1: [1]}


def test_a_fold_runs_while_another_reconciler_holds_its_partition(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_events = _events(engine, report(claim(subject="alpha", value=1), claim(subject="alpha2")))
    b_events = _events(engine, report(claim(subject="first-committed", value=2)))  # same one
    pauses = _Pauses(monkeypatch)
    pauses.pause_in_write.add("a")
    a_reconciler, b_reconciler = (
        _reconciler(),
        _reconciler(),
    )
    results: dict[str, Any] = {}
    a = _start("a", lambda: a_reconciler.apply(engine, a_events), results)
    assert pauses.reached("a:writing").wait(20)  # a's apply transaction holds the row
    b = _start("b", lambda: b_reconciler.apply(engine, b_events), results)
    # b folds its batch while a holds the row, then waits for the row to write
    assert pauses.reached("b").wait(20)
    wait_for(lambda: lock_waiters(engine) == 1)
    assert "b" not in results
    pauses.go("a")
    a.join(20)
    b.join(20)
    a_ids = [w.id for w in results["a"][0]]
    b_ids = [w.id for w in results["b"][0]]
    assert a_ids and b_ids and max(a_ids) < min(b_ids)  # a committed first
    assert _stored_ids(engine) == sorted(a_ids + b_ids)
    assert _numbers(engine) == {0: [1, 2, 3]}
    assert b_reconciler.timing.wait_s > 0 and not b_reconciler.timing.refolded


def test_version_ids_follow_commit_order_not_fold_order(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_events = _events(engine, report(claim(subject="first-folded", value=1)))
    b_events = _events(engine, report(claim(subject="first-committed", value=2)))
    pauses = _Pauses(monkeypatch)
    pauses.pause_after_fold.add("a")
    results: dict[str, Any] = {}
    a = _start("a", lambda: _reconciler().apply(engine, a_events), results)
    assert pauses.reached("a").wait(20)  # a folded, not yet locked
    b = _start("b", lambda: _reconciler().apply(engine, b_events), results)
    b.join(20)  # b folds, writes and commits while a's fold is done
    b_ids = [w.id for w in results["b"][0]]
    assert _stored_ids(engine) == b_ids
    pauses.go("a")
    a.join(20)
    a_ids = [w.id for w in results["a"][0]]
    assert b_ids and a_ids and max(b_ids) < min(a_ids)  # ids given at write time
    assert _numbers(engine) == {0: list(range(1, len(a_ids + b_ids) + 1))}
    with engine.connect() as conn:
        by_subject = dict(conn.execute(select(versions_t.c.id, versions_t.c.subject)).all())
    assert {by_subject[i] for i in a_ids} == {"first-folded"}


def _apply_with_a_commit_after_its_fold(
    engine: Any, monkeypatch: pytest.MonkeyPatch, events: list[Event], commit: Callable[[], Any]
) -> Reconciler:
    """Applies `events` in thread "a", held after its fold (before the lock) while `commit`
    runs (another writer's apply); returns a's reconciler once a has written."""
    pauses = _Pauses(monkeypatch)
    pauses.pause_after_fold.add("a")
    a_reconciler = _reconciler()
    results: dict[str, Any] = {}
    a = _start("a", lambda: a_reconciler.apply(engine, events), results)
    assert pauses.reached("a").wait(20)
    commit()
    pauses.go("a")
    a.join(20)
    return a_reconciler


def _rating(source: str, reliability: str = "E") -> Event:
    target = CorrectionTarget(source, source, None, None)
    data = {"reliability": reliability, "rationale": "checked"}
    event, _ = correction_event(SOURCE_RATED, target, data, "2025-02-01", partitions=2)
    return event


def test_a_fold_that_a_rating_committed_since_made_stale_is_folded_again(
    engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A rating reaches keys of every partition: if one commits between a batch's fold and
    its writes, the batch is folded again under the lock, as if it had come after."""
    stored = _events(engine, report(claim(value=100), source="src-one", published_at="2025-01-10"))
    later = _events(engine, report(claim(value=300), source="src-two", published_at="2025-02-10"))
    rating = _rating("src-one")
    _reconciler().apply(engine, stored)
    # the rating comes from another partition's owner
    a_reconciler = _apply_with_a_commit_after_its_fold(
        engine,
        monkeypatch,
        later,
        lambda: _reconciler().apply(engine, [rating]),
    )
    assert a_reconciler.timing.refolded
    # the same as applying the three batches one after the other
    serial = make_engine(f"sqlite:///{tmp_path / 'serial.db'}")
    create_schema(serial)
    for batch in (stored, [rating], later):
        _reconciler().apply(serial, batch)
    assert projection_hash(engine) == projection_hash(serial)
    subject, attribute = "dprk-troops-kursk", "personnel_deployed"
    assert views.history(engine, subject, attribute, 0, 100) == views.history(
        serial, subject, attribute, 0, 100
    )
    serial.dispose()


def test_a_fold_whose_keys_another_writer_changed_since_is_folded_again(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of one subject (a partition count changed under running reconcilers):
    the batch whose keys moved after its fold is folded again under the lock."""
    first = _events(engine, report(claim(value=100), published_at="2025-01-10"))
    second = _events(engine, report(claim(value=300), published_at="2025-02-10"))
    a_reconciler = _apply_with_a_commit_after_its_fold(
        engine, monkeypatch, second, lambda: _reconciler().apply(engine, first)
    )
    assert a_reconciler.timing.refolded
    history = views.history(engine, "dprk-troops-kursk", "personnel_deployed", 0, 100)
    assert [v["version"] for v in history] == [1, 2]  # the second fold saw the first claim
    assert _numbers(engine) == {1: [1, 2]}


def test_a_rating_that_moved_no_key_still_makes_a_fold_stale(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A modifier recorded before a key's latest change, that changes no answer, leaves the
    key's row as it was; the fold that read the key without it is redone all the same (it
    counts when a later input makes it matter), noticed by the cross-partition count."""
    rating = _rating("src-one", "F")  # recorded now: before the claims below
    stored = _events(engine, report(claim(value=100), source="src-one", published_at="2025-01-10"))
    later = _events(engine, report(claim(value=300), source="src-two", published_at="2025-02-10"))
    _reconciler().apply(engine, stored)
    with engine.connect() as conn:
        keys_before = conn.execute(text("SELECT head_version, updated_at FROM keys")).all()

    def rate() -> None:
        _reconciler().apply(engine, [rating])
        with engine.connect() as conn:
            keys_after = conn.execute(text("SELECT head_version, updated_at FROM keys")).all()
        assert keys_after == keys_before

    a_reconciler = _apply_with_a_commit_after_its_fold(engine, monkeypatch, later, rate)
    assert a_reconciler.timing.refolded


@pytest.mark.parametrize("chunk", [1, 4, 7])
def test_an_unlocked_fold_drops_rows_of_a_group_spread_over_batches_as_a_locked_one(
    engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A request's events spread over batches: a later batch drops the rows an earlier one
    (or itself) wrote at that recorded time. Folded without the lock, with a warm cache, it
    stores the same rows as one transaction on SQLite, and the ids stay gapless."""
    scratch = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(scratch)
    events = recorded_groups._log(scratch)
    whole = recorded_groups._apply(f"sqlite:///{tmp_path / 'whole.db'}", events, 10_000)
    refolds = []
    reconciler = _reconciler()
    drops = 0
    unwrite = store._Batch._unwrite

    def counted(batch: Any, ids: set[int]) -> None:
        nonlocal drops
        drops += 1
        unwrite(batch, ids)

    monkeypatch.setattr(store._Batch, "_unwrite", counted)
    for i in range(0, len(events), chunk):
        reconciler.apply(engine, events[i : i + chunk])
        refolds.append(reconciler.timing.refolded)
    assert drops and not any(refolds)  # rows were dropped, none by a fold under the lock
    assert projection_hash(engine) == projection_hash(whole)
    assert recorded_groups._seen(engine) == recorded_groups._seen(whole)
    assert gapless(_stored_ids(engine))


def _composite_log(engine: Any) -> list[Event]:
    """One request (one recorded time): a composite key's claims first, then claims of the
    keys it is made of, which revise it again and drop rows it wrote in the same batch."""
    ctx = IngestContext(engine, None, REGISTRY, KeyChecker(engine), partitions=2, tolerance=0.1)
    recorded = "2026-01-10T09:00:00.000000Z"
    bodies = [
        report(claim("front", "killed_or_wounded", value=500), published_at="2025-01-01"),
        report(claim("front", "killed_or_wounded", value=650), published_at="2025-02-01"),
        report(claim("front", "killed", value=200), published_at="2025-03-01"),
        report(
            claim("front", "killed", value=150),
            claim("front", "wounded", value=90),
            published_at="2025-01-15",
        ),
        report(claim("front", "killed_or_wounded", value=700), published_at="2025-02-20"),
    ]
    return [
        e
        for body in bodies
        for e in prepare_report(ReportIn.model_validate(body), ctx, None, recorded).events
    ]


def _history(engine: Any, attribute: str) -> list[dict[str, Any]]:
    """A key's history without positions (ids: storage order, which batching changes)."""
    return [
        {k: v for k, v in item.items() if k != "position"}
        for item in views.history(engine, "front", attribute, 0, 100)
    ]


@pytest.mark.parametrize("chunk", [2, 100])
def test_an_unlocked_fold_drops_rows_it_wrote_itself_as_a_locked_one(
    engine: Any, tmp_path: Path, chunk: int
) -> None:
    scratch = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    create_schema(scratch)
    events = _composite_log(scratch)
    whole = make_engine(f"sqlite:///{tmp_path / 'whole.db'}")
    create_schema(whole)
    _reconciler().apply(whole, events)
    reconciler = _reconciler()
    for i in range(0, len(events), chunk):
        reconciler.apply(engine, events[i : i + chunk])
        assert not reconciler.timing.refolded
    assert projection_hash(engine) == projection_hash(whole)
    for attribute in ("killed_or_wounded", "killed", "wounded"):
        assert _history(engine, attribute) == _history(whole, attribute)
    assert gapless(_stored_ids(engine))


def test_dropping_rows_before_the_lock_leaves_no_update_aimed_at_their_ids() -> None:
    """Rows to drop leave what an unlocked fold will write, with their pending closes,
    reopens and retimes: their ids go to new rows, which those updates must not reach."""
    batch = store._Batch(_reconciler(), None, locked=False)  # type: ignore[arg-type]
    mine, other, stored = store.PROVISIONAL, store.PROVISIONAL + 1, 5
    batch.rows["versions"] = [{"id": mine}, {"id": other}]
    batch.rows["retimes"] = [{"row_id": mine, "pub_to": "x"}, {"row_id": other, "pub_to": "y"}]
    batch.rows["closes"] = [{"row_id": stored, "rec_to": "z"}]
    batch.rows["reopens"] = [{"row_id": mine}]
    batch._unwrite({mine, stored})
    assert batch.rows["versions"] == [{"id": other}]
    assert batch.rows["retimes"] == [{"row_id": other, "pub_to": "y"}]
    assert batch.rows["closes"] == batch.rows["reopens"] == []
    assert batch.rows["drops"] == [{"row_id": stored}]  # only a stored row is deleted
