"""OpenAPI describes every answer: each route of each service declares the schema of its
success answer (the client and the docs are generated from it)."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.main import create_app as ingest_app
from services.query.main import create_app as query_app
from services.reconcile.main import create_app as reconcile_app

# answers that are not JSON: an event stream
NOT_JSON = {("get", "/v1/stream")}


@pytest.mark.parametrize("make", [ingest_app, query_app, reconcile_app])
def test_every_route_declares_its_success_answer(make: Any) -> None:
    spec = make().openapi()
    bare = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if (method, path) in NOT_JSON:
                continue
            success = [r for code, r in operation["responses"].items() if code.startswith("2")]
            schemas = [
                r.get("content", {}).get("application/json", {}).get("schema") for r in success
            ]
            if not any(s for s in schemas):
                bare.append(f"{method.upper()} {path}")
    assert bare == []
