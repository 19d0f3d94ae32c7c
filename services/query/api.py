"""Query's HTTP entrypoints: current and point-in-time consensus, history, snapshots, SSE."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import unquote

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from services.infra.http import Problem, bearer_scopes, time_parameter
from services.infra.keys import KeyChecker
from services.query import answers, views
from services.query.stream import SEP, Fanout, StreamFilter, feed
from services.query.watermark import Watermark
from shared.attributes import AttributeRegistry, default_registry
from shared.positions import BadToken, Cursor, parse_token
from shared.staleness import judge
from shared.timeaxes import parse_iso, query_instant, segment_at


@dataclass
class QueryContext:
    engine: Engine
    min_token_wait_s: float = 5.0
    fanout: Fanout | None = None  # set by the lifespan; feeds every SSE subscriber
    watermark: Watermark | None = None  # set by the lifespan; shared by min_token waits
    stream_send_timeout_s: float = 30.0  # a stream whose client reads nothing this long ends
    subscribers: int = 0
    max_streams_per_client: int = 100  # 0: no limit
    streams_by_client: dict[str, int] = field(default_factory=dict)
    # set when CLAIMLEDGER_REQUIRE_READ_KEY is on: every /v1 read needs a key
    read_keys: KeyChecker | None = None
    # resolves a read by alias or other case ("death toll" -> killed)
    registry: AttributeRegistry = field(default_factory=default_registry)
    # attribute -> its label in the registry, added to the answers the web page reads
    labels: dict[str, str] = field(default_factory=dict)


def context(request: Request) -> QueryContext:
    ctx: QueryContext = request.app.state.query
    return ctx


Ctx = Annotated[QueryContext, Depends(context)]
READ_SCOPES = frozenset({"read", "write", "admin"})


STREAM_KEY_PARAM = "access_token"  # EventSource cannot send headers: the stream takes the key here


def require_read(request: Request, ctx: Ctx) -> None:
    """Reads are open unless configured; then any read, write or admin key may read."""
    if ctx.read_keys is None:
        return
    in_query = request.query_params.get(STREAM_KEY_PARAM)
    if (
        request.url.path.endswith("/v1/stream")
        and in_query
        and "authorization" not in request.headers
    ):
        scopes = ctx.read_keys.scopes(in_query)
        if scopes is None:
            raise Problem(401, "Invalid API key", headers={"WWW-Authenticate": "Bearer"})
    else:
        _, scopes = bearer_scopes(request, ctx.read_keys)
    if not scopes & READ_SCOPES:
        raise Problem(403, "This key may not read", "the key lacks the 'read' scope")


async def known_parameters(request: Request) -> None:
    """422 for a query parameter the route does not declare: a misspelt filter (`?q=`,
    `?subjet=`) silently ignored answers everything, which looks like a wrong answer."""
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem(
            422,
            "Unknown query parameter",
            f"this route takes {', '.join(sorted(known)) or 'no parameters'}",
            errors=[{"pointer": f"/{name}", "detail": "unknown parameter"} for name in unknown],
        )


_QUERY_NAMES: dict[int, frozenset[str]] = {}  # id(route) -> its names (routes live as long)


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters a route and its dependencies declare."""
    if id(route) in _QUERY_NAMES:
        return _QUERY_NAMES[id(route)]
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    _QUERY_NAMES[id(route)] = frozenset(names)
    return _QUERY_NAMES[id(route)]


router = APIRouter(
    prefix="/v1",
    tags=["query"],
    dependencies=[Depends(known_parameters), Depends(require_read)],
)

AsOf = Annotated[str | None, Query(description="publication time: reports published by then")]
RecordedAsOf = Annotated[str | None, Query(description="what claimledger showed at this time")]
ValidAt = Annotated[str | None, Query(description="world date the value is about")]
MinToken = Annotated[str | None, Query(description="wait until this write token is visible")]
Limit = Annotated[int, Query(ge=1, le=1000)]
MAX_POSITION = 2**63 - 1  # tokens, version ids and event ids are SQL BIGINTs
# ASCII digits only: str.isdigit() and int() also take other scripts' digits ("١٢", "²")
_POSITION = re.compile(r"[0-9]{1,19}")


def _position(name: str, value: str, detail: str) -> int:
    """A token or event id as sent back by a client: 0 to 2**63-1 in ASCII digits."""
    if _POSITION.fullmatch(value) and int(value) <= MAX_POSITION:
        return int(value)
    raise Problem(
        422,
        f"Invalid {name}",
        detail,
        errors=[{"pointer": f"/{name}", "detail": "not a number from 0 to 2**63-1"}],
    )


def _instant(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    moment, precision = time_parameter(name, value)
    return query_instant(moment, precision)


def _valid_day(value: str | None) -> date | None:
    if value is None:
        return None
    return time_parameter("valid_at", value)[0].date()


async def _token(ctx: QueryContext, min_token: str | None, subject: str | None = None) -> str:
    """Waits (bounded) until the write named by `min_token` is visible (to reads of
    `subject`'s keys when given: an event stuck on another subject does not hold it)."""
    wanted = None
    if min_token is not None:
        wanted = _position("min_token", min_token, "a token is what a write returned")
    if ctx.watermark is None:  # a context built without the lifespan (tests): poll alone
        return await _poll_token(ctx, wanted)
    if wanted is None:
        return str(await ctx.watermark.current())
    try:
        return str(await ctx.watermark.wait_for(wanted, ctx.min_token_wait_s, subject))
    except TimeoutError:
        raise _not_visible(ctx, wanted, ctx.watermark.value) from None


def _not_visible(ctx: QueryContext, wanted: int, mark: int) -> Problem:
    return Problem(
        504,
        "Write not visible yet",
        f"token {wanted} not applied within {ctx.min_token_wait_s}s (visible up to {mark}); retry",
        token=str(mark),
    )


async def _poll_token(ctx: QueryContext, wanted: int | None) -> str:
    deadline = time.monotonic() + ctx.min_token_wait_s
    while True:
        mark = await asyncio.to_thread(views.watermark, ctx.engine)
        if wanted is None or mark >= wanted:
            return str(mark)
        if time.monotonic() >= deadline:
            raise _not_visible(ctx, wanted, mark)
        await asyncio.sleep(0.01)


async def _consensus(
    ctx: QueryContext,
    subject: str,
    attribute: str,
    as_of: str | None,
    recorded_as_of: str | None,
    valid_at: str | None,
    min_token: str | None,
) -> dict[str, Any]:
    t, r, d = (
        _instant("as_of", as_of),
        _instant("recorded_as_of", recorded_as_of),
        _valid_day(valid_at),
    )
    token = await _token(ctx, min_token, subject)
    asked = attribute
    attribute = ctx.registry.canonical(attribute)
    view = await asyncio.to_thread(views.consensus, ctx.engine, subject, attribute, t, r)
    if view is None and attribute != asked:  # a key stored under an alias before #20
        attribute = asked
        view = await asyncio.to_thread(views.consensus, ctx.engine, subject, attribute, t, r)
    if view is None:
        known = await asyncio.to_thread(views.key_exists, ctx.engine, subject, attribute)
        detail = (
            f"no consensus for {subject!r}/{attribute!r} at that time"
            if known
            else f"no claims about {subject!r}/{attribute!r}"
        )
        raise Problem(404, "No consensus", detail, token=token)
    view = judge(view, _asked_at(t))
    view.update(token=token, as_of=as_of, recorded_as_of=recorded_as_of, valid_at=valid_at)
    _label(ctx, view)
    if d is not None:
        seg = segment_at(view["segments"], d)
        if seg is None:
            raise Problem(
                404,
                "No consensus for that world date",
                f"no claims about {subject!r}/{attribute!r} cover {d}",
                token=token,
            )
        # an answer at a date describes that date: its segment's values, status, support,
        # explanation and age, not the whole timeline's
        keys = ("low", "best", "high", "conservative", "status", "support", "dissent")
        view.update({k: seg.get(k) for k in keys})
        for k in ("explanation", "newest_support_at", "age_days", "fresh_status"):
            if k in seg:
                view[k] = seg[k]
            elif k == "fresh_status":
                view.pop(k, None)
        view["value"] = seg.get("text", view.get("value"))
        view["segment"] = seg
    return view


def _asked_at(as_of: str | None) -> datetime:
    """The time a reader asks about, for staleness: their as_of, else now."""
    return parse_iso(as_of) if as_of is not None else datetime.now(UTC)


@router.get("/consensus", response_model=answers.Consensus)
async def get_consensus_by_query(
    ctx: Ctx,
    subject: str,
    attribute: str,
    as_of: AsOf = None,
    recorded_as_of: RecordedAsOf = None,
    valid_at: ValidAt = None,
    min_token: MinToken = None,
) -> Response:
    """Same as /v1/consensus/{subject}/{attribute}, for keys easier sent as parameters."""
    return _answer(
        await _consensus(ctx, subject, attribute, as_of, recorded_as_of, valid_at, min_token)
    )


@router.get(
    "/consensus/{rest:path}",
    summary="Consensus of a key (or its /history)",
    response_model=answers.Consensus | answers.History,
)
async def get_consensus(
    request: Request,
    ctx: Ctx,
    rest: str,  # declared for OpenAPI; routing re-reads the raw path (encoded '/')
    as_of: AsOf = None,
    recorded_as_of: RecordedAsOf = None,
    valid_at: ValidAt = None,
    min_token: MinToken = None,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Limit = 100,
) -> Response:
    """`/v1/consensus/{subject}/{attribute}` and `.../history`.

    Subjects and attributes are percent-encoded; an encoded `/` stays inside its
    segment (routing uses the raw path, which the decoded path cannot do).
    """
    parts = _raw_segments(request, "/v1/consensus/")
    if len(parts) == 3 and parts[2] == "history":
        return _answer(await _history(ctx, parts[0], parts[1], after, limit))
    if len(parts) != 2 or not all(parts):
        raise Problem(404, "Not found", "use /v1/consensus/{subject}/{attribute}[/history]")
    return _answer(
        await _consensus(ctx, parts[0], parts[1], as_of, recorded_as_of, valid_at, min_token)
    )


_encode = msgspec.json.encode


def _answer(payload: dict[str, Any]) -> Response:
    """The answer as JSON, sent as is: the route's response_model documents it (OpenAPI)
    without FastAPI validating it through the model, which would filter or coerce fields
    (a 3 read as 3.0) and cost time on every read."""
    return Response(_encode(payload), media_type="application/json")


def _label(ctx: QueryContext, view: dict[str, Any]) -> dict[str, Any]:
    """Adds the attribute's registry label (None for an attribute not in the registry)."""
    view["attribute_label"] = ctx.labels.get(view["attribute"])
    return view


def _raw_segments(request: Request, prefix: str) -> list[str]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    rest = path[path.index(prefix) + len(prefix) :] if prefix in path else ""
    return [unquote(p) for p in rest.split("/")]


async def _history(
    ctx: QueryContext, subject: str, attribute: str, after: int, limit: int
) -> dict[str, Any]:
    token = await _token(ctx, None)
    items = await asyncio.to_thread(views.history, ctx.engine, subject, attribute, after, limit + 1)
    if not items and after == 0:
        raise Problem(404, "No consensus", f"no claims about {subject!r}/{attribute!r}")
    more = len(items) > limit
    items = [_label(ctx, item) for item in items[:limit]]
    return {
        "subject": subject,
        "attribute": attribute,
        "attribute_label": ctx.labels.get(attribute),
        "items": items,
        "token": token,
        "next_cursor": str(items[-1]["version"]) if more else None,
    }


@router.get("/snapshot", response_model=answers.Snapshot)
async def get_snapshot(
    ctx: Ctx,
    as_of: AsOf = None,
    recorded_as_of: RecordedAsOf = None,
    cursor: str | None = None,
    limit: Limit = 500,
    min_token: MinToken = None,
) -> Response:
    """Every key's consensus at one time, paginated by a stable (subject, attribute) cursor."""
    t, r = _instant("as_of", as_of), _instant("recorded_as_of", recorded_as_of)
    after = _decode_cursor(cursor)
    token = await _token(ctx, min_token)
    items = await asyncio.to_thread(views.snapshot, ctx.engine, t, r, after, limit + 1)
    more = len(items) > limit
    asked = _asked_at(t)
    items = [_label(ctx, judge(item, asked)) for item in items[:limit]]
    nxt = json.dumps([items[-1]["subject"], items[-1]["attribute"]]) if more else None
    return _answer(
        {
            "items": items,
            "next_cursor": nxt,
            "token": token,
            "as_of": as_of,
            "recorded_as_of": recorded_as_of,
        }
    )


def _decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        subject, attribute = json.loads(cursor)
        return str(subject), str(attribute)
    except (ValueError, TypeError) as exc:
        raise Problem(
            422,
            "Invalid cursor",
            "pass next_cursor back unchanged",
            errors=[{"pointer": "/cursor", "detail": "malformed"}],
        ) from exc


@router.get("/subjects", response_model=answers.Subjects)
async def get_subjects(
    ctx: Ctx,
    cursor: str | None = None,
    limit: Limit = 500,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="text in the subject key or label"),
    ] = None,
) -> Response:
    """Subjects with how many attributes each has; `q` keeps those whose key or label
    contains it (ignoring case)."""
    if q is None:
        items = await asyncio.to_thread(views.subjects, ctx.engine, cursor, limit + 1)
    else:
        items = await asyncio.to_thread(views.search_subjects, ctx.engine, q, cursor, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    published = await asyncio.to_thread(
        views.latest_publications, ctx.engine, [i["subject"] for i in items]
    )
    for item in items:
        item["published_at"] = published.get(item["subject"])
    return _answer({"items": items, "next_cursor": items[-1]["subject"] if more else None})


@router.get("/subjects/{subject:path}", response_model=answers.Subject)
async def get_subject(request: Request, ctx: Ctx, subject: str) -> Response:
    """A subject's attributes with their current consensus."""
    del subject  # declared for OpenAPI; the raw path keeps an encoded '/' inside the subject
    subject = "/".join(_raw_segments(request, "/v1/subjects/"))
    token = await _token(ctx, None)
    attrs = await asyncio.to_thread(views.subject_keys, ctx.engine, subject)
    if not attrs:
        raise Problem(404, "Unknown subject", f"no claims about {subject!r}")
    asked = _asked_at(None)
    attrs = [judge(a, asked) for a in attrs]
    return _answer(
        {
            "subject": subject,
            "subject_label": attrs[0].get("subject_label"),
            "attributes": [_label(ctx, a) for a in attrs],
            "token": token,
        }
    )


@router.get("/claims", response_model=answers.Claims)
async def get_claims(
    ctx: Ctx,
    subject: str | None = None,
    attribute: str | None = None,
    source: str | None = None,
    cursor: str | None = None,
    limit: Limit = 500,
) -> Response:
    """Claims as normalised, filtered by key and/or source."""
    items = await asyncio.to_thread(
        views.list_claims, ctx.engine, subject, attribute, source, cursor, limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return _answer({"items": items, "next_cursor": items[-1]["claim_id"] if more else None})


@router.get("/reports/{report_id:path}", response_model=answers.Report)
async def get_report(report_id: str, ctx: Ctx) -> Response:
    """A report as accepted, and whether all its events have been applied."""
    found = await asyncio.to_thread(views.report, ctx.engine, report_id)
    if found is None:
        raise Problem(404, "Unknown report", f"no report {report_id!r}")
    return _answer(found)


MAX_FILTER_VALUES = 100  # per filter: more is almost surely a mistake and costs memory


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request,
    ctx: Ctx,
    subject: Annotated[list[str] | None, Query()] = None,
    attribute: Annotated[list[str] | None, Query()] = None,
    since: str | None = None,
    snapshot: Annotated[
        bool, Query(description="first send the current version of each matching key")
    ] = False,
    access_token: Annotated[
        str | None,
        Query(
            alias=STREAM_KEY_PARAM,
            description="a read key, for clients that cannot send Authorization (EventSource)",
        ),
    ] = None,
) -> EventSourceResponse:
    """Server-sent consensus versions (`event: consensus`, `id:` = where to resume after it).

    Resumes after `Last-Event-ID` (or `since`) with no gap and no duplicate: the backlog
    is read from the stored versions, then it switches to live. A key that does not
    exist yet may be subscribed to. A subscriber that falls too far behind gets
    `event: resync` (its `id:` is where to resume) and the stream ends. With
    `snapshot=true` and no resume id, the current version of each matching key comes
    first (without `id:`), then the start id, then live versions."""
    del access_token  # checked by require_read
    resume = _resume_id(request, since)
    for name, values in (("subject", subject), ("attribute", attribute)):
        if len(values or []) > MAX_FILTER_VALUES:
            raise Problem(
                422,
                f"Too many {name} filters",
                f"at most {MAX_FILTER_VALUES} {name} values per stream",
                errors=[{"pointer": f"/{name}", "detail": "too many values"}],
            )
        for v in values or []:
            if not v or len(v) > 512 or any(ord(c) < 32 for c in v):
                raise Problem(
                    422, f"Invalid {name}", errors=[{"pointer": f"/{name}", "detail": "bad filter"}]
                )
    if ctx.fanout is None:
        raise Problem(503, "Streams unavailable", "the update fan-out is not running")
    client = request.client.host if request.client else "unknown"
    slot = _take_slot(ctx, client)  # no await between the check and the count
    flt = StreamFilter(frozenset(subject or ()), frozenset(attribute or ()))
    start = resume if resume is not None else ctx.fanout.position
    body = feed(
        ctx.fanout, start, flt, announce=resume is None, snapshot=snapshot and resume is None
    )
    return _CountedStream(
        slot,
        body,
        ping=15,
        sep=SEP,
        send_timeout=ctx.stream_send_timeout_s,
    )


def _resume_id(request: Request, since: str | None) -> Cursor | None:
    header = request.headers.get("last-event-id")
    if header is not None:
        return _place("Last-Event-ID", header, "send back an event id you received")
    if since is not None:
        return _place("since", since, "pass an event id or a version's position")
    return None


def _place(name: str, value: str, detail: str) -> Cursor:
    """A place in the update feed as sent back by a client (shared.positions)."""
    try:
        return parse_token(value)
    except BadToken as exc:
        raise Problem(
            422, f"Invalid {name}", detail, errors=[{"pointer": f"/{name}", "detail": str(exc)}]
        ) from None


class _Slot:
    """One open stream counted against its client's limit; released exactly once."""

    def __init__(self, ctx: QueryContext, client: str) -> None:
        self.ctx, self.client, self.open = ctx, client, True
        ctx.subscribers += 1
        ctx.streams_by_client[client] = ctx.streams_by_client.get(client, 0) + 1

    def release(self) -> None:
        if not self.open:
            return
        self.open = False
        self.ctx.subscribers -= 1
        left = self.ctx.streams_by_client.get(self.client, 1) - 1
        if left > 0:
            self.ctx.streams_by_client[self.client] = left
        else:
            self.ctx.streams_by_client.pop(self.client, None)


def _take_slot(ctx: QueryContext, client: str) -> _Slot:
    """Checks the per-client limit and counts the stream in one synchronous step: checked
    here and counted later (when the body starts), a burst got past the limit."""
    if 0 < ctx.max_streams_per_client <= ctx.streams_by_client.get(client, 0):
        raise Problem(
            429,
            "Too many streams",
            f"at most {ctx.max_streams_per_client} open streams per client",
            headers={"Retry-After": "5"},
        )
    return _Slot(ctx, client)


class _CountedStream(EventSourceResponse):
    """Frees its slot when the response ends, however it ends (even if never started)."""

    def __init__(self, slot: _Slot, body: AsyncGenerator[Any, None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self.slot, self.feed = slot, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()
            await self.feed.aclose()  # unsubscribes now, not whenever it is collected
