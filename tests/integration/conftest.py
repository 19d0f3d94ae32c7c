"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from services.infra.db import create_schema, make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The schema on a fresh database: `db_url`'s backend (SQLite unless the module asks for
    BACKENDS or gives a `db_url` of its own), disposed of at the end of the test."""
    eng = make_engine(db_url)
    create_schema(eng)
    yield eng
    eng.dispose()
