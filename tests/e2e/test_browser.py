"""The web page in a real headless Chromium, against the running system with the seed demo.

Playwright drives the machine's own Chromium (Debian's package, found on PATH or via
CLAIMLEDGER_CHROMIUM): no browser is downloaded. Without one the test is skipped, except
under CI=true, where a missing browser is a failure (.ci/run installs it). Screenshots go
to tests/e2e/artifacts/ (ignored by git) for CI to keep.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.cli import demo_reports, load_demo
from tests.conftest import Cluster, system, wait_for
from tests.factories import claim, report

ARTIFACTS = Path(__file__).parent / "artifacts"
SUBJECT = "dprk-troops-kursk"
ATTRIBUTE = "personnel_deployed"
CARD = f'.attribute-card[data-attribute="{ATTRIBUTE}"]'


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("CLAIMLEDGER_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run the browser test: .ci/run installs chromium)")
    pytest.skip(reason)


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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The system with the seed demo loaded and applied (as `claimledger run` shows it)."""
    with system(tmp_path_factory.mktemp("browser"), "ingest", "reconcile", "query") as c:
        load_demo(c.url("ingest"), None)
        for r in demo_reports():
            wait_for(
                lambda rid=r["report_id"]: (
                    httpx.get(  # type: ignore[misc]
                        f"{c.url('query')}/v1/reports/{rid}"
                    )
                    .json()
                    .get("applied")
                ),
                timeout_s=30,
            )
        yield c


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _count(page: Any, selector: str) -> int:
    return int(page.locator(selector).count())


def _current_versions(query: str) -> int:
    items = httpx.get(f"{query}/v1/consensus/{SUBJECT}/{ATTRIBUTE}/history?limit=1000").json()
    return sum(1 for v in items["items"] if v["recorded_to"] is None)


def _claims(query: str) -> int:
    params = {"subject": SUBJECT, "attribute": ATTRIBUTE, "limit": 1000}
    return len(httpx.get(f"{query}/v1/claims", params=params).json()["items"])


def test_the_page_charts_a_subject_updates_live_and_replays_the_past(
    browser: Any, demo: Cluster
) -> None:
    query, ingest = demo.url("query"), demo.url("ingest")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requested: list[str] = []  # nothing may come from elsewhere (no CDN at run time)
    page.on("request", lambda req: requested.append(req.url))
    try:
        # search and pick the subject
        page.goto(f"{query}/")
        page.fill("#subject-search", "kursk")
        page.click(f'.subject-item[data-subject="{SUBJECT}"]')
        page.wait_for_selector(f"{CARD} svg.chart-svg .claim-point")
        assert parse_qs(urlsplit(page.url).query)["subject"] == [SUBJECT]

        # the chart: consensus band and best line, one point per claim, one mark per version
        claims, versions = _claims(query), _current_versions(query)
        assert claims == 2
        assert _count(page, f"{CARD} .band") >= 1
        assert _count(page, f"{CARD} path.best-line") == 1
        assert _count(page, f"{CARD} .claim-point") == claims
        assert _count(page, f"{CARD} .version-mark") == versions
        assert _count(page, f"{CARD} .claim-point circle") == claims  # both are estimates
        # the claims table: source (linked to its report), quote
        rows = page.locator(f"{CARD} tr.claim-row")
        assert rows.count() == claims
        assert "12,000" in rows.first.locator("td.quote").inner_text()
        assert rows.first.locator("td.src a").count() >= 1
        _shot(page, "browser-1-subject")

        # a version's details: explanation, support, the causing report
        page.locator(f"{CARD} .version-mark").last.click(force=True)
        details = page.locator("#version-details")
        details.wait_for(state="visible")
        text = details.text_content() or ""  # raw text: headings are upper-cased by CSS
        assert "Support (" in text and "Cause" in text
        page.click("#load-cause-report")
        page.wait_for_selector("#vd-body .vd-report-title")
        assert "version" in parse_qs(urlsplit(page.url).query)
        page.click("#vd-close")

        # new reports through the API: the chart updates without a reload
        page.evaluate("window.__sameDocument = true")
        bound = report(
            claim(
                subject=SUBJECT,
                attribute=ATTRIBUTE,
                raw="more than 15,000",
                attributed_to="south-korean-intelligence",
                quote="more than 15,000 North Korean soldiers",
            ),
            source="nis-briefing",
            published_at="2025-04-10",
            report_id="browser-bound",
        )
        outlier = report(
            claim(
                subject=SUBJECT,
                attribute=ATTRIBUTE,
                value=50000,
                attributed_to="pro-kremlin-channel",
                quote="50,000 troops",
            ),
            source="telegram-channel",
            published_at="2025-04-12",
            report_id="browser-outlier",
        )
        for body in (bound, outlier):
            sent = httpx.post(
                f"{ingest}/v1/reports",
                json=body,
                headers={"X-Request-ID": f"trace-{body['report_id']}"},
            )
            assert sent.status_code == 202
        page.wait_for_function(
            f"document.querySelectorAll('{CARD} .claim-point').length === {claims + 2}",
            timeout=30_000,
        )
        page.wait_for_function(
            f"document.querySelectorAll('{CARD} .version-mark').length > {versions}",
            timeout=30_000,
        )
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        # shape by hedge: the lower bound is a triangle, the estimates circles
        assert _count(page, f"{CARD} .claim-point polygon") == 1
        # contradictions are highlighted: dissenting claims on the chart and in the table,
        # a contested consensus on the card
        page.wait_for_selector(f"{CARD} .claim-point.dissent")
        assert _count(page, f"{CARD} tr.claim-row.role-dissent") >= 1
        consensus = httpx.get(f"{query}/v1/consensus/{SUBJECT}/{ATTRIBUTE}").json()
        assert len(consensus["dissent"]) == _count(page, f"{CARD} .claim-point.dissent")
        if consensus["status"] == "contested":
            assert _count(page, f"{CARD}.is-contested") == 1
        # the newest version names its cause: the report, and the request's trace id
        page.locator(f"{CARD} .version-mark").last.click(force=True)
        page.wait_for_function(
            "document.querySelector('#vd-body').textContent.includes('trace-browser-outlier')"
        )
        if consensus["dissent"]:
            assert "Dissent (" in (page.locator("#vd-body").text_content() or "")
        _shot(page, "browser-2-live-update")
        page.click("#vd-close")

        # the as_of slider: back to the first report date, later claims greyed out
        slider = page.locator("#as-of-slider")
        slider.focus()
        page.keyboard.press("Home")
        page.wait_for_function("document.querySelector('#as-of-value').textContent !== 'latest'")
        as_of = page.locator("#as-of-value").inner_text()
        assert as_of == "2025-02-17"
        assert parse_qs(urlsplit(page.url).query)["as_of"] == [as_of]
        page.wait_for_function(
            f"document.querySelector('{CARD} .card-values').textContent.includes('as of {as_of}')"
        )
        assert _count(page, f"{CARD} .claim-point.later") == claims + 1  # all but the first
        assert "12,000" in page.locator(f"{CARD} .card-values .best").inner_text()
        _shot(page, "browser-3-as-of")

        # the deep link of that view opens it as it was
        link = page.url
        page2 = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page2.goto(link)
            page2.wait_for_selector(f"{CARD}.focused svg.chart-svg .claim-point")
            assert page2.locator("#as-of-value").inner_text() == as_of
            page2.wait_for_function(
                f"document.querySelector('{CARD} .card-values').textContent"
                f".includes('as of {as_of}')"
            )
            _shot(page2, "browser-4-deep-link")
            # `/?subject=...` alone opens that subject's charts
            page2.goto(f"{query}/?subject={SUBJECT}")
            page2.wait_for_selector(f"{CARD} svg.chart-svg .claim-point")
            assert page2.locator("#as-of-value").inner_text() == "latest"
        finally:
            page2.close()
        assert errors == []
        assert requested and all(u.startswith(f"{query}/") for u in requested), requested
    finally:
        page.close()


OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter((el) => { const r = el.getBoundingClientRect();
                    return r.width > 0 && r.right > window.innerWidth + 1; })
  .map((el) => el.tagName + '.' + el.className)"""


def test_a_first_visit_reads_labels_dates_and_whole_charts(browser: Any, demo: Cluster) -> None:
    query = demo.url("query")
    icon = httpx.get(f"{query}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        page.goto(f"{query}/?subject={SUBJECT}")
        page.wait_for_selector(f"{CARD} svg.chart-svg")
        # attributes by their registry labels, on the card and in the navigation
        assert page.locator(f"{CARD} h2.attr-name").inner_text() == "Personnel deployed"
        assert "Personnel deployed" in page.locator("#attribute-nav").inner_text()
        assert "personnel_deployed" not in page.locator("#cards h2").all_inner_texts()
        # the sidebar dates a subject by its newest publication, not by when it was recorded
        meta = page.locator(f'.subject-item[data-subject="{SUBJECT}"] .si-meta').inner_text()
        claims = httpx.get(f"{query}/v1/claims", params={"subject": SUBJECT, "limit": 1000})
        newest = max(c["published_at"] for c in claims.json()["items"])
        assert f"published {newest[:10]}" in meta
        # the time axis fits the data (a relative claim, not plotted, does not stretch it)
        killed = '.attribute-card[data-attribute="killed"] svg.chart-svg'
        page.wait_for_selector(killed)
        t0, t1 = (int(page.locator(killed).get_attribute(f"data-t{i}") or 0) for i in (0, 1))
        history = httpx.get(f"{query}/v1/consensus/{SUBJECT}/killed/history").json()["items"]
        starts = [_ms(v["published_from"]) for v in history]
        month = 31 * 86_400_000
        assert min(starts) - month <= t0 <= min(starts) and max(starts) <= t1 <= max(starts) + month
        # state charts name each origin whole (the margin makes room)
        lanes = page.locator('.attribute-card[data-attribute="deployment_status"] .claim-lane')
        assert lanes.count() >= 1
        for i in range(lanes.count()):
            lane = lanes.nth(i).locator(".lane-label")
            shown = lane.evaluate("(t) => t.childNodes[0].textContent")
            assert not shown.endswith("…"), shown
            assert lane.evaluate("(t) => t.getBBox().x") >= 0
        assert missing == []  # favicon included
    finally:
        page.close()
    narrow = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        narrow.goto(f"{query}/?subject={SUBJECT}")
        narrow.wait_for_selector(f"{CARD} tr.claim-row")
        assert narrow.evaluate(OVERFLOWING) == []
        _shot(narrow, "browser-5-420px")
    finally:
        narrow.close()


def _ms(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_the_page_asks_for_a_read_key_when_reads_need_one(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from services.infra.db import make_engine
    from services.infra.keys import create_key

    with system(tmp_path_factory.mktemp("keyed"), CLAIMLEDGER_REPUBLISH_AFTER_S="5") as c:
        engine = make_engine(c.db_url)
        try:
            c.start("ingest")  # creates the schema the keys live in
            read, write = (create_key(engine, [s], name=s)[1] for s in ("read", "write"))
        finally:
            engine.dispose()
        c.start("reconcile")
        c.start("query", CLAIMLEDGER_REQUIRE_READ_KEY="true")
        query, auth = c.url("query"), {"Authorization": f"Bearer {write}"}

        def post(value: int, day: int) -> None:
            body = report(
                claim(subject="keyed-subject", value=value), published_at=f"2025-01-{day:02d}"
            )
            assert (
                httpx.post(f"{c.url('ingest')}/v1/reports", json=body, headers=auth).status_code
                == 202
            )

        post(100, 1)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(f"{query}/")
            page.wait_for_selector("#key-form:not([hidden])")
            page.fill("#read-key", read)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("#key-form", state="hidden")
            page.click('.subject-item[data-subject="keyed-subject"]', timeout=30_000)
            card = '.attribute-card[data-attribute="personnel_deployed"]'
            page.wait_for_selector(f"{card} .claim-point")
            # the stream carries the key too: a new report shows without a reload
            page.wait_for_function(
                "document.querySelector('#live-status').classList.contains('live')"
            )
            post(200, 2)
            page.wait_for_function(
                f"document.querySelectorAll('{card} .claim-point').length === 2", timeout=30_000
            )
            # kept for the session: a reload does not ask again
            page.reload()
            page.wait_for_selector('.subject-item[data-subject="keyed-subject"]')
            assert page.locator("#key-form").is_hidden()
            assert errors == []
        finally:
            page.close()
