"""Baseline for the single-report figure: the same stack (uvicorn with uvloop and httptools,
FastAPI, one JSON body parsed per request) doing nothing else. `python -m bench.trivial PORT`."""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.infra.http import NATIVE_TELEMETRY_OFF

app = FastAPI(telemetry=NATIVE_TELEMETRY_OFF)


@app.post("/v1/reports")
async def accept(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"report_id": body.get("report_id"), "token": "0"}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
