"""The client's pure parts: the text/event-stream parser, Retry-After, path segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx

from claimledger.client import RetryPolicy, _retry_after, _seg, _SSEParser


def _feed(lines: list[str]) -> tuple[list[tuple[str, str]], _SSEParser]:
    parser = _SSEParser()
    events = [e for line in lines if (e := parser.feed(line)) is not None]
    return events, parser


def test_sse_events_ids_comments_and_multiline_data() -> None:
    events, parser = _feed(
        [": ping - 2025-01-01", "", "event: consensus", "id: 7", 'data: {"a":', "data: 1}", "",
         "id: 9", "", "data:no-space", "retry: 1500", ""]
    )  # fmt: skip
    assert events == [("consensus", '{"a":\n1}'), ("message", "no-space")]
    assert parser.last_id == "9"  # an id-only block still moves the resume point
    assert parser.retry_ms == 1500


def test_sse_id_counts_only_once_its_event_is_complete() -> None:
    _, parser = _feed(["event: consensus", "id: 3", "data: {}", "", "id: 4", "data: {}"])
    assert parser.last_id == "3"


def test_retry_after_seconds_and_http_date() -> None:
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "2"})) == 2.0
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)  # the client's clock, fixed
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert _retry_after(httpx.Response(503, headers={"Retry-After": later}), lambda: now) == 30.0
    past = format_datetime(now - timedelta(seconds=5), usegmt=True)
    assert _retry_after(httpx.Response(503, headers={"Retry-After": past}), lambda: now) == 0.0
    assert _retry_after(httpx.Response(503)) is None


def test_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=4.0, max_retry_after_s=10.0)
    delays = [policy.delay(a) for a in range(10)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert policy.delay(0, retry_after=120) == 10.0


def test_segments_are_percent_encoded_whole() -> None:
    assert _seg("a/b c?") == "a%2Fb%20c%3F"
    assert _seg("..") == "%2E%2E" and _seg("a.b") == "a.b"
