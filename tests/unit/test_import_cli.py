"""`claimledger import` / `export` argument handling that fails before any request is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

runner = CliRunner()


def test_a_mapping_that_cannot_fill_published_at_stops_before_reading_rows(
    tmp_path: Path,
) -> None:
    data = tmp_path / "no-dates.csv"
    data.write_text("source,object,attribute,value\na,o,p,1\n")
    result = runner.invoke(app, ["import", str(data), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--set published_at=" in result.output


def test_unknown_fields_and_formats_are_named(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n")
    bad_field = runner.invoke(app, ["import", str(data), "--map", "colour=a"])
    assert bad_field.exit_code == 2 and "unknown field 'colour'" in bad_field.output
    bad_format = runner.invoke(app, ["import", str(data), "--format", "xlsx"])
    assert bad_format.exit_code == 2 and "--format" in bad_format.output
    export = runner.invoke(app, ["export", "--format", "xml"])
    assert export.exit_code == 2


def test_rejection_reasons_are_whole_and_alike_rows_share_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the rejects file and the checkpoint go there
    # every row is refused by the importer itself: no request is sent
    data = tmp_path / "dates.csv"
    data.write_text(
        "source,object,attribute,value,timestamp\n"
        "a,o1,p,1,29/01/2020\n"
        "a,o2,p,2,30/01/2020\n"
        "a,o3,p,3,31/01/2020\n"
    )
    result = runner.invoke(
        app, ["import", str(data), "--url", "http://127.0.0.1:9", "--no-progress", "--json"]
    )
    assert result.exit_code == 0, result.output
    reason = (
        "published_at: '…' is not ISO 8601 nor a known form; "
        "pass --time-format (strptime, e.g. %d/%m/%Y)"
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["reasons"] == {reason: 3}
    assert reason in " ".join(result.stderr.split())  # the console's summary, however wrapped
    rejects = [json.loads(line) for line in (tmp_path / "dates.csv.rejects.jsonl").open()]
    assert [r["errors"][0]["detail"][:12] for r in rejects] == [
        "'29/01/2020'",
        "'30/01/2020'",
        "'31/01/2020'",
    ]  # the file keeps each row's own value


def test_the_json_summary_has_no_token_when_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "none.csv"
    data.write_text("source,object,attribute,value,timestamp\na,o1,p,,2020-01-01\n")
    result = runner.invoke(
        app, ["import", str(data), "--url", "http://127.0.0.1:9", "--no-progress", "--json"]
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["token"] is None  # nothing to wait for (a string otherwise: test_import_export)
