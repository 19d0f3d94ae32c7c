"""Schema-driven fuzzing (schemathesis) of the ingest and query APIs: no input may cause a 5xx.

Runs in CI with the rest of the e2e suite (`make test`, `make e2e`): a small example count per
operation keeps it to seconds. `GET /v1/stream` (SSE, never ends) is left out, and so are the two
`{...:path}` routes whose OpenAPI entries do not declare their path parameter (schemathesis cannot
generate requests for them; their encoded-slash routing is tested in test_http_contract.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cluster, system

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = 20
EXCLUDED = r"/v1/stream|/v1/consensus/\{rest\}|/v1/subjects/\{subject\}"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # a short min_token wait: fuzzed tokens from the future answer 504 only after it
    with system(
        tmp_path_factory.mktemp("fuzz"),
        "ingest",
        "reconcile",
        "query",
        CLAIMLEDGER_REPUBLISH_AFTER_S="5",
        CLAIMLEDGER_MIN_TOKEN_WAIT_S="0.2",
    ) as c:
        yield c


def fuzz_command(schema_url: str, report_dir: Path) -> list[str]:
    return [
        str(SCHEMATHESIS),
        "run",
        schema_url,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--exclude-path-regex",
        EXCLUDED,
        "--request-timeout",
        "10",
        "--seed",
        "20260101",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]


@pytest.mark.parametrize("service", ["ingest", "query"])
def test_fuzzed_requests_never_get_a_server_error(
    fuzzed: Cluster, service: str, tmp_path: Path
) -> None:
    command = fuzz_command(f"{fuzzed.url(service)}/openapi.json", tmp_path)
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    summary = done.stdout[-4000:]
    assert done.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("SUMMARY")[-1], summary
    for name in ("ingest", "query"):
        assert fuzzed.services[name].process.poll() is None, f"{name} died under fuzzing"
