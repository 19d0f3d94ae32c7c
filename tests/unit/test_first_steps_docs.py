"""A new user reaches the `claimledger` command the way the README and docs say.

`make run` installs it in `.venv/bin/`, which is not on the PATH: the pages that use it say
so (by its path, or after `source .venv/bin/activate`), and `claimledger run` prints it.
The README keeps its two set-up commands.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from services import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/import.md", "docs/quickstart.md", "docs/operating.md"]


def test_the_readme_has_exactly_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set-up: two commands\s*```bash\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


@pytest.mark.parametrize("page", PAGES)
def test_pages_that_use_the_command_say_how_to_reach_it(page: str) -> None:
    text = " ".join((ROOT / page).read_text().split())
    assert "`claimledger " in text or "claimledger import" in text
    assert ".venv/bin/claimledger" in text, page
    assert "source .venv/bin/activate" in text, page


def test_the_command_the_docs_name_is_where_pip_installs_it() -> None:
    # the tests run with the checkout's .venv/bin/python (make test), as `make run` does
    script = Path(sys.executable).parent / "claimledger"
    if Path(sys.prefix).name != ".venv":
        pytest.skip("not run from the checkout's .venv")
    assert script.exists()


def test_run_prints_how_to_call_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "claimledger").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.chdir(tmp_path)
    with cli.console.capture() as captured:
        cli._print_urls(
            {"ingest": "http://h:1", "query": "http://h:2", "reconcile": "http://h:3"},
            "redis://h",
            "sqlite:///x.db",
            "k",
        )
    assert "command      .venv/bin/claimledger import" in captured.get()
