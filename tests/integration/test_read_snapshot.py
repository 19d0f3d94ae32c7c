"""A read that takes several statements sees one committed state (found by the chaos run:
the query service's update feed failed with KeyError when a reconciler's commit landed
between reading version rows and reading the delta chains they are built from).

The reconciler may delete a version row and insert the same version again, stored whole
(dropped rows give their ids and version numbers to the next rows). Here that commit is made
by a second connection right after the reader's first statement: a reader that read the
delta row must still build it from the chain it read it with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select

from services.infra.tables import VersionRow
from services.query import views
from tests.conftest import BACKENDS
from tests.factories import claim, report
from tests.ledger import Ledger

versions = VersionRow.__table__  # type: ignore[attr-defined]
SUBJECT, ATTRIBUTE = "snapshot-troops", "personnel_deployed"


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Ledger]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'claimledger.db'}"
    ledger = Ledger.open(url)
    yield ledger
    ledger.close()


def _delta_row(ledger: Ledger) -> Any:
    for i, (value, source) in enumerate([(10_000, "a"), (12_000, "b"), (13_000, "c")]):
        ledger.post(
            report(
                claim(subject=SUBJECT, value=value),
                source=source,
                published_at=f"2024-11-0{i + 1}T00:00:00Z",
            )
        )
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(versions)
            .where(versions.c.subject == SUBJECT, versions.c.delta.is_not(None))
            .order_by(versions.c.version.desc())
        ).all()
    assert rows, "the scenario needs a version stored as a delta"
    return rows[0]


def _rewrite_whole(ledger: Ledger, row: Any, result: str) -> None:
    """What a reconciler batch may commit: the row deleted, its version inserted whole."""
    with ledger.engine.begin() as conn:
        conn.execute(delete(versions).where(versions.c.id == row.id))
        values = {**row._mapping, "result": result, "delta": None, "base": None}
        conn.execute(insert(versions).values(**values))


def test_the_update_feed_builds_rows_from_the_state_it_read_them_in(ledger: Ledger) -> None:
    row = _delta_row(ledger)
    (before,) = [
        r
        for r in views.version_rows_after(ledger.engine, row.part, row.id - 1, [], [], 1)
        if r.id == row.id
    ]
    rewritten = False

    def commit_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal rewritten
        if (
            not rewritten
            and statement.lstrip().upper().startswith("SELECT")
            and "versions" in statement
        ):
            rewritten = True  # once: right after the feed's first read of version rows
            _rewrite_whole(ledger, row, '{"rewritten": true}')

    event.listen(ledger.engine, "after_cursor_execute", commit_between)
    try:
        (after,) = views.version_rows_after(ledger.engine, row.part, row.id - 1, [], [], 1)
    finally:
        event.remove(ledger.engine, "after_cursor_execute", commit_between)
    assert rewritten
    assert after.id == row.id
    assert after.result == before.result  # the state it read the row in, not a KeyError
