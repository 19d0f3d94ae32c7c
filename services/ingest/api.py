"""Ingest's HTTP entrypoints: translate requests into domain calls and outbox writes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.infra.http import (
    Problem,
    RateLimiter,
    bearer_scopes,
    busy_answer,
    json_pointer,
    problem_answer,
    time_parameter,
)
from services.infra.keys import KeyChecker, digest
from services.infra.logs import current_trace_id, new_trace_id, trace_id_from
from services.infra.observability import CLAIMS_ACCEPTED, REPORTS_ACCEPTED
from services.infra.tables import ClaimRow
from services.ingest import outbox
from services.ingest.commits import GroupCommit
from services.ingest.relay import Relay
from shared.attributes import AttributeRegistry
from shared.events import (
    CLAIM_ASSERTED,
    CLAIM_ASSESSED,
    CLAIM_RETRACTED,
    REPORT_RECEIVED,
    SCHEMA_VERSION,
    SOURCE_RATED,
    Event,
    event_from_json,
    partition_of,
    stable_id,
    stream_for,
)
from shared.eventtypes import ClaimAssessed, ClaimRetracted, Correction, SourceRated
from shared.reports import (
    MAX_CLAIMS_PER_REPORT,
    Name,
    Reliability,
    ReportIn,
    ReportProblem,
    canonical_report_json,
    hash_of_canonical,
    normalise_report_records,
    report_id_for,
)
from shared.timeaxes import iso, now_iso

if TYPE_CHECKING:
    from services.ingest.batches import BatchLanes

MAX_REPORTS_PER_BATCH = 1_000
log = logging.getLogger("claimledger.ingest")


@dataclass
class IngestContext:
    engine: Engine
    relay: Relay | None
    registry: AttributeRegistry
    keys: KeyChecker
    partitions: int
    tolerance: float
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    # how far in the future a report's published_at may be (clock skew, time zones)
    future_tolerance_s: float = 86_400.0
    # concurrent single posts share transactions (services/ingest/commits.py) when set
    commits: GroupCommit | None = None
    # where :batch requests run: this process, or a batch process (services/ingest/batches.py)
    batches: BatchLanes | None = None


async def context(request: Request) -> IngestContext:
    ctx: IngestContext = request.app.state.ingest
    return ctx


Ctx = Annotated[IngestContext, Depends(context)]


async def require_write(request: Request, ctx: Ctx) -> None:
    """Writes need a write-scoped key once any key has existed (services.infra.keys.KeyChecker).

    A configured rate limit then applies per key (per client address when auth is off).
    Async so the usual case (keys cached) costs no thread hop per request; a cache miss
    reads the keys table in a thread.
    """
    _, _, secret = request.headers.get("authorization", "").partition(" ")
    if ctx.keys.answers_from_memory(secret.strip() or None):
        _check_write(request, ctx)
    else:
        await asyncio.to_thread(_check_write, request, ctx)


def _check_write(request: Request, ctx: IngestContext) -> None:
    if not ctx.keys.keys_required():
        client = request.client.host if request.client else "unknown"
        ctx.limiter.check(f"ip:{client}")
        return
    secret, scopes = bearer_scopes(request, ctx.keys)
    if "write" not in scopes and "admin" not in scopes:
        raise Problem(403, "This key may not write", "the key lacks the 'write' scope")
    ctx.limiter.check(f"key:{digest(secret)}")


router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_write)])
# a report with more claims is normalised in a thread (a hop costs ~0.1 ms: small reports,
# the common case, stay inline for latency)
INLINE_CLAIMS = 200


class ClaimPlaced(BaseModel):
    """Where a claim went: its key, with the attribute as stored (canonical)."""

    claim_id: str
    subject: str
    attribute: str


class ReportAccepted(BaseModel):
    report_id: str
    claim_ids: list[str]
    claims: list[ClaimPlaced]
    recorded_at: str
    token: str


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportAccepted,
    responses={200: {"description": "identical retry"}, 409: {}, 413: {}, 422: {}},
)
async def post_report(report: ReportIn, ctx: Ctx, request: Request) -> JSONResponse:
    """Accept a report: its events are durable in the outbox before this answers 202."""
    return await accept_one(report, ctx, _trace_id(request))


async def accept_one(report: ReportIn, ctx: IngestContext, trace: str) -> JSONResponse:
    """The work of POST /v1/reports once the request is authorised and its body valid
    (the route above, and FastReports below)."""
    if report.extract or len(report.claims) > INLINE_CLAIMS:
        # the extraction rules, or normalising thousands of claims, take CPU time: the
        # event loop keeps answering
        item = await asyncio.to_thread(prepare_report, report, ctx, trace)
    else:
        item = prepare_report(report, ctx, trace)
    try:
        if ctx.commits is not None:
            accepted = await ctx.commits.accept(item)
        else:
            accepted = await asyncio.to_thread(outbox.accept_report, ctx.engine, item)
    except outbox.ReportConflict as exc:
        raise Problem(
            409,
            "Report id already used",
            f"report {exc} exists with other content",
            report_id=str(exc),
        ) from exc
    if ctx.relay is not None:
        ctx.relay.kick()
    if accepted.created:
        _count_accepted(accepted.response)
    _log_accepted(accepted.response, accepted.created)
    return JSONResponse(accepted.response, status_code=202 if accepted.created else 200)


def _count_accepted(response: dict[str, Any]) -> None:
    REPORTS_ACCEPTED.inc()
    CLAIMS_ACCEPTED.inc(len(response.get("claim_ids", ())))


def _log_accepted(response: dict[str, Any], created: bool) -> None:
    log.info(
        "report accepted" if created else "report retried",
        extra={
            "report_id": response.get("report_id"),
            "claims": len(response.get("claim_ids", ())),
            "token": response.get("token"),
        },
    )


REPORTS_PATH = "/v1/reports"


class FastReports:
    """POST /v1/reports served without FastAPI's routing, dependency and body layers.

    Single reports are the hot path (issue #21): at 64 connections those layers, not the
    report, took most of ingest's CPU (bench/RESULTS.md). This ASGI middleware sits inside
    RequestContext, BodyLimit and the latency metrics (services.infra.app.service_app's
    `innermost`), so ids, logs, size limits and metrics are theirs as for any route. It
    serves only the plain case, with the same functions as the route: a JSON body that
    decodes and validates as ReportIn, and a key answered from memory. Anything else goes
    to the app with the body replayed, and gets its answer (400s, 422s, schema errors)
    from there: one home for every error. The OpenAPI document still comes from the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # what FastAPI puts in scope["route"] for this path (metrics and logs name it)
        self.route = next(
            r
            for r in router.routes
            if isinstance(r, APIRoute) and r.path == REPORTS_PATH and "POST" in (r.methods or ())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != REPORTS_PATH:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away (or BodyLimit answered 413): nothing to say
        replay = _replaying(body, receive)
        report = self._plain_report(scope, body)
        if report is None:
            await self.app(scope, replay, send)
            return
        ctx: IngestContext = scope["app"].state.ingest
        request = Request(scope, replay)
        scope["route"] = self.route
        try:
            _check_write(request, ctx)
            response = await accept_one(report, ctx, _trace_id(request))
        except Problem as exc:
            response = problem_answer(exc)
        except (OperationalError, PoolTimeout) as exc:
            busy = busy_answer(exc)
            if busy is None:
                raise  # a 500, answered and logged by RequestContext as from the app
            response = busy
        await response(scope, replay, send)

    @staticmethod
    def _plain_report(scope: Scope, body: bytes) -> ReportIn | None:
        """The body as a ReportIn when this request is the plain case, else None."""
        content_type, secret = b"", ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                secret = value.decode("latin-1").partition(" ")[2].strip()
        if content_type.partition(b";")[0].strip().lower() != b"application/json":
            return None
        ctx: IngestContext = scope["app"].state.ingest
        if not ctx.keys.answers_from_memory(secret or None):
            return None  # the route reads the keys table in a thread
        try:
            # parsed as FastAPI does (JSON to Python, then the model in Python mode); what
            # msgspec refuses (NaN, huge integers, lone surrogates) takes the route's path
            return ReportIn.model_validate(msgspec.json.decode(body))
        except (msgspec.DecodeError, ValidationError, ValueError, TypeError, RecursionError):
            return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body, already read, given again first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BatchAnswer(BaseModel):
    results: list[dict[str, Any]]


@router.post("/reports:batch", response_model=BatchAnswer, responses={413: {}, 422: {}})
async def post_reports_batch(request: Request, ctx: Ctx) -> Response:
    """Accept many reports (a JSON array or NDJSON); each item gets its own result."""
    body, trace = await request.body(), _trace_id(request)
    # up to 8 MiB to parse, validate, store and answer: seconds of CPU, off the event loop
    # (in a thread, or in a process of ctx.batches when this process is busy with one)
    if ctx.batches is not None:
        done = await ctx.batches.accept(body, ctx, trace)
    else:
        done = await asyncio.to_thread(accept_batch, body, ctx, trace)
    if done.accepted and ctx.relay is not None:
        ctx.relay.kick()
    return Response(done.answer, media_type="application/json")


@dataclass(frozen=True, slots=True)
class BatchDone:
    """A :batch request's answer (JSON) and what it stored; picklable (batch processes)."""

    answer: bytes
    # (report_id, claims, token, created) of each report stored or answered as a retry
    accepted: list[tuple[str, int, str | None, bool]]
    recorded: bool = False  # counted and logged already (in this process)


def accept_batch(body: bytes, ctx: IngestContext, trace: str, *, record: bool = True) -> BatchDone:
    """The whole of a :batch request: parse, validate, store in one transaction, answer.

    `record`: count and log the accepted reports here (False in a batch process, whose
    caller records them: services/ingest/batches.py)."""
    items = _batch_items(body)
    results: list[dict[str, Any]] = [{} for _ in items]
    ready: list[tuple[int, outbox.Pending]] = []
    recorded = now_iso()  # one request, one recorded time
    for i, raw in enumerate(items):
        try:
            report = ReportIn.model_validate(raw)
            ready.append((i, prepare_report(report, ctx, trace, recorded)))
        except ValidationError as exc:
            results[i] = _item_problem(i, [(_pointer(e["loc"]), e["msg"]) for e in exc.errors()])
        except Problem as exc:
            errors = [(e["pointer"], e["detail"]) for e in exc.errors or []]
            results[i] = _item_problem(i, errors, exc.status)
    outcomes = outbox.accept_reports(ctx.engine, [p for _, p in ready])
    accepted: list[tuple[str, int, str | None, bool]] = []
    for (i, item), outcome in zip(ready, outcomes, strict=True):
        if isinstance(outcome, outbox.ReportConflict):
            results[i] = {
                "index": i,
                "status": 409,
                "report_id": item.report_id,
                "detail": "report_id exists with other content",
            }
        else:
            results[i] = {"index": i, "status": 202 if outcome.created else 200, **outcome.response}
            response = outcome.response
            token = response.get("token")
            accepted.append(
                (
                    str(response.get("report_id", item.report_id)),
                    len(response.get("claim_ids", ())),
                    None if token is None else str(token),
                    outcome.created,
                )
            )
    # msgspec: a 1,000-report answer is ~100k values; Starlette's json.dumps took 3% of :batch
    done = BatchDone(msgspec.json.encode({"results": results}), accepted)
    if record:
        record_accepted(done)
        return BatchDone(done.answer, done.accepted, recorded=True)
    return done


def record_accepted(done: BatchDone) -> None:
    """Metrics and log lines for a batch's accepted reports (once, in the serving process)."""
    if done.recorded:
        return
    # one increment per batch: in multiprocess mode (ingest workers) each is a file write
    created = [claims for _, claims, _, new in done.accepted if new]
    if created:
        REPORTS_ACCEPTED.inc(len(created))
        CLAIMS_ACCEPTED.inc(sum(created))
    for report_id, claims, token, created_now in done.accepted:
        log.info(
            "report accepted" if created_now else "report retried",
            extra={"report_id": report_id, "claims": claims, "token": token},
        )


class RetractionIn(BaseModel):
    reason: Name
    by: Name | None = None  # who retracts (shown with the reason)
    effective_at: Name | None = None


class AssessmentIn(BaseModel):
    reason: Name
    by: Name | None = None  # who assesses (shown with the reason)
    rank: Literal["preferred", "normal", "deprecated"] | None = None
    credibility: Annotated[int, Field(ge=1, le=6)] | None = None
    effective_at: Name | None = None


class RatingIn(BaseModel):
    reliability: Reliability
    rationale: Name
    effective_at: Name | None = None


class Written(BaseModel):
    event_id: str
    token: str
    recorded_at: str


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=256,
        description="a retry with the same key answers the first request's result",
    ),
]


@router.post(
    "/claims/{claim_id}/retraction",
    status_code=202,
    response_model=Written,
    responses={200: {"description": "identical retry"}, 409: {}, 422: {}},
)
async def retract_claim(
    claim_id: str, body: RetractionIn, ctx: Ctx, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Retract a claim from its effective time on (earlier as_of views keep it)."""
    data = body.model_dump(exclude=_unsaid(body.by))
    return await _modify_claim(
        ctx, claim_id, CLAIM_RETRACTED, data, body.effective_at, idempotency_key
    )


@router.post(
    "/claims/{claim_id}/assessment",
    status_code=202,
    response_model=Written,
    responses={200: {"description": "identical retry"}, 409: {}, 422: {}},
)
async def assess_claim(
    claim_id: str, body: AssessmentIn, ctx: Ctx, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record an analyst's rank and/or credibility for a claim."""
    if body.rank is None and body.credibility is None:
        raise Problem(
            422,
            "Nothing to assess",
            "give rank and/or credibility",
            errors=[{"pointer": "/rank", "detail": "rank or credibility is required"}],
        )
    data = body.model_dump(exclude=_unsaid(body.by))
    return await _modify_claim(
        ctx, claim_id, CLAIM_ASSESSED, data, body.effective_at, idempotency_key
    )


def _unsaid(by: str | None) -> set[str]:
    # without `by` the payload is what it was before `by` existed: same event id
    return {"effective_at"} if by is not None else {"effective_at", "by"}


@router.put(
    "/sources/{source_id:path}/rating",
    status_code=202,
    response_model=Written,
    responses={200: {"description": "identical retry"}, 409: {}, 422: {}},
)
async def rate_source(
    source_id: str, body: RatingIn, ctx: Ctx, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Rate a source's reliability (A-F) from its effective time on."""
    # ratings are partitioned by source: they touch every key the source has claims on
    target = CorrectionTarget(source_id, source_id, None, None)
    data = body.model_dump(exclude={"effective_at"})
    event, stream = correction_event(
        SOURCE_RATED,
        target,
        data,
        body.effective_at,
        partitions=ctx.partitions,
        idempotency_key=idempotency_key,
    )
    return await _write_correction(ctx, event, stream, body.effective_at is not None)


@dataclass(frozen=True, slots=True)
class CorrectionTarget:
    """What a correction is about: a claim (its key) or a source (partitioned by itself)."""

    target: str  # claim id or source id
    subject: str  # the partition key
    attribute: str | None
    report_id: str | None


_TARGET_FIELD = {CLAIM_RETRACTED: "claim_id", CLAIM_ASSESSED: "claim_id", SOURCE_RATED: "source_id"}
_CORRECTION: dict[str, type[Correction]] = {
    CLAIM_RETRACTED: ClaimRetracted,
    CLAIM_ASSESSED: ClaimAssessed,
    SOURCE_RATED: SourceRated,
}


def correction_event(
    kind: str,
    target: CorrectionTarget,
    data: dict[str, Any],
    effective_at: str | None,
    *,
    partitions: int,
    idempotency_key: str | None = None,
    recorded: str | None = None,
) -> tuple[Event, str]:
    """A retraction, assessment or rating as one event and its stream (422 on a bad time).

    The event id comes from the request, never from the clock: a retry of the same body
    (or with the same Idempotency-Key) names the same event, which the outbox stores once.
    """
    recorded = recorded or now_iso()
    if idempotency_key is not None:
        identity = ["idempotency-key", idempotency_key]
    else:
        identity = ["body", json.dumps({**data, "effective_at": effective_at}, sort_keys=True)]
    # the Struct's fields are in this dict's order: the JSON is the one written before
    fields: dict[str, Any] = {**data, _TARGET_FIELD[kind]: target.target}
    payload = _CORRECTION[kind](**fields, effective_at=_effective(effective_at, recorded))
    event = Event(
        stable_id("e_", kind, target.target, *identity),
        kind,
        SCHEMA_VERSION,
        recorded,
        target.report_id,
        payload,
        subject=target.subject,
        attribute=target.attribute,
        trace_id=current_trace_id(),
    )
    return event, stream_for(partition_of(target.subject, partitions))


async def _modify_claim(
    ctx: IngestContext,
    claim_id: str,
    kind: str,
    data: dict[str, Any],
    effective_at: str | None,
    idempotency_key: str | None,
) -> JSONResponse:
    found = await asyncio.to_thread(_claim_key, ctx.engine, claim_id)
    if found is None:
        raise Problem(404, "Unknown claim", f"no applied claim {claim_id}")
    subject, attribute, report_id = found
    target = CorrectionTarget(claim_id, subject, attribute, report_id)
    event, stream = correction_event(
        kind,
        target,
        data,
        effective_at,
        partitions=ctx.partitions,
        idempotency_key=idempotency_key,
    )
    return await _write_correction(ctx, event, stream, effective_at is not None)


async def _write_correction(
    ctx: IngestContext, event: Event, stream: str, effective_given: bool
) -> JSONResponse:
    """202 with the new event; 200 with the first answer when the event is already stored."""
    token, body = await asyncio.to_thread(_append_once, ctx.engine, event, stream)
    if ctx.relay is not None:
        ctx.relay.kick()
    created = body == event.to_json()  # else the first request's event (time, trace id)
    stored = event_from_json(body)
    if not created and not _same_request(stored, event, effective_given):
        raise Problem(
            409,
            "Idempotency-Key already used",
            "this Idempotency-Key was sent before with another body",
            event_id=stored.event_id,
        )
    answer = {"event_id": stored.event_id, "token": str(token), "recorded_at": stored.recorded_at}
    return JSONResponse(answer, status_code=202 if created else 200)


def _same_request(stored: Event, event: Event, effective_given: bool) -> bool:
    """A retry when everything the client sent is equal (a default effective_at is the
    first request's time, so it is compared only when the client gave one)."""
    first, again = stored.payload, event.payload
    if not isinstance(first, Correction) or not isinstance(again, Correction):
        return False
    if not effective_given and type(again) is type(first):
        again = msgspec.structs.replace(again, effective_at=first.effective_at)
    return stored.type == event.type and first == again


def _append_once(engine: Engine, event: Event, stream: str) -> tuple[int, str]:
    """The event's token and its stored body (this one's, or the first of its id's)."""
    # IntegrityError: a concurrent identical request inserted it between check and insert
    with contextlib.suppress(IntegrityError):
        outbox.append_events(engine, [event], [stream])
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.outbox.c.seq, outbox.outbox.c.body).where(
                outbox.outbox.c.event_id == event.event_id
            )
        ).one()
    return int(row.seq), str(row.body)


def _effective(value: str | None, recorded: str) -> str:
    if value is None:
        return recorded
    return iso(time_parameter("effective_at", value)[0])


def _claim_key(engine: Engine, claim_id: str) -> tuple[str, str, str] | None:
    claims = ClaimRow.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(
            select(claims.c.subject, claims.c.attribute, claims.c.report_id).where(
                claims.c.claim_id == claim_id
            )
        ).first()
    return (row.subject, row.attribute, row.report_id) if row else None


def prepare_report(
    report: ReportIn, ctx: IngestContext, trace_id: str | None, recorded: str | None = None
) -> outbox.Pending:
    """`recorded`: the request's recorded time (a batch stamps all its reports with one, so
    the reconciler revises each key once for the batch: services/reconcile/store.py)."""
    if len(report.claims) > MAX_CLAIMS_PER_REPORT:
        raise Problem(
            413,
            "Too many claims",
            f"at most {MAX_CLAIMS_PER_REPORT} claims per report",
            errors=[{"pointer": "/claims", "detail": f"limit {MAX_CLAIMS_PER_REPORT}"}],
        )
    body = report.model_dump(mode="json", exclude_none=True)
    canonical = canonical_report_json(report, body)
    body_hash = hash_of_canonical(canonical)
    report_id = report_id_for(report, body_hash)
    try:
        published_at, claims = normalise_report_records(
            report,
            report_id,
            ctx.registry,
            tolerance=ctx.tolerance,
            future_tolerance_s=ctx.future_tolerance_s,
        )
    except ReportProblem as exc:
        errors = [{"pointer": p, "detail": d} for p, d in exc.errors]
        raise Problem(
            422, "Invalid report", f"{errors[0]['pointer']}: {errors[0]['detail']}", errors=errors
        ) from exc
    recorded = recorded or now_iso()
    labels = {c.subject: c.subject_label for c in report.claims if c.subject_label}
    meta = {k: v for k, v in body.items() if k not in ("claims", "text")}
    claim_ids = [c["claim_id"] for c in claims]
    received_id = stable_id("e_", report_id, REPORT_RECEIVED)
    received = {
        **meta,
        "report_id": report_id,
        "published_at": iso(published_at),
        "claim_ids": claim_ids,
    }
    # each event encoded once, here, before the outbox transaction; no Event objects (the
    # Pending's `events` decodes them when asked): 2 us a claim (issue #21)
    event_ids = [received_id]
    events_json = [
        event_json(
            received_id, REPORT_RECEIVED, recorded, report_id, received, None, None, trace_id
        )
    ]
    streams = [stream_for(partition_of(report_id, ctx.partitions))]
    for claim in claims:
        claim_id, subject = claim["claim_id"], claim["subject"]
        # stable_id("e_", claim_id, CLAIM_ASSERTED), spelled out (a hot line: see _claim_parts)
        event_id = "e_" + sha256(f"{claim_id}\x1f{CLAIM_ASSERTED}".encode()).hexdigest()[:26]
        event_ids.append(event_id)
        events_json.append(
            event_json(
                event_id,
                CLAIM_ASSERTED,
                recorded,
                report_id,
                {"claim": claim, "subject_label": labels.get(subject)},
                subject,
                claim["attribute"],
                trace_id,
            )
        )
        streams.append(_stream_of(subject, ctx.partitions))
    response = {
        "report_id": report_id,
        "claim_ids": list(claim_ids),
        "claims": [
            {"claim_id": c["claim_id"], "subject": c["subject"], "attribute": c["attribute"]}
            for c in claims
        ],
        "recorded_at": recorded,
    }
    return outbox.Pending(
        report_id, body_hash, body, event_ids, streams, response, canonical, events_json
    )


_encode_event = msgspec.json.Encoder().encode


def event_json(
    event_id: str,
    kind: str,
    recorded: str,
    report_id: str | None,
    payload: dict[str, Any],
    subject: str | None,
    attribute: str | None,
    trace_id: str | None,
) -> str:
    """`Event(...).to_json()` of a new event (no seq yet), without the Event: the same keys
    in the same order (tests/unit/test_ingest_events.py holds them equal)."""
    return _encode_event(
        {
            "event_id": event_id,
            "type": kind,
            "schema_version": SCHEMA_VERSION,
            "recorded_at": recorded,
            "report_id": report_id,
            "seq": None,
            "subject": subject,
            "attribute": attribute,
            "trace_id": trace_id,
            "payload": payload,
        }
    ).decode()


@functools.lru_cache(maxsize=65_536)
def _stream_of(subject: str, partitions: int) -> str:
    # a feed's subjects repeat: their stream is computed once (pure: crc32 of the subject)
    return stream_for(partition_of(subject, partitions))


def _batch_items(raw: bytes) -> list[Any]:
    try:
        text = raw.decode("utf-8").strip()
        if text.startswith("["):
            items = _loads(text)
        else:
            # NDJSON lines end at "\n" only: str.splitlines() also splits at U+2028, U+0085
            # and others, which JSON strings may hold unescaped
            items = [_loads(line) for line in text.split("\n") if line.strip()]
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; nesting too deep
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise Problem(
            422,
            "Malformed batch",
            f"not a JSON array or NDJSON in UTF-8: {detail}",
            errors=[{"pointer": "/", "detail": detail}],
        ) from None
    if not isinstance(items, list) or not items:
        raise Problem(422, "Empty batch", errors=[{"pointer": "/", "detail": "no reports"}])
    if len(items) > MAX_REPORTS_PER_BATCH:
        raise Problem(
            413,
            "Batch too large",
            f"at most {MAX_REPORTS_PER_BATCH} reports per batch",
            errors=[{"pointer": "/", "detail": f"limit {MAX_REPORTS_PER_BATCH}"}],
        )
    return items


def _loads(text: str) -> Any:
    """json.loads(text), by msgspec where it reads the text the same (3x faster, issue #21);
    what msgspec refuses (NaN, 1e400, lone surrogates) json reads, or refuses, as before."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:  # also its ValidationError (numbers out of range)
        return json.loads(text)


def _item_problem(index: int, errors: list[tuple[str, str]], status: int = 422) -> dict[str, Any]:
    return {
        "index": index,
        "status": status,
        "errors": [{"pointer": p, "detail": d} for p, d in errors],
    }


def _pointer(loc: tuple[Any, ...]) -> str:
    return json_pointer(("body", *loc))


def _trace_id(request: Request) -> str:
    """The request's trace id (set by infra.logs.RequestContext), for the events' envelopes.

    Outside that middleware (an app built without it) the headers are read the same way.
    """
    return current_trace_id() or trace_id_from(request.headers) or new_trace_id()
