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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from services.infra.tables import ClaimRow, EventRow, ModifierRow
from services.ingest.outbox import append_events
from shared.codec import claim_from_dict
from shared.consensus._admit import norm_text
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
from shared.eventtypes import CopyFinding, SourceReliabilityLearned
from shared.model import ClaimFacts
from shared.timeaxes import now_iso, parse_iso
from shared.values import MEASURE_RULE_PREFIX

claims_t = ClaimRow.__table__  # type: ignore[attr-defined]
mods_t = ModifierRow.__table__  # type: ignore[attr-defined]
events_t = EventRow.__table__  # type: ignore[attr-defined]

# The partition key of re-weighting events: they touch keys of every subject.
PARTITION_KEY = "claimledger:reliability"
# A score that moved by less than this share of itself is not re-sent: while claims keep
# arriving every run moves every score a little, and each score sent re-derives every key
# of its source; a 1 % move changes no decision worth that work, and the next run that
# finds a larger move sends it.
CHANGE = 0.01
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reweighing:
    learned: Reliability
    changed: dict[str, float]
    event: Event | None
    token: int | None


def observation_of(claim: ClaimFacts, published: str) -> Observation | None:
    """A claim the learner can judge: a point someone actually claimed, a number or a
    name. A measure's reading (its value's rule names the measure) is judged by the
    measure's decision rule, as the fusion does; a name by the plurality of names."""
    v = claim.value
    if claim.retracted or claim.modality == "denied":
        return None
    value: float | str
    if v.text is not None:
        if not v.text.strip():
            return None
        value = norm_text(v.text)
    elif v.best is None or v.best_derived or v.relative_to:
        return None
    else:
        value = float(v.best)
    return Observation(
        key=f"{claim.subject}\x1f{claim.attribute}",
        source_id=claim.source_id,
        value=value,
        origin=claim.attributed_to or claim.source_id,
        published=parse_iso(published).timestamp(),
        claim_id=claim.claim_id,
        prior=prior_weight(claim),
        rule=PLURALITY if v.rule.startswith(MEASURE_RULE_PREFIX) else MEDIAN_OR_MODE,
        rank=claim.rank,  # analysts' assessments are evidence: gold answers, known errors
        attribute=claim.attribute,
    )


def stored_observations(engine: Engine) -> list[Observation]:
    """Every stored claim as the analysts left it: retracted ones out, assessed ones with
    their rank (a preferred claim is a gold answer, a deprecated one a known error)."""
    out: list[Observation] = []
    with engine.connect() as conn:
        corrections = _corrections(conn)
        rows = conn.execute(
            select(claims_t.c.claim_id, claims_t.c.facts, claims_t.c.published_at).order_by(
                claims_t.c.claim_id
            )
        )
        for r in rows:
            claim = claim_from_dict(json.loads(r.facts))
            fix = corrections.get(r.claim_id)
            if fix is not None:
                claim = replace(claim, **fix)
            obs = observation_of(claim, r.published_at)
            if obs is not None:
                out.append(obs)
    return out


def _corrections(conn: Any) -> dict[str, dict[str, Any]]:
    """claim id -> the fields its retraction and latest assessment set (in effective
    order, as the reconciler applies them)."""
    out: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        select(mods_t.c.target, mods_t.c.kind, mods_t.c.data)
        .where(mods_t.c.kind.in_(("retraction", "assessment")))
        .order_by(mods_t.c.effective_at, mods_t.c.recorded_at, mods_t.c.event_id)
    )
    for r in rows:
        fix = out.setdefault(r.target, {})
        if r.kind == "retraction":
            fix["retracted"] = True
        elif rank := json.loads(r.data).get("rank"):
            fix["rank"] = rank
    return out


@dataclass(frozen=True, slots=True)
class Learned:
    """What the stored events say a source's learned state is now."""

    score: float = 1.0
    copy_of: str | None = None


def current_learned(engine: Engine) -> dict[str, Learned]:
    """The latest learned state per source (later effective time, then recorded, wins)."""
    out: dict[str, Learned] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(mods_t.c.target, mods_t.c.data)
            .where(mods_t.c.kind == "learned")
            .order_by(mods_t.c.effective_at, mods_t.c.recorded_at, mods_t.c.event_id)
        )
        for r in rows:
            data = json.loads(r.data)
            out[r.target] = Learned(float(data["score"]), data.get("copy_of"))
    return out


def current_scores(engine: Engine) -> dict[str, float]:
    return {s: learned.score for s, learned in current_learned(engine).items()}


def changed_scores(
    new: dict[str, float],
    old: dict[str, float],
    copies: dict[str, str] | None = None,
    old_copies: dict[str, str | None] | None = None,
) -> dict[str, float]:
    """Scores to send: moved sources, sources learned before that fell out (back to 1),
    and sources whose copy finding (copier -> original) appeared, moved or went."""
    out = {s: v for s, v in new.items() if _moved(v, old.get(s, 1.0))}
    for s, v in old.items():
        if s not in new and _moved(1.0, v):
            out[s] = 1.0
    copies, old_copies = copies or {}, old_copies or {}
    for s in {*copies, *(k for k, v in old_copies.items() if v)}:
        if copies.get(s) != old_copies.get(s):
            out[s] = new.get(s, 1.0)
    return dict(sorted(out.items()))


def _moved(new: float, old: float) -> bool:
    return abs(new - old) > CHANGE * max(abs(old), 1e-9)


def reliability_event(
    changed: dict[str, float], learned: Reliability, params: Params, recorded: str
) -> Event:
    run = stable_id("run_", json.dumps(changed, sort_keys=True), json.dumps(params.as_dict()))
    payload = SourceReliabilityLearned(
        scores=changed,
        # copier -> its finding (dependence.py), for the sources sent: the reconciler
        # joins a copier's claims with its original's where they agree
        copies={
            s: CopyFinding(f.original, f.probability, f.shared, f.shared_false)
            for s, f in sorted(learned.copies.items())
            if s in changed
        },
        method=METHOD,
        method_version=METHOD_VERSION,
        run_id=run,
        params=params.as_dict(),
        rounds=learned.rounds,
        converged=learned.converged,
        effective_at=recorded,
    )
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
    held = current_learned(engine)
    changed = changed_scores(
        learned.scores,
        {s: h.score for s, h in held.items()},
        {s: f.original for s, f in learned.copies.items()},
        {s: h.copy_of for s, h in held.items()},
    )
    if not changed:
        return Reweighing(learned, changed, None, None)
    event = reliability_event(changed, learned, params, now_iso())
    stream = stream_for(partition_of(PARTITION_KEY, partitions))
    token = append_events(engine, [event], [stream])
    return Reweighing(learned, changed, event, token)


def inputs_fingerprint(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever what the learner reads changes: claims stored, and the analysts'
    corrections (retractions, assessments, ratings) that exclude or grade them."""
    with engine.connect() as conn:
        claims = conn.execute(select(func.count(), func.max(claims_t.c.recorded_at))).one()
        mods = conn.execute(
            select(func.count(), func.max(mods_t.c.recorded_at)).where(mods_t.c.kind != "learned")
        ).one()
    return (*claims, *mods)


def applied(engine: Engine, event_id: str) -> bool:
    """Has the reconciler applied this event (it is in the event log)?"""
    with engine.connect() as conn:
        found = conn.execute(select(events_t.c.event_id).where(events_t.c.event_id == event_id))
        return found.first() is not None


def reweigh_in_worker(database_url: str, partitions: int) -> tuple[str | None, int]:
    """One run in a worker process (the learner is CPU-bound: in the service's own
    process it would hold the GIL for seconds and stall the HTTP path)."""
    from services.infra.db import make_engine

    engine = make_engine(database_url)
    try:
        done = reweigh(engine, partitions)
    finally:
        engine.dispose()
    return (done.event.event_id if done.event else None), len(done.changed)


async def reweigh_periodically(
    engine: Engine,
    database_url: str,
    partitions: int,
    every_s: float,
    appended: Callable[[], None],
    leading: Callable[[], bool] = lambda: True,
) -> None:
    """Learning on the live path (on by default, CLAIMLEDGER_REWEIGH_EVERY_S): every
    `every_s`, when claims or corrections changed since the last run, learn in a worker
    process, append when a score or a copy finding moved, tell the relay (`appended`).
    A failed run is logged and retried at the next tick; the learner is pure, so a run
    never half-applies. While claims keep arriving the pause stretches to twice the
    last run's duration, so learning takes at most a third of one core.

    `leading`: whether this process runs the deployment's learner, asked at every tick.
    Ingest passes its relay's publisher election (services/ingest/leader.py), so N ingest
    workers or replicas learn once, not N times over the same claims (each run appending
    its own event), and the standing-by ones never start a learning process."""
    import concurrent.futures
    import multiprocessing
    import os
    import time

    context = multiprocessing.get_context("spawn")  # no fork of a threaded event loop
    last: tuple[Any, ...] | None = None
    pending: str | None = None  # our last learning event, until the reconciler applied it
    pause = every_s
    from services.ingest.children import die_with_worker

    # a killed ingest (worker) takes its learning process along instead of leaving it running
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=context, initializer=die_with_worker, initargs=(os.getpid(),)
    ) as pool:
        while True:
            await asyncio.sleep(pause)
            if not leading():
                pause, last = every_s, None  # the publisher again later: learn at once then
                continue
            try:
                if pending is not None and not await asyncio.to_thread(applied, engine, pending):
                    # the reconciler is behind: a new step would be measured against the
                    # scores it has not applied yet (resending every change), and each
                    # step re-derives every key of the sources it moves. The chaos run's
                    # reconcilers never caught up while a step came every few minutes
                    pause = every_s
                    continue
                pending = None
                seen = await asyncio.to_thread(inputs_fingerprint, engine)
                if seen == last:
                    pause = every_s
                    continue
                started = time.monotonic()
                loop = asyncio.get_running_loop()
                event_id, changed = await loop.run_in_executor(
                    pool, reweigh_in_worker, database_url, partitions
                )
                last = seen
                pause = max(every_s, 2 * (time.monotonic() - started))
            except Exception:  # keep the service alive; the next tick retries
                log.exception("re-weighting failed")
                continue
            if event_id is not None:
                pending = event_id
                log.info("re-weighting appended %s (%d sources)", event_id, changed)
                appended()
