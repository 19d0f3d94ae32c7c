"""`/docs` and `/redoc` work without internet: every file they load comes from the service.

The HTTP part checks every service; the browser part renders the pages in the machine's
Chromium (skipped without one, except under CI: see tests/e2e/test_browser.py) and fails on
any request that leaves the service, so a page that needs a CDN would be caught even where
the CDN is reachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.conftest import Cluster
from tests.e2e.test_browser import _chromium, _unavailable

pytestmark = pytest.mark.e2e

SERVICES = ("ingest", "query", "reconcile")
PAGES = ("/docs", "/redoc")
_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


def referenced(html: str, page_url: str) -> list[str]:
    """Absolute URLs of the scripts, styles, icons and specs a page names."""
    return [urljoin(page_url, ref) for ref in _REFERENCE.findall(html)]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("path", PAGES)
def test_doc_pages_reference_only_their_own_origin_and_every_file_answers(
    running: Cluster, service: str, path: str
) -> None:
    base = running.url(service)
    page = httpx.get(f"{base}{path}")
    assert page.status_code == 200
    refs = referenced(page.text, f"{base}{path}")
    assert any(r.endswith(".js") for r in refs), refs
    if path == "/docs":
        assert any(r.endswith(".css") for r in refs), refs
    assert any(r.endswith("/openapi.json") for r in refs), refs
    origin = urlsplit(base).netloc
    assert [r for r in refs if urlsplit(r).netloc != origin] == []
    for ref in refs:
        assert httpx.get(ref).status_code == 200, ref


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set CLAIMLEDGER_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/docs", "#swagger-ui .opblock-summary-path"),  # an operation listed
        ("/redoc", ".redoc-wrap .api-content h2"),  # ReDoc's operation sections
    ],
)
def test_doc_pages_render_in_a_browser_with_no_request_leaving_the_service(
    browser: Any, running: Cluster, path: str, rendered: str
) -> None:
    query = running.url("query")
    context = browser.new_context()
    requested: list[str] = []

    def offline(route: Any) -> None:  # as on a machine without internet
        requested.append(route.request.url)
        if route.request.url.startswith(f"{query}/"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{query}{path}")
        page.wait_for_selector(rendered, timeout=30_000)
        if path == "/docs":
            assert "/v1/consensus/" in (page.locator("#swagger-ui").inner_text() or "")
        assert errors == []
        assert requested and all(u.startswith(f"{query}/") for u in requested), requested
    finally:
        context.close()
