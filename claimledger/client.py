"""HTTP clients for claimledger's ingest and query services (sync and async, on httpx).

Both clients build the same requests (`_Calls`) and differ only in how they send them.
Every call retries, with bounded exponential backoff and jitter, on 429, on 5xx and on
connection errors, and honours `Retry-After`. Writes that are not idempotent on the server
(retraction, assessment, rating: each retry would be a new event) are retried only when the
request cannot have been processed: 429, 503, or a connection that was never established.
A 4xx answer raises `ClaimledgerError` carrying the problem+json body.

Lists are iterators that follow `next_cursor` by themselves; `subscribe` is an iterator
over server-sent `consensus` events that reconnects with `Last-Event-ID` after errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from shared.reports import ReportIn

JSON: TypeAlias = dict[str, Any]
ReportLike: TypeAlias = ReportIn | Mapping[str, Any]
TimeLike: TypeAlias = str | date | datetime
Filter: TypeAlias = str | Sequence[str] | None
Rank: TypeAlias = Literal["preferred", "normal", "deprecated"]
Reliability: TypeAlias = Literal["A", "B", "C", "D", "E", "F"]

DEFAULT_INGEST_URL = "http://127.0.0.1:8001"
DEFAULT_QUERY_URL = "http://127.0.0.1:8002"
MAX_BATCH = 1000  # the server's limit per POST /v1/reports:batch
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SAFE_RETRY_STATUSES = frozenset({429, 503})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_USER_AGENT = "claimledger-python/0.1.0"


class ClaimledgerError(Exception):
    """A 4xx answer (or a 5xx that outlasted the retries), with its problem+json body.

    `status` is the HTTP status; `problem` the RFC 9457 body (`title`, `detail`, and for
    validation errors `errors`: a list of `{pointer, detail}`).
    """

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem: JSON = dict(problem)
        title = self.problem.get("title") or "HTTP error"
        detail = self.problem.get("detail")
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))

    @property
    def title(self) -> str | None:
        title = self.problem.get("title")
        return str(title) if title is not None else None

    @property
    def detail(self) -> str | None:
        detail = self.problem.get("detail")
        return str(detail) if detail is not None else None

    @property
    def errors(self) -> list[JSON]:
        errors = self.problem.get("errors")
        return list(errors) if isinstance(errors, list) else []


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait: `retries` after the first attempt, exponential
    backoff from `backoff_s` capped at `max_backoff_s` with jitter; a `Retry-After` answer
    is honoured up to `max_retry_after_s`."""

    retries: int = 5
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        cap = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        return cap / 2 + random.uniform(0, cap / 2)


@dataclass(frozen=True, slots=True)
class _Call:
    service: Literal["ingest", "query"]
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    idempotent: bool = True


def _seg(text: str) -> str:
    """One percent-encoded path segment (an encoded `/` stays in its segment)."""
    encoded = quote(text, safe="")
    # "." and ".." would be removed as dot-segments by URL normalisation
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _time(value: TimeLike | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _filter(value: Filter) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _retry_after(
    response: httpx.Response, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds the server asks to wait: a number, or an HTTP date measured from `now()`."""
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return float(header)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def _problem(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {
        "title": response.reason_phrase or "HTTP error",
        "status": response.status_code,
        "detail": response.text[:500],
    }


def _result(response: httpx.Response) -> JSON:
    if response.status_code >= 400:
        raise ClaimledgerError(response.status_code, _problem(response))
    body = response.json()
    if not isinstance(body, dict):
        raise ClaimledgerError(response.status_code, {"title": "Unexpected answer", "body": body})
    return body


def _retry_delay(
    call: _Call,
    policy: RetryPolicy,
    attempt: int,
    response: httpx.Response | None = None,
    error: httpx.TransportError | None = None,
) -> float | None:
    """Seconds to wait before retrying, or None when the outcome is final."""
    if attempt >= policy.retries:
        return None
    if error is not None:
        if call.idempotent or isinstance(error, _NOT_SENT):
            return policy.delay(attempt)
        return None
    assert response is not None
    statuses = _RETRY_STATUSES if call.idempotent else _SAFE_RETRY_STATUSES
    if response.status_code in statuses:
        return policy.delay(attempt, _retry_after(response))
    return None


_BRANCH_LABELS = {"int", "float", "str", "ValueIn", "ValidTimeIn", "list[...]"}


def _pointer(loc: Sequence[int | str]) -> str:
    parts = [
        str(p)
        for p in loc
        if not (
            isinstance(p, str)
            and (p in _BRANCH_LABELS or "[" in p or p.startswith(("constrained-", "json-or")))
        )
    ]
    return "/" + "/".join(parts)


def _report_body(report: ReportLike, *, validate: bool) -> Any:
    """The JSON to send; a mapping is checked against `ReportIn` first when `validate`."""
    if isinstance(report, ReportIn):
        return report.model_dump(mode="json", exclude_none=True)
    body = to_jsonable_python(dict(report))
    if validate:
        try:
            ReportIn.model_validate(body)
        except ValidationError as exc:
            errors = [{"pointer": _pointer(e["loc"]), "detail": e["msg"]} for e in exc.errors()]
            raise ClaimledgerError(
                422,
                {
                    "type": "about:blank",
                    "title": "Invalid report",
                    "status": 422,
                    "detail": f"{errors[0]['pointer']}: {errors[0]['detail']} (checked locally)",
                    "errors": errors,
                },
            ) from exc
    return body


def _stream_params(subject: Filter, attribute: Filter) -> dict[str, Any]:
    return _params(subject=_filter(subject), attribute=_filter(attribute))


class _SSEParser:
    """text/event-stream, line by line (WHATWG rules): `event:`, `data:` (joined by
    newlines), `id:` (remembered even on events without data), `retry:`, `:` comments."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        """Returns (event type, data) when `line` completes an event."""
        if not line:
            if self._id is not None:
                self.last_id = self._id
            event, data = self._event or "message", self._data
            self._event, self._data = "", []
            return (event, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class _Calls:
    """What each operation sends, shared by `Client` and `AsyncClient`."""

    @staticmethod
    def report(report: ReportLike) -> _Call:
        return _Call("ingest", "POST", "/v1/reports", body=_report_body(report, validate=True))

    @staticmethod
    def batch(items: list[Any]) -> _Call:
        return _Call("ingest", "POST", "/v1/reports:batch", body=items)

    @staticmethod
    def retract(claim_id: str, reason: str, effective_at: TimeLike | None) -> _Call:
        body = _params(reason=reason, effective_at=_time(effective_at))
        path = f"/v1/claims/{_seg(claim_id)}/retraction"
        return _Call("ingest", "POST", path, body=body, idempotent=False)

    @staticmethod
    def assess(
        claim_id: str,
        reason: str,
        rank: Rank | None,
        credibility: int | None,
        effective_at: TimeLike | None,
    ) -> _Call:
        body = _params(
            reason=reason, rank=rank, credibility=credibility, effective_at=_time(effective_at)
        )
        path = f"/v1/claims/{_seg(claim_id)}/assessment"
        return _Call("ingest", "POST", path, body=body, idempotent=False)

    @staticmethod
    def rate(
        source_id: str, reliability: Reliability, rationale: str, effective_at: TimeLike | None
    ) -> _Call:
        body = _params(
            reliability=reliability, rationale=rationale, effective_at=_time(effective_at)
        )
        path = f"/v1/sources/{_seg(source_id)}/rating"
        return _Call("ingest", "PUT", path, body=body, idempotent=False)

    @staticmethod
    def consensus(
        subject: str,
        attribute: str,
        as_of: TimeLike | None,
        recorded_as_of: TimeLike | None,
        valid_at: TimeLike | None,
        min_token: str | int | None,
    ) -> _Call:
        params = _params(
            as_of=_time(as_of),
            recorded_as_of=_time(recorded_as_of),
            valid_at=_time(valid_at),
            min_token=None if min_token is None else str(min_token),
        )
        path = f"/v1/consensus/{_seg(subject)}/{_seg(attribute)}"
        return _Call("query", "GET", path, params=params)

    @staticmethod
    def history(subject: str, attribute: str, page_size: int) -> _Call:
        path = f"/v1/consensus/{_seg(subject)}/{_seg(attribute)}/history"
        return _Call("query", "GET", path, params={"limit": page_size})

    @staticmethod
    def snapshot(
        as_of: TimeLike | None,
        recorded_as_of: TimeLike | None,
        min_token: str | int | None,
        page_size: int,
    ) -> _Call:
        params = _params(
            as_of=_time(as_of),
            recorded_as_of=_time(recorded_as_of),
            min_token=None if min_token is None else str(min_token),
            limit=page_size,
        )
        return _Call("query", "GET", "/v1/snapshot", params=params)

    @staticmethod
    def subjects(page_size: int) -> _Call:
        return _Call("query", "GET", "/v1/subjects", params={"limit": page_size})

    @staticmethod
    def subject(subject: str) -> _Call:
        return _Call("query", "GET", f"/v1/subjects/{_seg(subject)}")

    @staticmethod
    def claims(subject: str | None, attribute: str | None, source: str | None, size: int) -> _Call:
        params = _params(subject=subject, attribute=attribute, source=source, limit=size)
        return _Call("query", "GET", "/v1/claims", params=params)

    @staticmethod
    def get_report(report_id: str) -> _Call:
        return _Call("query", "GET", f"/v1/reports/{_seg(report_id)}")


def _next_page(call: _Call, page: JSON, cursor_param: str) -> _Call | None:
    cursor = page.get("next_cursor")
    if cursor is None:
        return None
    return replace(call, params={**(call.params or {}), cursor_param: cursor})


def _chunks(reports: Iterable[ReportLike], size: int) -> Iterator[list[Any]]:
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"chunk_size must be between 1 and {MAX_BATCH}")
    chunk: list[Any] = []
    for report in reports:
        chunk.append(_report_body(report, validate=False))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _reindexed(results: list[JSON], offset: int) -> list[JSON]:
    return [{**r, "index": offset + int(r.get("index", i))} for i, r in enumerate(results)]


class _Base:
    def __init__(
        self,
        ingest_url: str,
        query_url: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff_s: float,
        max_backoff_s: float,
    ) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.query_url = query_url.rstrip("/")
        self.timeout = timeout
        self.retry = RetryPolicy(retries=retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        self._headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def _stream_headers(self, last_id: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        return headers

    def _reconnect_delay(self, failures: int, retry_ms: int | None, hint: float | None) -> float:
        if hint is not None:
            return self.retry.delay(0, hint)
        base = RetryPolicy(
            backoff_s=max(self.retry.backoff_s, (retry_ms or 0) / 1000),
            max_backoff_s=self.retry.max_backoff_s,
        )
        return base.delay(max(failures - 1, 0))


class Client(_Base):
    """Synchronous client. Use as a context manager, or call `close()`.

    `ingest_url` takes writes, `query_url` reads; `api_key` is sent as
    `Authorization: Bearer <key>`; `timeout` (seconds) applies to each request;
    `retries`, `backoff_s` and `max_backoff_s` bound the retrying.
    """

    def __init__(
        self,
        ingest_url: str = DEFAULT_INGEST_URL,
        query_url: str = DEFAULT_QUERY_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 5,
        backoff_s: float = 0.25,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(ingest_url, query_url, api_key, timeout, retries, backoff_s, max_backoff_s)
        self._http = {
            name: httpx.Client(base_url=url, headers=self._headers, timeout=timeout)
            for name, url in (("ingest", self.ingest_url), ("query", self.query_url))
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for http in self._http.values():
            http.close()

    def _send(self, call: _Call) -> JSON:
        attempt = 0
        while True:
            try:
                response = self._http[call.service].request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                delay = _retry_delay(call, self.retry, attempt, error=exc)
                if delay is None:
                    raise
            else:
                delay = _retry_delay(call, self.retry, attempt, response=response)
                if delay is None:
                    return _result(response)
            time.sleep(delay)
            attempt += 1

    def _pages(self, call: _Call, cursor_param: str = "cursor") -> Iterator[JSON]:
        page_call: _Call | None = call
        while page_call is not None:
            page = self._send(page_call)
            yield from page["items"]
            page_call = _next_page(page_call, page, cursor_param)

    # -- writes ------------------------------------------------------------------------

    def post_report(self, report: ReportLike) -> JSON:
        """POST /v1/reports: `{report_id, claim_ids, recorded_at, token}`.

        A mapping is checked against `ReportIn` before it is sent (a local 422).
        Posting the same report again answers the same body (safe to retry).
        """
        return self._send(_Calls.report(report))

    def post_reports(self, reports: Iterable[ReportLike], chunk_size: int = 500) -> list[JSON]:
        """POST /v1/reports:batch in chunks; every item's result, in input order.

        Each result has `index` (position in `reports`), `status` (202 new, 200 identical
        retry, 409 conflict, 422 invalid with `errors`) and, when accepted, the ids.
        A chunk the server finds too large (413) is split and sent again.
        """
        results: list[JSON] = []
        for chunk in _chunks(reports, chunk_size):
            results.extend(self._post_chunk(chunk, len(results)))
        return results

    def _post_chunk(self, items: list[Any], offset: int) -> list[JSON]:
        try:
            page = self._send(_Calls.batch(items))
        except ClaimledgerError as exc:
            if exc.status != 413 or len(items) < 2:
                raise
            half = len(items) // 2
            return self._post_chunk(items[:half], offset) + self._post_chunk(
                items[half:], offset + half
            )
        return _reindexed(page["results"], offset)

    def retract(self, claim_id: str, reason: str, effective_at: TimeLike | None = None) -> JSON:
        """Retract a claim (from `effective_at`, default now): `{event_id, token, recorded_at}`."""
        return self._send(_Calls.retract(claim_id, reason, effective_at))

    def assess(
        self,
        claim_id: str,
        reason: str,
        rank: Rank | None = None,
        credibility: int | None = None,
        effective_at: TimeLike | None = None,
    ) -> JSON:
        """Record an analyst's rank (preferred/normal/deprecated) and/or credibility (1-6)."""
        return self._send(_Calls.assess(claim_id, reason, rank, credibility, effective_at))

    def rate_source(
        self,
        source_id: str,
        reliability: Reliability,
        rationale: str,
        effective_at: TimeLike | None = None,
    ) -> JSON:
        """Rate a source's reliability A-F (from `effective_at`, default now)."""
        return self._send(_Calls.rate(source_id, reliability, rationale, effective_at))

    # -- reads -------------------------------------------------------------------------

    def consensus(
        self,
        subject: str,
        attribute: str,
        *,
        as_of: TimeLike | None = None,
        recorded_as_of: TimeLike | None = None,
        valid_at: TimeLike | None = None,
        min_token: str | int | None = None,
    ) -> JSON:
        """The consensus of one key, now or at a point on any of the three time axes."""
        return self._send(
            _Calls.consensus(subject, attribute, as_of, recorded_as_of, valid_at, min_token)
        )

    def history(self, subject: str, attribute: str, *, page_size: int = 100) -> Iterator[JSON]:
        """Every version of a key, oldest first (pages are fetched as you iterate)."""
        return self._pages(_Calls.history(subject, attribute, page_size), "after")

    def snapshot(
        self,
        as_of: TimeLike | None = None,
        recorded_as_of: TimeLike | None = None,
        *,
        min_token: str | int | None = None,
        page_size: int = 500,
    ) -> Iterator[JSON]:
        """Every key's consensus at one time, ordered by (subject, attribute)."""
        return self._pages(_Calls.snapshot(as_of, recorded_as_of, min_token, page_size))

    def subjects(self, *, page_size: int = 500) -> Iterator[JSON]:
        """Every subject with its number of attributes."""
        return self._pages(_Calls.subjects(page_size))

    def subject(self, subject: str) -> JSON:
        """One subject with the current consensus of each of its attributes."""
        return self._send(_Calls.subject(subject))

    def claims(
        self,
        subject: str | None = None,
        attribute: str | None = None,
        source: str | None = None,
        *,
        page_size: int = 500,
    ) -> Iterator[JSON]:
        """Claims as normalised, filtered by subject, attribute and/or source id."""
        return self._pages(_Calls.claims(subject, attribute, source, page_size))

    def report(self, report_id: str) -> JSON:
        """A report as accepted, with `applied: true` once all its events are applied."""
        return self._send(_Calls.get_report(report_id))

    def subscribe(
        self,
        subject: Filter = None,
        attribute: Filter = None,
        since: str | int | None = None,
        *,
        read_timeout_s: float = 45.0,
        max_reconnects: int | None = None,
    ) -> Iterator[JSON]:
        """New consensus versions as they are made (GET /v1/stream, server-sent events).

        Starts after event id `since` (a version's `position`), or at the present. After a
        disconnect or error it reconnects with `Last-Event-ID`, so the server resumes right
        after the last version yielded: none is lost or repeated. `max_reconnects`
        consecutive failures (default: unbounded) end it by raising the last error.
        """
        params = _stream_params(subject, attribute)
        last_id = None if since is None else str(since)
        timeout = httpx.Timeout(self.timeout, read=read_timeout_s)
        failures = 0
        retry_ms: int | None = None
        while True:
            parser = _SSEParser()
            error: Exception | None = None
            hint: float | None = None
            try:
                with self._http["query"].stream(
                    "GET",
                    "/v1/stream",
                    params=params,
                    headers=self._stream_headers(last_id),
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        if response.status_code not in _RETRY_STATUSES:
                            raise ClaimledgerError(response.status_code, _problem(response))
                        error = ClaimledgerError(response.status_code, _problem(response))
                        hint = _retry_after(response)
                    else:
                        failures = 0
                        for line in response.iter_lines():
                            event = parser.feed(line)
                            last_id = parser.last_id or last_id
                            if event is not None and event[0] == "consensus":
                                yield json.loads(event[1])
            except httpx.TransportError as exc:
                error = exc
            finally:
                retry_ms = parser.retry_ms or retry_ms
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                if error is not None:
                    raise error
                return
            time.sleep(self._reconnect_delay(failures, retry_ms, hint))


class AsyncClient(_Base):
    """Asynchronous client, the same operations as `Client` (`await`, `async for`).

    Use as `async with AsyncClient(...) as client:`, or call `await client.aclose()`.
    """

    def __init__(
        self,
        ingest_url: str = DEFAULT_INGEST_URL,
        query_url: str = DEFAULT_QUERY_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 5,
        backoff_s: float = 0.25,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(ingest_url, query_url, api_key, timeout, retries, backoff_s, max_backoff_s)
        self._http = {
            "ingest": httpx.AsyncClient(
                base_url=self.ingest_url, headers=self._headers, timeout=timeout
            ),
            "query": httpx.AsyncClient(
                base_url=self.query_url, headers=self._headers, timeout=timeout
            ),
        }

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in self._http.values():
            await http.aclose()

    async def _send(self, call: _Call) -> JSON:
        attempt = 0
        while True:
            try:
                response = await self._http[call.service].request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                delay = _retry_delay(call, self.retry, attempt, error=exc)
                if delay is None:
                    raise
            else:
                delay = _retry_delay(call, self.retry, attempt, response=response)
                if delay is None:
                    return _result(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _pages(self, call: _Call, cursor_param: str = "cursor") -> AsyncIterator[JSON]:
        page_call: _Call | None = call
        while page_call is not None:
            page = await self._send(page_call)
            for item in page["items"]:
                yield item
            page_call = _next_page(page_call, page, cursor_param)

    # -- writes ------------------------------------------------------------------------

    async def post_report(self, report: ReportLike) -> JSON:
        """POST /v1/reports: `{report_id, claim_ids, recorded_at, token}`."""
        return await self._send(_Calls.report(report))

    async def post_reports(
        self, reports: Iterable[ReportLike], chunk_size: int = 500
    ) -> list[JSON]:
        """POST /v1/reports:batch in chunks; every item's result, in input order."""
        results: list[JSON] = []
        for chunk in _chunks(reports, chunk_size):
            results.extend(await self._post_chunk(chunk, len(results)))
        return results

    async def _post_chunk(self, items: list[Any], offset: int) -> list[JSON]:
        try:
            page = await self._send(_Calls.batch(items))
        except ClaimledgerError as exc:
            if exc.status != 413 or len(items) < 2:
                raise
            half = len(items) // 2
            first = await self._post_chunk(items[:half], offset)
            return first + await self._post_chunk(items[half:], offset + half)
        return _reindexed(page["results"], offset)

    async def retract(
        self, claim_id: str, reason: str, effective_at: TimeLike | None = None
    ) -> JSON:
        """Retract a claim (from `effective_at`, default now)."""
        return await self._send(_Calls.retract(claim_id, reason, effective_at))

    async def assess(
        self,
        claim_id: str,
        reason: str,
        rank: Rank | None = None,
        credibility: int | None = None,
        effective_at: TimeLike | None = None,
    ) -> JSON:
        """Record an analyst's rank and/or credibility for a claim."""
        return await self._send(_Calls.assess(claim_id, reason, rank, credibility, effective_at))

    async def rate_source(
        self,
        source_id: str,
        reliability: Reliability,
        rationale: str,
        effective_at: TimeLike | None = None,
    ) -> JSON:
        """Rate a source's reliability A-F."""
        return await self._send(_Calls.rate(source_id, reliability, rationale, effective_at))

    # -- reads -------------------------------------------------------------------------

    async def consensus(
        self,
        subject: str,
        attribute: str,
        *,
        as_of: TimeLike | None = None,
        recorded_as_of: TimeLike | None = None,
        valid_at: TimeLike | None = None,
        min_token: str | int | None = None,
    ) -> JSON:
        """The consensus of one key, now or at a point on any of the three time axes."""
        return await self._send(
            _Calls.consensus(subject, attribute, as_of, recorded_as_of, valid_at, min_token)
        )

    def history(self, subject: str, attribute: str, *, page_size: int = 100) -> AsyncIterator[JSON]:
        """Every version of a key, oldest first (`async for`)."""
        return self._pages(_Calls.history(subject, attribute, page_size), "after")

    def snapshot(
        self,
        as_of: TimeLike | None = None,
        recorded_as_of: TimeLike | None = None,
        *,
        min_token: str | int | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[JSON]:
        """Every key's consensus at one time (`async for`)."""
        return self._pages(_Calls.snapshot(as_of, recorded_as_of, min_token, page_size))

    def subjects(self, *, page_size: int = 500) -> AsyncIterator[JSON]:
        """Every subject with its number of attributes (`async for`)."""
        return self._pages(_Calls.subjects(page_size))

    async def subject(self, subject: str) -> JSON:
        """One subject with the current consensus of each of its attributes."""
        return await self._send(_Calls.subject(subject))

    def claims(
        self,
        subject: str | None = None,
        attribute: str | None = None,
        source: str | None = None,
        *,
        page_size: int = 500,
    ) -> AsyncIterator[JSON]:
        """Claims as normalised, filtered by subject, attribute and/or source (`async for`)."""
        return self._pages(_Calls.claims(subject, attribute, source, page_size))

    async def report(self, report_id: str) -> JSON:
        """A report as accepted, with `applied: true` once all its events are applied."""
        return await self._send(_Calls.get_report(report_id))

    async def subscribe(
        self,
        subject: Filter = None,
        attribute: Filter = None,
        since: str | int | None = None,
        *,
        read_timeout_s: float = 45.0,
        max_reconnects: int | None = None,
    ) -> AsyncIterator[JSON]:
        """New consensus versions as they are made; reconnects with `Last-Event-ID`.

        See `Client.subscribe`.
        """
        params = _stream_params(subject, attribute)
        last_id = None if since is None else str(since)
        timeout = httpx.Timeout(self.timeout, read=read_timeout_s)
        failures = 0
        retry_ms: int | None = None
        while True:
            parser = _SSEParser()
            error: Exception | None = None
            hint: float | None = None
            try:
                async with self._http["query"].stream(
                    "GET",
                    "/v1/stream",
                    params=params,
                    headers=self._stream_headers(last_id),
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        if response.status_code not in _RETRY_STATUSES:
                            raise ClaimledgerError(response.status_code, _problem(response))
                        error = ClaimledgerError(response.status_code, _problem(response))
                        hint = _retry_after(response)
                    else:
                        failures = 0
                        async for line in response.aiter_lines():
                            event = parser.feed(line)
                            last_id = parser.last_id or last_id
                            if event is not None and event[0] == "consensus":
                                yield json.loads(event[1])
            except httpx.TransportError as exc:
                error = exc
            finally:
                retry_ms = parser.retry_ms or retry_ms
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                if error is not None:
                    raise error
                return
            await asyncio.sleep(self._reconnect_delay(failures, retry_ms, hint))
