"""POST /v1/extract: candidate claims from the raw text of a report. Nothing is written.

Translate and call: the rules live in shared.extract (pure). The route is a plain `def`,
so FastAPI runs the CPU-bound extraction in its thread pool, off the event loop. The rules
run in linear time (1 MB in about a second on one core); a CPU budget per request still
bounds them: past EXTRACT_BUDGET_S the request answers 503 instead of burning more.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from services.infra.http import Problem
from shared.attributes import AttributeRegistry, default_registry
from shared.extract import ExtractionStopped, extract_claims
from shared.reports import Key
from shared.validtime import TimeProblem, parse_instant

MAX_TEXT_BYTES = 1_000_000
MAX_CANDIDATES = 5_000
EXTRACT_BUDGET_S = 10.0  # CPU seconds of one request's extraction (thread time)

router = APIRouter(prefix="/v1", tags=["extract"])


class ExtractSource(BaseModel):
    id: Key


class ExtractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_TEXT_BYTES, description="the report's text, up to 1 MB")
    published_at: str = Field(description="ISO 8601 date or timestamp; resolves 'last month'")
    source: ExtractSource | None = None
    subject: Key | None = Field(None, description="use this subject for every candidate")


class ExtractOut(BaseModel):
    claims: list[dict[str, Any]]
    truncated: bool = False


def _registry(request: Request) -> AttributeRegistry:
    ctx = getattr(request.app.state, "ingest", None)
    registry = getattr(ctx, "registry", None)
    return registry if isinstance(registry, AttributeRegistry) else default_registry()


def _budget(seconds: float) -> Any:
    """A should_stop for extract_claims: True once this thread spent `seconds` of CPU."""
    start = time.thread_time()
    return lambda: time.thread_time() - start > seconds


@router.post("/extract", response_model=ExtractOut, responses={422: {}, 503: {}})
def post_extract(body: ExtractIn, request: Request) -> ExtractOut:
    """Propose claims (claim-input shape plus quote, span, confidence); nothing is stored."""
    if len(body.text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise Problem(
            422,
            "Invalid request",
            f"/text: longer than {MAX_TEXT_BYTES} bytes",
            errors=[{"pointer": "/text", "detail": f"at most {MAX_TEXT_BYTES} bytes"}],
        )
    try:
        published, _ = parse_instant(body.published_at)
    except TimeProblem as exc:
        raise Problem(
            422,
            "Invalid request",
            f"/published_at: {exc.detail}",
            errors=[{"pointer": "/published_at", "detail": exc.detail}],
        ) from None
    try:
        claims = extract_claims(
            body.text,
            published_at=published,
            source_id=body.source.id if body.source else None,
            registry=_registry(request),
            subject=body.subject,
            max_claims=MAX_CANDIDATES + 1,
            should_stop=_budget(EXTRACT_BUDGET_S),
        )
    except ExtractionStopped:
        raise Problem(
            503,
            "Extraction over budget",
            f"/text: extraction used its {EXTRACT_BUDGET_S:g} s of CPU; send shorter text",
            errors=[{"pointer": "/text", "detail": "too costly to extract in one request"}],
            headers={"Retry-After": "5"},
        ) from None
    return ExtractOut(claims=claims[:MAX_CANDIDATES], truncated=len(claims) > MAX_CANDIDATES)
