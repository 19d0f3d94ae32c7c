"""API keys: random secrets, stored only as hashes, checked per request with a short cache.

Keys are 256-bit random tokens, so a fast SHA-256 digest is enough to make the
stored form useless to a thief (slow hashes like argon2 exist for low-entropy
passwords; for random tokens they only cost request latency).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import func, insert, select, true, update
from sqlalchemy.engine import Engine

from services.infra.tables import ApiKey
from shared.timeaxes import now_iso

keys = ApiKey.__table__  # type: ignore[attr-defined]
SCOPES = ("read", "write", "admin")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(engine: Engine, scopes: list[str], name: str = "") -> tuple[str, str]:
    """Returns (key_id, secret). The secret is shown once and never stored."""
    secret = "cl_" + secrets.token_urlsafe(32)
    return register_key(engine, secret, scopes, name), secret


def register_key(engine: Engine, secret: str, scopes: list[str], name: str = "") -> str:
    """Idempotent: registering the same secret again keeps one row."""
    key_id = "k_" + digest(secret)[:12]
    with engine.begin() as conn:
        exists = conn.execute(select(keys.c.key_id).where(keys.c.key_id == key_id)).first()
        if exists is None:
            conn.execute(
                insert(keys).values(
                    key_id=key_id,
                    key_hash=digest(secret),
                    scopes=",".join(scopes),
                    name=name,
                    created_at=now_iso(),
                )
            )
    return key_id


def revoke_key(engine: Engine, key_id: str) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            update(keys)
            .where(keys.c.key_id == key_id, keys.c.revoked_at.is_(None))
            .values(revoked_at=now_iso())
        )
    return bool(done.rowcount)


def list_keys(engine: Engine) -> list[dict[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(keys.c.key_id, keys.c.name, keys.c.scopes, keys.c.created_at, keys.c.revoked_at)
        ).all()
    return [dict(r._mapping) for r in rows]


class KeyChecker:
    """Answers 'which scopes does this bearer secret have' with a few seconds of caching.

    Writes need a key once any key has ever been created, revoked ones included: counting
    only active keys turned authentication off when the last key was revoked (and let the
    revoked key write again). `open_writes` (CLAIMLEDGER_OPEN_WRITES) is the explicit way
    back to keyless writes while no key is active.
    """

    def __init__(self, engine: Engine, ttl_s: float = 5.0, *, open_writes: bool = False) -> None:
        self.engine, self.ttl_s, self.open_writes = engine, ttl_s, open_writes
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}
        self._required: tuple[float, bool] = (-float("inf"), False)

    def answers_from_memory(self, secret: str | None) -> bool:
        """True when keys_required() and scopes(secret) would not touch the database, so an
        async caller can check on the event loop instead of hopping to a thread."""
        now = time.monotonic()
        if now - self._required[0] >= self.ttl_s:
            return False
        if not self._required[1] or secret is None:
            return True
        cached = self._cache.get(digest(secret))
        return cached is not None and now - cached[0] < self.ttl_s

    def keys_required(self) -> bool:
        """Whether writes need a key: once any key has existed, unless writes are opened."""
        at, value = self._required
        if time.monotonic() - at < self.ttl_s:
            return value
        counted = keys.c.revoked_at.is_(None) if self.open_writes else true()
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(keys).where(counted)).scalar_one()
        self._required = (time.monotonic(), count > 0)
        return count > 0

    def scopes(self, secret: str) -> frozenset[str] | None:
        h = digest(secret)
        cached = self._cache.get(h)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(keys.c.scopes).where(keys.c.key_hash == h, keys.c.revoked_at.is_(None))
            ).first()
        found = frozenset(row.scopes.split(",")) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[h] = (time.monotonic(), found)
        return found
