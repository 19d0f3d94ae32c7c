"""Re-weighting: learn source reliability from the stored claims and append the result
as one `SourceReliabilityLearned` event to the ingest outbox.

The event goes the normal way (outbox -> relay -> stream -> reconciler), so it is
durable once appended, applied exactly once, and part of the replayable log: the
versions it causes name it, and a replay rebuilds them without re-running the
learner. Only scores that moved since the previous run are sent, so a re-run over
unchanged claims appends nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.ingest.outbox import append_events
from services.tables import ClaimRow, ModifierRow
from shared.codec import claim_from_dict
from shared.consensus._numeric import MEDIAN_OR_MODE, PLURALITY
from shared.consensus._weights import prior_weight
from shared.consensus.reliability import (
    METHOD,
    METHOD_VERSION,
    Observation,
    Params,
    Reliability,
    learn_reliability,
)
from shared.events import (
    SCHEMA_VERSION,
    SOURCE_RELIABILITY_LEARNED,
    Event,
    partition_of,
    stable_id,
    stream_for,
)
from shared.model import ClaimFacts
from shared.timeaxes import now_iso, parse_iso
from shared.values import MEASURE_RULE_PREFIX

claims_t = ClaimRow.__table__  # type: ignore[attr-defined]
mods_t = ModifierRow.__table__  # type: ignore[attr-defined]

# The partition key of re-weighting events: they touch keys of every subject.
PARTITION_KEY = "claimledger:reliability"
CHANGE = 1e-6  # a score that moved less than this is not re-sent
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reweighing:
    learned: Reliability
    changed: dict[str, float]
    event: Event | None
    token: int | None


def observation_of(claim: ClaimFacts, published: str) -> Observation | None:
    """A claim the learner can judge: a numeric point someone actually claimed. A
    measure's reading (its value's rule names the measure) is judged by the measure's
    decision rule, as the fusion does."""
    v = claim.value
    if claim.retracted or claim.modality == "denied" or claim.rank == "deprecated":
        return None
    if not v.is_numeric or v.best is None or v.best_derived or v.relative_to:
        return None
    return Observation(
        key=f"{claim.subject}\x1f{claim.attribute}",
        source_id=claim.source_id,
        value=float(v.best),
        origin=claim.attributed_to or claim.source_id,
        published=parse_iso(published).timestamp(),
        claim_id=claim.claim_id,
        prior=prior_weight(claim),
        rule=PLURALITY if v.rule.startswith(MEASURE_RULE_PREFIX) else MEDIAN_OR_MODE,
    )


def stored_observations(engine: Engine) -> list[Observation]:
    out: list[Observation] = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(claims_t.c.facts, claims_t.c.published_at).order_by(claims_t.c.claim_id)
        )
        for r in rows:
            obs = observation_of(claim_from_dict(json.loads(r.facts)), r.published_at)
            if obs is not None:
                out.append(obs)
    return out


def current_scores(engine: Engine) -> dict[str, float]:
    """The latest learned score per source (later effective time, then recorded, wins)."""
    scores: dict[str, float] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(mods_t.c.target, mods_t.c.data)
            .where(mods_t.c.kind == "learned")
            .order_by(mods_t.c.effective_at, mods_t.c.recorded_at, mods_t.c.event_id)
        )
        for r in rows:
            scores[r.target] = float(json.loads(r.data)["score"])
    return scores


def changed_scores(new: dict[str, float], old: dict[str, float]) -> dict[str, float]:
    """Scores to send: moved sources, and sources learned before that fell out (back to 1)."""
    out = {s: v for s, v in new.items() if abs(v - old.get(s, 1.0)) > CHANGE}
    for s, v in old.items():
        if s not in new and abs(v - 1.0) > CHANGE:
            out[s] = 1.0
    return dict(sorted(out.items()))


def reliability_event(
    changed: dict[str, float], learned: Reliability, params: Params, recorded: str
) -> Event:
    run = stable_id("run_", json.dumps(changed, sort_keys=True), json.dumps(params.as_dict()))
    payload: dict[str, Any] = {
        "scores": changed,
        "method": METHOD,
        "method_version": METHOD_VERSION,
        "run_id": run,
        "params": params.as_dict(),
        "rounds": learned.rounds,
        "converged": learned.converged,
        "effective_at": recorded,
    }
    return Event(
        stable_id("e_", SOURCE_RELIABILITY_LEARNED, run, recorded),
        SOURCE_RELIABILITY_LEARNED,
        SCHEMA_VERSION,
        recorded,
        None,
        payload,
        subject=PARTITION_KEY,
    )


def reweigh(
    engine: Engine,
    partitions: int,
    params: Params | None = None,
    observations: Iterable[Observation] | None = None,
) -> Reweighing:
    """Learn from the stored claims; append an event when some score moved."""
    params = params or Params()
    obs = stored_observations(engine) if observations is None else list(observations)
    learned = learn_reliability(obs, params=params)
    changed = changed_scores(learned.scores, current_scores(engine))
    if not changed:
        return Reweighing(learned, changed, None, None)
    event = reliability_event(changed, learned, params, now_iso())
    stream = stream_for(partition_of(PARTITION_KEY, partitions))
    token = append_events(engine, [event], [stream])
    return Reweighing(learned, changed, event, token)


async def reweigh_periodically(
    engine: Engine, partitions: int, every_s: float, appended: Callable[[], None]
) -> None:
    """The live path's re-weighting (CLAIMLEDGER_REWEIGH_EVERY_S): learn, append when a
    score moved, tell the relay (`appended`), sleep. A failed run is logged and retried
    at the next tick; the learner itself is pure, so a run never half-applies."""
    while True:
        await asyncio.sleep(every_s)
        try:
            done = await asyncio.to_thread(reweigh, engine, partitions)
        except Exception:  # keep the service alive; the next tick retries
            log.exception("re-weighting failed")
            continue
        if done.event is not None:
            log.info("re-weighting appended %s (%d scores)", done.event.event_id, len(done.changed))
            appended()
