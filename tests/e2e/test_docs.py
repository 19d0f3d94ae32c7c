"""The documentation's code runs: quickstart blocks against real services; the site builds.

Every ```python block of docs/quickstart.md runs, in order, in one namespace; on other pages,
blocks right after a `<!-- run -->` line run (each page in its own namespace). The first
quickstart block defines INGEST_URL, QUERY_URL and API_KEY; the test replaces it with the
URLs and key of the cluster it started, as `make run` would have (demo loaded).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cli import demo_reports, load_demo
from tests.conftest import Cluster, system, wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
KEY = "docs-test-key"
SETTINGS = ("INGEST_URL", "QUERY_URL", "API_KEY")
_BLOCK = re.compile(r"(?P<marker><!-- run -->\s*\n)?```python\n(?P<code>.*?)\n```", re.S)


def python_blocks(page: Path, *, all_blocks: bool) -> list[tuple[int, str]]:
    """(line number, code) of the page's runnable python blocks."""
    text = page.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start("code")) + 1, m["code"])
        for m in _BLOCK.finditer(text)
        if all_blocks or m["marker"]
    ]


def run_blocks(page: Path, blocks: list[tuple[int, str]], namespace: dict[str, Any]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for line, code in blocks:
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(
                    f"{page.name} block at line {line} failed: {exc!r}\n{code}"
                ) from exc
    return out.getvalue()


@pytest.fixture(scope="module")
def demo_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """What `make run` gives: the three services, a bootstrap write key, the demo loaded."""
    with system(tmp_path_factory.mktemp("docs"), CLAIMLEDGER_BOOTSTRAP_WRITE_KEY=KEY) as cluster:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(cluster.start, ("ingest", "reconcile", "query")))
        load_demo(cluster.url("ingest"), KEY)
        query = cluster.url("query")
        for report in demo_reports():
            wait_for(
                lambda r=report: (
                    httpx.get(f"{query}/v1/reports/{r['report_id']}").json().get("applied")
                ),
                timeout_s=30,
            )
        yield cluster


def _namespace(cluster: Cluster) -> dict[str, Any]:
    return {
        "__name__": "__docs__",
        "INGEST_URL": cluster.url("ingest"),
        "QUERY_URL": cluster.url("query"),
        "API_KEY": KEY,
    }


@pytest.mark.e2e
def test_quickstart_runs_end_to_end_twice(demo_cluster: Cluster) -> None:
    page = DOCS / "quickstart.md"
    blocks = python_blocks(page, all_blocks=True)
    settings = blocks[0][1]
    assert all(f"{name} = " in settings for name in SETTINGS), "first block defines the URLs"
    # twice: a reader who runs the page again (same reports, posted again) gets through too
    for _ in range(2):
        output = run_blocks(page, blocks[1:], _namespace(demo_cluster))
        assert "new version" in output and "first version ever" in output
        assert "2024-12-15 deployed" in output and "2025-01-15 withdrawn" in output


@pytest.mark.e2e
def test_marked_blocks_on_other_pages_run(demo_cluster: Cluster) -> None:
    pages = [p for p in sorted(DOCS.glob("*.md")) if p.name != "quickstart.md"]
    ran = 0
    for page in pages:
        blocks = python_blocks(page, all_blocks=False)
        if blocks:
            run_blocks(page, blocks, _namespace(demo_cluster))
            ran += len(blocks)
    assert ran >= 1


def test_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]')")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "quickstart" / "index.html").exists()
