"""One publishing relay at a time across ingest replicas (issue #24 item 8).

Every ingest replica runs a relay over the same outbox. Left alone, each reads the same
never-sent rows and publishes them (128k of 303k events twice under one large batch).
Row claims (SKIP LOCKED, a claim column) would also interleave two publishers within a
partition stream, out of seq order. So the relays elect one publisher with a lock the
database's host releases when the holder dies, and the others stand by, trying again
every second:

- PostgreSQL: a session-level advisory lock on a connection held for the purpose (the
  server drops it with the session: a killed replica's lock is free at once);
- SQLite: an exclusive `flock` on a file next to the database (the kernel drops it
  with the process; SQLite's own locks cannot be held without blocking writers).

A new leader starts from the outbox's first never-sent row, so rows the old one sent in
its last instant but had not yet recorded are sent again (applied once: event ids);
in the steady state each event is published once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("claimledger.relay")

RELAY_LOCK = 7261453  # advisory lock keys: reconciler 7261450, schema 7261451, outbox 7261452


class PublisherLock(Protocol):
    def hold(self) -> bool:
        """Takes the lock, or confirms it is still ours; False while another holds it.
        Blocking: call it in a thread."""
        ...

    def release(self) -> None: ...


def publisher_lock(engine: Engine) -> PublisherLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLock(Path(database).with_name(Path(database).name + ".relay-lock"))
    return Alone()


class AdvisoryLock:
    def __init__(self, engine: Engine, key: int = RELAY_LOCK) -> None:
        self.engine, self.key = engine, key
        self._conn: Connection | None = None

    def hold(self) -> bool:
        try:
            if self._conn is not None:
                self._conn.exec_driver_sql("SELECT 1")  # same session: the lock is still ours
                return True
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self.key})").scalar():
                self._conn = conn
                return True
            conn.close()
            return False
        except DBAPIError as exc:  # the session is gone, and the lock with it
            log.warning("relay lock connection lost: %s", exc)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):
            self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # never back to the pool: a pooled session would keep the lock
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def hold(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing drops the flock


class Alone:
    """An in-memory database: no other process can share it."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass
