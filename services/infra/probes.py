"""/readyz: per-dependency status, from checks each service registers in its lifespan."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class NotReady(Exception):
    """Raised by a readiness check that can say why it fails; the message is the reason."""


class Readiness(BaseModel):
    """/readyz: 200 when every dependency answers, 503 otherwise."""

    status: Literal["ready", "not_ready"]
    dependencies: dict[str, Literal["ok", "unavailable"]]
    reasons: dict[str, str] | None = None  # why a check failed, where it says


def readiness_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready when every dependency answers; lists each one's status (and, for a check
        that says why it fails, the reason)."""
        checks: dict[str, Any] = getattr(request.app.state, "readiness", {})
        status: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for name, check in checks.items():
            try:
                ok = check()
                if inspect.isawaitable(ok):
                    ok = await asyncio.wait_for(ok, 2.0)
                elif not isinstance(ok, bool):
                    ok = bool(ok)
            except NotReady as exc:
                ok = False
                reasons[name] = str(exc)
            except Exception:
                ok = False
            status[name] = "ok" if ok else "unavailable"
        ready = bool(checks) and all(v == "ok" for v in status.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "dependencies": status}
        if reasons:
            body["reasons"] = reasons
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
